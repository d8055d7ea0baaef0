"""Embedded broker life cycle and the produce / consume / PRINT tools, against a real (Tansu) broker."""

from __future__ import annotations

import base64
import io
import json
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from ksqlpy.errors import KsqlError
from ksqlpy.runtime.broker import EmbeddedBroker
from ksqlpy.runtime.clients import KafkaClients
from ksqlpy.runtime.config import BOOTSTRAP_ENV
from ksqlpy.runtime.tools import (
    BATCH_SIZE,
    FormatGuess,
    consume_lines,
    end_offsets,
    ensure_topic,
    main_consume,
    main_produce,
    print_topic,
    produce_lines,
    read_records,
)

NEW_YEAR_2021_MS = 1609459200000


def _accepts_connections(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1.0)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _port_of(bootstrap: str) -> int:
    return int(bootstrap.rsplit(":", 1)[1])


# ---------------------------------------------------------------------------------------------- broker


def test_session_broker_answers_metadata(clients: KafkaClients) -> None:
    metadata = clients.admin().list_topics(timeout=5)
    assert len(metadata.brokers) == 1
    assert next(iter(metadata.brokers.values())).host == "127.0.0.1"


def test_embedded_broker_starts_and_stops_cleanly(caplog: pytest.LogCaptureFixture) -> None:
    broker = EmbeddedBroker()
    with caplog.at_level("INFO", logger="ksqlpy.runtime.broker"):
        bootstrap = broker.start(timeout=20)
    port = _port_of(bootstrap)
    assert bootstrap == f"127.0.0.1:{port}" == broker.bootstrap_servers
    assert "keeps data in memory only" in caplog.text
    assert broker.running and _accepts_connections(port)
    broker.stop()
    assert not broker.running
    assert not _accepts_connections(port)
    broker.stop()  # a second stop is harmless
    with pytest.raises(KsqlError, match="not running"):
        _ = broker.bootstrap_servers


def test_embedded_broker_as_context_manager_on_requested_port() -> None:
    with socket.socket() as finder:
        finder.bind(("127.0.0.1", 0))
        port = finder.getsockname()[1]
    with EmbeddedBroker(port) as broker:
        assert broker.bootstrap_servers == f"127.0.0.1:{port}"
        assert _accepts_connections(port)
    assert not _accepts_connections(port)


def test_busy_port_is_a_clear_error() -> None:
    with socket.socket() as occupant:
        occupant.bind(("127.0.0.1", 0))
        occupant.listen()
        port = occupant.getsockname()[1]
        with pytest.raises(KsqlError, match=rf"Cannot start the embedded broker on 127\.0\.0\.1:{port}"):
            EmbeddedBroker(port).start(timeout=5)


def test_missing_binary_is_a_clear_error() -> None:
    with pytest.raises(KsqlError, match="Cannot run the embedded broker /no/such/tansu"):
        EmbeddedBroker(binary="/no/such/tansu").start(timeout=5)


def test_broker_that_dies_at_start_up_is_reported() -> None:
    with pytest.raises(KsqlError, match="exited during start-up"):
        EmbeddedBroker(binary="/bin/false").start(timeout=5)


def test_broker_that_never_answers_times_out(tmp_path: Path) -> None:
    silent = tmp_path / "silent-broker"
    silent.write_text("#!/bin/sh\nexec sleep 30\n")
    silent.chmod(0o755)
    broker = EmbeddedBroker(binary=str(silent))
    with pytest.raises(KsqlError, match=r"did not become ready .* within 1s"):
        broker.start(timeout=1)
    assert not broker.running


def test_broker_command_prints_address_and_stops_on_sigterm() -> None:
    program = "import sys; from ksqlpy.runtime.broker import run_broker_foreground; sys.exit(run_broker_foreground())"
    process = subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline().strip()
        assert first_line.startswith("bootstrap.servers=127.0.0.1:")
        port = _port_of(first_line.partition("=")[2])
        assert _accepts_connections(port)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert not _accepts_connections(port)
        assert process.stderr is not None
        assert "memory only" in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# ---------------------------------------------------------------------------------------------- topics


