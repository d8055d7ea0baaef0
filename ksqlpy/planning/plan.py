"""Logical plans: a tree of typed steps after ksqlDB's execution steps, each with the schema it produces.

A query's plan is rooted at its last step and reaches down through each step's inputs to its sources:
stream or table source, filter, select (and flat map), group-by (re-key), aggregate (optionally
windowed), suppress (EMIT FINAL). Each step knows its output columns (which are key columns), whether it
produces a stream or a table (a changelog: an update per key, NULL values delete), and its window, so
key changes, tombstones and windowed keys are explicit in the plan rather than implied by operators.
Every step but a source and a join reads one input; a join reads two, and `inputs` walks both.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ksqlpy.functions.registry import BoundFunction, Overload
from ksqlpy.planning.catalog import DataSource
from ksqlpy.planning.expressions import Op, TypedExpr
from ksqlpy.schema import Column, LogicalSchema, Namespace
from ksqlpy.serialization.windowed import WindowInfo
from ksqlpy.syntax.ast import WindowSpec, WithinSpec

# ksqlDB's default grace period when a window names none: 24 hours.
DEFAULT_GRACE_MS = 24 * 60 * 60 * 1000
# ksqlDB's internal topic a re-keying GROUP BY writes through, named after the query's application id
REPARTITION_TOPIC_SUFFIX = "-Aggregate-GroupBy-repartition"


class _OneInput:
    """What a step with one input passes through unchanged unless it says otherwise: whether it yields a
    stream or a table, and its window."""

    input: Step

    @property
    def inputs(self) -> tuple[Step, ...]:
        return (self.input,)

    @property
    def is_table(self) -> bool:
        return self.input.is_table

    @property
    def window(self) -> WindowInfo | None:
        return self.input.window


class _SameColumns(_OneInput):
    """A step whose rows have its input's columns."""

    @property
    def columns(self) -> tuple[Column, ...]:
        return self.input.columns


@dataclass(frozen=True)
class SourceStep:
    """Reads a source's records; produces key, value and header columns, then ROWTIME, ROWPARTITION,
    ROWOFFSET (and WINDOWSTART, WINDOWEND over a windowed source)."""

    source: DataSource
    columns: tuple[Column, ...]

    @property
    def inputs(self) -> tuple[Step, ...]:
        return ()

    @property
    def is_table(self) -> bool:
        return self.source.kind == "TABLE"

    @property
    def window(self) -> WindowInfo | None:
        return self.source.window

    @property
    def name(self) -> str:
        return f"{'TABLE' if self.is_table else 'STREAM'}_SOURCE"


@dataclass(frozen=True)
class FilterStep(_SameColumns):
    """Keeps the rows the predicate holds for; over a table, a row that stops matching becomes a tombstone."""

    input: Step
    predicate: TypedExpr

    @property
    def name(self) -> str:
        return "TABLE_FILTER" if self.is_table else "FILTER"


@dataclass(frozen=True)
class ProjectStep(_OneInput):
    """Computes the output columns; the KEY ones become the record key. Table functions make it a flat map."""

    input: Step
    expressions: tuple[TypedExpr, ...]
    columns: tuple[Column, ...]

    @property
    def is_flat_map(self) -> bool:
        return any(isinstance(e, Op) and e.op == "tablecall" for e in self.expressions)

    @property
    def name(self) -> str:
        return "TABLE_SELECT" if self.is_table else ("FLAT_MAP" if self.is_flat_map else "PROJECT")


@dataclass(frozen=True)
class GroupByStep(_SameColumns):
    """GROUP BY: the input's first `key_width` columns become the record key. When they are not already the
    key (`rekeyed`), records change partition: on Kafka that goes through a repartition topic."""

    input: Step
    key_width: int
    rekeyed: bool

    @property
    def name(self) -> str:
        return ("TABLE_GROUP_BY" if self.is_table else "GROUP_BY") if self.rekeyed else "GROUP_BY_KEY"


@dataclass(frozen=True)
class AggregateCall:
    """One aggregate function call: its column arguments are input columns of the aggregate step, its
    trailing literal parameters (TOPK's k) are values."""

    function: BoundFunction
    arguments: tuple[int, ...]
    literals: tuple[Any, ...]
    text: str  # as ksqlDB renders it, for messages and EXPLAIN

    @property
    def overload(self) -> Overload:
        return self.function.overload


