"""Runs a plan's tree of joins on batches of source records: the rows of a query's joins before the steps
above them.

A batch comes from one topic. It is decoded once for every source on that topic (a self-join reads one
topic on both sides), and each source's rows climb the tree: at each join their join key is computed from
the side's columns and the join operator answers with joined rows, which are the next join's side (an
N-way join nests its inner joins on one side). What the top join emits is the tree's output: the root
JoinStep's columns followed by the metadata columns.

A join of two sources that is not on both their keys needs each key's rows in one partition. On Kafka a
stream side not keyed by the join key is re-keyed through a repartition topic (a JoinRepartition: `rekey`
writes it, and a tree built with that topic reads the side's rows back from it), so the join scales out
across processes like a key join. Elsewhere (the in-memory driver, single-partition inputs, and joins whose
input is another join) the rows are placed by their join key's hash in process instead, which is correct
when one process reads every partition.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ksqlpy.errors import StatementError
from ksqlpy.execution.expressions import CompiledExpression
from ksqlpy.execution.fk_join import ForeignKeyJoin
from ksqlpy.execution.join_rows import key_bytes, key_values
from ksqlpy.execution.joins import JoinOperator, RowLogger, StoresFor
from ksqlpy.execution.partitioning import partition_for
from ksqlpy.execution.repartition import decoded_rows
from ksqlpy.execution.rows import META_COLUMNS, ORIGIN, PARTITION
from ksqlpy.execution.stream_joins import StreamStreamJoin
from ksqlpy.execution.table_joins import StreamTableJoin, TableTableJoin
from ksqlpy.planning.expressions import InputRef, TypedExpr
from ksqlpy.planning.plan import JoinStep, SourceStep, Step, walk
from ksqlpy.schema import Namespace
from ksqlpy.serialization.base import RecordSerde
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


@dataclass(frozen=True)
class JoinRepartition:
    """A stream side of a join re-keyed by its join key through a repartition topic (ksqlDB's
    `Join-left-repartition`): its records are read from `topic`, and each row is written keyed by its join
    key serialized as the other side's keys are (`key_serde`; None when both sides are re-keyed, which then
    agree on key_bytes), so a key's rows land in the partition the other side's records of that key are in."""

    name: str  # "Join-left", "Join-right"; a later join of an N-way join's "Join-<n>-left"
    topic: str
    partitions: int
    route: _Route
    key: tuple[CompiledExpression, ...]
    key_serde: RecordSerde | None


class RepartitionedRows:
    """Decodes rows read back from a join repartition topic: each record's value is a source row with its
    metadata, as `JoinTree.rekey` wrote it; the metadata that belongs to where it was read is set anew."""

    def __init__(self, width: int, log_failure: Callable[[RecordBatch, int, str], None]) -> None:
        """`log_failure` is told of each record that is not such a row (the batch, its position, why)."""
        self.width = width
        self.log_failure = log_failure

    def decode(self, batch: RecordBatch) -> list[list[Any]]:
        rows, read, errors = decoded_rows(batch.values, self.width + META_COLUMNS)
        for position, error in errors.items():
            self.log_failure(batch, position, error)
        if not rows:
            return [[] for _ in range(self.width + META_COLUMNS)]
        columns = [list(column) for column in zip(*rows, strict=True)]
        columns[self.width + ORIGIN] = read
        columns[self.width + PARTITION] = [batch.partitions[i] for i in read]
        return columns


class JoinTree:
    """The joins of one query, below the steps that read their output."""

    def __init__(
        self,
        root: JoinStep,
        decoder_for: Callable[[SourceStep], Decoder],
        stores_for: Callable[[str], OperatorStores],
        log_row: RowLogger,
        key_serde_for: Callable[[SourceStep], RecordSerde],
        repartitioned: Callable[[JoinRepartition], Decoder] | None = None,
        repartition_topic: Callable[[str], str] | None = None,
    ) -> None:
        """`repartitioned`, with `repartition_topic` naming each repartition's topic: read re-keyed sides
        from their repartition topics, with these decoders, rather than place their rows in process."""
        self.root = root
        self.log_row = log_row
        self.key_serde_for = key_serde_for
        self.operators: list[JoinOperator] = []
        self.routes: dict[str, list[_Route]] = {}
        self.repartitions: list[JoinRepartition] = []  # the re-keyed sides that may go through a topic
        # Whether some join keeps rows of several input partitions together in process (placed by their join
        # key's hash, or a foreign-key join's state in one partition): correct only when one process reads them all.
        self.places_in_process = False
        self._repartitioned = repartitioned
        self._repartition_topic = repartition_topic
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
        number = len(self.operators)
        operator = join_operator(step, _numbered(stores_for, number), self.log_row)
        self.operators.append(operator)
        partitions = max(below.source.partitions for below in walk(step) if isinstance(below, SourceStep))
        sides = ((step.left, step.left_key), (step.right, step.right_key))
        keyed = [_is_key(input_step, key) for input_step, key in sides]
        # A foreign-key join keeps its state in one partition: it needs no co-partitioning.
        rehash_among = None if all(keyed) or step.foreign_key or partitions <= 1 else partitions
        self.places_in_process |= step.foreign_key and partitions > 1
        # Two sources, the one(s) not keyed by the join key streams: those go through repartition topics.
        through_topics = rehash_among is not None and all(
            isinstance(input_step, SourceStep) and (is_keyed or not input_step.is_table)
            for (input_step, _key), is_keyed in zip(sides, keyed, strict=True))
        staged = through_topics and self._repartitioned is not None and self._repartition_topic is not None
        for side, (input_step, key) in enumerate(sides):
            compiled = tuple(CompiledExpression(e) for e in key)
            width = len(input_step.columns)
            if through_topics and not keyed[side]:
                assert isinstance(input_step, SourceStep)
                other = sides[1 - side][0]
                source_width = len(input_step.source.schema.columns)
                repartition = JoinRepartition(
                    f"Join-{'' if number == 0 else f'{number}-'}{('left', 'right')[side]}",
                    input_step.source.topic, partitions, _Route(decoder_for(input_step), source_width, ()),
                    compiled, self.key_serde_for(other) if keyed[1 - side] and isinstance(other, SourceStep) else None)
                self.repartitions.append(repartition)
                if staged:
                    assert self._repartitioned is not None and self._repartition_topic is not None
                    route = _Route(self._repartitioned(repartition), source_width,
                                   (_Climb(operator, side, compiled, width), *above))
                    self.routes.setdefault(self._repartition_topic(repartition.name), []).append(route)
                    continue
            # Staged, the rows arrive in the partition their join key hashes to: from the repartition topic,
            # or in their record's partition (keyed by the join key).
            climb = _Climb(operator, side, compiled, width, None if staged else rehash_among)
            self.places_in_process |= climb.rehash_among is not None
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

    def rekey(self, repartition: JoinRepartition, batch: RecordBatch) -> tuple[list[list[Any]], list[bytes | None]]:
        """A batch of the re-keyed source's records as it is written to its repartition topic: the decoded
        rows (columns, then metadata) and each one's serialized join key (None for a NULL key)."""
        columns = repartition.route.decoder.decode(batch)
        size = len(columns[0]) if columns else 0
        keys = self._keys(repartition.key, columns, columns[repartition.route.width + ORIGIN], size) if size else []
        serde = repartition.key_serde
        if serde is None:
            return columns, [None if key is None else key_bytes(key) for key in keys]
        width = len(repartition.key)
        return columns, [None if key is None else serde.serialize(list(key_values(key, width))) for key in keys]

    def _climb(self, route: _Route, decoded: list[list[Any]]) -> list[list[Any]]:
        """The rows a source's decoded records make at the top of the tree."""
        meta = decoded[route.width:]
        columns = decoded
        for climb in route.climbs:
            size = len(meta[0])
            if size == 0:
                return [[] for _ in range(len(self.root.columns) + META_COLUMNS)]
            keys = self._keys(climb.key, columns, meta[ORIGIN], size)
            if climb.rehash_among is not None:
                among = climb.rehash_among
                meta = [*meta[:PARTITION], [partition_for(key_bytes(key), among) for key in keys], *meta[PARTITION + 1:]]
            joined = climb.operator.process(climb.side, keys, columns[: climb.width], meta)
            columns, meta = joined, joined[climb.operator.width:]
        return columns

    def _keys(self, key: tuple[CompiledExpression, ...], columns: list[list[Any]], origins: list[int],
              size: int) -> list[Any]:
        """Each row's join key: a value, or a tuple for a composite key (None when any part is NULL)."""

        def failed(row: int, error: BaseException) -> None:
            self.log_row(origins[row], f"Error computing join key: {error}", "ERROR")

        parts = [expression.evaluate(columns, size, failed) for expression in key]
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
