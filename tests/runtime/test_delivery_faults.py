"""Fault injection for at-least-once delivery on the embedded broker: input offsets are committed only once the
output is acknowledged. A delivery that fails or stalls leaves them uncommitted, and a process killed between
producing and committing loses nothing: the next run produces again what was not acknowledged.

The consumer always reads from the real broker; the faults are in the query's producer (pointed at a port
that refuses connections, or at one that accepts them and never answers) or, for the crash, a SIGKILL the
child process sends itself the moment it starts waiting for acknowledgements.
"""

from __future__ import annotations

import signal
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from app_process import KsqlpyRun, write_sql
from confluent_kafka import Consumer, Producer, TopicPartition

from ksqlpy.engine import Engine
from ksqlpy.runtime import worker as worker_module
from ksqlpy.runtime.backend import KafkaBackend
from ksqlpy.runtime.clients import KafkaClients
from ksqlpy.runtime.config import RuntimeConfig
from ksqlpy.runtime.worker import QueryWorker, consumer_group_id

RECORDS = 50


class FaultyProducerClients(KafkaClients):
    """Clients whose producers talk to `address` instead of the broker (consumers and admin stay on it)."""

    def __init__(self, config: RuntimeConfig, address: str, **producer_settings: Any) -> None:
        super().__init__(config)
        self.address = address
        self.producer_settings = producer_settings

    def producer(self, **settings: Any) -> Producer:
        return super().producer(**settings, **self.producer_settings, **{"bootstrap.servers": self.address})


@pytest.fixture
def refusing_address() -> str:
    """A loopback port nothing listens on: connections are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"127.0.0.1:{port}"


@pytest.fixture
def silent_address() -> Iterator[str]:
    """A loopback port that takes connections (the kernel completes them) and never answers a request."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"127.0.0.1:{listener.getsockname()[1]}"