@dataclass(frozen=True)
class AggregateStep(_OneInput):
    """Aggregation of grouped records: the group key is the input's key columns, the rest of its columns are
    the aggregates' arguments. Produces a table keyed by the group (and window): key columns, then one column
    per aggregate."""

    input: GroupByStep
    aggregates: tuple[AggregateCall, ...]
    window_spec: WindowSpec | None
    columns: tuple[Column, ...]

    @property
    def key_width(self) -> int:
        return self.input.key_width

    @property
    def rekeyed(self) -> bool:
        return self.input.rekeyed

    @property
    def is_table(self) -> bool:
        return True

    @property
    def window(self) -> WindowInfo | None:
        if self.window_spec is None:
            return None
        return WindowInfo(self.window_spec.kind, None if self.window_spec.kind == "SESSION" else self.window_spec.size_ms)

    @property
    def grace_ms(self) -> int:
        spec = self.window_spec
        return DEFAULT_GRACE_MS if spec is None or spec.grace_ms is None else spec.grace_ms

    @property
    def name(self) -> str:
        if self.window_spec is None:
            return "AGGREGATE"
        return f"{'SESSION' if self.window_spec.kind == 'SESSION' else 'TIME'}_WINDOWED_AGGREGATE"


@dataclass(frozen=True)
class SuppressStep(_SameColumns):
    """EMIT FINAL: holds a windowed aggregate's updates back and emits each window's last one when it closes."""

    input: AggregateStep

    @property
    def name(self) -> str:
        return "SUPPRESS"


@dataclass(frozen=True)
class JoinStep:
    """Two inputs joined where their join keys are equal.

    Each side's join key is one expression per ON equality over that side's columns (`left_key`,
    `right_key`; several equalities join on a composite key). The output columns are the join key column(s)
    (KEY), then every column of the left input, then every column of the right input, each renamed
    `<source alias>_<name>` as ksqlDB names them (so `A.ID` in a later expression reads `A_ID`), an absent
    side's columns NULL. A stream-stream join pairs records whose times are within `within`
    (before/after ms and grace); a foreign-key join matches the left table's `left_key` against the right
    table's primary key and is keyed by the left table's key.
    """

    left: Step
    right: Step
    join_type: str  # INNER, LEFT, RIGHT, FULL
    left_key: tuple[TypedExpr, ...]
    right_key: tuple[TypedExpr, ...]
    columns: tuple[Column, ...]
    within: WithinSpec | None = None
    foreign_key: bool = False

    @property
    def inputs(self) -> tuple[Step, ...]:
        return (self.left, self.right)

    @property
    def is_table(self) -> bool:
        return self.left.is_table and self.right.is_table

    @property
    def window(self) -> WindowInfo | None:
        return None

    @property
    def key_width(self) -> int:
        return sum(1 for c in self.columns if c.namespace is Namespace.KEY)

    @property
    def kind(self) -> str:
        """STREAM_STREAM, STREAM_TABLE, TABLE_TABLE or FOREIGN_KEY."""
        if self.foreign_key:
            return "FOREIGN_KEY"
        return f"{'TABLE' if self.left.is_table else 'STREAM'}_{'TABLE' if self.right.is_table else 'STREAM'}"

    @property
    def name(self) -> str:
        return {"STREAM_STREAM": "STREAM_STREAM_JOIN", "STREAM_TABLE": "STREAM_TABLE_JOIN",
                "TABLE_TABLE": "TABLE_TABLE_JOIN", "FOREIGN_KEY": "FK_TABLE_TABLE_JOIN"}[self.kind]


Step = SourceStep | FilterStep | ProjectStep | GroupByStep | AggregateStep | SuppressStep | JoinStep


