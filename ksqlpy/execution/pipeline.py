"""Physical execution of a query plan: decode a batch of records, run the compiled steps, encode the results.

A Pipeline is built once per query and then fed batches of raw records by whichever driver hosts it
(the in-memory driver for tests, the Kafka runtime in production); it knows nothing about where the
records come from. Records that cannot be decoded, timestamped or encoded go to the processing log
and are dropped; the rest of the batch flows on. Whatever else a batch raises is narrowed down to the
records at fault (see Pipeline.process), so no single record can stop a query.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import compress
from typing import Any, Protocol, TypeVar

from ksqlpy.errors import KsqlError, SerdeError, StatementError, UdfError
from ksqlpy.execution.aggregation import AggregateOperator
from ksqlpy.execution.emission import emission_policy
from ksqlpy.execution.expressions import (
    CompiledExpression,
    ErrorHandler,
    TableCall,
    compile_expressions,
    flat_map,
)
from ksqlpy.execution.join_tree import JoinRepartition, JoinTree, RepartitionedRows
from ksqlpy.execution.partitioning import partition_for
from ksqlpy.execution.repartition import decoded_rows, encoded_rows
from ksqlpy.execution.rows import (
    KEY_BYTES,
    META_COLUMNS,
    ORIGIN,
    PARTITION,
    ROWOFFSET,
    ROWPARTITION,
    ROWTIME,
    TIMESTAMP,
    TOMBSTONE,
    WINDOWEND,
    WINDOWSTART,
)
from ksqlpy.execution.tables import SuppressOperator, TableFilterOperator
from ksqlpy.planning.catalog import DataSource
from ksqlpy.planning.expressions import Const, Op
from ksqlpy.planning.plan import (
    AggregateStep,
    FilterStep,
    JoinStep,
    ProjectStep,
    QueryPlan,
    SourceStep,
    Step,
    SuppressStep,
    query_property,
)
from ksqlpy.schema import Namespace
from ksqlpy.serialization.base import FormatOptions, RecordSerde
from ksqlpy.serialization.formats import serde_for
from ksqlpy.serialization.windowed import split_windowed_keys, windowed_keys
from ksqlpy.state.base import StoreProvider
from ksqlpy.state.memory import InMemoryStoreProvider
from ksqlpy.state.operator_stores import OperatorStores, StoreChanges
from ksqlpy.types import BIGINT, BOOLEAN, INTEGER, STRING


@dataclass(slots=True)
class Record:
    """A Kafka record as the engine sees it: raw key/value bytes plus metadata."""

    key: bytes | None
    value: bytes | None
    timestamp: int
    headers: tuple[tuple[str, bytes | None], ...] = ()
    partition: int = 0
    offset: int = 0
    topic: str = ""
    window: tuple[int, int, str] | None = None


Headers = tuple[tuple[str, bytes | None], ...]


@dataclass(slots=True)
class RecordBatch:
    """Consumed records column by column, as a source adapter hands them to a pipeline.

    Columns keep per-record work off the hot path: an adapter fills each with one C-level pass over its
    client's messages, and the decoder reads them without building an object per record.
    """

    keys: list[bytes | None]
    values: list[bytes | None]
    timestamps: list[int]
    partitions: list[int]
    offsets: list[int]
    headers: list[Headers] | None = None  # None when no record in the batch has headers
    topic: str = ""

    @classmethod
    def of(cls, records: Sequence[Record]) -> RecordBatch:
        headers = [r.headers for r in records]
        return cls(
            [r.key for r in records],
            [r.value for r in records],
            [r.timestamp for r in records],
            [r.partition for r in records],
            [r.offset for r in records],
            headers if any(headers) else None,
            records[0].topic if records else "",
        )

    def __len__(self) -> int:
        return len(self.values)

    def slice(self, start: int, stop: int) -> RecordBatch:
        return RecordBatch(
            self.keys[start:stop],
            self.values[start:stop],
            self.timestamps[start:stop],
            self.partitions[start:stop],
            self.offsets[start:stop],
            self.headers[start:stop] if self.headers is not None else None,
            self.topic,
        )

    def record(self, index: int) -> Record:
        """One record, for the processing log."""
        return Record(
            self.keys[index],
            self.values[index],
            self.timestamps[index],
            self.headers[index] if self.headers is not None else (),
            self.partitions[index],
            self.offsets[index],
            self.topic,
        )


@dataclass(slots=True)
class OutputBatch:
    """What a query writes to its sink, column by column; `partitions` is each record's suggested partition."""

    keys: list[bytes | None]
    values: list[bytes | None]
    timestamps: list[int]
    partitions: list[int]
    headers: list[Headers] | None = None
    # Input records a UDF failed on, for the dead-letter topic (udf.error.policy = dlq)
    dead_letters: list[Record] = field(default_factory=list)
    # Each record's position in `inputs`, the batch it came from, so a record the sink refuses can be logged
    # against its input; None when the records do not come from a pipeline.
    origins: list[int] | None = None
    inputs: RecordBatch | None = None
    # Produce each record to `partitions` as given rather than by the producer's partitioner (which would
    # hash a windowed key's window bounds too, scattering one key's windows)
    place_by_partition: bool = False

    def __len__(self) -> int:
        return len(self.values)

    def input_record(self, row: int) -> Record | None:
        """The input record the output record at `row` came from, if known."""
        if self.origins is None or self.inputs is None:
            return None
        return self.inputs.record(self.origins[row])

    def followed_by(self, other: OutputBatch, shift: int) -> OutputBatch:
        """This batch's records, then `other`'s, whose input positions start `shift` records further on."""
        headers = None
        if self.headers is not None or other.headers is not None:
            headers = [*(self.headers or [()] * len(self)), *(other.headers or [()] * len(other))]
        origins = None
        if self.origins is not None and other.origins is not None:
            origins = [*self.origins, *(origin + shift for origin in other.origins)]
        return OutputBatch(
            self.keys + other.keys, self.values + other.values, self.timestamps + other.timestamps,
            self.partitions + other.partitions, headers, self.dead_letters + other.dead_letters, origins,
            place_by_partition=self.place_by_partition or other.place_by_partition,
        )

    @classmethod
    def of(cls, records: Sequence[Record]) -> OutputBatch:
        return cls(
            [r.key for r in records], [r.value for r in records], [r.timestamp for r in records],
            [r.partition for r in records], [r.headers for r in records],
        )

    def records(self) -> list[Record]:
        headers = self.headers or [()] * len(self.values)
        return [
            Record(key, value, timestamp, header, partition)
            for key, value, timestamp, header, partition in zip(
                self.keys, self.values, self.timestamps, headers, self.partitions, strict=True
            )
        ]


