"""Join steps over two hand-built sources, and a join operator fed one side's rows at a time as the pipeline
feeds it, its output read back as rows of (output columns..., time, tombstone)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ksqlpy.execution.joins import JoinOperator, RowLogger, StoresFor
from ksqlpy.execution.rows import META_COLUMNS, PARTITION, TIMESTAMP, TOMBSTONE
from ksqlpy.planning.catalog import DataSource, SerdeSpec
from ksqlpy.planning.plan import JoinStep, SourceStep
from ksqlpy.schema import Column, LogicalSchema, Namespace
from ksqlpy.state.memory import InMemoryStoreProvider
from ksqlpy.state.operator_stores import OperatorStores
from ksqlpy.syntax.ast import WithinSpec
from ksqlpy.types import BIGINT, STRING, SqlType


def source_step(name: str, kind: str, columns: Sequence[tuple[str, SqlType]]) -> SourceStep:
    """A source of `kind` whose first column is its key."""
    schema = tuple(Column(column, sql_type, Namespace.KEY if i == 0 else Namespace.VALUE)
                   for i, (column, sql_type) in enumerate(columns))
    source = DataSource(name, kind, LogicalSchema(schema), name.lower(), SerdeSpec("KAFKA"), SerdeSpec("JSON"))
    return SourceStep(source, schema)


def join_step(left: SourceStep, right: SourceStep, join_type: str, key_columns: Sequence[str] = ("ID",),
              within: WithinSpec | None = None, foreign_key: bool = False) -> JoinStep:
    """`left` joined to `right`: the key column(s), then each side's columns prefixed with its name."""
    columns = (*(Column(name, BIGINT, Namespace.KEY) for name in key_columns),
               *(Column(f"{side.source.name}_{c.name}", c.type) for side in (left, right) for c in side.columns))
    return JoinStep(left, right, join_type, (), (), columns, within, foreign_key)


STREAM_COLUMNS = (("ID", BIGINT), ("V", STRING))


class Deleted(tuple[Any, ...]):
    """A tombstone's columns: its key columns set, its value columns NULL."""


class JoinFeed:
    """An operator over in-memory stores, fed rows as (key, columns, time) on one side."""

    def __init__(self, operator: type[JoinOperator], step: JoinStep) -> None:
        self.provider = InMemoryStoreProvider()
        self.stores: dict[str, OperatorStores] = {}
        self.logged: list[tuple[int, str, str]] = []
        self.partitions: list[int] = []  # the partition of each row the last call returned
        stores_for: StoresFor = self.stores_for
        log_row: RowLogger = lambda origin, reason, level: self.logged.append((origin, reason, level))  # noqa: E731
        self.operator = operator(step, stores_for, log_row)

    def stores_for(self, name: str) -> OperatorStores:
        return self.stores.setdefault(name, OperatorStores(self.provider, "Q", name))

    def send(self, side: int, rows: Sequence[tuple[Any, Sequence[Any] | None, int]],
             partition: int = 0) -> list[tuple[Any, ...]]:
        """Rows of (join key, columns, time), a tombstone's columns None or Deleted; returns the output rows."""
        width = len(self.operator.step.inputs[side].columns)
        columns = [[None if values is None else values[c] for _, values, _ in rows] for c in range(width)]
        meta = [[time, partition, i, None, None, i, values is None or isinstance(values, Deleted), time, partition, b""]
                for i, (_, values, time) in enumerate(rows)]
        output = self.operator.process(side, [key for key, _, _ in rows], columns,
                                       [list(column) for column in zip(*meta, strict=True)] if rows
                                       else [[] for _ in range(META_COLUMNS)])
        width = self.operator.width
        self.partitions = list(output[width + PARTITION])
        return [(*row[:width], row[width + TIMESTAMP], row[width + TOMBSTONE]) for row in zip(*output, strict=True)]
