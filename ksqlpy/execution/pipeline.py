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
    """Raw records of one source -> columns (key, value, header columns, ROWTIME, ROWPARTITION, ROWOFFSET)."""

    def __init__(self, source: DataSource, log: ProcessingLogger, parse_timestamp: TimestampParser | None) -> None:
        self.source = source
        self.log = log
        self.key_serde = key_serde(source)
        self.value_serde = value_serde(source)
        # A stream record with a NULL value still flows: its key is projected and it is written as a tombstone.
        self.passes_tombstones = source.kind == "STREAM"
        self.header_columns = [c for c in source.schema.columns if c.namespace is Namespace.HEADERS]
        self.width = len(source.schema.columns)
        self.null_key = [None] * len(source.schema.key)
        self.null_value = [None] * len(source.schema.value)
        self.timestamp_index: int | None = None
        self.parse_timestamp = parse_timestamp
        if source.timestamp_column is not None:
            self.timestamp_index = source.schema.index(source.timestamp_column)
            self.timestamp_is_text = source.schema.columns[self.timestamp_index].type == STRING

    def decode(self, records: Sequence[Record]) -> list[list[Any]]:
        """Columns of the decodable records, followed by ROWTIME, ROWPARTITION, ROWOFFSET and four hidden
        columns: each row's index in `records`, whether it was a tombstone (NULL value), and the record's
        timestamp and partition.

        As in ksqlDB, where the pseudo columns travel in the value, a tombstone has NULL pseudo columns
        (PARTITION BY ROWTIME keys it by NULL) while its record timestamp is kept for the output."""
        rows: list[list[Any]] = []
        for index, record in enumerate(records):
            tombstone = record.value is None
            if tombstone and not self.passes_tombstones:
                continue
            try:
                key = self.key_serde.deserialize(record.key)
                value = self.value_serde.deserialize(record.value)
            except SerdeError as error:
                self.log(record, f"Failed to deserialize record: {error}")
                continue
            row = [*(key if key is not None else self.null_key), *(value if value is not None else self.null_value)]
            if self.header_columns:
                row.extend(self._header_values(record))
            rowtime = record.timestamp
            if self.timestamp_index is not None:
                extracted = self._extract_timestamp(row[self.timestamp_index], record)
                if extracted is None:
                    continue
                rowtime = extracted
            pseudo = (None, None, None) if tombstone else (rowtime, record.partition, record.offset)
            row += (*pseudo, index, tombstone, rowtime, record.partition)
            rows.append(row)
        if not rows:
            return [[] for _ in range(self.width + META_COLUMNS)]
        return [list(column) for column in zip(*rows, strict=True)]

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
        self.decoder = SourceDecoder(plan.source.source, log, parse_timestamp)
        self.rowtime_index = len(plan.source.source.schema.columns)
        self.steps: list[tuple[str, list[CompiledExpression]]] = []
        for step in plan.steps:
            if isinstance(step, FilterStep):
                self.steps.append(("filter", [CompiledExpression(step.predicate)]))
            elif isinstance(step, ProjectStep):
                self.steps.append(("project", [CompiledExpression(e) for e in step.expressions]))
        self.sink = sink
        self.key_width = len(plan.output.key)
        if sink is not None:
            self.sink_key_serde = key_serde(sink)
            self.sink_value_serde = value_serde(sink)
            self.partitions = max(1, sink.partitions)

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
        timestamp_column = self.plan.timestamp_column
        out: list[Record] = []
        for row_index, row in enumerate(zip(*columns, strict=True)):
            origin = records[origins[row_index]]
            try:
                key = self._encode_key(row[: self.key_width], origin)
                value = None if tombstones[row_index] else self.sink_value_serde.serialize(row[self.key_width :])
            except (SerdeError, KsqlError, ValueError, TypeError) as error:
                self.log(origin, f"Failed to serialize record: {error}")
                continue
            timestamp = rowtimes[row_index] if timestamp_column is None else row[timestamp_column]
            if timestamp is None or timestamp < 0:
                self.log(origin, f"Invalid output timestamp {timestamp}: the record was dropped")
                continue
            partition = partitions[row_index]
            if self.plan.key_changed:
                partition = zlib.crc32(key or b"") % self.partitions
            out.append(Record(key, value, int(timestamp), origin.headers, min(partition, self.partitions - 1)))
        return out

    def _encode_key(self, values: Sequence[Any], origin: Record) -> bytes | None:
        if not self.key_width:
            return None
        if all(v is None for v in values) and (self.key_width == 1 or (origin.key is None and not self.plan.key_changed)):
            return None
        return self.sink_key_serde.serialize(values)