class ProcessingLogger(Protocol):
    """Where a query's log entries go: the record concerned (if any), why, and how much it matters (ERROR,
    or DEBUG for what is expected, such as a record too late for its window)."""

    def __call__(self, record: Record | None, reason: str, level: str = "ERROR") -> None: ...


T = TypeVar("T")


class StopOnRecord(KsqlError):
    """A record failed and the query is set to stop rather than log and skip it
    (ksql.fail.on.deserialization.error = true)."""

    @classmethod
    def undecodable(cls, record: Record, error: object) -> StopOnRecord:
        return cls(f"Failed to deserialize the record at {record.topic} partition {record.partition} "
                   f"offset {record.offset} ({FAIL_ON_DESERIALIZATION_PROPERTY}=true): {error}")

_SERIALIZE_ERRORS = (SerdeError, KsqlError, ValueError, TypeError)
TimestampParser = Callable[[str], int]
# What a failing UDF does to its row: NULL result (ksqlDB's behaviour), drop the row, stop the query, or
# drop the row and send its input record to the dead-letter topic. Every failure is processing-logged.
UDF_ERROR_POLICIES = ("null", "skip", "fail", "dlq")
DEAD_LETTER_TOPIC_PROPERTY = "udf.error.dlq.topic"
# As in ksqlDB: false (the default) logs a record that cannot be deserialized and goes on; true stops the query.
FAIL_ON_DESERIALIZATION_PROPERTY = "ksql.fail.on.deserialization.error"
# As in ksqlDB, true stops the query on a record its sink refuses; ksqlDB's default is true, but here a record
# too large for its sink must not stop a query, so the default is false: log and go on.
FAIL_ON_PRODUCTION_PROPERTY = "ksql.fail.on.production.error"


def flag_property(properties: Mapping[str, Any], name: str, default: bool) -> bool:
    """A true/false query property; anything else is a StatementError naming it."""
    value = query_property(properties, name, str(default).lower())
    if value not in ("true", "false"):
        raise StatementError(f"Invalid value for {name}: '{value}' (expected true or false)")
    return value == "true"


def placed_by_key(keys: Sequence[bytes | None], partitions: int) -> list[int]:
    """Where the producer's partitioner puts each key (a NULL key: partition 0), hashed once per distinct key."""
    placed: dict[bytes | None, int] = {}
    return [placed[key] if key in placed else placed.setdefault(key, 0 if key is None else partition_for(key, partitions))
            for key in keys]


def key_serde(source: DataSource) -> RecordSerde:
    """A keyless source keeps its declared key format (a later PARTITION BY inherits it) but reads no key."""
    key_format = source.key.format if source.schema.key else "NONE"
    return serde_for(key_format, source.schema.key, source.key.options)


def value_serde(source: DataSource) -> RecordSerde:
    return serde_for(source.value.format, source.schema.value, source.value.options)