@dataclass
class QueryPlan:
    root: Step
    sink: DataSource | None = None
    # Output column whose value becomes the record timestamp (sink TIMESTAMP property), else ROWTIME.
    timestamp_column: int | None = None
    key_changed: bool = False  # PARTITION BY: records are re-keyed and re-partitioned by the new key
    limit: int | None = None
    query_id: str | None = None
    statement_text: str = ""
    properties: dict[str, object] = field(default_factory=dict)

    @property
    def output(self) -> LogicalSchema:
        return LogicalSchema(self.root.columns)

    @property
    def sources(self) -> list[SourceStep]:
        return [step for step in self.walk() if isinstance(step, SourceStep)]

    @property
    def source(self) -> SourceStep:
        """The source step of a single-input query."""
        return self.sources[0]

    @property
    def steps(self) -> list[Step]:
        """The steps above the source, in the order records flow through them (single-input queries)."""
        chain: list[Step] = []
        step = self.root
        while not isinstance(step, SourceStep):
            chain.append(step)
            step = step.inputs[0]
        return chain[::-1]

    @property
    def co_partitioned(self) -> bool:
        """Whether partition p of each input meets only partition p of the others: not when a foreign-key join
        (which needs no co-partitioning) or inputs of different partition counts are read."""
        joins = [step for step in self.walk() if isinstance(step, JoinStep)]
        return not any(join.foreign_key for join in joins) and len({s.source.partitions for s in self.sources}) <= 1

    @property
    def is_stateful(self) -> bool:
        return any(isinstance(step, AggregateStep) for step in self.walk())

    @property
    def input_topics(self) -> list[str]:
        return [step.source.topic for step in self.sources]

    def walk(self) -> Iterator[Step]:
        """Every step, the root first."""
        return walk(self.root)

    def property(self, name: str, default: str) -> str:
        """A query property as set by SET (`name`) or in the server config (`ksql.streams.name`), lower case."""
        return query_property(self.properties, name, default)

    def functions(self) -> Iterator[Overload]:
        """Every function overload the query calls."""
        pending: list[TypedExpr] = []
        for step in self.walk():
            if isinstance(step, FilterStep):
                pending.append(step.predicate)
            elif isinstance(step, ProjectStep):
                pending += step.expressions
            elif isinstance(step, AggregateStep):
                yield from (call.overload for call in step.aggregates)
        while pending:
            expr = pending.pop()
            if isinstance(expr, Op):
                if expr.op in ("call", "tablecall"):
                    yield expr.detail.overload
                pending += expr.args

    def describe(self) -> str:
        """The plan as ksqlDB's EXPLAIN prints it: one line per step, each input indented below its reader."""
        lines: list[str] = []
        if self.sink is not None:
            lines.append(f" > [ SINK ] | Schema: {self.output} | Topic: {self.sink.topic}")
        depth = 1 if self.sink is not None else 0
        pending: list[tuple[Step, int]] = [(self.root, depth)]
        while pending:
            step, level = pending.pop()
            lines.append("\t" * level + f" > [ {step.name} ] | {_step_detail(step, self.query_id)}")
            pending.extend((child, level + 1) for child in reversed(step.inputs))
        return "\n".join(lines)


def _step_detail(step: Step, query_id: str | None) -> str:
    detail = f"Schema: {LogicalSchema(step.columns)}"
    if isinstance(step, SourceStep):
        detail += f" | Topic: {step.source.topic}"
    if isinstance(step, GroupByStep) and step.rekeyed and not step.is_table and query_id is not None:
        detail += f" | Repartition topic: {query_id}{REPARTITION_TOPIC_SUFFIX}"
    if isinstance(step, AggregateStep):
        detail += f" | Aggregates: {', '.join(call.text for call in step.aggregates) or 'none'}"
    window = step.window
    if window is not None:
        detail += f" | Window: {window.kind}"
    return detail


def walk(step: Step) -> Iterator[Step]:
    """`step` and every step below it, each before its inputs, left input first."""
    pending: list[Step] = [step]
    while pending:
        current = pending.pop()
        yield current
        pending.extend(reversed(current.inputs))


def key_columns(columns: tuple[Column, ...]) -> list[int]:
    return [i for i, c in enumerate(columns) if c.namespace is Namespace.KEY]


def query_property(properties: Mapping[str, Any], name: str, default: str) -> str:
    """A property as set by SET (`name`) or in the server config (`ksql.streams.name`), lower case."""
    for candidate in (name, f"ksql.streams.{name}"):
        if candidate in properties:
            return str(properties[candidate]).strip().lower()
    return default
