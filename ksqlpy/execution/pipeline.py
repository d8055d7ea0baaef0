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


def key_serde(source: DataSource) -> RecordSerde:
    return serde_for(source.key.format, source.schema.key, source.key.options)


def value_serde(source: DataSource) -> RecordSerde:
    return serde_for(source.value.format, source.schema.value, source.value.options)


class SourceDecoder:
    """Raw records of one source -> columns (key, value, header columns, ROWTIME, ROWPARTITION, ROWOFFSET)."""

    def __init__(self, source: DataSource, log: ProcessingLogger, parse_timestamp: TimestampParser | None) -> None:
        self.source = source
        self.log = log
        self.key_serde = key_serde(source)
        self.value_serde = value_serde(source)
        self.skip_tombstones = source.kind == "STREAM"
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
        rows: list[list[Any]] = []
        for record in records:
            if record.value is None and self.skip_tombstones:
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
            row += (rowtime, record.partition, record.offset)
            rows.append(row)
        if not rows:
            return [[] for _ in range(self.width + 3)]
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

    def run(self, records: Sequence[Record]) -> tuple[list[list[Any]], list[int], list[int], list[Record]]:
        """Decode and transform; returns output columns, their timestamps and partitions, and input records."""
        columns = self.decoder.decode(records)
        size = len(columns[0]) if columns else 0
        rowtime = columns[self.rowtime_index]
        partitions = columns[self.rowtime_index + 1]
        offsets = columns[self.rowtime_index + 2]
        by_offset = {(r.partition, r.offset): r for r in records}

        def origin(row: int) -> Record | None:
            return by_offset.get((partitions[row], offsets[row]))

        for kind, exprs in self.steps:
            if size == 0:
                break
            if kind == "filter":
                mask = exprs[0].evaluate(columns, size, lambda row, error: self._log_error(origin(row), error))
                keep = [i for i, flag in enumerate(mask) if flag is True]
                if len(keep) != size:
                    columns = [[column[i] for i in keep] for column in columns]
                    rowtime, partitions, offsets = columns[self.rowtime_index : self.rowtime_index + 3]
                    size = len(keep)
            else:
                columns = [self._evaluate(e, columns, size, origin) for e in exprs]
        if size == 0:
            columns = [[] for _ in self.plan.output.columns]
        return columns, list(rowtime), list(partitions), [origin(i) or Record(None, None, 0) for i in range(size)]

    def _evaluate(
        self,
        expr: CompiledExpression,
        columns: list[list[Any]],
        size: int,
        origin: Callable[[int], Record | None],
    ) -> list[Any]:
        return expr.evaluate(columns, size, lambda row, error: self._log_error(origin(row), error))

    def _log_error(self, record: Record | None, error: BaseException) -> None:
        self.log(record, f"Error computing expression: {error}")

    def process(self, records: Sequence[Record]) -> list[Record]:
        """Run the query on a batch of input records and encode what it writes to its sink."""
        columns, rowtime, partitions, origins = self.run(records)
        if self.sink is None or not columns or not columns[0]:
            return []
        timestamp_column = self.plan.timestamp_column
        out: list[Record] = []
        for row_index, row in enumerate(zip(*columns, strict=True)):
            try:
                key = self.sink_key_serde.serialize(row[: self.key_width]) if self.key_width else None
                value = self.sink_value_serde.serialize(row[self.key_width :])
            except (SerdeError, KsqlError, ValueError, TypeError) as error:
                self.log(origins[row_index], f"Failed to serialize record: {error}")
                continue
            timestamp = rowtime[row_index]
            if timestamp_column is not None:
                chosen = row[timestamp_column]
                if chosen is None:
                    self.log(origins[row_index], "Output timestamp column is null")
                    continue
                timestamp = int(chosen)
            partition = partitions[row_index]
            if self.plan.key_changed:
                partition = zlib.crc32(key or b"") % self.partitions
            out.append(Record(key, value, timestamp, (), min(partition, self.partitions - 1)))
        return out