class SourceDecoder:
    """Raw records of one source -> columns (key, value, header columns, ROWTIME, ROWPARTITION, ROWOFFSET).

    Only the value columns the query reads are decoded (when the format can skip fields); the others are
    left as a shared placeholder that no compiled expression ever reads.
    """

    def __init__(
        self,
        source: DataSource,
        log: ProcessingLogger,
        parse_timestamp: TimestampParser | None,
        needed: set[int] | None = None,
        fail_on_error: bool = False,
    ) -> None:
        self.source = source
        self.log = log
        self.fail_on_error = fail_on_error
        self.key_serde = key_serde(source)
        self.value_serde = value_serde(source)
        # A record with a NULL value still flows: a stream's is projected and written as a tombstone, a table's
        # deletes its key.
        self.is_table = source.kind == "TABLE"
        self.header_columns = [c for c in source.schema.columns if c.namespace is Namespace.HEADERS]
        self.width = len(source.schema.columns)
        self.key_width = len(source.schema.key)
        self.timestamp_index: int | None = None
        self.parse_timestamp = parse_timestamp
        if source.timestamp_column is not None:
            self.timestamp_index = source.schema.index(source.timestamp_column)
            self.timestamp_is_text = source.schema.columns[self.timestamp_index].type == STRING
        value_width = len(source.schema.value)
        # positions (within the value columns) decoded, in the order the value serde returns them
        self.value_positions = list(range(value_width))
        if needed is not None:
            wanted = {i - self.key_width for i in needed if self.key_width <= i < self.key_width + value_width}
            if self.timestamp_index is not None and self.timestamp_index >= self.key_width:
                wanted.add(self.timestamp_index - self.key_width)
            projected = self.value_serde.project(sorted(wanted)) if len(wanted) < value_width else None
            if projected is not None:
                self.value_serde = projected
                self.value_positions = sorted(wanted)
        self.value_width = value_width

    def decode(self, batch: RecordBatch) -> list[list[Any]]:
        """Columns of the decodable records, followed by the metadata columns of ksqlpy.execution.rows
        (a tombstone's pseudo columns are NULL; its record timestamp is kept)."""
        raw_keys = batch.keys
        size = len(batch)
        window_errors: dict[int, SerdeError] = {}
        starts: list[Any]
        ends: list[Any]
        if self.source.window is not None:
            raw_keys, starts, ends = split_windowed_keys(batch.keys, self.source.window, window_errors)
        else:
            starts = ends = [None] * size
        keys = self.key_serde.deserialize_columns(raw_keys)
        values = self.value_serde.deserialize_columns(batch.values)
        rowtimes: list[Any] = batch.timestamps
        errors = {**window_errors, **keys.errors, **values.errors}
        if self.timestamp_index is not None:
            if self.timestamp_index < self.key_width:
                raw_times = keys.columns[self.timestamp_index]
            else:
                raw_times = values.columns[self.value_positions.index(self.timestamp_index - self.key_width)]
            rowtimes = self._extract_timestamps(raw_times, batch, set(errors))
        for index, error in errors.items():
            self.log(batch.record(index), f"Failed to deserialize record: {error}")
            if self.fail_on_error:
                raise StopOnRecord.undecodable(batch.record(index), error)
        tombstones = [False] * size if False not in values.present else [not present for present in values.present]
        dropped = set(errors)
        if None in rowtimes:
            dropped.update(i for i, t in enumerate(rowtimes) if t is None)
        if self.is_table and self.key_width and None in batch.keys:
            for index, key in enumerate(batch.keys):
                if key is None and index not in dropped:
                    self.log(batch.record(index), "Table record with a null key skipped: a table row needs a key")
                    dropped.add(index)
        has_tombstones = True in tombstones
        columns: list[list[Any]] = list(keys.columns)
        placeholder: list[Any] = [None] * size
        value_columns: list[list[Any]] = [placeholder] * self.value_width
        for decoded, position in zip(values.columns, self.value_positions, strict=True):
            value_columns[position] = decoded
        columns += value_columns
        if self.header_columns:
            header_rows = [self._header_values(h) for h in batch.headers or [()] * size]
            columns += [[row[j] for row in header_rows] for j in range(len(self.header_columns))]
        partitions, offsets = batch.partitions, batch.offsets
        pseudo: list[list[Any]]
        if has_tombstones:
            # As in ksqlDB, where the pseudo columns travel in the value, a tombstone has NULL pseudo columns.
            pseudo = [
                [None if t else v for v, t in zip(column, tombstones, strict=True)]
                for column in (rowtimes, partitions, offsets)
            ]
        else:
            pseudo = [rowtimes, partitions, offsets]
        columns += [*pseudo, starts, ends, list(range(size)), tombstones, rowtimes, partitions, batch.keys]
        if dropped:
            kept = [i not in dropped for i in range(size)]
            columns = [list(compress(column, kept)) for column in columns]
        return columns

    def _extract_timestamps(self, raw_times: list[Any], batch: RecordBatch, failed: set[int]) -> list[Any]:
        """ROWTIME from the TIMESTAMP column; None marks a row dropped for a missing or invalid time."""
        if not self.timestamp_is_text and raw_times and set(map(type, raw_times)) == {int} and min(raw_times) >= 0:
            return raw_times
        return [
            None if index in failed else self._extract_timestamp(raw, batch, index)
            for index, raw in enumerate(raw_times)
        ]

    def _header_values(self, headers: Headers) -> list[Any]:
        values: list[Any] = []
        for column in self.header_columns:
            if column.header_key is None:
                values.append([{"KEY": k, "VALUE": v} for k, v in headers])
            else:
                matching = [v for k, v in headers if k == column.header_key]
                values.append(matching[-1] if matching else None)
        return values

    def _extract_timestamp(self, raw: Any, batch: RecordBatch, index: int) -> int | None:
        try:
            if raw is None:
                raise ValueError("timestamp column is null")
            if self.timestamp_is_text:
                assert self.parse_timestamp is not None
                timestamp = self.parse_timestamp(raw)
            else:
                timestamp = int(raw)
        except (ValueError, KsqlError) as error:
            self.log(batch.record(index), f"Failed to extract timestamp from column {self.source.timestamp_column}: {error}")
            return None
        if timestamp < 0:
            self.log(batch.record(index), f"Invalid timestamp {timestamp}: timestamps must be non-negative")
            return None
        return timestamp


