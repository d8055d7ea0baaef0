"""A re-keying GROUP BY run in two stages joined by a repartition topic writes what the same query run in one
pass writes: the same records, timestamps and partitions, with every value keeping its type."""

from __future__ import annotations

import base64
import pickle
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import orjson
import pytest
from stateful_driving import driver
from test_stateful_retries import FragileTotal

from ksqlpy.driver import InMemoryDriver
from ksqlpy.engine import PersistentQuery
from ksqlpy.execution.partitioning import partition_for
from ksqlpy.execution.pipeline import OutputBatch, Pipeline, Record, RecordBatch
from ksqlpy.execution.repartition import decoded_rows, encoded_rows
from ksqlpy.state.memory import InMemoryStoreProvider

COLUMNS = "id STRING KEY, a STRING, b INT, v INT, price DECIMAL(6, 2), item STRUCT<name STRING, qty INT>, raw BYTES"
# (sink key, sink value, timestamp, partition) of each record a query writes
Written = tuple[bytes | None, bytes | None, int, int]
Logged = tuple[int | None, int | None, str]  # (partition, offset, reason)


def stream(partitions: int) -> str:
    return f"CREATE STREAM s ({COLUMNS}) WITH (kafka_topic='s', format='JSON', partitions={partitions});"


def rows(count: int, start: int, partitions: int) -> list[tuple[Any, dict[str, Any], int, int]]:
    """(key, value, timestamp, partition) records over a few groups, some with a NULL group column, times
    mostly rising (some late), spread over the partitions."""
    made: list[tuple[Any, dict[str, Any], int, int]] = []
    for i in range(start, start + count):
        a = None if i % 7 == 3 else "xyzw"[i % 4]
        value = {"A": a, "B": i % 3, "V": (i * 5) % 11, "PRICE": (i % 9) + 0.05 * (i % 5),
                 "ITEM": {"NAME": f"n{i % 5}", "QTY": i % 4}, "RAW": base64.b64encode(f"r{i}".encode()).decode()}
        timestamp = 1_000 * i + (-4_000 if i % 6 == 5 else 0)
        made.append((f"k{i % 5}", value, max(0, timestamp), (i * 7) % partitions))
    return made


class RepartitionTopic:
    """Records written to the repartition topic, kept per partition, each read once."""

    def __init__(self, partitions: int) -> None:
        self.records: list[list[Record]] = [[] for _ in range(partitions)]
        self.read = [0] * partitions

    def write(self, output: OutputBatch) -> None:
        assert output.place_by_partition
        for record in output.records():
            record.offset = len(self.records[record.partition])
            record.topic = "repartition"
            self.records[record.partition].append(record)

    def unread(self) -> list[RecordBatch]:
        """What a consumer reads next: each partition's new records, in partition order."""
        batches = [RecordBatch.of(records[start:]) for records, start in zip(self.records, self.read, strict=True)]
        self.read = [len(records) for records in self.records]
        return [batch for batch in batches if len(batch)]


class Logs:
    def __init__(self) -> None:
        self.entries: list[Logged] = []

    def __call__(self, record: Record | None, reason: str, level: str = "ERROR") -> None:
        self.entries.append((record.partition if record else None, record.offset if record else None, reason))


def written(output: OutputBatch) -> list[Written]:
    return list(zip(output.keys, output.values, output.timestamps, output.partitions, strict=True))


def by_partition(records: list[Written]) -> dict[int, list[Written]]:
    """Each sink partition's records in order: across partitions, Kafka keeps no order (and a session
    aggregate in one pass goes row by row, interleaving its partitions)."""
    partitions: dict[int, list[Written]] = {}
    for record in records:
        partitions.setdefault(record[3], []).append(record)
    return partitions


def staged_pipeline(query: PersistentQuery, logs: Logs) -> Pipeline:
    """A second pipeline of the query, with state of its own, as another runtime would build it."""
    return Pipeline(query.plan, logs, query.sink, stores=InMemoryStoreProvider(), default_cache_bytes=0)


def produced(made: InMemoryDriver, records: Sequence[tuple[Any, Any, int, int]]) -> RecordBatch:
    """The records written to the source topic, as a consumer reads them in one batch."""
    start = len(made.topic_records("s"))
    for key, value, timestamp, partition in records:
        made.produce("s", orjson.dumps(key), orjson.dumps(value), timestamp, partition=partition)
    return RecordBatch.of(made.topic_records("s")[start:])


