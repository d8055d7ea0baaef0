"""The in-memory driver: topics as lists and persistent queries run to quiescence, for tests and `ksqlpy test`.

It hosts the same engine and pipelines as the Kafka runtime. Queries are run one at a time in creation
order over everything new on their input topic, then again until nothing moves, which gives ksqlDB's
per-topic output order for chained queries (a query reading another's sink sees its complete output).
A query reading several topics (a join) is fed their new records in the order they were written, one
batch per run of records from the same topic.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import groupby
from typing import Any

from ksqlpy.engine import Engine, PersistentQuery, StatementResult
from ksqlpy.errors import SerdeError
from ksqlpy.execution.pipeline import ProcessingLogger, Record, RecordBatch, key_serde, value_serde
from ksqlpy.execution.pull import KeyLookup, TableState
from ksqlpy.functions.registry import FunctionRegistry
from ksqlpy.serialization.base import RecordSerde
from ksqlpy.serialization.windowed import WindowInfo, split_windowed_keys, windowed_keys
from ksqlpy.state.memory import InMemoryStoreProvider

TopicRecord = Record


@dataclass
class _Topic:
    partitions: int
    records: list[Record] = field(default_factory=list)
    next_offsets: dict[int, int] = field(default_factory=dict)
    # each record's position in the order records were written to any topic
    written_at: list[int] = field(default_factory=list)


class InMemoryDriver:
    def __init__(self, properties: Mapping[str, Any] | None = None, registry: FunctionRegistry | None = None) -> None:
        self._topics: dict[str, _Topic] = {}
        self._queries: dict[str, PersistentQuery] = {}
        self._positions: dict[str, dict[str, int]] = {}  # query -> input topic -> records read
        self._written = 0
        # per table topic: its current records, and how many of the topic's records they include
        self._tables: dict[str, tuple[TableState, int]] = {}
        self._table_stores = InMemoryStoreProvider()
        self.processing_log: list[dict[str, Any]] = []
        self.engine = Engine(self, properties, registry, default_cache_bytes=0)

    # -- the user-facing API

    def execute(self, sql: str) -> list[StatementResult]:
        return self.engine.execute(sql)

    def produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        timestamp: int,
        headers: Sequence[tuple[str, bytes | None]] = (),
        partition: int | None = None,
        *,
        window: tuple[int, int, str] | None = None,
    ) -> None:
        """Append a record; `window` (start, end, type) goes into the key if the topic's source is windowed."""
        info = self._window_of(topic)
        if window is not None and info is not None:
            start, end, _ = window
            key = windowed_keys([key], [start], [end], info)[0]
        self.write(topic, [Record(key, value, timestamp, tuple(headers), partition or 0)])

    def process(self) -> None:
        progressed = True
        while progressed:
            progressed = False
            for query_id, query in list(self._queries.items()):
                for run in self.new_input(query_id, list(dict.fromkeys(query.plan.input_topics))):
                    progressed = True
                    output = query.pipeline.process(RecordBatch.of(run))
                    self.write(query.sink.topic, output.records())
                    if output.dead_letters:
                        self.write(query.pipeline.dead_letter_topic, output.dead_letters)

    def follow(self, reader: str, topics: Sequence[str], from_start: bool) -> None:
        """Start reading `topics` for a transient (push) query: from their first record, or from now on."""
        self._positions[reader] = {} if from_start else \
            {name: len(self._topics[name].records) for name in topics if name in self._topics}

    def unfollow(self, reader: str) -> None:
        self._positions.pop(reader, None)

    def new_input(self, reader: str, topics: Sequence[str]) -> list[list[Record]]:
        """The records a reader (a query, or a push query that follows its topics) has not read yet from
        `topics`, in write order, in runs of one topic."""
        positions = self._positions[reader]
        pending: list[list[tuple[int, Record]]] = []
        for name in topics:
            topic = self._topics.get(name)
            if topic is None:
                continue
            start = positions.get(name, 0)
            positions[name] = len(topic.records)
            pending.append(list(zip(topic.written_at[start:], topic.records[start:], strict=True)))
        in_order = [record for _, record in heapq.merge(*pending, key=lambda entry: entry[0])]
        return [list(run) for _, run in groupby(in_order, key=lambda record: record.topic)]

    def records(self, topic: str) -> list[Record]:
        """The records on a topic; a windowed source's keys split into the plain key and Record.window."""
        found = self._topics.get(topic)
        if found is None:
            return []
        info = self._window_of(topic)
        if info is None:
            return list(found.records)
        # A key too short for its window bounds is shown as it is, for the comparison to point at.
        too_short: dict[int, SerdeError] = {}
        keys, starts, ends = split_windowed_keys([r.key for r in found.records], info, too_short)
        return [
            record if row in too_short
            else replace(record, key=key, window=None if start is None or end is None else info.bounds(start, end))
            for row, (record, key, start, end) in enumerate(zip(found.records, keys, starts, ends, strict=True))
        ]

    def serdes_for_topic(self, topic: str) -> tuple[RecordSerde, RecordSerde] | None:
        source = self.engine.source_for_topic(topic)
        if source is None:
            return None
        return key_serde(source), value_serde(source)

    def _window_of(self, topic: str) -> WindowInfo | None:
        source = self.engine.source_for_topic(topic)
        return None if source is None else source.window

    # -- the engine's backend

    def create_topic(self, name: str, partitions: int) -> None:
        self._topics.setdefault(name, _Topic(partitions))

    def topic_partitions(self, name: str) -> int | None:
        topic = self._topics.get(name)
        return topic.partitions if topic else None

    def delete_topic(self, name: str) -> None:
        self._topics.pop(name, None)
        self.forget_table(name)

    def list_topics(self) -> dict[str, int]:
        return {name: topic.partitions for name, topic in self._topics.items()}

    def topic_records(self, topic: str) -> list[Record]:
        found = self._topics.get(topic)
        return list(found.records) if found is not None else []

    def table_records(self, topic: str, lookup: KeyLookup | None) -> list[Record]:
        state, applied = self._tables.get(topic) or (TableState(self._table_stores, topic), 0)
        found = self._topics.get(topic)
        new = found.records[applied:] if found is not None else []  # only what came since the last catch-up
        state.apply(new)
        self._tables[topic] = (state, applied + len(new))
        return state.records(lookup)

    def forget_table(self, topic: str) -> None:
        forgotten = self._tables.pop(topic, None)
        if forgotten is not None:
            forgotten[0].drop()

    def write(self, topic: str, records: list[Record]) -> None:
        target = self._topics.setdefault(topic, _Topic(1))
        for record in records:
            record.topic = topic
            record.offset = target.next_offsets.get(record.partition, 0)
            target.next_offsets[record.partition] = record.offset + 1
            target.records.append(record)
            target.written_at.append(self._written)
            self._written += 1

    def start_query(self, query: PersistentQuery) -> None:
        self._queries[query.query_id] = query
        self._positions[query.query_id] = {}

    def stop_query(self, query_id: str) -> None:
        self._queries.pop(query_id, None)

    def delete_internal_topics(self, query_id: str) -> None:
        """Nothing to do: the in-memory driver keeps state in memory, without changelog topics."""

    def processing_logger(self, query_id: str, topic: str) -> ProcessingLogger:
        def log(record: Record | None, reason: str, level: str = "ERROR") -> None:
            self.processing_log.append(
                {
                    "level": level,
                    "query_id": query_id,
                    "topic": topic,
                    "partition": record.partition if record else None,
                    "offset": record.offset if record else None,
                    "reason": reason,
                }
            )

        return log
