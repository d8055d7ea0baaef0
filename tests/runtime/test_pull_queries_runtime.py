"""Pull queries on the embedded broker: a table's current rows, from a materialization of its topic made on the
first pull query and caught up incrementally; key lookups, IN, scans, LIMIT, window bounds, tombstones, DROP."""

from __future__ import annotations

import io
import struct
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from ksqlpy.errors import StatementError
from ksqlpy.runtime.app import KsqlpyApp
from ksqlpy.runtime.config import RuntimeConfig
from ksqlpy.runtime.tools import ConsumedRecord
from ksqlpy.shell.render import StreamingTable
from ksqlpy.syntax import ast
from ksqlpy.syntax.parser import parse


def test_a_pull_query_answers_a_ctas_tables_current_rows_and_ends(
    broker: str, unique_topic: Callable[..., str], produce_json: Callable[..., None],
    consume_all: Callable[..., list[ConsumedRecord]],
) -> None:
    source, sink = unique_topic("pull_orders"), unique_topic("pull_totals")
    produce_json(broker, source, [("a", {"V": 5}), ("b", {"V": 7}), ("a", {"V": 10}), ("c", {"V": 1})], partitions=2)
    config = RuntimeConfig(bootstrap_servers=broker, service_id=f"pull{uuid.uuid4().hex[:8]}_",
                           properties={"auto.offset.reset": "earliest", "cache.max.bytes.buffering": "0"})
    with KsqlpyApp(config, status=io.StringIO()).start() as app:
        app.execute(f"""
            CREATE STREAM orders (k STRING KEY, v INT) WITH (kafka_topic='{source}', value_format='JSON');
            CREATE TABLE totals WITH (kafka_topic='{sink}') AS
                SELECT k, COUNT(*) AS n, SUM(v) AS total FROM orders GROUP BY k;""")
        assert len(consume_all(broker, sink, expected_count=4)) == 4  # the table's updates are on its topic

        [scan] = app.execute("SELECT * FROM totals;")
        assert sorted(scan.rows) == [["a", 2, 15], ["b", 1, 7], ["c", 1, 1]]  # one row per key: its latest
        [limited] = app.execute("SELECT k FROM totals WHERE k IN ('a', 'b') LIMIT 1;")
        assert len(limited.rows) == 1

        shown = io.StringIO()
        [lookup] = app.execute("SELECT k, total FROM totals WHERE k = 'a';", StreamingTable(shown, total_width=None))
        assert lookup.message == ""  # no "Limit Reached" / "Query terminated": it ended by itself
        assert [line for line in shown.getvalue().splitlines() if not line.startswith("+")] == [
            "| K            | TOTAL        |", "| a            | 15           |",
        ]


def test_a_plain_table_is_materialized_on_its_first_pull_query_and_caught_up_incrementally(
    broker: str, unique_topic: Callable[..., str], produce_json: Callable[..., None],
) -> None:
    topic = unique_topic("pull_users")
    produce_json(broker, topic, [("a", {"NAME": "Ann"}), ("b", {"NAME": "Bob"}), ("c", {"NAME": "Cid"}),
                                 ("a", {"NAME": "Ana"})], partitions=2)
    config = RuntimeConfig(bootstrap_servers=broker, service_id=f"pull{uuid.uuid4().hex[:8]}_")
    with KsqlpyApp(config, status=io.StringIO()).start() as app:
        app.execute(f"CREATE TABLE users (id STRING PRIMARY KEY, name STRING) "
                    f"WITH (kafka_topic='{topic}', value_format='JSON');")
        assert app.backend.materialization(topic) is None  # made by the first pull query, not before
        [lookup] = app.execute("SELECT name FROM users WHERE id = 'a';")
        assert lookup.rows == [["Ana"]]
        table = app.backend.materialization(topic)
        assert table is not None and table.consumed == 4
        [listed] = app.execute("SELECT id FROM users WHERE id IN ('c', 'zz', 'b');")
        assert listed.rows == [["c"], ["b"]]
        [scan] = app.execute("SELECT * FROM users;")
        assert sorted(scan.rows) == [["a", "Ana"], ["b", "Bob"], ["c", "Cid"]]
        [limited] = app.execute("SELECT * FROM users LIMIT 2;")
        assert len(limited.rows) == 2
        assert table.consumed == 4  # nothing new on the topic: nothing read again

        produce_json(broker, topic, [("d", {"NAME": "Dan"}), ("b", None)], partitions=2)
        [later] = app.execute("SELECT id, name FROM users;")
        assert sorted(later.rows) == [["a", "Ana"], ["c", "Cid"], ["d", "Dan"]]  # b deleted by its tombstone
        assert table.consumed == 6  # only the two new records were read

        app.execute("DROP TABLE users;")
        assert app.backend.materialization(topic) is None