def test_ensure_topic_creates_once_with_partitions(clients: KafkaClients, unique_topic: Callable[..., str]) -> None:
    topic = unique_topic()
    admin = clients.admin()
    assert ensure_topic(admin, topic, 3) is True
    assert ensure_topic(admin, topic, 3) is False
    assert len(admin.list_topics(topic, timeout=5).topics[topic].partitions) == 3


def test_end_offsets_find_the_real_end_past_a_multi_record_batch(
    clients: KafkaClients, unique_topic: Callable[..., str]
) -> None:
    topic = unique_topic()
    ensure_topic(clients.admin(), topic, 1)
    produce_lines(clients, topic, [json.dumps(i) for i in range(5)])  # lingered into one batch
    consumer = clients.consumer("end-offsets-test")
    try:
        assert end_offsets(consumer, topic, [0]) == {0: 5}
    finally:
        consumer.close()


def test_end_offsets_find_the_real_end_past_a_batch_larger_than_one_poll(
    clients: KafkaClients, unique_topic: Callable[..., str]
) -> None:
    topic = unique_topic()
    ensure_topic(clients.admin(), topic, 1)
    records = 5 * BATCH_SIZE
    produce_lines(clients, topic, [json.dumps(i) for i in range(records)])  # lingered into a few large batches
    consumer = clients.consumer("end-offsets-test")
    try:
        assert end_offsets(consumer, topic, [0]) == {0: records}
    finally:
        consumer.close()


# ---------------------------------------------------------------------------------------------- produce / consume


def _consume_documents(clients: KafkaClients, topic: str, count: int) -> list[dict[str, Any]]:
    lines = list(consume_lines(clients, topic, from_beginning=True, max_records=count, timeout_s=10))
    return [json.loads(line) for line in lines]


def test_produce_and_consume_round_trip_keys_headers_timestamps(
    clients: KafkaClients, unique_topic: Callable[..., str]
) -> None:
    topic = unique_topic()
    ensure_topic(clients.admin(), topic, 1)
    binary = bytes([0xFF, 0x00, 0xFE])
    lines = [
        json.dumps({"key": "k1", "value": {"id": 1, "price": 1.10}, "timestamp": NEW_YEAR_2021_MS,
                    "headers": [["source", "test"], ["empty", None]]}),
        "",  # blank lines are skipped
        json.dumps({"id": 2, "name": "bare"}),
        json.dumps({"key": 7, "value": None}),
        json.dumps({"key": "k4", "value": base64.b64encode(binary).decode(), "value_encoding": "base64",
                    "headers": {"bin": {"base64": base64.b64encode(binary).decode()}}}),
        json.dumps("plain text"),
    ]
    assert produce_lines(clients, topic, lines, key_field="id") == 5
    documents = _consume_documents(clients, topic, 5)
    assert [d["offset"] for d in documents] == [0, 1, 2, 3, 4]
    assert documents[0] == {"key": "k1", "value": {"id": 1, "price": 1.10}, "partition": 0, "offset": 0,
                            "timestamp": NEW_YEAR_2021_MS, "headers": [["source", "test"], ["empty", None]]}
    assert documents[1]["key"] == 2 and documents[1]["value"] == {"id": 2, "name": "bare"}  # key from --key-field
    assert documents[1]["timestamp"] > NEW_YEAR_2021_MS  # no timestamp given: the producer's clock
    assert documents[2]["key"] == 7 and documents[2]["value"] is None
    assert documents[3]["value"] == base64.b64encode(binary).decode()
    assert documents[3]["value_encoding"] == "base64"
    assert documents[3]["headers"] == [["bin", {"base64": base64.b64encode(binary).decode()}]]
    assert documents[4]["key"] is None and documents[4]["value"] == "plain text"
    raw = list(read_records(clients, topic, from_beginning=True, idle_timeout_s=0.5))
    assert raw[0].value == b'{"id":1,"price":1.1}'
    assert raw[3].value == binary
    assert raw[4].value == b"plain text"


