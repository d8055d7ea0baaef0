"""Logical plans: the typed steps of a query, each with the schema it produces.

A plan is a source step followed by a chain of transformation steps and, for persistent queries, a
sink. Every step's output columns say which are key columns, so key changes (PARTITION BY) and the
timestamp each output record carries are explicit in the plan rather than implied by operators.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ksqlpy.functions.registry import Overload
from ksqlpy.planning.catalog import DataSource
from ksqlpy.planning.expressions import Op, TypedExpr
from ksqlpy.schema import Column, LogicalSchema, Namespace


@dataclass(frozen=True)
class SourceStep:
    """Reads a source's records; produces key, value and header columns, then ROWTIME, ROWPARTITION, ROWOFFSET."""

    source: DataSource
    columns: tuple[Column, ...]


@dataclass(frozen=True)
class FilterStep:
    predicate: TypedExpr


@dataclass(frozen=True)
class ProjectStep:
    """Computes the output columns; the KEY ones become the record key."""

    expressions: tuple[TypedExpr, ...]
    columns: tuple[Column, ...]


Step = FilterStep | ProjectStep


@dataclass
class QueryPlan:
    source: SourceStep
    steps: list[Step]
    output: LogicalSchema
    sink: DataSource | None = None
    # Output column whose value becomes the record timestamp (sink TIMESTAMP property), else ROWTIME.
    timestamp_column: int | None = None
    key_changed: bool = False  # PARTITION BY: records are re-keyed and re-partitioned by the new key
    limit: int | None = None
    query_id: str | None = None
    statement_text: str = ""
    properties: dict[str, object] = field(default_factory=dict)

    @property
    def input_topics(self) -> list[str]:
        return [self.source.source.topic]

    def property(self, name: str, default: str) -> str:
        """A query property as set by SET (`name`) or in the server config (`ksql.streams.name`), lower case."""
        return query_property(self.properties, name, default)

    def functions(self) -> Iterator[Overload]:
        """Every function overload the query calls."""
        pending: list[TypedExpr] = []
        for step in self.steps:
            pending += [step.predicate] if isinstance(step, FilterStep) else list(step.expressions)
        while pending:
            expr = pending.pop()
            if isinstance(expr, Op):
                if expr.op in ("call", "tablecall"):
                    yield expr.detail.overload
                pending += expr.args

    def describe(self) -> str:
        lines = [f" > [ SINK ] | Schema: {self.output} | Topic: {self.sink.topic}"] if self.sink else []
        for step in reversed(self.steps):
            if isinstance(step, ProjectStep):
                lines.append(f" > [ PROJECT ] | Schema: {LogicalSchema(step.columns)}")
                if any(isinstance(e, Op) and e.op == "tablecall" for e in step.expressions):
                    lines.append(" > [ FLAT_MAP ]")
            else:
                lines.append(" > [ FILTER ]")
        lines.append(f" > [ SOURCE ] | Schema: {LogicalSchema(self.source.columns)} | Topic: {self.source.source.topic}")
        return "\n".join("\t" * i + line for i, line in enumerate(lines))


def key_columns(columns: tuple[Column, ...]) -> list[int]:
    return [i for i, c in enumerate(columns) if c.namespace is Namespace.KEY]


def query_property(properties: Mapping[str, Any], name: str, default: str) -> str:
    """A property as set by SET (`name`) or in the server config (`ksql.streams.name`), lower case."""
    for candidate in (name, f"ksql.streams.{name}"):
        if candidate in properties:
            return str(properties[candidate]).strip().lower()
    return default
