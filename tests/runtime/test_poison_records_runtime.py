"""Poison records on the embedded broker: records no query can handle go to the processing log and the query
goes on (or stops in ERROR when set to fail, as ksqlDB's ksql.fail.on.* properties say); a query thread that
ends for any reason is shown as ERROR with the reason."""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer

from ksqlpy.runtime.app import KsqlpyApp
from ksqlpy.runtime.config import RuntimeConfig
from ksqlpy.runtime.processing_log import PROCESSING_LOG_TOPIC
from ksqlpy.runtime.tools import ensure_topic

BIG = 1_500_000  # bytes: more than a producer's default message.max.bytes and Kafka's default record limit


@pytest.fixture
def app(broker: str) -> Iterator[KsqlpyApp]:
    config = RuntimeConfig(bootstrap_servers=broker, service_id=f"poison_{uuid.uuid4().hex[:10]}_")
    with KsqlpyApp(config, status=io.StringIO()) as started:
        yield started


def produce_raw(app: KsqlpyApp, topic: str, values: Sequence[bytes]) -> None:
    """Values as they are (keys k0, k1, ...), through a producer that takes records of any size."""
    ensure_topic(app.clients.admin(), topic, 1)
    producer = Producer({**app.config.client_settings(), "message.max.bytes": 100_000_000})
    for index, value in enumerate(values):
        producer.produce(topic, value=value, key=f"k{index}".encode())
    assert producer.flush(30) == 0


def json_row(amount: int, item: Any = "pen") -> bytes:
    return orjson.dumps({"AMOUNT": amount, "ITEM": item})


def nested(depth: int) -> bytes:
    return b"[" * depth + b"1" + b"]" * depth


def start_query(app: KsqlpyApp, source: str, sink: str, select: str, *settings: str,
                value_format: str = "JSON", columns: str = "amount INT, item STRING") -> str:
    sets = "".join(f"SET '{name}'='{value}';\n" for name, value in (s.split("=", 1) for s in settings))
    results = app.execute(
        f"{sets}SET 'auto.offset.reset'='earliest';\n"
        f"CREATE STREAM src_{sink} (k STRING KEY, {columns}) "
        f"WITH (kafka_topic='{source}', value_format='{value_format}');\n"
        f"CREATE STREAM {sink} WITH (kafka_topic='{sink}', value_format='JSON') AS {select} FROM src_{sink};\n"
    )
    query_id = results[-1].query_id
    assert query_id is not None
    return query_id


def log_entries(broker: str, consume_all: Callable[..., Any], source: str, count: int) -> list[dict[str, Any]]:
    """The processing-log entries about `source` (at least `count` of them, waiting up to 20 s)."""
    found: list[dict[str, Any]] = []
    for _attempt in range(20):
        found = [r.json_value for r in consume_all(broker, PROCESSING_LOG_TOPIC, idle=1.0)
                 if r.json_value["topic"] == source]
        if len(found) >= count:
            break
    return sorted(found, key=lambda entry: entry["offset"])


def test_records_no_serde_can_read_are_logged_and_the_query_goes_on(
    app: KsqlpyApp, broker: str, unique_topic: Callable[..., str], consume_all: Callable[..., Any],
    wait_until: Callable[..., Any],
) -> None:
    source, sink = unique_topic("orders"), unique_topic("lengths")
    deepest = b'{"AMOUNT":3,"ITEM":' + nested(100_000) + b"}"
    produce_raw(app, source, [
        json_row(1),
        json_row(2, orjson.Fragment(nested(400))),  # nested 400 deep in the ITEM field
        deepest,
        b'{"AMOUNT":4,"ITEM":"caf\xe9"}',  # not UTF-8
        json_row(5, "x" * BIG),  # big, but its output is small
        json_row(6),
    ])
    query_id = start_query(app, source, sink, "SELECT k, amount, LEN(item) AS length")

    out = consume_all(broker, sink, expected_count=3, timeout=30)
    assert [(r.key_text, r.json_value) for r in out] == [
        ("k0", {"AMOUNT": 1, "LENGTH": 3}), ("k4", {"AMOUNT": 5, "LENGTH": BIG}), ("k5", {"AMOUNT": 6, "LENGTH": 3}),
    ]
    entries = log_entries(broker, consume_all, source, 3)
    assert [(e["query_id"], e["partition"], e["offset"]) for e in entries] == [(query_id, 0, n) for n in (1, 2, 3)]
    assert all("Failed to deserialize" in e["reason"] for e in entries)
    assert "nested too deeply" in entries[1]["reason"]
    assert entries[1]["size"] == len(b"k2" + deepest) and len(orjson.dumps(entries[1])) < 10_000
    assert app.backend.query_status()[query_id].state == "RUNNING"
    # committed past the poison records: a restart does not meet them again
    wait_until(lambda: sum(app.backend.query_status()[query_id].offsets.values()) == 6, message="the commit")


