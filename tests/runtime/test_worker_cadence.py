"""How a query worker paces itself on the embedded broker: it takes what is fetched without waiting to fill a
batch, knows when it has caught up (for --until-idle), and under exactly-once lets one transaction take in
the batches of a commit interval, all of which a failed commit rewinds."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition

from ksqlpy.engine import Engine
from ksqlpy.runtime import worker
from ksqlpy.runtime.backend import KafkaBackend
from ksqlpy.runtime.clients import KafkaClients
from ksqlpy.runtime.config import RuntimeConfig
from ksqlpy.runtime.worker import CatchUp, consumer_group_id, take_fetched


def test_take_fetched_returns_what_arrived_without_waiting_to_fill_a_batch(
    broker: str, clients: KafkaClients, unique_topic: Callable[..., str], produce_json: Callable[..., None],
) -> None:
    topic = unique_topic("trickle")
    produce_json(broker, topic, [1, 2, 3])
    consumer = clients.consumer(f"t-{uuid.uuid4().hex}")
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    try:
        started = time.monotonic()
        taken: list[Any] = []
        while len(taken) < 3 and time.monotonic() - started < 20:
            taken += [m for m in take_fetched(consumer, 20.0) if m.error() is None]
        # consume(BATCH_SIZE, 20) would have waited the full 20 s for a batch that never fills.
        assert [m.value() for m in taken] == [b"1", b"2", b"3"]
        assert time.monotonic() - started < 10
        started = time.monotonic()
        assert [m for m in take_fetched(consumer, 0.5) if m.error() is None] == []
        assert 0.4 <= time.monotonic() - started < 5
    finally:
        consumer.close()


def test_catch_up_needs_an_assignment_and_the_end_of_every_partition() -> None:
    catch_up = CatchUp()
    assert not catch_up.done  # no assignment yet
    catch_up.assign([0, 1])
    catch_up.reached_end(0)
    assert not catch_up.done
    catch_up.reached_end(1)
    assert catch_up.done
    catch_up.revoke([0, 1])
    assert not catch_up.done  # a rebalance under way
    catch_up.assign([])
    assert catch_up.done  # a member with no partitions has nothing to read


@dataclass
class Transaction:
    produced: int = 0
    offsets: dict[int, int] = field(default_factory=dict)


class CommitFailsOnce:
    """A transactional producer whose first commit fails as an aborted transaction does; it records what
    each transaction held. (Tansu hands aborted records to read_committed readers too, so the output topic
    alone cannot tell which transaction wrote what.)"""

    def __init__(self, producer: Producer) -> None:
        self._producer = producer
        self.transactions: list[Transaction] = []
        self.failed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._producer, name)

    def __len__(self) -> int:
        return len(self._producer)

    def begin_transaction(self) -> None:
        self.transactions.append(Transaction())
        self._producer.begin_transaction()

    def produce(self, *args: Any) -> None:
        self.transactions[-1].produced += 1
        self._producer.produce(*args)

    def send_offsets_to_transaction(self, offsets: list[TopicPartition], *args: Any) -> None:
        self.transactions[-1].offsets = {tp.partition: tp.offset for tp in offsets}
        self._producer.send_offsets_to_transaction(offsets, *args)

    def commit_transaction(self, *args: Any) -> None:
        if not self.failed:
            self.failed = True
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "injected: commit failed", txn_requires_abort=True))
        self._producer.commit_transaction(*args)


class FlakyTransactions(KafkaClients):
    def __init__(self, config: RuntimeConfig) -> None:
        super().__init__(config)
        self.transactional: list[CommitFailsOnce] = []

    def producer(self, **settings: Any) -> Any:
        producer = super().producer(**settings)
        if "transactional.id" not in settings:
            return producer
        self.transactional.append(CommitFailsOnce(producer))
        return self.transactional[-1]


@pytest.fixture
def flaky_backend(broker: str) -> Iterator[tuple[Engine, KafkaBackend, FlakyTransactions]]:
    config = RuntimeConfig(bootstrap_servers=broker, service_id=f"t{uuid.uuid4().hex[:8]}_")
    clients = FlakyTransactions(config)
    backend = KafkaBackend(clients, config)
    yield Engine(backend), backend, clients
    backend.close()


def test_one_transaction_spans_the_batches_of_an_interval_and_a_failed_commit_rewinds_them_all(
    broker: str, unique_topic: Callable[..., str], produce_json: Callable[..., None],
    consume_all: Callable[..., list[Any]], wait_until: Callable[..., Any], monkeypatch: pytest.MonkeyPatch,
    flaky_backend: tuple[Engine, KafkaBackend, FlakyTransactions],
) -> None:
    # Tiny batches and a long interval: the backlog is certain to be read in several batches, all inside
    # the first transaction.
    monkeypatch.setattr(worker, "BATCH_SIZE", 10)
    monkeypatch.setattr(worker, "TRANSACTION_INTERVAL", 2.0)
    engine, backend, clients = flaky_backend
    source = unique_topic("orders")
    produce_json(broker, source, [(f"k{i}", {"ID": i}) for i in range(60)], partitions=2)
    query_id = engine.execute(
        f"CREATE STREAM src (k STRING KEY, id INT) WITH (kafka_topic='{source}', value_format='JSON');\n"
        "SET 'auto.offset.reset'='earliest';\nSET 'processing.guarantee'='exactly_once';\n"
        f"CREATE STREAM copied WITH (kafka_topic='{source}_out') AS SELECT k, id FROM src;"
    )[-1].query_id
    assert query_id is not None

    group = consumer_group_id(backend.config.service_id, query_id)
    wait_until(lambda: committed(broker, group, source) == 60, timeout=30, message="the input offsets to be committed")
    [producer] = clients.transactional
    assert producer.failed
    failed, retried = producer.transactions
    # The failed transaction held every batch: their records, and the offsets after the last of each partition.
    assert failed.produced == 60
    assert len(failed.offsets) == 2 and sum(failed.offsets.values()) == 60
    # Its abort rewound the consumer to its first batch: the retry wrote every record again.
    assert (retried.produced, retried.offsets) == (60, failed.offsets)
    assert {r.json_value["ID"] for r in consume_all(broker, f"{source}_out", idle=1.0)} == set(range(60))


def committed(broker: str, group: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": broker, "group.id": group})
    try:
        offsets = consumer.committed([TopicPartition(topic, p) for p in range(2)], timeout=10)
        return sum(max(0, tp.offset) for tp in offsets)
    finally:
        consumer.close()
