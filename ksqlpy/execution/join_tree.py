"""Runs a plan's tree of joins on batches of source records: the rows of a query's joins before the steps
above them.

A batch comes from one topic. It is decoded once for every source on that topic (a self-join reads one
topic on both sides), and each source's rows climb the tree: at each join their join key is computed from
the side's columns and the join operator answers with joined rows, which are the next join's side (an
N-way join nests its inner joins on one side). What the top join emits is the tree's output: the root
JoinStep's columns followed by the metadata columns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ksqlpy.errors import StatementError
from ksqlpy.execution.expressions import CompiledExpression
from ksqlpy.execution.fk_join import ForeignKeyJoin
from ksqlpy.execution.join_rows import key_bytes
from ksqlpy.execution.joins import JoinOperator, RowLogger, StoresFor
from ksqlpy.execution.partitioning import partition_for
from ksqlpy.execution.rows import META_COLUMNS, ORIGIN, PARTITION
from ksqlpy.execution.stream_joins import StreamStreamJoin
from ksqlpy.execution.table_joins import StreamTableJoin, TableTableJoin
from ksqlpy.planning.expressions import InputRef, TypedExpr
from ksqlpy.planning.plan import JoinStep, SourceStep, Step, walk
from ksqlpy.schema import Namespace
from ksqlpy.state.operator_stores import OperatorStores

if TYPE_CHECKING:
    from ksqlpy.execution.pipeline import RecordBatch


class Decoder(Protocol):
    def decode(self, batch: RecordBatch) -> list[list[Any]]: ...


@dataclass(frozen=True)
class _Climb:
    """One join on a source's way up: its operator, which side the rows arrive on, how their key is computed
    and how many columns the side has before its metadata."""

    operator: JoinOperator
    side: int
    key: tuple[CompiledExpression, ...]
    width: int
    # When the join is not on both sides' keys, rows meet in the partition their join key hashes to (among
    # this many), not in their record's: None when the record's partition is the key's already.
    rehash_among: int | None = None


@dataclass(frozen=True)
class _Route:
    """How the rows of one source reach the top of the tree."""

    decoder: Decoder
    width: int  # the source's columns before the metadata (its schema's columns)
    climbs: tuple[_Climb, ...]


class JoinTree:
    """The joins of one query, below the steps that read their output."""

    def __init__(
        self,
        root: JoinStep,
        decoder_for: Callable[[SourceStep], Decoder],
        stores_for: Callable[[str], OperatorStores],
        log_row: RowLogger,
    ) -> None:
        self.root = root
        self.log_row = log_row
        self.operators: list[JoinOperator] = []
        self.routes: dict[str, list[_Route]] = {}
        self._add(root, (), decoder_for, stores_for)

    def _add(
        self,
        step: Step,
        above: tuple[_Climb, ...],
        decoder_for: Callable[[SourceStep], Decoder],
        stores_for: Callable[[str], OperatorStores],
    ) -> None:
        """Routes for the sources below `step`, whose rows then make the `above` climbs."""
        if isinstance(step, SourceStep):
            route = _Route(decoder_for(step), len(step.source.schema.columns), above)
            self.routes.setdefault(step.source.topic, []).append(route)
            return
        if not isinstance(step, JoinStep):
            raise StatementError(f"A join's input must be a source or a join, not {step.name}")
        operator = join_operator(step, _numbered(stores_for, len(self.operators)), self.log_row)
        self.operators.append(operator)
        partitions = max(below.source.partitions for below in walk(step) if isinstance(below, SourceStep))
        on_keys = _is_key(step.left, step.left_key) and _is_key(step.right, step.right_key)
        # A foreign-key join keeps its state in one partition: it needs no co-partitioning.
        rehash_among = None if on_keys or step.foreign_key or partitions <= 1 else partitions
        for side, (input_step, key) in enumerate(((step.left, step.left_key), (step.right, step.right_key))):
            climb = _Climb(operator, side, tuple(CompiledExpression(e) for e in key), len(input_step.columns),
                           rehash_among)
            self._add(input_step, (climb, *above), decoder_for, stores_for)

    def run(self, batch: RecordBatch) -> list[list[Any]]:
        """The joined rows the batch's records produce: the root join's columns, then the metadata."""
        routes = self.routes.get(batch.topic, [])
        if len(routes) == 1:
            return self._climb(routes[0], routes[0].decoder.decode(batch))
        # A topic read by several sources (a self-join) is taken a record at a time, each through every
        # source in turn, as Kafka Streams passes a record to each of a source node's children: a record's
        # rows on one side meet those of earlier records on the other.
        decoded = [route.decoder.decode(batch) for route in routes]
        rows_at = [{origin: row for row, origin in enumerate(columns[route.width + ORIGIN])}
                   for route, columns in zip(routes, decoded, strict=True)]
        outputs: list[list[list[Any]]] = []
        for origin in range(len(batch)):
            for route, columns, rows in zip(routes, decoded, rows_at, strict=True):
                row = rows.get(origin)
                if row is not None:
                    outputs.append(self._climb(route, [column[row:row + 1] for column in columns]))
        return [[value for output in outputs for value in output[i]] for i in range(len(self.root.columns) + META_COLUMNS)]

    def _climb(self, route: _Route, decoded: list[list[Any]]) -> list[list[Any]]:
        """The rows a source's decoded records make at the top of the tree."""
        meta = decoded[route.width:]
        columns = decoded
        for climb in route.climbs:
            size = len(meta[0])
            if size == 0:
                return [[] for _ in range(len(self.root.columns) + META_COLUMNS)]
            keys = self._keys(climb, columns, meta[ORIGIN], size)
            if climb.rehash_among is not None:
                among = climb.rehash_among
                meta = [*meta[:PARTITION], [partition_for(key_bytes(key), among) for key in keys], *meta[PARTITION + 1:]]
            joined = climb.operator.process(climb.side, keys, columns[: climb.width], meta)
            columns, meta = joined, joined[climb.operator.width:]
        return columns

    def _keys(self, climb: _Climb, columns: list[list[Any]], origins: list[int], size: int) -> list[Any]:
        """Each row's join key: a value, or a tuple for a composite key (None when any part is NULL)."""

        def failed(row: int, error: BaseException) -> None:
            self.log_row(origins[row], f"Error computing join key: {error}", "ERROR")

        parts = [expression.evaluate(columns, size, failed) for expression in climb.key]
        if len(parts) == 1:
            return parts[0]
        return [None if None in key else key for key in zip(*parts, strict=True)]


