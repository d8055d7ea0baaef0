"""Stateful queries on the embedded broker: aggregations, windows, table sources with tombstones, EMIT FINAL,
record caching, late records in SHOW QUERIES / DESCRIBE EXTENDED, and push queries over tables."""

from __future__ import annotations

import io
import re
import struct
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from ksqlpy.runtime.app import KsqlpyApp
from ksqlpy.runtime.config import RuntimeConfig
from ksqlpy.runtime.push import DELETED
from ksqlpy.runtime.tools import ConsumedRecord
from ksqlpy.shell.render import StreamingTable
from ksqlpy.types import INTEGER, STRING

AppFactory = Callable[..., KsqlpyApp]
MINUTE = 60_000


@pytest.fixture
def make_app(broker: str) -> Iterator[AppFactory]:
    """Started apps with a fresh service id and their status output kept in `app.status`; all closed at the end."""
    apps: list[KsqlpyApp] = []

    def make(**properties: str) -> KsqlpyApp:
        config = RuntimeConfig(bootstrap_servers=broker, service_id=f"st{uuid.uuid4().hex[:8]}_",
                               properties={"auto.offset.reset": "earliest", **properties})
        app = KsqlpyApp(config, status=io.StringIO()).start()
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


def status_text(app: KsqlpyApp) -> str:
    stream = app.status
    assert isinstance(stream, io.StringIO)
    return stream.getvalue()


def values_by_key(records: list[ConsumedRecord]) -> list[tuple[str | None, Any]]:
    return [(record.key_text, record.json_value) for record in records]