def test_a_windowed_tables_key_lookup_reads_that_keys_windows_within_the_bounds(
    broker: str, unique_topic: Callable[..., str], produce_json: Callable[..., None],
) -> None:
    topic = unique_topic("pull_windows")
    minute = 60_000

    def windowed(key: str, start: int) -> bytes:
        return key.encode() + struct.pack(">q", start)

    produce_json(broker, topic, [(windowed("u1", 0), {"N": 1}), (windowed("u1", minute), {"N": 2}),
                                 (windowed("u10", 0), {"N": 3}), (windowed("u1", 0), {"N": 4})])
    config = RuntimeConfig(bootstrap_servers=broker, service_id=f"pull{uuid.uuid4().hex[:8]}_")
    with KsqlpyApp(config, status=io.StringIO()).start() as app:
        app.execute(f"CREATE TABLE counts (k STRING PRIMARY KEY, n INT) WITH (kafka_topic='{topic}', "
                    "value_format='JSON', window_type='TUMBLING', window_size='1 MINUTE');")
        [windows] = app.execute("SELECT k, WINDOWSTART, WINDOWEND, n FROM counts WHERE k = 'u1';")
        assert windows.rows == [["u1", 0, minute, 4], ["u1", minute, 2 * minute, 2]]
        [bounded] = app.execute(f"SELECT n FROM counts WHERE k = 'u1' AND WINDOWSTART >= {minute};")
        assert bounded.rows == [[2]]
        [scan] = app.execute(f"SELECT k, n FROM counts WHERE WINDOWEND <= {minute};")
        assert scan.rows == [["u1", 4], ["u10", 3]]
        app.execute("SET 'ksql.query.pull.table.scan.enabled'='false';")
        with pytest.raises(StatementError, match=r"^WHERE clause missing key column for disjunct: \(N > 1\)"):
            app.execute("SELECT * FROM counts WHERE n > 1;")


def test_pull_queries_from_several_threads_share_one_materialization_reading_each_record_once(
    broker: str, unique_topic: Callable[..., str], produce_json: Callable[..., None],
) -> None:
    topic = unique_topic("pull_threads")
    produce_json(broker, topic, [(f"k{i}", {"N": i}) for i in range(50)], partitions=3)
    config = RuntimeConfig(bootstrap_servers=broker, service_id=f"pull{uuid.uuid4().hex[:8]}_")
    with KsqlpyApp(config, status=io.StringIO()).start() as app:
        app.execute(f"CREATE TABLE t (k STRING PRIMARY KEY, n INT) WITH (kafka_topic='{topic}', value_format='JSON');")
        [statement] = parse("SELECT n FROM t WHERE n >= 0;")
        assert isinstance(statement, ast.SelectStatement)
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda i: app.engine.pull_rows(app.engine.plan_transient(statement), f"p{i}"),
                                    range(4)))
        assert all(sorted(answer) == [[i] for i in range(50)] for answer in answers)
        table = app.backend.materialization(topic)
        assert table is not None and table.consumed == 50