def test_consumed_lines_feed_back_into_produce_unchanged(
    clients: KafkaClients, unique_topic: Callable[..., str]
) -> None:
    source, copy = unique_topic("src"), unique_topic("copy")
    for topic in (source, copy):
        ensure_topic(clients.admin(), topic, 1)
    lines = [
        json.dumps({"key": "a", "value": {"n": 1.50}, "timestamp": 1000, "headers": [["h", "x"]]}),
        json.dumps({"key": None, "value": [1, 2], "timestamp": 2000}),
        json.dumps({"key": "c", "value": base64.b64encode(b"\x80\x81").decode(), "value_encoding": "base64",
                    "timestamp": 3000}),
    ]
    produce_lines(clients, source, lines)
    consumed = list(consume_lines(clients, source, True, max_records=3, timeout_s=10))
    assert '"value":{"n":1.5}' in consumed[0]  # numbers keep their written form
    produce_lines(clients, copy, consumed)

    def payloads(topic: str) -> list[tuple[Any, ...]]:
        return [(r.key, r.value, r.timestamp, r.headers)
                for r in read_records(clients, topic, from_beginning=True, idle_timeout_s=0.5)]

    assert payloads(copy) == payloads(source)


def test_consume_from_latest_skips_existing_records(clients: KafkaClients, unique_topic: Callable[..., str]) -> None:
    topic = unique_topic()
    ensure_topic(clients.admin(), topic, 2)
    produce_lines(clients, topic, [json.dumps({"key": str(i), "value": f"old-{i}"}) for i in range(6)])
    received: list[str] = []
    reader = threading.Thread(
        target=lambda: received.extend(consume_lines(clients, topic, False, max_records=1, timeout_s=10))
    )
    reader.start()
    sent = 0
    # The reader's start position is fixed asynchronously, so keep offering new records until it has one.
    while reader.is_alive() and sent < 40:
        produce_lines(clients, topic, [json.dumps({"key": "k", "value": f"new-{sent}"})])
        sent += 1
        reader.join(0.25)
    reader.join(5)
    assert len(received) == 1
    assert json.loads(received[0])["value"].startswith("new-")


def test_bad_input_lines_name_the_line(clients: KafkaClients, unique_topic: Callable[..., str]) -> None:
    topic = unique_topic()
    with pytest.raises(KsqlError, match="line 2: not valid JSON"):
        produce_lines(clients, topic, ['{"a": 1}', "{oops"])
    with pytest.raises(KsqlError, match="line 1: timestamp must be epoch milliseconds"):
        produce_lines(clients, topic, ['{"value": 1, "timestamp": "yesterday"}'])
    with pytest.raises(KsqlError, match="line 1: invalid base64"):
        produce_lines(clients, topic, ['{"value": "!!", "value_encoding": "base64"}'])


def test_consuming_a_missing_topic_fails_without_creating_it(
    clients: KafkaClients, unique_topic: Callable[..., str]
) -> None:
    topic = unique_topic("missing")
    with pytest.raises(KsqlError, match=f"Could not find topic '{topic}'"):
        list(consume_lines(clients, topic, True, timeout_s=1))
    probe = Consumer({**clients.config.client_settings(), "group.id": "missing-probe"})
    try:
        assert probe.list_topics(topic, timeout=5).topics[topic].error is not None
    finally:
        probe.close()


# ---------------------------------------------------------------------------------------------- PRINT


