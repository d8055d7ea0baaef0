"""Persistent and push queries on the embedded broker, end to end through Engine(KafkaBackend)."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from ksqlpy.backoff import Backoff
from ksqlpy.engine import Engine
from ksqlpy.execution.pipeline import Pipeline
from ksqlpy.runtime.backend import KafkaBackend
from ksqlpy.runtime.clients import KafkaClients
from ksqlpy.runtime.config import RuntimeConfig
from ksqlpy.runtime.processing_log import PROCESSING_LOG_TOPIC
from ksqlpy.runtime.worker import QueryWorker, consumer_group_id, max_record_bytes, query_property
from ksqlpy.syntax import ast
from ksqlpy.syntax.parser import parse

Factory = Callable[..., tuple[Engine, KafkaBackend]]

ORDERS = [
    ("a", {"AMOUNT": 5, "ITEM": "pen"}, 1000),
    ("b", {"AMOUNT": 20, "ITEM": "book"}, 2000),
    ("c", {"AMOUNT": 11, "ITEM": "lamp"}, 3000),
    ("a", {"AMOUNT": 30, "ITEM": "desk"}, 4000),
]
# What `AMOUNT * 2 AS DOUBLED ... WHERE AMOUNT > 10` makes of ORDERS: (key, value, timestamp).
EXPECTED = [
    ("a", {"ITEM": "desk", "DOUBLED": 60}, 4000),
    ("b", {"ITEM": "book", "DOUBLED": 40}, 2000),
    ("c", {"ITEM": "lamp", "DOUBLED": 22}, 3000),
]


@pytest.fixture
def make_engine(broker: str) -> Iterator[Factory]:
    """Engines over KafkaBackends, each with a fresh service id unless one is given; all closed at the end."""
    backends: list[KafkaBackend] = []

    def make(service_id: str | None = None) -> tuple[Engine, KafkaBackend]:
        config = RuntimeConfig(bootstrap_servers=broker, service_id=service_id or f"t{uuid.uuid4().hex[:8]}_")
        backend = KafkaBackend(KafkaClients(config), config)
        backends.append(backend)
        return Engine(backend), backend

    yield make
    for backend in backends:
        backend.close()


def orders_script(topic: str, suffix: str, extra: str = "") -> str:
    return f"""
        CREATE STREAM ORDERS_{suffix} (ID STRING KEY, AMOUNT INT, ITEM STRING)
            WITH (KAFKA_TOPIC='{topic}', VALUE_FORMAT='JSON');
        SET 'auto.offset.reset'='earliest';
        {extra}
        CREATE STREAM BIG_{suffix} WITH (KAFKA_TOPIC='{topic}_big') AS
            SELECT ID, ITEM, AMOUNT * 2 AS DOUBLED FROM ORDERS_{suffix} WHERE AMOUNT > 10;
    """


def triples(records: list[Any]) -> list[tuple[str | None, Any, int]]:
    return sorted(((r.key_text, r.json_value, r.timestamp) for r in records), key=lambda t: (t[0] or "", t[2]))


def suffix() -> str:
    return uuid.uuid4().hex[:8].upper()


def test_csas_filters_and_projects_end_to_end(
    make_engine: Factory, broker: str, unique_topic: Callable[..., str], produce_json: Callable[..., None],
    consume_all: Callable[..., list[Any]], wait_until: Callable[..., Any],
) -> None:
    topic = unique_topic("orders")
    produce_json(broker, topic, ORDERS, partitions=2)
    engine, backend = make_engine()
    results = engine.execute(orders_script(topic, suffix()))
    query_id = results[-1].query_id
    assert query_id is not None

    out = consume_all(broker, f"{topic}_big", expected_count=3)
    assert triples(out) == EXPECTED
    assert backend.topic_partitions(f"{topic}_big") == 2  # inherited from the source
    # Offsets are committed after the batch's output is acknowledged, a moment after records_in counts it.
    status = wait_until(lambda: (s := backend.query_status()[query_id]).records_in == 4
                        and sum(s.offsets.values()) == 4 and s, message="every input record processed and committed")
    assert (status.state, status.records_out) == ("RUNNING", 3)
    assert all(lag >= 0 for lag in status.lag.values())


def test_malformed_records_go_to_the_processing_log(
    make_engine: Factory, broker: str, unique_topic: Callable[..., str], produce_json: Callable[..., None],
    consume_all: Callable[..., list[Any]],
) -> None:
    topic = unique_topic("orders")
    produce_json(broker, topic, ORDERS[:2])
    producer = Producer({"bootstrap.servers": broker})
    producer.produce(topic, key=b"bad", value=b"{not json", timestamp=5000)
    assert producer.flush(10) == 0
    produce_json(broker, topic, ORDERS[2:])
    engine, _backend = make_engine()
    query_id = engine.execute(orders_script(topic, suffix()))[-1].query_id

    assert triples(consume_all(broker, f"{topic}_big", expected_count=3)) == EXPECTED

    def entries() -> list[dict[str, Any]]:
        logged = consume_all(broker, PROCESSING_LOG_TOPIC, idle=0.5)
        return [r.json_value for r in logged if r.json_value["query_id"] == query_id]

    [entry] = entries()
    assert (entry["topic"], entry["partition"], entry["offset"]) == (topic, 0, 2)
    assert "deserialize" in entry["reason"]
    assert isinstance(entry["timestamp"], int)


def test_exactly_once_query_writes_each_output_once(
    make_engine: Factory, broker: str, unique_topic: Callable[..., str], produce_json: Callable[..., None],
    consume_all: Callable[..., list[Any]], wait_until: Callable[..., Any],
) -> None:
    topic = unique_topic("orders")
    produce_json(broker, topic, ORDERS, partitions=2)
    engine, backend = make_engine()
    results = engine.execute(orders_script(topic, suffix(), "SET 'processing.guarantee'='exactly_once_v2';"))
    query_id = results[-1].query_id
    assert query_id is not None
    worker = backend._workers[query_id]
    assert worker.exactly_once

    produce_json(broker, topic, [("d", {"AMOUNT": 50, "ITEM": "sofa"}, 5000)], partitions=2)
    expected = sorted([*EXPECTED, ("d", {"ITEM": "sofa", "DOUBLED": 100}, 5000)], key=lambda t: (t[0], t[2]))
    assert triples(consume_all(broker, f"{topic}_big", expected_count=4)) == expected  # read_committed
    assert triples(consume_all(broker, f"{topic}_big", idle=1.0)) == expected  # and nothing more arrives
    # The input offsets were committed by the transactions.
    wait_until(lambda: backend.query_status()[query_id].records_in == 5, message="all input processed")
    group = consumer_group_id(worker_service_id(backend), query_id)
    # The last transaction may hold only records the filter dropped, so it may commit a moment after the output.
    wait_until(lambda: committed_total(broker, group, topic, 2) == 5, message="every input offset committed")


def worker_service_id(backend: KafkaBackend) -> str:
    return backend.config.service_id


def committed_total(broker: str, group: str, topic: str, partitions: int) -> int:
    consumer = Consumer({"bootstrap.servers": broker, "group.id": group})
    try:
        committed = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return sum(max(0, tp.offset) for tp in committed)
    finally:
        consumer.close()


def test_restart_resumes_from_committed_offsets(
    make_engine: Factory, broker: str, unique_topic: Callable[..., str], produce_json: Callable[..., None],
    consume_all: Callable[..., list[Any]],
) -> None:
    topic = unique_topic("orders")
    produce_json(broker, topic, ORDERS, partitions=2)
    service_id = f"restart{uuid.uuid4().hex[:6]}_"
    name = suffix()
    engine, backend = make_engine(service_id)
    engine.execute(orders_script(topic, name))
    assert len(consume_all(broker, f"{topic}_big", expected_count=3)) == 3
    backend.close()

    later = [("e", {"AMOUNT": 70, "ITEM": "rug"}, 6000), ("f", {"AMOUNT": 1, "ITEM": "pin"}, 7000)]
    produce_json(broker, topic, later, partitions=2)
    engine, _backend = make_engine(service_id)
    engine.execute(orders_script(topic, name))  # same statements, same query id, same consumer group

    expected = sorted([*EXPECTED, ("e", {"ITEM": "rug", "DOUBLED": 140}, 6000)], key=lambda t: (t[0], t[2]))
    assert triples(consume_all(broker, f"{topic}_big", expected_count=4)) == expected
    assert len(consume_all(broker, f"{topic}_big", idle=1.5)) == 4  # no record was processed twice


def test_persistent_query_defaults_to_latest(
    make_engine: Factory, broker: str, unique_topic: Callable[..., str], produce_json: Callable[..., None],
    consume_all: Callable[..., list[Any]], wait_caught_up: Callable[[KafkaBackend], None],
) -> None:
    topic = unique_topic("orders")
    produce_json(broker, topic, ORDERS)
    engine, backend = make_engine()
    script = orders_script(topic, suffix()).replace("SET 'auto.offset.reset'='earliest';", "")
    query_id = engine.execute(script)[-1].query_id
    assert query_id is not None
    wait_caught_up(backend)
    assert backend.query_status()[query_id].partitions == [0]
    produce_json(broker, topic, [("n", {"AMOUNT": 99, "ITEM": "new"}, 8000)])
    # One partition throughout: had the older records been processed, they would come first.
    assert triples(consume_all(broker, f"{topic}_big", expected_count=1)) == [("n", {"ITEM": "new", "DOUBLED": 198}, 8000)]


def test_push_query_returns_rows_until_limit(
    make_engine: Factory, broker: str, unique_topic: Callable[..., str], produce_json: Callable[..., None],
) -> None:
    topic = unique_topic("orders")
    produce_json(broker, topic, ORDERS, partitions=2)
    engine, backend = make_engine()
    name = suffix()
    engine.execute(orders_script(topic, name))
    plan, pipeline = transient(engine, backend, f"SELECT ID, ITEM FROM ORDERS_{name} WHERE AMOUNT > 10 EMIT CHANGES LIMIT 2;")

    started = time.monotonic()
    rows = list(backend.push_query(plan, pipeline, {"auto.offset.reset": "earliest"}))
    assert len(rows) == 2
    assert all(row in (["b", "book"], ["c", "lamp"], ["a", "desk"]) for row in rows)
    assert time.monotonic() - started < 10


def test_push_query_defaults_to_latest_and_stops_on_cancel(
    make_engine: Factory, broker: str, unique_topic: Callable[..., str], produce_json: Callable[..., None],
    wait_until: Callable[..., Any],
) -> None:
    topic = unique_topic("orders")
    produce_json(broker, topic, ORDERS)
    engine, backend = make_engine()
    name = suffix()
    engine.execute(orders_script(topic, name))
    plan, pipeline = transient(engine, backend, f"SELECT * FROM ORDERS_{name} EMIT CHANGES;")
    cancel = threading.Event()
    rows: list[list[Any]] = []
    ready = threading.Event()
    reader = threading.Thread(
        target=lambda: rows.extend(backend.push_query(plan, pipeline, {}, cancel=cancel, ready=ready))
    )
    reader.start()
    try:
        assert ready.wait(15), "the push query did not reach the end of its topic within 15 s"
        produce_json(broker, topic, [("z", {"AMOUNT": 3, "ITEM": "cup"}, 9000)])
        wait_until(lambda: rows, message="the new row")
    finally:  # a failed wait must not leave the reader running, or pytest never exits
        cancel.set()
        reader.join(5)
    assert not reader.is_alive()
    assert rows == [["z", 3, "cup"]]  # the records produced before the query started are not replayed


def transient(engine: Engine, backend: KafkaBackend, sql: str) -> tuple[Any, Pipeline]:
    [statement] = parse(sql)
    assert isinstance(statement, ast.SelectStatement)
    plan = engine.plan_transient(statement)
    return plan, Pipeline(plan, backend.processing_logger("transient", plan.source.source.topic))


def test_unreachable_broker_is_retried_not_fatal(
    make_engine: Factory, broker: str, unique_topic: Callable[..., str], caplog: pytest.LogCaptureFixture,
    wait_until: Callable[..., Any],
) -> None:
    engine, _backend = make_engine()
    topic = unique_topic("orders")
    query_id = engine.execute(orders_script(topic, suffix()))[-1].query_id
    assert query_id is not None
    dead = RuntimeConfig(bootstrap_servers="127.0.0.1:9", service_id="dead_")
    worker = QueryWorker(engine.queries[query_id], KafkaClients(dead), dead.service_id, {})
    with caplog.at_level(logging.WARNING, logger="ksqlpy.runtime.worker"):
        worker.start()
        wait_until(
            lambda: any("broker unreachable" in r.getMessage() and "retrying in" in r.getMessage() for r in caplog.records),
            message="a warning that the broker is unreachable and the query retries",
        )
        assert worker.is_alive()
        assert worker.status().state == "RUNNING"
        started = time.monotonic()
        worker.stop(15)
    assert not worker.is_alive()
    assert time.monotonic() - started < 12


def test_backoff_doubles_up_to_its_cap() -> None:
    backoff = Backoff(first=0.5, cap=3.0)
    assert [backoff.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.next() == 0.5


def test_query_properties_come_from_set_or_server_config() -> None:
    assert query_property({}, "auto.offset.reset", "latest") == "latest"
    assert query_property({"auto.offset.reset": "Earliest"}, "auto.offset.reset", "latest") == "earliest"
    server = {"ksql.streams.processing.guarantee": "exactly_once"}
    assert query_property(server, "processing.guarantee", "at_least_once") == "exactly_once"


def test_backend_topics(make_engine: Factory, unique_topic: Callable[..., str]) -> None:
    _engine, backend = make_engine()
    topic = unique_topic("plain")
    assert backend.topic_partitions(topic) is None
    backend.create_topic(topic, 3)
    backend.create_topic(topic, 3)  # already there: fine
    assert backend.topic_partitions(topic) == 3
    assert backend.list_topics()[topic] == 3
    internal = f"_{topic}"
    backend.create_topic(internal, 1)
    assert internal not in backend.list_topics()
    assert backend.list_topics(include_internal=True)[internal] == 1
    backend.delete_topic(topic)
    assert backend.topic_partitions(topic) is None



def test_the_sink_limit_lookup_gets_an_answer_every_time(
    broker: str, unique_topic: Callable[..., str], produce_json: Callable[..., None], caplog: pytest.LogCaptureFixture,
) -> None:
    """A starting query asks for its sink's max.message.bytes before it first polls. With its admin client
    dropped mid-request most lookups failed ("handle destroyed") and now and then one never returned: the
    query then joined no group and wrote nothing."""
    topic = unique_topic("sink")
    produce_json(broker, topic, [])
    clients = KafkaClients(RuntimeConfig(bootstrap_servers=broker))
    caplog.set_level(logging.DEBUG, logger="ksqlpy.runtime.worker")
    for _ in range(10):
        assert max_record_bytes(clients, topic) > 0
    assert [r.getMessage() for r in caplog.records if "could not read max.message.bytes" in r.getMessage()] == []
