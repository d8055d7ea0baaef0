"""Physical execution of a query plan: decode a batch of records, run the compiled steps, encode the results.

A Pipeline is built once per query and then fed batches of raw records by whichever driver hosts it
(the in-memory driver for tests, the Kafka runtime in production); it knows nothing about where the
records come from. Records that cannot be decoded, timestamped or encoded go to the processing log
and are dropped; the rest of the batch flows on.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ksqlpy.errors import KsqlError, SerdeError
from ksqlpy.execution.expressions import CompiledExpression
from ksqlpy.planning.catalog import DataSource
from ksqlpy.planning.plan import FilterStep, ProjectStep, QueryPlan
from ksqlpy.schema import Namespace
from ksqlpy.serialization.base import RecordSerde
from ksqlpy.serialization.formats import serde_for
from ksqlpy.types import STRING


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


ProcessingLogger = Callable[[Record | None, str], None]
_SERIALIZE_ERRORS = (SerdeError, KsqlError, ValueError, TypeError)
TimestampParser = Callable[[str], int]
# ROWTIME, ROWPARTITION, ROWOFFSET, then hidden: input index, tombstone flag, record timestamp and partition
META_COLUMNS = 7


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
    ) -> None:
        self.source = source
        self.log = log
        self.key_serde = key_serde(source)
        self.value_serde = value_serde(source)
        # A stream record with a NULL value still flows: its key is projected and it is written as a tombstone.
        self.passes_tombstones = source.kind == "STREAM"
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

    def decode(self, records: Sequence[Record]) -> list[list[Any]]:
        """Columns of the decodable records, followed by ROWTIME, ROWPARTITION, ROWOFFSET and four hidden
        columns: each row's index in `records`, whether it was a tombstone (NULL value), and the record's
        timestamp and partition (a tombstone's pseudo columns are NULL, its record timestamp is kept)."""
        keys = self.key_serde.deserialize_columns([r.key for r in records])
        values = self.value_serde.deserialize_columns([r.value for r in records])
        size = len(records)
        rowtimes = [r.timestamp for r in records]
        if self.timestamp_index is not None:
            if self.timestamp_index < self.key_width:
                raw_times = keys.columns[self.timestamp_index]
            else:
                raw_times = values.columns[self.value_positions.index(self.timestamp_index - self.key_width)]
            rowtimes = self._extract_timestamps(raw_times, records, {*keys.errors, *values.errors})
        for index, error in {**keys.errors, **values.errors}.items():
            self.log(records[index], f"Failed to deserialize record: {error}")
        tombstones = [not present for present in values.present]
        dropped = {*keys.errors, *values.errors, *(i for i, t in enumerate(rowtimes) if t is None)}
        if not self.passes_tombstones:
            dropped.update(i for i, t in enumerate(tombstones) if t)
        columns: list[list[Any]] = list(keys.columns)
        placeholder: list[Any] = [None] * size
        value_columns: list[list[Any]] = [placeholder] * self.value_width
        for decoded, position in zip(values.columns, self.value_positions, strict=True):
            value_columns[position] = decoded
        columns += value_columns
        if self.header_columns:
            header_rows = [self._header_values(r) for r in records]
            columns += [[row[j] for row in header_rows] for j in range(len(self.header_columns))]
        partitions = [r.partition for r in records]
        offsets = [r.offset for r in records]
        pseudo: list[list[Any]]
        if any(tombstones):
            # As in ksqlDB, where the pseudo columns travel in the value, a tombstone has NULL pseudo columns.
            pseudo = [
                [None if t else v for v, t in zip(column, tombstones, strict=True)]
                for column in (rowtimes, partitions, offsets)
            ]
        else:
            pseudo = [rowtimes, partitions, offsets]
        columns += [*pseudo, list(range(size)), tombstones, rowtimes, partitions]
        if dropped:
            keep = [i for i in range(size) if i not in dropped]
            columns = [[column[i] for i in keep] for column in columns]
        return columns

    def _extract_timestamps(self, raw_times: list[Any], records: Sequence[Record], failed: set[int]) -> list[Any]:
        """ROWTIME from the TIMESTAMP column; None marks a row dropped for a missing or invalid time."""
        if not self.timestamp_is_text and all(type(t) is int and t >= 0 for t in raw_times):
            return raw_times
        return [
            None if index in failed else self._extract_timestamp(raw, records[index])
            for index, raw in enumerate(raw_times)
        ]

    def _header_values(self, record: Record) -> list[Any]:
        values: list[Any] = []
        for column in self.header_columns:
            if column.header_key is None:
                values.append([{"KEY": k, "VALUE": v} for k, v in record.headers])
            else:
                matching = [v for k, v in record.headers if k == column.header_key]
                values.append(matching[-1] if matching else None)
        return values

    def _extract_timestamp(self, raw: Any, record: Record) -> int | None:
        try:
            if raw is None:
                raise ValueError("timestamp column is null")
            if self.timestamp_is_text:
                assert self.parse_timestamp is not None
                timestamp = self.parse_timestamp(raw)
            else:
                timestamp = int(raw)
        except (ValueError, KsqlError) as error:
            self.log(record, f"Failed to extract timestamp from column {self.source.timestamp_column}: {error}")
            return None
        if timestamp < 0:
            self.log(record, f"Invalid timestamp {timestamp}: timestamps must be non-negative")
            return None
        return timestamp


class Pipeline:
    """One query's compiled operators."""

    def __init__(
        self,
        plan: QueryPlan,
        log: ProcessingLogger,
        sink: DataSource | None = None,
        parse_timestamp: TimestampParser | None = None,
    ) -> None:
        self.plan = plan
        self.log = log
        self.rowtime_index = len(plan.source.source.schema.columns)
        self.steps: list[tuple[str, list[CompiledExpression]]] = []
        for step in plan.steps:
            if isinstance(step, FilterStep):
                self.steps.append(("filter", [CompiledExpression(step.predicate)]))
            elif isinstance(step, ProjectStep):
                self.steps.append(("project", [CompiledExpression(e) for e in step.expressions]))
        read = self._source_columns_read()
        self.decoder = SourceDecoder(plan.source.source, log, parse_timestamp, read)
        self.live_inputs = read | set(range(self.rowtime_index, self.rowtime_index + META_COLUMNS))
        self.sink = sink
        self.key_width = len(plan.output.key)
        if sink is not None:
            self.sink_key_serde = key_serde(sink)
            self.sink_value_serde = value_serde(sink)
            self.partitions = max(1, sink.partitions)

    def _source_columns_read(self) -> set[int]:
        """Input columns that any step reads before the first projection replaces them."""
        read: set[int] = set()
        for kind, exprs in self.steps:
            for expr in exprs:
                read.update(expr.input_columns)
            if kind == "project":
                break
        return read

    def run(self, records: Sequence[Record]) -> tuple[list[list[Any]], list[list[Any]]]:
        """Decode and transform: the output columns, and per output row its metadata columns
        (ROWTIME, ROWPARTITION, ROWOFFSET, input index, tombstone flag, record timestamp, record partition)."""
        columns = self.decoder.decode(records)
        meta = columns[self.rowtime_index :]
        size = len(meta[0])

        def log_row(row: int, error: BaseException) -> None:
            self.log(records[meta[3][row]], f"Error computing expression: {error}")

        meta_in_columns = True  # until the first projection the metadata are ordinary input columns
        for kind, exprs in self.steps:
            if size == 0:
                break
            if kind == "filter":
                mask = exprs[0].evaluate(columns, size, log_row)
                tombstones = meta[4]  # a filter never passes a record without a value
                keep = [i for i, flag in enumerate(mask) if flag is True and not tombstones[i]]
                if len(keep) != size:
                    if meta_in_columns:  # source columns no step reads stay placeholders
                        placeholder: list[Any] = [None] * len(keep)
                        columns = [
                            [column[i] for i in keep] if index in self.live_inputs else placeholder
                            for index, column in enumerate(columns)
                        ]
                    else:
                        columns = [[column[i] for i in keep] for column in columns]
                    if meta_in_columns:
                        meta = columns[self.rowtime_index :]
                    else:
                        meta = [[column[i] for i in keep] for column in meta]
                    size = len(keep)
            else:
                columns = [e.evaluate(columns, size, log_row) for e in exprs]
                meta_in_columns = False
        if size == 0:
            return [[] for _ in self.plan.output.columns], [[] for _ in range(META_COLUMNS)]
        return columns, meta

    def _log_error(self, record: Record | None, error: BaseException) -> None:
        self.log(record, f"Error computing expression: {error}")

    def process(self, records: Sequence[Record]) -> list[Record]:
        """Run the query on a batch of input records and encode what it writes to its sink."""
        columns, meta = self.run(records)
        if self.sink is None or not meta[0]:
            return []
        _, _, _, origins, tombstones, rowtimes, partitions = meta
        size = len(origins)
        keys = self._encode_keys(columns[: self.key_width], [records[i] for i in origins], size)
        values = self._encode_values(columns[self.key_width :], tombstones, size)
        timestamps = rowtimes if self.plan.timestamp_column is None else columns[self.plan.timestamp_column]
        out: list[Record] = []
        last_partition = self.partitions - 1
        for row, (key, value, timestamp, origin_index) in enumerate(zip(keys, values, timestamps, origins, strict=True)):
            origin = records[origin_index]
            if isinstance(key, Exception) or isinstance(value, Exception):
                self.log(origin, f"Failed to serialize record: {key if isinstance(key, Exception) else value}")
                continue
            if timestamp is None or timestamp < 0:
                self.log(origin, f"Invalid output timestamp {timestamp}: the record was dropped")
                continue
            partition = partitions[row]
            if self.plan.key_changed:
                partition = zlib.crc32(key or b"") % self.partitions
            out.append(Record(key, value, int(timestamp), origin.headers, min(partition, last_partition)))
        return out

    def _encode_values(self, columns: list[list[Any]], tombstones: list[bool], size: int) -> list[Any]:
        """Serialized values, one per row; a row that cannot be written holds its exception instead."""
        try:
            values: list[Any] = self.sink_value_serde.serialize_columns(columns, size)
        except _SERIALIZE_ERRORS:
            values = []
            for row in zip(*columns, strict=True) if columns else [()] * size:
                try:
                    values.append(self.sink_value_serde.serialize(row))
                except _SERIALIZE_ERRORS as error:
                    values.append(error)
        if any(tombstones):
            values = [None if tombstone else value for value, tombstone in zip(values, tombstones, strict=True)]
        return values

    def _encode_keys(self, columns: list[list[Any]], origins: list[Record], size: int) -> list[Any]:
        if not self.key_width:
            return [None] * size
        keys: list[Any] = []
        for row, origin in zip(zip(*columns, strict=True), origins, strict=True):
            try:
                keys.append(self._encode_key(row, origin))
            except _SERIALIZE_ERRORS as error:
                keys.append(error)
        return keys

    def _encode_key(self, values: Sequence[Any], origin: Record) -> bytes | None:
        if all(v is None for v in values) and (self.key_width == 1 or (origin.key is None and not self.plan.key_changed)):
            return None
        return self.sink_key_serde.serialize(values)