def raw_records(bootstrap: str, topic: str, count: int, timeout: float = 15.0) -> list[tuple[bytes | None, bytes | None]]:
    """Key and value bytes of a topic's first `count` records, read with a plain confluent-kafka consumer."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"raw-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        found: list[tuple[bytes | None, bytes | None]] = []
        while len(found) < count:
            message = consumer.poll(timeout)
            assert message is not None, f"only {len(found)} of {count} records on {topic}"
            if message.error() is None:
                found.append((message.key(), message.value()))
        return found
    finally:
        consumer.close()


def test_ctas_group_by_counts_and_sums_and_says_where_its_state_lives(
    make_app: AppFactory, broker: str, unique_topic: Callable[..., str], produce_json: Callable[..., None],
    consume_all: Callable[..., list[ConsumedRecord]],
) -> None:
    source, sink = unique_topic("orders"), unique_topic("totals")
    produce_json(broker, source, [("a", {"V": 5}), ("b", {"V": 7}), ("a", {"V": 10})])
    app = make_app(**{"cache.max.bytes.buffering": "0"})
    app.execute(f"""
        CREATE STREAM orders (k STRING KEY, v INT) WITH (kafka_topic='{source}', value_format='JSON');
        CREATE TABLE totals WITH (kafka_topic='{sink}') AS
            SELECT k, COUNT(*) AS n, SUM(v) AS total FROM orders GROUP BY k;""")

    assert values_by_key(consume_all(broker, sink, expected_count=3)) == [
        ("a", {"N": 1, "TOTAL": 5}), ("b", {"N": 1, "TOTAL": 7}), ("a", {"N": 2, "TOTAL": 15})]
    [query_id] = app.engine.queries
    state = app.state
    assert state is not None
    assert (f"Note: {query_id} keeps its aggregation state in {state.directory / query_id}, backed by changelog "
            "topics") in status_text(app)
    assert (state.directory / query_id / "0" / "CURRENT").exists()  # a RocksDB database for partition 0
    [shown] = app.execute("SHOW QUERIES;")
    assert shown.columns[-1] == "Late Records"
    assert shown.rows[0][-1] == 0


def test_stateless_query_has_no_note_and_no_late_records(
    make_app: AppFactory, broker: str, unique_topic: Callable[..., str], produce_json: Callable[..., None],
) -> None:
    source = unique_topic("plain")
    produce_json(broker, source, [("a", {"V": 5})])
    app = make_app()
    app.execute(f"""
        CREATE STREAM plain (k STRING KEY, v INT) WITH (kafka_topic='{source}', value_format='JSON');
        CREATE STREAM copied AS SELECT * FROM plain;""")

    assert "Note:" not in status_text(app)
    [shown] = app.execute("SHOW QUERIES;")
    assert shown.rows[0][-1] is None


def test_tumbling_window_keys_are_ksqldb_windowed_bytes_and_late_records_are_counted(
    make_app: AppFactory, broker: str, unique_topic: Callable[..., str], produce_json: Callable[..., None],
    wait_until: Callable[..., Any],
) -> None:
    source, sink = unique_topic("clicks"), unique_topic("per_minute")
    produce_json(broker, source, [
        ("u1", {"P": "x"}, 1_000), ("u1", {"P": "y"}, 2_000), ("u2", {"P": "x"}, MINUTE + 5),
        ("u1", {"P": "z"}, 3 * MINUTE),
        ("u1", {"P": "late"}, 10),  # its window [0, 60 s) closed when stream time passed 60 s (no grace)
    ])
    app = make_app(**{"cache.max.bytes.buffering": "0"})
    app.execute(f"""
        CREATE STREAM clicks (user STRING KEY, p STRING) WITH (kafka_topic='{source}', value_format='JSON');
        CREATE TABLE per_minute WITH (kafka_topic='{sink}') AS
            SELECT user, COUNT(*) AS n FROM clicks WINDOW TUMBLING (SIZE 60 SECONDS, GRACE PERIOD 0 SECONDS)
            GROUP BY user;""")

    records = raw_records(broker, sink, 4)
    assert records == [
        (b"u1" + struct.pack(">q", 0), b'{"N":1}'),
        (b"u1" + struct.pack(">q", 0), b'{"N":2}'),
        (b"u2" + struct.pack(">q", MINUTE), b'{"N":1}'),
        (b"u1" + struct.pack(">q", 3 * MINUTE), b'{"N":1}'),
    ]
    wait_until(lambda: app.execute("SHOW QUERIES;")[0].rows[0][-1] == 1, message="the late record to be counted")
    [described] = app.execute("DESCRIBE per_minute EXTENDED;")
    [query_id] = app.engine.queries
    assert "Local runtime statistics" in described.message
    assert f"PER_MINUTE <- {query_id}: state: RUNNING  records-in: 5  records-out: 4  lag: " in described.message
    query_line, state_line = described.message.splitlines()[-2:]
    assert query_line.endswith("late-records: 1")
    # the process's RocksDB memory, each part against its bound
    assert re.fullmatch(r"state stores \(every query of this process\): .+; block cache [\d.]+ of 64 MB, "
                        r"write buffers [\d.]+ of 64 MB", state_line), state_line


def test_session_window_keys_end_with_end_then_start(
    make_app: AppFactory, broker: str, unique_topic: Callable[..., str], produce_json: Callable[..., None],
) -> None:
    source, sink = unique_topic("visits"), unique_topic("sessions")
    produce_json(broker, source, [("u1", {"P": "x"}, 1_000), ("u1", {"P": "y"}, 4_000)])
    app = make_app(**{"cache.max.bytes.buffering": "0"})
    app.execute(f"""
        CREATE STREAM visits (user STRING KEY, p STRING) WITH (kafka_topic='{source}', value_format='JSON');
        CREATE TABLE sessions WITH (kafka_topic='{sink}') AS
            SELECT user, COUNT(*) AS n FROM visits WINDOW SESSION (10 SECONDS) GROUP BY user;""")

    # the second record extends the session: the first one is deleted, the merged one written
    assert raw_records(broker, sink, 3) == [
        (b"u1" + struct.pack(">qq", 1_000, 1_000), b'{"N":1}'),
        (b"u1" + struct.pack(">qq", 1_000, 1_000), None),
        (b"u1" + struct.pack(">qq", 4_000, 1_000), b'{"N":2}'),
    ]


def test_ctas_filter_over_a_table_source_deletes_rows_that_stop_matching(
    make_app: AppFactory, broker: str, unique_topic: Callable[..., str], produce_json: Callable[..., None],
    consume_all: Callable[..., list[ConsumedRecord]],
) -> None:
    source, sink = unique_topic("balances"), unique_topic("whales")
    produce_json(broker, source, [
        ("a", {"BALANCE": 2000}), ("b", {"BALANCE": 5}), ("a", None), ("b", {"BALANCE": 3000}),
        ("b", {"BALANCE": 10}),
    ])
    app = make_app()
    app.execute(f"""
        CREATE TABLE balances (id STRING PRIMARY KEY, balance INT) WITH (kafka_topic='{source}', value_format='JSON');
        CREATE TABLE whales WITH (kafka_topic='{sink}') AS SELECT * FROM balances WHERE balance > 1000;""")

    # b's first row never matched, so it is not deleted then (no spurious tombstone)
    assert values_by_key(consume_all(broker, sink, expected_count=4)) == [
        ("a", {"BALANCE": 2000}), ("a", None), ("b", {"BALANCE": 3000}), ("b", None)]
    [query_id] = app.engine.queries
    assert f"Note: {query_id} keeps its table filter state in " in status_text(app)


def test_emit_final_writes_each_window_once_when_it_closes(
    make_app: AppFactory, broker: str, unique_topic: Callable[..., str], produce_json: Callable[..., None],
) -> None:
    source, sink = unique_topic("readings"), unique_topic("final")
    produce_json(broker, source, [
        ("s1", {"T": 1}, 1_000), ("s1", {"T": 2}, 2_000), ("s2", {"T": 3}, 3_000),
        ("s1", {"T": 4}, MINUTE),  # stream time reaches the first window's (exclusive) end: it closes
    ])
    app = make_app(**{"cache.max.bytes.buffering": "0"})
    app.execute(f"""
        CREATE STREAM readings (sensor STRING KEY, t INT) WITH (kafka_topic='{source}', value_format='JSON');
        CREATE TABLE final WITH (kafka_topic='{sink}') AS
            SELECT sensor, COUNT(*) AS n FROM readings WINDOW TUMBLING (SIZE 60 SECONDS, GRACE PERIOD 0 SECONDS)
            GROUP BY sensor EMIT FINAL;""")

    assert sorted(raw_records(broker, sink, 2)) == [
        (b"s1" + struct.pack(">q", 0), b'{"N":2}'), (b"s2" + struct.pack(">q", 0), b'{"N":1}')]


def test_record_cache_emits_latest_per_key_per_batch_unless_set_to_zero(
    make_app: AppFactory, broker: str, unique_topic: Callable[..., str], produce_json: Callable[..., None],
    consume_all: Callable[..., list[ConsumedRecord]],
) -> None:
    source, cached_sink, uncached_sink = unique_topic("events"), unique_topic("cached"), unique_topic("uncached")
    produce_json(broker, source, [(f"k{i % 2}", {"V": i}) for i in range(40)])
    app = make_app()
    app.execute(f"""
        CREATE STREAM events (k STRING KEY, v INT) WITH (kafka_topic='{source}', value_format='JSON');
        CREATE TABLE cached WITH (kafka_topic='{cached_sink}') AS SELECT k, COUNT(*) AS n FROM events GROUP BY k;
        SET 'cache.max.bytes.buffering'='0';
        CREATE TABLE uncached WITH (kafka_topic='{uncached_sink}') AS SELECT k, COUNT(*) AS n FROM events GROUP BY k;
    """)

    uncached = consume_all(broker, uncached_sink, expected_count=40)
    assert [record.json_value["N"] for record in uncached] == [i // 2 + 1 for i in range(40)]
    cached = consume_all(broker, cached_sink)
    assert len(cached) < 40  # at most one update per key for each batch the query read
    assert {record.key_text: record.json_value["N"] for record in cached} == {"k0": 20, "k1": 20}


def test_ksqlpy_run_takes_the_record_cache_size_as_a_property(
    broker: str, unique_topic: Callable[..., str], produce_json: Callable[..., None],
    consume_all: Callable[..., list[ConsumedRecord]], tmp_path: Any,
) -> None:
    source, sink = unique_topic("runs"), unique_topic("run_counts")
    produce_json(broker, source, [("a", {"V": i}) for i in range(5)])
    script = tmp_path / "count.sql"
    script.write_text(f"""
        CREATE STREAM runs (k STRING KEY, v INT) WITH (kafka_topic='{source}', value_format='JSON');
        CREATE TABLE run_counts WITH (kafka_topic='{sink}') AS SELECT k, COUNT(*) AS n FROM runs GROUP BY k;""")
    done = subprocess.run(
        [sys.executable, "-m", "ksqlpy.cli", "run", "--bootstrap-servers", broker, "--service-id",
         f"run{uuid.uuid4().hex[:8]}_", "-p", "auto.offset.reset=earliest", "-p", "cache.max.bytes.buffering=0",
         "--until-idle", "1", str(script)],
        capture_output=True, text=True, timeout=40, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "keeps its aggregation state in " in done.stderr
    assert "late_records=0" in done.stderr
    assert [record.json_value["N"] for record in consume_all(broker, sink, expected_count=5)] == [1, 2, 3, 4, 5]


def test_push_query_over_a_table_shows_deleted_rows_as_tombstones(
    make_app: AppFactory, broker: str, unique_topic: Callable[..., str], produce_json: Callable[..., None],
) -> None:
    source = unique_topic("stock")
    produce_json(broker, source, [("pen", {"QTY": 3}), ("ink", {"QTY": 9}), ("pen", None)])
    app = make_app()
    app.execute(f"CREATE TABLE stock (item STRING PRIMARY KEY, qty INT) "
                f"WITH (kafka_topic='{source}', value_format='JSON');")

    [result] = app.execute("SELECT * FROM stock WHERE qty > 0 EMIT CHANGES LIMIT 3;")

    assert result.rows == [["pen", 3], ["ink", 9], ["pen", DELETED]]
    shown = io.StringIO()
    table = StreamingTable(shown)
    table.header(["ITEM", "QTY"], [STRING, INTEGER])
    table.row(["pen", DELETED])
    assert shown.getvalue().splitlines()[-1] == "| pen          | <TOMBSTONE>  |"  # as ksqlDB's CLI shows it


def test_push_query_over_an_aggregate_streams_its_updates(
    make_app: AppFactory, broker: str, unique_topic: Callable[..., str], produce_json: Callable[..., None],
) -> None:
    source = unique_topic("taps")
    produce_json(broker, source, [("a", {"V": 1}), ("b", {"V": 1}), ("a", {"V": 1})])
    app = make_app(**{"cache.max.bytes.buffering": "0"})
    app.execute(f"CREATE STREAM taps (k STRING KEY, v INT) WITH (kafka_topic='{source}', value_format='JSON');")

    [result] = app.execute("SELECT k, COUNT(*) AS n FROM taps GROUP BY k EMIT CHANGES LIMIT 3;")

    assert result.rows == [["a", 1], ["b", 1], ["a", 2]]
    # the push query's state went with it: asking for its store now gives a new, empty one
    assert len(app.engine.transient_state.store("transient_0", "Aggregate-Aggregate-Materialize", 0)) == 0


def test_shell_notes_where_state_lives_and_shows_late_records(
    broker: str, unique_topic: Callable[..., str], produce_json: Callable[..., None],
) -> None:
    source = unique_topic("shell_events")
    produce_json(broker, source, [("a", {"V": 1}, 5 * MINUTE), ("a", {"V": 2}, 1_000)])  # the second is late
    script = (
        "SET 'auto.offset.reset'='earliest';\n"
        f"CREATE STREAM shell_events (k STRING KEY, v INT) WITH (kafka_topic='{source}', value_format='JSON');\n"
        "CREATE TABLE shell_counts AS SELECT k, COUNT(*) AS n FROM shell_events\n"
        "  WINDOW TUMBLING (SIZE 1 MINUTE, GRACE PERIOD 0 SECONDS) GROUP BY k;\n"
        "SELECT k, n FROM shell_counts EMIT CHANGES LIMIT 1;\n"
        "SHOW QUERIES;\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "ksqlpy.cli", "shell", "--bootstrap-servers", broker,
         "--service-id", f"shell_{uuid.uuid4().hex[:10]}_"],
        input=script, capture_output=True, text=True, timeout=40, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "keeps its aggregation state in " in done.stderr
    assert "Late Records" in done.stdout
    # records in 2, out 1 (the late one dropped), lag, late records 1
    assert re.search(r"\| 2 +\| 1 +\| \d+ +\| 1 +\|\n", done.stdout), done.stdout
