"""Servers sharing a service id know each other through a compacted one-partition topic,
`_ksqlpy_<service id>_cluster`: every HEARTBEAT_S each server writes, under its advertised URL, what
/clusterStatus reports of it (alive, and the partitions its persistent queries hold), and reads what the
others wrote. A server not heard from for ALIVE_S is reported dead; one that stops cleanly deletes its entry.

With that map a pull query for one key goes to the server holding the key's partition of the query that
writes the table (`owner_of`), as ksqlDB routes pull queries to the active host.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition

from ksqlpy.runtime.clients import KafkaClients, describe_error
from ksqlpy.runtime.tools import ensure_topic

logger = logging.getLogger(__name__)

HEARTBEAT_S = 1.0
ALIVE_S = 5.0
HostStatus = dict[str, Any]


def cluster_topic(service_id: str) -> str:
    return f"_ksqlpy_{service_id}_cluster"


class Cluster:
    """This server's membership of its service's cluster (see the module docstring)."""

    def __init__(self, clients: KafkaClients, service_id: str, url: str,
                 describe_self: Callable[[], HostStatus]) -> None:
        self.clients = clients
        self.topic = cluster_topic(service_id)
        self.url = url
        self.describe_self = describe_self
        self._members: dict[str, HostStatus] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ksqlpy-cluster", daemon=True)

    def start(self) -> Cluster:
        ensure_topic(self.clients.admin(), self.topic, 1, {"cleanup.policy": "compact"})
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def members(self) -> dict[str, HostStatus]:
        """Every server heard from, by URL, with hostAlive saying whether it was heard from lately; this
        server's own entry is always current."""
        now_ms = int(time.time() * 1000)
        with self._lock:
            members = {url: dict(status) for url, status in self._members.items()}
        for status in members.values():
            status["hostAlive"] = now_ms - int(status.get("lastStatusUpdateMs", 0)) <= ALIVE_S * 1000
        members[self.url] = self.describe_self()
        return members

    def owner_of(self, query_id: str, topic: str, partition: int) -> str | None:
        """The URL of the live server holding `partition` of `topic` for the query, if any other does."""
        for url, status in self.members().items():
            if url == self.url or not status["hostAlive"]:
                continue
            held = status.get("activeStandbyPerQuery", {}).get(query_id, {}).get("activePartitions", [])
            if {"topic": topic, "partition": partition} in held:
                return url
        return None

    def _run(self) -> None:
        producer = self.clients.producer()
        consumer = self.clients.consumer(f"_ksqlpy_cluster_{time.monotonic_ns()}", **{"enable.auto.commit": False})
        consumer.assign([TopicPartition(self.topic, 0, OFFSET_BEGINNING)])
        try:
            while not self._stop.is_set():
                try:
                    producer.produce(self.topic, key=self.url.encode(), value=orjson.dumps(self.describe_self()))
                    producer.poll(0)
                    self._read(consumer)
                except (KafkaException, BufferError) as error:
                    logger.warning("cluster heartbeat on %s failed: %s", self.topic, describe_error(error))
                self._stop.wait(HEARTBEAT_S)
            producer.produce(self.topic, key=self.url.encode(), value=None)  # left cleanly: forget me
            producer.flush(5)
        finally:
            consumer.close()

    def _read(self, consumer: Any) -> None:
        for message in consumer.consume(1000, 0.1):
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    logger.warning("reading %s: %s", self.topic, error.str())
                continue
            url = (message.key() or b"").decode()
            value = message.value()
            with self._lock:
                if value is None:
                    self._members.pop(url, None)
                elif url != self.url:
                    self._members[url] = orjson.loads(value)