def test_delimited_records_that_are_not_utf8_are_logged_and_the_query_goes_on(
    app: KsqlpyApp, broker: str, unique_topic: Callable[..., str], consume_all: Callable[..., Any],
) -> None:
    source, sink = unique_topic("sensors"), unique_topic("readings")
    produce_raw(app, source, [b"e1,1#2", b"e2,\xff\xfe", b"e3,3#4"])
    query_id = start_query(app, source, sink, "SELECT k, eventid, sensorinput", value_format="DELIMITED",
                           columns="eventid VARCHAR, sensorinput VARCHAR")

    out = consume_all(broker, sink, expected_count=2, timeout=30)
    assert [r.json_value["EVENTID"] for r in out] == ["e1", "e3"]
    [entry] = log_entries(broker, consume_all, source, 1)
    assert entry["offset"] == 1 and "not valid UTF-8" in entry["reason"]
    assert app.backend.query_status()[query_id].state == "RUNNING"


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once_v2"])
def test_an_output_record_too_large_for_its_sink_is_logged_and_the_next_one_written(
    app: KsqlpyApp, broker: str, unique_topic: Callable[..., str], consume_all: Callable[..., Any],
    wait_until: Callable[..., Any], guarantee: str,
) -> None:
    source, sink = unique_topic("orders"), unique_topic("copies")
    produce_raw(app, source, [json_row(1), json_row(2, "x" * BIG), json_row(3)])
    query_id = start_query(app, source, sink, "SELECT k, amount, item", f"processing.guarantee={guarantee}")

    out = consume_all(broker, sink, expected_count=2, timeout=30)
    assert [r.json_value["AMOUNT"] for r in out] == [1, 3]
    [entry] = log_entries(broker, consume_all, source, 1)
    assert (entry["partition"], entry["offset"], entry["size"]) == (0, 1, len(json_row(2, "x" * BIG)) + 2)
    assert f"to {sink}: " in entry["reason"] and "Message size too large" in entry["reason"]
    assert app.backend.query_status()[query_id].state == "RUNNING"
    # SHOW QUERIES' Records Out counts what reached the sink, not the refused record
    wait_until(lambda: app.backend.query_status()[query_id].records_out == 2, message="records out to be 2")


@pytest.mark.parametrize(
    ("setting", "poison", "reason"),
    [
        ("ksql.fail.on.production.error=true", json_row(2, "x" * BIG), "Message size too large"),
        ("ksql.fail.on.deserialization.error=true", b"{not json", "Failed to deserialize the record at"),
    ],
)
def test_fail_on_settings_stop_the_query_in_error_with_the_reason(
    app: KsqlpyApp, broker: str, unique_topic: Callable[..., str], consume_all: Callable[..., Any],
    wait_until: Callable[..., Any], setting: str, poison: bytes, reason: str,
) -> None:
    source, sink = unique_topic("orders"), unique_topic("copies")
    produce_raw(app, source, [json_row(1), poison, json_row(3)])
    query_id = start_query(app, source, sink, "SELECT k, amount, item", setting)

    status = wait_until(lambda: (s := app.backend.query_status()[query_id]).state == "ERROR" and s, timeout=30,
                        message="the query to stop in ERROR")
    assert reason in status.error and setting.split("=")[0] in status.error
    # the query stops at the poison record (records before it in its batch may or may not be written)
    assert [r.json_value["AMOUNT"] for r in consume_all(broker, sink, idle=1.0)] in ([], [1])
    [show] = app.execute("SHOW QUERIES;")
    assert [row[1] for row in show.rows if row[0] == query_id] == [f"ERROR: {status.error}"]


def test_a_query_thread_ended_by_system_exit_is_shown_as_error(
    app: KsqlpyApp, broker: str, unique_topic: Callable[..., str], wait_until: Callable[..., Any],
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    source, sink = unique_topic("orders"), unique_topic("copies")
    produce_raw(app, source, [])
    with caplog.at_level(logging.ERROR, logger="ksqlpy.runtime.worker"):
        query_id = start_query(app, source, sink, "SELECT k, amount")

        def exit_instead(*_args: Any) -> Any:
            raise SystemExit("bye")

        monkeypatch.setattr(app.engine.queries[query_id].pipeline, "process", exit_instead)
        produce_raw(app, source, [json_row(1)])
        wait_until(lambda: app.backend.query_status()[query_id].state == "ERROR", timeout=30,
                   message="the query to be shown in ERROR")
    status = app.backend.query_status()[query_id]
    assert status.error == "SystemExit: bye"
    assert app.engine.queries[query_id].state == "ERROR"
    assert f"{query_id} in=0 out=0 lag=0 ERROR: SystemExit: bye" in app.progress_text()
    assert f"query {query_id}: state=ERROR records_in=0 records_out=0 error=SystemExit: bye" in app.summary_lines()
    assert any(f"query {query_id} stopped: SystemExit: bye" in r.getMessage() for r in caplog.records)