def run_both_ways(query_text: str, partitions: int, batches: Sequence[Sequence[tuple[Any, Any, int, int]]],
                  **options: Any) -> tuple[list[Written], list[Written], Logs, Logs]:
    """The query's output and processing log in one pass (process) and in two stages through a repartition
    topic (process_upstream, then process_downstream per partition), batch by batch."""
    made = driver(stream(partitions), query_text, **options)
    (query,) = made.engine.queries.values()
    one_pass_logs, staged_logs = Logs(), Logs()
    one_pass = Pipeline(query.plan, one_pass_logs, query.sink, stores=InMemoryStoreProvider(), default_cache_bytes=0)
    staged = staged_pipeline(query, staged_logs)
    assert staged.repartitions and staged.repartition_partitions == partitions
    topic = RepartitionTopic(partitions)
    expected: list[Written] = []
    actual: list[Written] = []
    for records in batches:
        batch = produced(made, records)
        expected += written(one_pass.process(batch))
        upstream = staged.process_upstream(batch)
        assert upstream.partitions == [partition_for(key, partitions) for key in upstream.keys if key is not None]
        topic.write(upstream)
        for repartitioned in topic.unread():
            actual += written(staged.process_downstream(repartitioned))
    return expected, actual, one_pass_logs, staged_logs


QUERIES = {
    "tumbling count, sum and avg": "CREATE TABLE o AS SELECT a, COUNT(*) AS n, SUM(v) AS total, AVG(v) AS mean "
                                   "FROM s WINDOW TUMBLING (SIZE 10 SECONDS) GROUP BY a;",
    "hopping": "CREATE TABLE o AS SELECT a, SUM(v) AS total FROM s WINDOW HOPPING (SIZE 10 SECONDS, ADVANCE BY "
               "5 SECONDS) GROUP BY a;",
    "session": "CREATE TABLE o AS SELECT a, COUNT(*) AS n FROM s WINDOW SESSION (3 SECONDS) GROUP BY a;",
    "several columns": "CREATE TABLE o AS SELECT a, b, COUNT(*) AS n, MAX(v) AS top FROM s GROUP BY a, b;",
    "an expression": "CREATE TABLE o AS SELECT UCASE(a) AS loud, COUNT(v) AS n FROM s WHERE v > 1 GROUP BY UCASE(a);",
    "by offset": "CREATE TABLE o AS SELECT a, LATEST_BY_OFFSET(v) AS last_v, EARLIEST_BY_OFFSET(id) AS first_id, "
                 "LATEST_BY_OFFSET(b, 2) AS last_bs FROM s GROUP BY a;",
    "emit final": "CREATE TABLE o AS SELECT a, COUNT(*) AS n FROM s WINDOW TUMBLING (SIZE 10 SECONDS, GRACE PERIOD "
                  "2 SECONDS) GROUP BY a EMIT FINAL;",
    "having": "CREATE TABLE o AS SELECT a, SUM(v) AS total FROM s GROUP BY a HAVING SUM(v) > 20;",
    "decimal, struct and bytes": "CREATE TABLE o AS SELECT b, SUM(price) AS spent, LATEST_BY_OFFSET(item) AS "
                                 "last_item, LATEST_BY_OFFSET(raw) AS last_raw, COLLECT_LIST(item) AS items FROM s "
                                 "GROUP BY b;",
    "a struct key": "CREATE TABLE o AS SELECT item, SUM(price) AS spent FROM s GROUP BY item;",
}


@pytest.mark.parametrize("partitions", [2, 3, 4])
@pytest.mark.parametrize("query_text", QUERIES.values(), ids=list(QUERIES))
def test_two_stages_write_what_one_pass_writes(query_text: str, partitions: int) -> None:
    batches = [rows(30, 0, partitions), rows(25, 30, partitions), rows(5, 200, partitions)]
    expected, actual, one_pass_logs, staged_logs = run_both_ways(query_text, partitions, batches)
    assert expected  # the query wrote something to compare
    assert by_partition(actual) == by_partition(expected)
    assert sorted(reason for _, _, reason in staged_logs.entries) == \
        sorted(reason for _, _, reason in one_pass_logs.entries)


def test_a_null_group_key_is_logged_once_against_its_source_record() -> None:
    records = [("k", {"A": None, "V": 1}, 1, 1), ("k", {"A": "x", "V": 2}, 2, 0), ("k", {"A": None, "V": 3}, 3, 1)]
    expected, actual, _, staged_logs = run_both_ways(
        "CREATE TABLE o AS SELECT a, SUM(v) AS total FROM s GROUP BY a;", 2, [records])
    assert actual == expected == [(b'"x"', b'{"TOTAL":2}', 2, partition_for(b'"x"', 2))]
    reason = "Group-by key resolved to null: the record is excluded from the aggregation"
    assert staged_logs.entries == [(1, 0, reason), (1, 1, reason)]  # source partition and offset