def test_print_topic_shows_ksqldb_lines(clients: KafkaClients, unique_topic: Callable[..., str]) -> None:
    topic = unique_topic()
    ensure_topic(clients.admin(), topic, 1)
    lines = [json.dumps({"key": "k1", "value": {"a": 1}, "timestamp": NEW_YEAR_2021_MS}),
             json.dumps({"key": None, "value": {"a": 2}, "timestamp": NEW_YEAR_2021_MS + 61_001})]
    produce_lines(clients, topic, lines)
    printed = list(print_topic(clients, topic, from_beginning=True, limit=2, idle_timeout_s=10))
    assert printed == [
        "Key format: KAFKA_STRING",
        "Value format: JSON or KAFKA_STRING",
        'rowtime: 2021/01/01 00:00:00.000 Z, key: k1, value: {"a":1}, partition: 0',
        'rowtime: 2021/01/01 00:01:01.001 Z, key: <null>, value: {"a":2}, partition: 0',
    ]


def test_print_topic_interval_limit_and_binary_keys(clients: KafkaClients, unique_topic: Callable[..., str]) -> None:
    topic = unique_topic()
    ensure_topic(clients.admin(), topic, 1)
    lines = [json.dumps({"key": base64.b64encode(struct.pack(">i", i)).decode(), "key_encoding": "base64",
                         "value": f"v{i}", "timestamp": NEW_YEAR_2021_MS}) for i in range(300, 306)]
    produce_lines(clients, topic, lines)
    printed = list(print_topic(clients, topic, from_beginning=True, interval=2, limit=2, idle_timeout_s=10))
    assert printed[:2] == ["Key format: KAFKA_INT", "Value format: KAFKA_STRING"]
    assert [line.split(", ")[1:3] for line in printed[2:]] == [["key: 300", "value: v300"], ["key: 302", "value: v302"]]


def test_print_topic_without_records_prints_nothing(clients: KafkaClients, unique_topic: Callable[..., str]) -> None:
    topic = unique_topic()
    ensure_topic(clients.admin(), topic, 1)
    assert list(print_topic(clients, topic, from_beginning=True, idle_timeout_s=0.5)) == []


@pytest.mark.parametrize(
    ("payloads", "expected"),
    [
        ([], "¯\\_(ツ)_/¯ - no data processed"),
        ([None], "¯\\_(ツ)_/¯ - no data processed"),
        ([b'{"a":1}', b"12"], "JSON or KAFKA_STRING"),
        ([b'{"a":1}', b"not json"], "KAFKA_STRING"),
        ([struct.pack(">q", 5)], "KAFKA_BIGINT or KAFKA_DOUBLE"),
        ([struct.pack(">i", 5), b"text"], "MIXED"),
    ],
)
def test_format_guess(payloads: list[bytes | None], expected: str) -> None:
    guess = FormatGuess()
    for payload in payloads:
        guess.observe(payload)
    assert guess.describe() == expected


# ---------------------------------------------------------------------------------------------- CLI entries


def test_produce_and_consume_commands(broker: str, unique_topic: Callable[..., str]) -> None:
    topic = unique_topic()
    stdin = io.StringIO('{"key": "a", "value": {"x": 1}}\n{"x": 2}\n')
    assert main_produce([topic, "--bootstrap-servers", broker, "--partitions", "2"], stdin=stdin) == 0
    stdout = io.StringIO()
    arguments = [topic, "--bootstrap-servers", broker, "--from-beginning", "--timeout", "1", "-p", "client.id=cli-test"]
    assert main_consume(arguments, stdout=stdout) == 0
    documents = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert sorted(json.dumps(d["value"]) for d in documents) == ['{"x": 1}', '{"x": 2}']
    metadata = Consumer({"bootstrap.servers": broker, "group.id": "cli-check"})
    try:
        assert len(metadata.list_topics(topic, timeout=5).topics[topic].partitions) == 2
        assert sum(metadata.get_watermark_offsets(TopicPartition(topic, p))[1] > 0 for p in (0, 1)) >= 1
    finally:
        metadata.close()


@pytest.mark.parametrize("command", [main_produce, main_consume])
def test_commands_without_a_cluster_say_what_to_do(
    command: Callable[..., int], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(BOOTSTRAP_ENV, raising=False)
    assert command(["some_topic"]) == 1
    error = capsys.readouterr().err
    assert "--bootstrap-servers" in error and "ksqlpy broker" in error
