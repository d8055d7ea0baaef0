"""Pull queries on the embedded broker: a CTAS table's current rows, read from its topic's partitions, answered
once and shown as the shell shows them."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable

from ksqlpy.runtime.app import KsqlpyApp
from ksqlpy.runtime.config import RuntimeConfig
from ksqlpy.runtime.tools import ConsumedRecord
from ksqlpy.shell.render import StreamingTable


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