def test_the_state_partition_is_the_repartition_records_partition() -> None:
    """A group's records that reach two partitions of the repartition topic (which its partitioner would never
    do) are two tasks' separate states: stage 2 does not hash the key again."""
    made = driver(stream(2), "CREATE TABLE o AS SELECT a, COUNT(*) AS n FROM s GROUP BY a;")
    (query,) = made.engine.queries.values()
    staged = staged_pipeline(query, Logs())
    upstream = staged.process_upstream(produced(made, [("k", {"A": "x"}, 1, 0), ("k", {"A": "x"}, 2, 1)]))
    home = partition_for(b'"x"', 2)
    assert upstream.partitions == [home, home]
    first, second = upstream.records()
    first.partition, first.offset = 1 - home, 0
    second.partition, second.offset = home, 0
    counts = [orjson.loads(value or b"null")["N"] for record in (first, second)
              for value in staged.process_downstream(RecordBatch.of([record])).values]
    assert counts == [1, 1]


def test_repartition_rows_keep_every_value_exactly() -> None:
    values = [Decimal("1.10"), b"\x00\xff", {"NAME": "n", "QTY": None, "TAGS": ["a", None]}, [Decimal("0.5")],
              {"k": 1.5}, None, True, 2**62, -0.0, "text"]
    columns = [[value, value] for value in values]
    (first, second), read, errors = decoded_rows(encoded_rows(columns, [1, 0]), len(values))
    assert (read, errors) == ([0, 1], {})
    assert first == second == tuple(values)
    assert [type(value) for value in first] == [type(value) for value in values]
    assert str(first[0]) == "1.10" and list(first[2]) == ["NAME", "QTY", "TAGS"]


class Exploit:
    def __reduce__(self) -> tuple[Any, ...]:
        return (print, ("ran",))


def test_repartition_records_that_are_not_rows_are_logged_and_the_rest_aggregated() -> None:
    made = driver(stream(1), "CREATE TABLE o AS SELECT a, SUM(v) AS total FROM s GROUP BY a;")
    (query,) = made.engine.queries.values()
    logs = Logs()
    staged = staged_pipeline(query, logs)
    (good,) = staged.process_upstream(produced(made, [("k", {"A": "x", "V": 4}, 5, 0)])).records()
    bad_values = [None, b"not a row", pickle.dumps(Exploit()), pickle.dumps(("x",)), pickle.dumps(["x", 1])]
    records = [Record(good.key, value, 5, partition=0, offset=offset) for offset, value in enumerate(bad_values)]
    good.offset = len(records)
    output = staged.process_downstream(RecordBatch.of([*records, good]))
    assert output.values == [b'{"TOTAL":4}']
    assert [offset for _, offset, _ in logs.entries] == list(range(len(bad_values)))
    assert all(reason.startswith("Failed to deserialize repartition record") for _, _, reason in logs.entries)
    assert "builtins.print" in logs.entries[2][2]


def test_an_aggregate_failing_in_stage_two_is_narrowed_to_its_record() -> None:
    records = [("k", {"A": "a", "V": 5}, 0, 0), ("k", {"A": "b", "V": 13}, 1, 1), ("k", {"A": "a", "V": 1}, 2, 0)]
    expected, actual, one_pass_logs, staged_logs = run_both_ways(
        "CREATE TABLE o AS SELECT a, COUNT(*) AS n, FRAGILE_TOTAL(v) AS total FROM s GROUP BY a;", 2, [records],
        user_aggregates=[FragileTotal])
    assert actual == expected and [orjson.loads(value or b"null") for _, value, _, _ in actual] == \
        [{"N": 1, "TOTAL": 5}, {"N": 2, "TOTAL": 6}]
    assert len(one_pass_logs.entries) == len(staged_logs.entries) == 1
    assert "unlucky total" in staged_logs.entries[0][2]
    # logged against the repartition record it failed on: the first in its partition
    assert staged_logs.entries[0][:2] == (partition_for(b'"b"', 2), 0)


def test_a_table_aggregation_and_a_group_by_the_key_stay_in_one_stage() -> None:
    made = driver(stream(2), "CREATE TABLE t (id STRING PRIMARY KEY, a STRING, v INT) WITH (kafka_topic='t', "
                             "format='JSON', partitions=2);",
                  "CREATE TABLE by_a AS SELECT a, SUM(v) AS total FROM t GROUP BY a;",
                  "CREATE TABLE by_id AS SELECT id, SUM(v) AS total FROM s GROUP BY id;")
    assert [query.pipeline.repartitions for query in made.engine.queries.values()] == [False, False]


def test_by_offset_aggregates_order_rows_by_their_source_offsets_across_the_repartition_topic() -> None:
    """The rows carry their source offsets: on the repartition topic they have offsets of their own, which
    would order a later batch's row from a less advanced source partition differently."""
    earlier = [("k", {"A": "x", "V": v}, v, 0) for v in range(1, 6)]  # source offsets 0..4
    later = [("k", {"A": "x", "V": 99}, 10, 1)]  # source offset 0, repartition offset 5
    expected, actual, _, _ = run_both_ways(
        "CREATE TABLE o AS SELECT a, LATEST_BY_OFFSET(v) AS last_v, EARLIEST_BY_OFFSET(v) AS first_v FROM s "
        "GROUP BY a;", 2, [earlier, later])
    assert actual == expected
    assert len(actual) == 6