class Pipeline:
    """One query's compiled operators, in the order records flow through the plan's steps."""

    def __init__(
        self,
        plan: QueryPlan,
        log: ProcessingLogger,
        sink: DataSource | None = None,
        timestamp_parsers: Mapping[str, TimestampParser] | None = None,
        parse_output_timestamp: TimestampParser | None = None,
        stores: StoreProvider | None = None,
        default_cache_bytes: int | None = None,
        commits_state: bool = True,
        join_topics: Callable[[str], str] | None = None,
    ) -> None:
        """`timestamp_parsers` read the TIMESTAMP column of the sources (by name) that have a TIMESTAMP_FORMAT;
        `parse_output_timestamp` reads the sink's TIMESTAMP column when it is text in a TIMESTAMP_FORMAT;
        `stores` holds stateful operators' state (in memory when not given); `default_cache_bytes` is the
        record cache size when the query sets none (ksqlDB's 10 MB when None). With `commits_state`, every
        batch's state changes are committed when it is done; without, whoever runs the pipeline commits them
        (commit_state) when it commits the batches' input and output, and drops them (rollback_state) when
        that fails. With `join_topics` (a join repartition's topic by its name) the join stage reads re-keyed
        join inputs back from their repartition topics (see join_repartitions)."""
        self.plan = plan
        self.commits_state = commits_state
        self._arguments = (plan, log, sink, timestamp_parsers, parse_output_timestamp, stores, default_cache_bytes,
                           commits_state)
        self.parse_output_timestamp = parse_output_timestamp
        self.log = log
        # While a batch is processed its log entries are held here, and dropped if the batch is retried in parts.
        self._held: list[tuple[Record | None, str, str]] | None = None
        self._batch: RecordBatch | None = None  # the batch being processed, for stateful operators' log entries
        self.rowtime_index = len(plan.source.source.schema.columns)
        self.stores = stores or InMemoryStoreProvider()
        self.emission = emission_policy(plan.properties, default_cache_bytes)
        self.steps: list[tuple[str, Any]] = []
        # per projection: its table functions (FLAT_MAP) by output position, evaluated before the rest
        self.table_calls: dict[int, dict[int, TableCall]] = {}
        self.sink = sink
        self.stateful: list[AggregateOperator] = []
        # A re-keying aggregate over a stream, and its position in self.steps: on Kafka, the rows reaching it
        # cross a repartition topic (process_upstream, then process_downstream). One over a table stays in
        # process: a table row's change takes the row's old contribution back from its old group, found by the
        # source key in the aggregate's own state; across a repartition topic the change would have to travel
        # as an old/new pair of records, which nothing produces yet.
        self._repartitioned: tuple[int, AggregateOperator] | None = None
        self._regrouped_in_process = False  # a re-keying aggregate that moves its rows between partitions itself
        self.state: list[OperatorStores] = []  # every stateful operator's stores
        below, steps = _steps_above_input(plan)
        # A GroupByStep needs no operator of its own: the aggregate above it groups (and partitions) rows by
        # their key columns.
        for step in steps:
            if isinstance(step, FilterStep):
                compiled = CompiledExpression(step.predicate)
                if step.is_table:
                    self.steps.append(("table_filter", (compiled, TableFilterOperator(self._stores_for("Filter")))))
                else:
                    self.steps.append(("filter", [compiled]))
            elif isinstance(step, ProjectStep):
                tables = {i: e for i, e in enumerate(step.expressions) if isinstance(e, Op) and e.op == "tablecall"}
                if tables:
                    self.table_calls[len(self.steps)] = {i: TableCall(e) for i, e in tables.items()}
                scalars = [Const(e.type, None) if i in tables else e for i, e in enumerate(step.expressions)]
                self.steps.append(("project", compile_expressions(scalars)))
            elif isinstance(step, AggregateStep):
                # EMIT FINAL over time windows is the aggregate's own emission on window close
                final = any(isinstance(s, SuppressStep) and s.input is step for s in plan.steps) and \
                    step.window_spec is not None and step.window_spec.kind != "SESSION"
                operator = AggregateOperator(step, self._stores_for("Aggregate"), self._aggregate_key_serde(step),
                                             self.emission, plan.source.source.partitions, self._log_row, final,
                                             plan.properties)
                self.stateful.append(operator)
                if step.rekeyed and not step.input.is_table and isinstance(below, SourceStep):
                    self._repartitioned = (len(self.steps), operator)
                elif step.rekeyed:
                    self._regrouped_in_process = True
                self.state += operator.operator_stores[1:]
                self.steps.append(("stateful", (operator.process, len(step.columns))))
            elif isinstance(step, SuppressStep) and step.window is not None and step.window.is_session:
                suppress = SuppressOperator(step, self._stores_for("Suppress"))
                self.steps.append(("stateful", (suppress.process, len(step.columns))))
        self.fail_on_deserialization = flag_property(plan.properties, FAIL_ON_DESERIALIZATION_PROPERTY, False)
        # What the steps read, decided once: a single source's decoded records, or a tree of joins' rows.
        self.joins: JoinTree | None = None
        if isinstance(below, JoinStep):
            parsers = timestamp_parsers or {}
            self.joins = JoinTree(
                below, lambda step: self._decoder(step.source, parsers.get(step.source.name), None),
                self._join_stores, self._log_row, lambda step: key_serde(step.source),
                None if join_topics is None else lambda repartition: RepartitionedRows(
                    repartition.route.width, self._log_repartition_failure),
                join_topics)
            self._input: Callable[[RecordBatch], list[list[Any]]] = self.joins.run
            self._input_width, self._from_source = len(below.columns), False
        else:
            read = self._source_columns_read()
            self.decoder = self._decoder(plan.source.source, (timestamp_parsers or {}).get(plan.source.source.name), read)
            self.live_inputs = read | set(range(self.rowtime_index, self.rowtime_index + META_COLUMNS))
            self._input = self._decoded
            self._input_width, self._from_source = self.rowtime_index, True
        self.key_width = len(plan.output.key)
        # A single key column of a type whose equal values serialize alike (not DOUBLE: -0.0 == 0.0, nor
        # DECIMAL: 1.0 == 1.00) is serialized once per distinct value in a batch: aggregations repeat keys.
        self.key_per_value = self.key_width == 1 and plan.output.key[0].type in (STRING, INTEGER, BIGINT, BOOLEAN)
        self.udf_error_policy = plan.property("udf.error.policy", "null")
        if self.udf_error_policy not in UDF_ERROR_POLICIES:
            raise StatementError(
                f"Invalid value for udf.error.policy: '{self.udf_error_policy}' "
                f"(expected one of {', '.join(UDF_ERROR_POLICIES)})"
            )
        # read by whoever produces the output (the runtime), checked here with the query's other settings
        self.fail_on_production_error = flag_property(plan.properties, FAIL_ON_PRODUCTION_PROPERTY, False)
        self.dead_letter_topic = str(plan.properties.get(DEAD_LETTER_TOPIC_PROPERTY) or
                                     (f"{sink.topic}_dlq" if sink is not None else ""))
        self.output_window = plan.root.window
        # a re-keyed or aggregated output goes where its key hashes to, not to its input record's partition
        self.places_by_key = plan.key_changed or plan.is_stateful or self.joins is not None
        if sink is not None:
            self.sink_key_serde = key_serde(sink)
            self.sink_value_serde = value_serde(sink)
            self.partitions = max(1, sink.partitions)

    def replica(self) -> Pipeline:
        """Another pipeline for the same query, for another thread: a pipeline keeps per-batch state, so two
        threads running stages of one query (process_upstream, process_downstream) each need their own."""
        return Pipeline(*self._arguments)

    def staged(self, join_topics: Callable[[str], str]) -> Pipeline:
        """A replica that reads the re-keyed sides of its joins back from their repartition topics (named by
        `join_topics`), for the stage that runs the joins when others write those topics (process_rekey)."""
        return Pipeline(*self._arguments, join_topics)

    @property
    def places_in_process(self) -> bool:
        """Whether the query moves rows between its input's partitions in process (a re-keying aggregate over a
        table or a join, a foreign-key join, a join on another join's output): then it is correct only while
        one process reads every partition."""
        return self._regrouped_in_process or (self.joins is not None and self.joins.places_in_process)

    @property
    def join_repartitions(self) -> list[JoinRepartition]:
        """The join inputs that, on Kafka, are re-keyed through repartition topics (none over one partition)."""
        return self.joins.repartitions if self.joins is not None else []

    def process_rekey(self, name: str, batch: RecordBatch) -> OutputBatch:
        """A stage of its own for the re-keyed join input `name` (see join_repartitions): its source's records, decoded, written to its
        repartition topic keyed by the join key, in the partition that key hashes to. This stage holds no
        state; failures are narrowed as in process()."""
        assert self.joins is not None
        joins = self.joins
        repartition = next(r for r in joins.repartitions if r.name == name)

        def rekeyed(part: RecordBatch) -> OutputBatch:
            self._batch = part
            columns, keys = joins.rekey(repartition, part)
            size = len(keys)
            if not size:
                return OutputBatch([], [], [], [], origins=[], inputs=part, place_by_partition=True)
            meta = columns[repartition.route.width:]
            origins = meta[ORIGIN]
            return OutputBatch(
                keys, list(encoded_rows(columns, range(size))), list(meta[TIMESTAMP]),
                placed_by_key(keys, repartition.partitions),
                None if part.headers is None else [part.headers[i] for i in origins],
                origins=list(origins), inputs=part, place_by_partition=True)

        return self._output_of(batch, rekeyed)

    def _log_repartition_failure(self, batch: RecordBatch, position: int, error: str) -> None:
        """A record read back from a repartition topic that is not a row this query wrote there."""
        self._log_failure(batch.record(position), f"Failed to deserialize repartition record: {error}")
        if self.fail_on_deserialization:
            raise StopOnRecord.undecodable(batch.record(position), error)

    @property
    def repartitions(self) -> bool:
        """On Kafka the query runs in two stages joined by a repartition topic: process_upstream, then
        process_downstream on what was read back from the topic."""
        return self._repartitioned is not None

    @property
    def repartition_partitions(self) -> int:
        """The repartition topic's partition count: the query's, its source's."""
        return self._repartition_point()[1].partitions

    def _repartition_point(self) -> tuple[int, AggregateOperator]:
        if self._repartitioned is None:
            raise KsqlError(f"Query {self.plan.query_id} does not go through a repartition topic")
        return self._repartitioned

    @property
    def late_records(self) -> int:
        """Records dropped because their window had closed, over the query's life."""
        return sum(operator.late_records for operator in self.stateful)

    def _stores_for(self, operator: str) -> OperatorStores:
        """An operator's stores, named like ksqlDB's (`Aggregate-Aggregate-Materialize`), numbered when a
        query has several of a kind."""
        taken = sum(1 for kind, _ in self.steps if kind in ("stateful", "table_filter"))
        name = f"{operator}-{operator}-Materialize" + (f"-{taken}" if taken else "")
        stores = OperatorStores(self.stores, self.plan.query_id or "transient", name)
        self.state.append(stores)
        return stores

    def _decoded(self, batch: RecordBatch) -> list[list[Any]]:
        return self.decoder.decode(batch)

    def _join_stores(self, name: str) -> OperatorStores:
        stores = OperatorStores(self.stores, self.plan.query_id or "transient", name)
        self.state.append(stores)
        return stores

    def _decoder(self, source: DataSource, parse_timestamp: TimestampParser | None,
                 read: set[int] | None) -> SourceDecoder:
        return SourceDecoder(source, self._log_failure, parse_timestamp, read, self.fail_on_deserialization)

    def _aggregate_key_serde(self, step: AggregateStep) -> RecordSerde:
        """How the aggregate serializes group keys for its store: as the sink writes them, so a stored key is
        the output record's key; a transient query, which has no sink, uses JSON."""
        key_columns = tuple(c for c in step.columns if c.namespace is Namespace.KEY)
        if self.sink is not None and len(self.sink.schema.key) == len(key_columns):
            return key_serde(self.sink)
        return serde_for("JSON", key_columns, FormatOptions(is_key=True))

    def _log_row(self, origin: int, reason: str, level: str = "ERROR") -> None:
        """A stateful operator's log entry about the input record at `origin` of the batch in process."""
        self._log_failure(self._batch.record(origin) if self._batch is not None else None, reason, level)

    def _source_columns_read(self) -> set[int]:
        """Input columns that any step reads before the first projection replaces them."""
        read: set[int] = set()
        for index, (kind, payload) in enumerate(self.steps):
            exprs = [payload[0]] if kind == "table_filter" else payload if kind in ("filter", "project") else []
            for expr in [*exprs, *(a for call in self.table_calls.get(index, {}).values() for a in call.args)]:
                read.update(expr.input_columns)
            if kind == "project":
                break
        return read

    def run(self, batch: RecordBatch, dropped: dict[int, str] | None = None,
            until: int | None = None) -> tuple[list[list[Any]], list[list[Any]]]:
        """Decode and transform: the output columns, and per output row its metadata columns (see
        ksqlpy.execution.rows). Rows that udf.error.policy drops are left out; `dropped` receives their input
        index and reason. `until`: run the steps before that one only."""
        self._batch = batch
        columns = self._input(batch)
        steps = range(len(self.steps) if until is None else until)
        return self._run_steps(batch, columns, self._input_width, self._from_source, steps, dropped)

    def _run_steps(
        self,
        batch: RecordBatch,
        columns: list[list[Any]],
        width: int,
        from_source: bool,
        steps: range,
        dropped: dict[int, str] | None,
    ) -> tuple[list[list[Any]], list[list[Any]]]:
        """`steps` over rows of `batch` whose metadata columns follow their first `width` columns: the
        source's (`from_source`, where columns no step reads are placeholders) or an operator's."""
        meta = columns[width:]
        size = len(meta[0])
        failed: dict[int, str] = {} if dropped is None else dropped

        def log_row(row: int, error: BaseException) -> None:
            origin = meta[ORIGIN][row]
            if not isinstance(error, UdfError):
                self._log_failure(batch.record(origin), f"Error computing expression: {error}")
                return
            trace = f"\n{error.trace}" if error.trace else ""
            self._log_failure(batch.record(origin), f"Error computing expression: {error}{trace}")
            if self.udf_error_policy == "fail":
                raise error
            if self.udf_error_policy != "null":
                failed.setdefault(origin, str(error))

        # Until a projection, the metadata are ordinary columns behind the step's own; from the source up to
        # the first projection, source columns no step reads are shared placeholders.
        meta_in_columns = True
        reading_source = from_source
        for index in steps:
            kind, payload = self.steps[index]
            if size == 0:
                break
            if kind in ("filter", "table_filter"):
                compiled = payload[0]
                # The mask holds True, False or None (NULL), so it can select rows as it is.
                mask: list[Any] = compiled.evaluate(columns, size, log_row)
                if kind == "table_filter":
                    if not meta_in_columns:
                        width = len(columns)
                        columns = columns + meta
                    columns = payload[1].process(columns, width, mask)
                    meta = columns[width:]
                    size = len(meta[0])
                    meta_in_columns, reading_source = True, False
                    continue
                tombstones = meta[TOMBSTONE]
                if True in tombstones:  # a filter never passes a record without a value
                    mask = [flag is True and not tombstone for flag, tombstone in zip(mask, tombstones, strict=True)]
                kept = mask.count(True)
                if kept != size:
                    if meta_in_columns and reading_source:
                        placeholder: list[Any] = [None] * kept
                        columns = [
                            list(compress(column, mask)) if index in self.live_inputs else placeholder
                            for index, column in enumerate(columns)
                        ]
                        meta = columns[width:]
                    elif meta_in_columns:
                        columns = [list(compress(column, mask)) for column in columns]
                        meta = columns[width:]
                    else:
                        columns = [list(compress(column, mask)) for column in columns]
                        meta = [list(compress(column, mask)) for column in meta]
                    size = kept
            elif kind == "stateful":
                process, width = payload
                columns = process(columns[: len(columns) - META_COLUMNS] if meta_in_columns else columns, meta)
                meta = columns[width:]
                size = len(meta[0])
                meta_in_columns, reading_source = True, False
            elif index in self.table_calls:
                columns, meta, size = self._flat_map(self.table_calls[index], payload, columns, meta, size, log_row)
                meta_in_columns = reading_source = False
            else:
                columns = [e.evaluate(columns, size, log_row) for e in payload]
                meta_in_columns = reading_source = False
        if meta_in_columns:
            columns = columns[:width]
        if failed and size:
            surviving = [origin not in failed for origin in meta[ORIGIN]]
            size = surviving.count(True)
            columns = [list(compress(column, surviving)) for column in columns]
            meta = [list(compress(column, surviving)) for column in meta]
        if size == 0:
            return [[] for _ in self.plan.output.columns], [[] for _ in range(META_COLUMNS)]
        return columns, meta

    @staticmethod
    def _flat_map(
        tables: dict[int, TableCall],
        exprs: list[CompiledExpression],
        columns: list[list[Any]],
        meta: list[list[Any]],
        size: int,
        log_row: ErrorHandler,
    ) -> tuple[list[list[Any]], list[list[Any]], int]:
        """A projection with table functions: each input row repeats once per element they return."""
        results = {i: call.evaluate(columns, size, log_row) for i, call in tables.items()}
        origins, exploded = flat_map(list(results.values()))
        projected = [e.evaluate(columns, size, log_row) if i not in tables else [] for i, e in enumerate(exprs)]
        outputs = dict(zip(results, exploded, strict=True))
        new_columns = [outputs[i] if i in outputs else [column[r] for r in origins] for i, column in enumerate(projected)]
        return new_columns, [[column[r] for r in origins] for column in meta], len(origins)

    def _log_failure(self, record: Record | None, reason: str, level: str = "ERROR") -> None:
        if self._held is None:
            self.log(record, reason, level)
        else:
            self._held.append((record, reason, level))

    def process(self, batch: RecordBatch) -> OutputBatch:
        """Run the query on a batch of input records and encode what it writes to its sink (see _narrowed
        for what happens to a batch that raises)."""
        return self._committed(self._output_of(batch, self._process_batch))

    def process_upstream(self, batch: RecordBatch) -> OutputBatch:
        """The first stage of a query that `repartitions`: run the steps before its aggregate on a batch of
        source records and encode the records it writes to the repartition topic, one per row that aggregates
        (a NULL group key is logged here and left out). Each record's key is the serialized group key (the
        bytes the aggregate stores the group under), its value the aggregate's input row (see
        ksqlpy.execution.repartition), its timestamp the row's time, and its partition (place_by_partition)
        the key's among repartition_partitions. Failures are narrowed as in process(). This stage holds no
        state."""
        return self._output_of(batch, self._upstream_batch)

    def process_downstream(self, batch: RecordBatch) -> OutputBatch:
        """The second stage of a query that `repartitions`: run the aggregate and the steps after it on
        records read back from the repartition topic, and encode what the query writes to its sink, as
        process() would have. A record's partition is its group's state partition. Records that are not
        repartition rows go to the processing log; failures are narrowed, and state committed, as in
        process()."""
        return self._committed(self._output_of(batch, self._downstream_batch))

    def _output_of(self, batch: RecordBatch, attempt: Callable[[RecordBatch], OutputBatch]) -> OutputBatch:
        def joined(first: OutputBatch, second: OutputBatch, whole: RecordBatch, middle: int) -> OutputBatch:
            output = first.followed_by(second, middle)
            output.inputs = whole
            return output

        return self._narrowed(batch, attempt, joined, lambda: OutputBatch([], [], [], [], origins=[]))

    def _committed(self, output: OutputBatch) -> OutputBatch:
        if self.commits_state:
            self.commit_state()
        return output

    def _upstream_batch(self, batch: RecordBatch) -> OutputBatch:
        at, operator = self._repartition_point()
        dropped: dict[int, str] = {}
        columns, meta = self.run(batch, dropped, until=at)
        dead_letters = self._dead_letters(batch, dropped)
        rows, keys = operator.repartition_keys(columns, meta) if meta[0] else ([], [])
        if not rows:
            return OutputBatch([], [], [], [], dead_letters=dead_letters, origins=[], inputs=batch,
                               place_by_partition=True)
        if self._carries_offsets(operator):
            columns = [*columns, meta[ROWOFFSET]]
        origins = [meta[ORIGIN][r] for r in rows]
        return OutputBatch(
            list(keys),
            list(encoded_rows(columns, rows)),
            [meta[TIMESTAMP][r] for r in rows],
            placed_by_key(keys, operator.partitions),
            None if batch.headers is None else [batch.headers[i] for i in origins],
            dead_letters,
            origins,
            batch,
            place_by_partition=True,
        )

    def _downstream_batch(self, batch: RecordBatch) -> OutputBatch:
        at, operator = self._repartition_point()
        self._batch = batch
        width = len(operator.step.input.columns)
        carries_offsets = self._carries_offsets(operator)
        rows, read, errors = decoded_rows(batch.values, width + (1 if carries_offsets else 0))
        for position, error in errors.items():
            self._log_repartition_failure(batch, position, error)
        if not rows:
            return OutputBatch([], [], [], [], origins=[], inputs=batch)
        columns = [list(column) for column in zip(*rows, strict=True)]
        size = len(read)
        meta: list[list[Any]] = [[None] * size for _ in range(META_COLUMNS)]
        meta[ROWTIME] = meta[TIMESTAMP] = [batch.timestamps[i] for i in read]
        meta[ROWPARTITION] = meta[PARTITION] = [batch.partitions[i] for i in read]
        meta[ROWOFFSET] = columns.pop() if carries_offsets else [batch.offsets[i] for i in read]
        meta[ORIGIN] = read
        meta[TOMBSTONE] = [False] * size
        meta[KEY_BYTES] = [batch.keys[i] for i in read]
        aggregated = operator.process(columns, meta, placed=True)
        dropped: dict[int, str] = {}
        columns, meta = self._run_steps(batch, aggregated, len(operator.step.columns), False,
                                        range(at + 1, len(self.steps)), dropped)
        return self._sink_output(batch, columns, meta, dropped)

    @staticmethod
    def _carries_offsets(operator: AggregateOperator) -> bool:
        """Whether repartition rows carry their source offset: an aggregate orders its rows by it."""
        return any(aggregator.needs_sequence for aggregator in operator.aggregators)

    def pending_state(self) -> list[StoreChanges]:
        """The state changes of the batches processed since the last commit, not yet written."""
        return [changes for stores in self.state for changes in stores.pending()]

    def commit_state(self) -> list[StoreChanges]:
        """Write the state changes of the batches processed since the last commit to the stores; returns them."""
        return [changes for stores in self.state for changes in stores.flush()]

    def rollback_state(self) -> None:
        """Drop the state changes of the batches processed since the last commit (their input is processed again)."""
        for stores in self.state:
            stores.rollback()

    def rows(self, batch: RecordBatch) -> tuple[list[list[Any]], list[bool]]:
        """The output columns of a batch, unencoded (push queries), with failures narrowed as in process(), and
        per row whether it is a tombstone (a table row deleted: its value columns are NULL)."""

        def attempt(part: RecordBatch) -> list[list[Any]]:
            columns, meta = self.run(part)
            return [*columns, meta[TOMBSTONE]]

        def joined(first: list[list[Any]], second: list[list[Any]], _whole: RecordBatch, _middle: int) -> list[list[Any]]:
            return [head + tail for head, tail in zip(first, second, strict=True)]

        columns = self._narrowed(batch, attempt, joined, lambda: [[] for _ in range(len(self.plan.output.columns) + 1)])
        if self.commits_state:
            self.commit_state()
        return columns[:-1], columns[-1]

    def _narrowed(
        self,
        batch: RecordBatch,
        attempt: Callable[[RecordBatch], T],
        joined: Callable[[T, T, RecordBatch, int], T],
        nothing: Callable[[], T],
    ) -> T:
        """`attempt` on the batch. Whatever unexpected exception it raises (a bug, a RecursionError, a library
        error on odd input), the batch is processed again in halves, down to the single records that raise:
        those go to the processing log with the error and the rest is written. A poison record thus costs a
        few extra passes over its batch instead of stopping the query, which would meet it again after every
        restart. Only the failures the query is set to stop on (udf.error.policy=fail,
        ksql.fail.on.deserialization.error) escape. Entries logged during an attempt that is retried in halves
        are dropped: the halves log them."""
        held: list[tuple[Record | None, str, str]] = []
        self._held = held
        failure: Exception | None = None
        try:
            result = attempt(batch)
        except Exception as error:
            for stores in self.state:  # a retried or abandoned attempt leaves no trace in the state
                stores.discard()
            if isinstance(error, StopOnRecord) or (isinstance(error, UdfError) and self.udf_error_policy == "fail"):
                raise
            failure = error
        finally:
            self._held = None
            if failure is None:  # done, or stopping: what was logged stands
                for record, reason, level in held:
                    self.log(record, reason, level)
        if failure is None:
            for stores in self.state:
                stores.end_batch()
            return result
        if len(batch) <= 1:
            self.log(batch.record(0) if len(batch) else None,
                     f"Error processing record: {type(failure).__name__}: {failure}")
            return nothing()
        middle = len(batch) // 2
        first = self._narrowed(batch.slice(0, middle), attempt, joined, nothing)
        return joined(first, self._narrowed(batch.slice(middle, len(batch)), attempt, joined, nothing), batch, middle)

    def _parsed_output_timestamps(self, texts: Sequence[Any], rejected: dict[int, str]) -> list[int | None]:
        assert self.parse_output_timestamp is not None
        parsed: list[int | None] = []
        for row, text in enumerate(texts):
            try:
                parsed.append(None if text is None else self.parse_output_timestamp(text))
            except Exception as error:  # whatever one record's text makes the parser raise is that record's fault
                rejected.setdefault(row, f"Failed to parse output timestamp '{text}': {error}")
                parsed.append(None)
        return parsed

    def _process_batch(self, batch: RecordBatch) -> OutputBatch:
        dropped: dict[int, str] = {}
        columns, meta = self.run(batch, dropped)
        return self._sink_output(batch, columns, meta, dropped)

    def _dead_letters(self, batch: RecordBatch, dropped: dict[int, str]) -> list[Record]:
        if self.udf_error_policy != "dlq":
            return []
        return [self._dead_letter(batch, origin, reason) for origin, reason in sorted(dropped.items())]

    def _sink_output(self, batch: RecordBatch, columns: list[list[Any]], meta: list[list[Any]],
                     dropped: dict[int, str]) -> OutputBatch:
        """The sink's records for the output rows of `batch` (`dropped`: its records udf.error.policy dropped)."""
        dead_letters = self._dead_letters(batch, dropped)
        if self.sink is None or not meta[0]:
            return OutputBatch([], [], [], [], dead_letters=dead_letters, origins=[])
        origins, tombstones, rowtimes, partitions = meta[ORIGIN], meta[TOMBSTONE], meta[TIMESTAMP], meta[PARTITION]
        size = len(origins)
        keys, key_errors = self._encode_keys(columns[: self.key_width], [batch.keys[i] for i in origins], size)
        plain_keys = keys
        if self.output_window is not None:
            keys = windowed_keys(keys, meta[WINDOWSTART], meta[WINDOWEND], self.output_window)
        values, value_errors = self._encode_values(columns[self.key_width :], tombstones, size)
        timestamps = rowtimes if self.plan.timestamp_column is None else columns[self.plan.timestamp_column]
        rejected: dict[int, str] = {}
        for row, error in {**value_errors, **key_errors}.items():
            rejected[row] = f"Failed to serialize record: {error}"
        if self.parse_output_timestamp is not None:
            timestamps = self._parsed_output_timestamps(timestamps, rejected)
        if None in timestamps or set(map(type, timestamps)) != {int} or min(timestamps) < 0:
            timestamps = [None if t is None else int(t) for t in timestamps]
            for row, timestamp in enumerate(timestamps):
                if timestamp is None or timestamp < 0:
                    rejected.setdefault(row, f"Invalid output timestamp {timestamp}: the record was dropped")
        if self.places_by_key:  # a windowed key by its key alone
            partitions = placed_by_key(plain_keys, self.partitions)
        elif max(partitions) >= self.partitions:
            partitions = [min(partition, self.partitions - 1) for partition in partitions]
        output = OutputBatch(
            keys, values, timestamps, partitions,
            None if batch.headers is None else [batch.headers[i] for i in origins],
            origins=origins,
            inputs=batch,
            place_by_partition=self.output_window is not None,
        )
        if rejected:
            for row, reason in sorted(rejected.items()):
                self._log_failure(batch.record(origins[row]), reason)
            accepted = [row not in rejected for row in range(size)]
            output = OutputBatch(
                list(compress(keys, accepted)),
                list(compress(values, accepted)),
                list(compress(timestamps, accepted)),
                list(compress(partitions, accepted)),
                None if output.headers is None else list(compress(output.headers, accepted)),
                origins=list(compress(origins, accepted)),
                inputs=batch,
                place_by_partition=output.place_by_partition,
            )
        output.dead_letters = dead_letters
        return output

    def _dead_letter(self, batch: RecordBatch, origin: int, reason: str) -> Record:
        """The input record as it was, with headers saying why and where from (as Kafka Connect's DLQ does)."""
        record = batch.record(origin)
        context: Headers = (
            ("ksqlpy.error", reason.encode()),
            ("ksqlpy.query.id", (self.plan.query_id or "").encode()),
            ("ksqlpy.source.topic", record.topic.encode()),
            ("ksqlpy.source.partition", str(record.partition).encode()),
            ("ksqlpy.source.offset", str(record.offset).encode()),
        )
        return Record(record.key, record.value, record.timestamp, record.headers + context, record.partition)

    def _encode_values(self, columns: list[list[Any]], tombstones: list[bool], size: int) -> tuple[list[Any], dict[int, Exception]]:
        """Serialized values, one per row, and the rows that cannot be written with the reason."""
        errors: dict[int, Exception] = {}
        try:
            values: list[Any] = self.sink_value_serde.serialize_columns(columns, size)
        except _SERIALIZE_ERRORS:
            values = []
            for row, fields in enumerate(zip(*columns, strict=True) if columns else [()] * size):
                try:
                    values.append(self.sink_value_serde.serialize(fields))
                except _SERIALIZE_ERRORS as error:
                    values.append(None)
                    errors[row] = error
        if True in tombstones:
            values = [None if tombstone else value for value, tombstone in zip(values, tombstones, strict=True)]
        return values, errors

    def _encode_keys(self, columns: list[list[Any]], origin_keys: list[bytes | None], size: int) -> tuple[list[Any], dict[int, Exception]]:
        errors: dict[int, Exception] = {}
        if not self.key_width:
            return [None] * size, errors
        if self.key_per_value:
            return self._encode_distinct_keys(columns[0])
        keys: list[Any] = []
        for row, (fields, origin_key) in enumerate(zip(zip(*columns, strict=True), origin_keys, strict=True)):
            try:
                keys.append(self._encode_key(fields, origin_key))
            except _SERIALIZE_ERRORS as error:
                keys.append(None)
                errors[row] = error
        return keys, errors

    def _encode_distinct_keys(self, column: list[Any]) -> tuple[list[Any], dict[int, Exception]]:
        encoded: dict[Any, bytes | None] = {}
        failed: dict[Any, Exception] = {}
        for value in set(column):
            try:
                encoded[value] = self._encode_key((value,), None)
            except _SERIALIZE_ERRORS as error:
                encoded[value] = None
                failed[value] = error
        errors = {row: failed[value] for row, value in enumerate(column) if value in failed} if failed else {}
        return [encoded[value] for value in column], errors

    def _encode_key(self, fields: Sequence[Any], origin_key: bytes | None) -> bytes | None:
        if all(v is None for v in fields) and (self.key_width == 1 or (origin_key is None and not self.plan.key_changed)):
            return None
        return self.sink_key_serde.serialize(fields)


def _steps_above_input(plan: QueryPlan) -> tuple[SourceStep | JoinStep, list[Step]]:
    """What a query's steps read (its source, or its top join), and those steps in the order rows flow."""
    steps: list[Step] = []
    step = plan.root
    while not isinstance(step, (SourceStep, JoinStep)):
        steps.append(step)
        step = step.inputs[0]
    return step, steps[::-1]