_OPERATORS: dict[str, type[JoinOperator]] = {
    "STREAM_STREAM": StreamStreamJoin,
    "STREAM_TABLE": StreamTableJoin,
    "TABLE_TABLE": TableTableJoin,
    "FOREIGN_KEY": ForeignKeyJoin,
}


def join_operator(step: JoinStep, stores_for: StoresFor, log_row: RowLogger) -> JoinOperator:
    """The operator that runs a JoinStep, by its kind (a table joined to a stream has none, as in ksqlDB)."""
    operator = _OPERATORS.get(step.kind)
    if operator is None:
        raise StatementError(f"{step.kind.replace('_', '-').lower()} joins are not supported")
    return operator(step, stores_for, log_row)


def _is_key(step: Step, key: tuple[TypedExpr, ...]) -> bool:
    """Whether a join key is exactly its side's key columns, in order: then its records are partitioned by it."""
    key_columns = [i for i, column in enumerate(step.columns) if column.namespace is Namespace.KEY]
    return [e.index if isinstance(e, InputRef) else None for e in key] == key_columns


def _numbered(stores_for: Callable[[str], OperatorStores], number: int) -> StoresFor:
    """Stores for the `number`th join: the first's named as ksqlDB names a lone join's, later ones numbered."""

    def numbered(name: str) -> OperatorStores:
        return stores_for(name if number == 0 else f"{name}-{number}")

    return numbered