def committed_offsets(broker: str, group: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": broker, "group.id": group})
    try:
        [committed] = consumer.committed([TopicPartition(topic, 0)], timeout=10)
        return max(0, committed.offset)
    finally:
        consumer.close()


class Scenario:
    """A doubling query whose records wait on the broker; its workers are started by the test, with any clients."""

    def __init__(self, broker: str, source: str, sink: str) -> None:
        self.config = RuntimeConfig(bootstrap_servers=broker, service_id=f"faults_{uuid.uuid4().hex[:8]}_")
        self.backend = KafkaBackend(KafkaClients(self.config), self.config)
        engine = Engine(self.backend)
        [*_, created] = engine.execute(
            f"CREATE STREAM orders (k STRING KEY, id INT) WITH (kafka_topic='{source}', value_format='JSON', partitions=1);"
            f"CREATE STREAM doubled WITH (kafka_topic='{sink}') AS SELECT k, id, id * 2 AS twice FROM orders;"
        )
        assert created.query_id is not None
        self.query = engine.queries[created.query_id]
        # The test runs the query's workers itself, in a consumer group of their own: a group that a worker
        # left while joining it is stuck on Tansu until that member's rebalance times out.
        self.backend.stop_query(self.query.query_id)
        self.service_id = f"{self.config.service_id}own_"
        self.group = consumer_group_id(self.service_id, self.query.query_id)

    def worker(self, clients: KafkaClients) -> QueryWorker:
        worker = QueryWorker(self.query, clients, self.service_id, {"auto.offset.reset": "earliest"})
        worker.start()
        return worker


@pytest.fixture
def scenario(
    broker: str, unique_topic: Callable[..., str], produce_json: Callable[..., None],
) -> Iterator[tuple[Scenario, str, str]]:
    source, sink = unique_topic("orders"), unique_topic("doubled")
    made = Scenario(broker, source, sink)
    produce_json(broker, source, [(f"k{i}", {"ID": i}) for i in range(RECORDS)])
    yield made, source, sink
    made.backend.close()


def assert_nothing_committed_while_the_fault_lasts(
    broker: str, made: Scenario, source: str, sink: str, faulty: KafkaClients,
    wait_until: Callable[..., Any], consume_all: Callable[..., Any],
) -> None:
    worker = made.worker(faulty)
    try:
        wait_until(lambda: worker.status().records_in >= RECORDS, timeout=20, message="the records to be consumed")
        # several commit intervals go by while the output is not acknowledged
        worker.join(4 * worker_module.COMMIT_INTERVAL + 1.0)
        assert worker.is_alive() and worker.status().state == "RUNNING"
        assert committed_offsets(broker, made.group, source) == 0
    finally:
        worker.stop(30)
    assert not worker.is_alive()
    assert committed_offsets(broker, made.group, source) == 0  # not at shutdown either
    assert consume_all(broker, sink, idle=1.0) == []

    # Once the producer reaches the broker again, every record is written and only then committed.
    healthy = made.worker(KafkaClients(made.config))
    try:
        out = consume_all(broker, sink, expected_count=RECORDS, timeout=30)
        assert sorted(r.json_value["ID"] for r in out) == list(range(RECORDS))
        wait_until(lambda: committed_offsets(broker, made.group, source) == RECORDS, timeout=15,
                   message="the offsets to be committed after delivery")
    finally:
        healthy.stop(30)


def test_a_failed_delivery_leaves_the_offsets_uncommitted(
    broker: str, scenario: tuple[Scenario, str, str], refusing_address: str,
    wait_until: Callable[..., Any], consume_all: Callable[..., Any],
) -> None:
    made, source, sink = scenario
    # Every record times out undelivered (a retriable failure: the batch is rewound and produced again).
    faulty = FaultyProducerClients(made.config, refusing_address, **{"message.timeout.ms": 300, "linger.ms": 1})
    assert_nothing_committed_while_the_fault_lasts(broker, made, source, sink, faulty, wait_until, consume_all)


def test_a_stalled_delivery_leaves_the_offsets_uncommitted(
    broker: str, scenario: tuple[Scenario, str, str], silent_address: str, monkeypatch: pytest.MonkeyPatch,
    wait_until: Callable[..., Any], consume_all: Callable[..., Any],
) -> None:
    made, source, sink = scenario
    monkeypatch.setattr(worker_module, "STOP_GRACE", 1.0)  # how long stop() waits for the acknowledgements
    faulty = FaultyProducerClients(made.config, silent_address)  # acknowledgements never come, nor errors
    assert_nothing_committed_while_the_fault_lasts(broker, made, source, sink, faulty, wait_until, consume_all)


# Run in the child before `ksqlpy run`: the process kills itself when it first waits for acknowledgements, i.e.
# after producing a batch and before committing its offsets (producing lingers 2 s, so nothing is sent yet).
KILL_BEFORE_ACKNOWLEDGEMENT = """
import os, signal
from ksqlpy.runtime.worker import QueryWorker
QueryWorker._flush = lambda self, producer: os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_crash_between_produce_and_commit_loses_nothing(
    broker: str, tmp_path: Path, unique_topic: Callable[..., str], produce_json: Callable[..., None],
    consume_all: Callable[..., Any],
) -> None:
    source, sink = unique_topic("orders"), unique_topic("doubled")
    service_id = f"crash_{uuid.uuid4().hex[:8]}_"
    produce_json(broker, source, [(f"k{i}", {"ID": i}) for i in range(RECORDS)])
    sql = write_sql(tmp_path, "crash", (
        "SET 'auto.offset.reset'='earliest';\n"
        f"CREATE STREAM orders (k STRING KEY, id INT) WITH (kafka_topic='{source}', value_format='JSON');\n"
        f"CREATE STREAM doubled WITH (kafka_topic='{sink}') AS SELECT k, id, id * 2 AS twice FROM orders;\n"
    ))
    group = consumer_group_id(service_id, "CSAS_DOUBLED_0")

    crashing = KsqlpyRun(sql, broker, service_id, "-p", "linger.ms=2000", prelude=KILL_BEFORE_ACKNOWLEDGEMENT)
    assert crashing.wait(60) == -signal.SIGKILL, crashing.describe()
    assert committed_offsets(broker, group, source) == 0

    second = KsqlpyRun(sql, broker, service_id)
    try:
        out = consume_all(broker, sink, expected_count=RECORDS, timeout=40)
        assert sorted({r.json_value["ID"] for r in out}) == list(range(RECORDS)), second.describe()
        assert second.stop() == 0, second.describe()
    finally:
        second.ensure_stopped()
    assert committed_offsets(broker, group, source) == RECORDS
