"""A table's materialization for pull queries on Kafka: the latest record of each key of its topic, caught
up with the topic (only what came since the last catch-up) before each answer.

It is made on a table's first pull query, so any table can be pull-queried, a plain CREATE TABLE over a
topic too (which ksqlDB refuses). Pull queries may come from several threads: one at a time catches the
materialization up and reads it.
"""

from __future__ import annotations

import threading
import uuid

from ksqlpy.execution.pipeline import Record
from ksqlpy.execution.pull import KeyLookup, TableState
from ksqlpy.runtime.clients import KafkaClients
from ksqlpy.runtime.tools import read_new_records
from ksqlpy.state.memory import InMemoryStoreProvider


class TableMaterialization:
    """One table topic's current records, read by a consumer assigned to all its partitions (no group)."""

    def __init__(self, clients: KafkaClients, topic: str) -> None:
        self.topic = topic
        self.consumed = 0  # records read from the topic so far: each is read once
        self._consumer = clients.consumer(f"_ksqlpy_pull_{uuid.uuid4().hex}", **{"enable.partition.eof": True})
        self._positions: dict[int, int] = {}
        self._state = TableState(InMemoryStoreProvider(), topic)
        self._lock = threading.Lock()

    def records(self, lookup: KeyLookup | None) -> list[Record]:
        """The table's current records, all or the looked-up keys', once caught up with its topic's end."""
        with self._lock:
            new = read_new_records(self._consumer, self.topic, self._positions)
            self.consumed += len(new)
            self._state.apply(new)
            return self._state.records(lookup)

    def close(self) -> None:
        with self._lock:
            self._consumer.close()
            self._state.drop()
