"""GROUP BY over streams through the in-memory driver: group keys, HAVING, NULLs, timestamps, partitions."""

from __future__ import annotations

import pytest
from stateful_driving import driver, outputs, send

from ksqlpy import udaf
from ksqlpy.errors import StatementError

STREAM = "CREATE STREAM s (id STRING KEY, a STRING, b INT, v INT) WITH (kafka_topic='s', format='JSON');"
# Across partitions, output order is only defined per key (as with Kafka's tasks).
TWO_PARTITIONS = STREAM.replace("format='JSON'", "format='JSON', partitions=2")


def test_a_single_column_group_key_counts_and_sums_per_key() -> None:
    made = driver(STREAM, "CREATE TABLE o AS SELECT a, COUNT(*) AS n, SUM(v) AS total FROM s GROUP BY a;")
    send(made, "s", [("k1", {"A": "x", "V": 1}, 1), ("k2", {"A": "y", "V": 2}, 2), ("k3", {"A": "x", "V": 3}, 3)])
    assert outputs(made, "O") == [
        ("x", {"N": 1, "TOTAL": 1}, 1),
        ("y", {"N": 1, "TOTAL": 2}, 2),
        ("x", {"N": 2, "TOTAL": 4}, 3),
    ]


def test_several_group_columns_make_a_json_object_key() -> None:
    made = driver(STREAM, "CREATE TABLE o AS SELECT a, b, COUNT(*) AS n FROM s GROUP BY a, b;")
    send(made, "s", [("k", {"A": "x", "B": 1}, 1), ("k", {"A": "x", "B": 2}, 2), ("k", {"A": "x", "B": 1}, 3)])
    assert outputs(made, "O") == [
        ({"A": "x", "B": 1}, {"N": 1}, 1),
        ({"A": "x", "B": 2}, {"N": 1}, 2),
        ({"A": "x", "B": 1}, {"N": 2}, 3),
    ]


def test_several_group_columns_need_a_key_format_that_holds_them() -> None:
    kafka_keys = "CREATE STREAM k (id STRING KEY, a STRING, b INT) WITH (kafka_topic='k', value_format='JSON');"
    made = driver(kafka_keys)
    with pytest.raises(StatementError, match="The 'KAFKA' format only supports a single field"):
        made.execute("CREATE TABLE o AS SELECT a, b, COUNT(*) AS n FROM k GROUP BY a, b;")
    made.execute("CREATE TABLE o WITH (KEY_FORMAT='JSON') AS SELECT a, b, COUNT(*) AS n FROM k GROUP BY a, b;")
    send(made, "k", [("k", {"A": "x", "B": 1}, 1)])
    assert outputs(made, "O") == [({"A": "x", "B": 1}, {"N": 1}, 1)]


def test_an_unaliased_group_expression_is_named_ksql_col_0() -> None:
    made = driver(STREAM, "CREATE TABLE o AS SELECT b + 1, COUNT(*) AS n FROM s GROUP BY b + 1;")
    assert str(made.engine.catalog.get("O").schema) == "`KSQL_COL_0` INTEGER KEY, `N` BIGINT"
    send(made, "s", [("k", {"B": 1}, 1), ("j", {"B": 1}, 2), ("k", {"B": 2}, 3)])
    assert outputs(made, "O") == [(2, {"N": 1}, 1), (2, {"N": 2}, 2), (3, {"N": 1}, 3)]


def test_an_aliased_group_expression_takes_its_alias() -> None:
    made = driver(STREAM, "CREATE TABLE o AS SELECT UCASE(a) AS loud, COUNT(*) AS n FROM s GROUP BY UCASE(a);")
    assert str(made.engine.catalog.get("O").schema) == "`LOUD` STRING KEY, `N` BIGINT"
    send(made, "s", [("k", {"A": "x"}, 1), ("k", {"A": "X"}, 2)])
    assert outputs(made, "O") == [("X", {"N": 1}, 1), ("X", {"N": 2}, 2)]


def test_having_deletes_a_group_that_stops_matching_and_hides_one_that_never_matched() -> None:
    made = driver(STREAM, "CREATE TABLE o AS SELECT id, SUM(v) AS total FROM s GROUP BY id HAVING SUM(v) > 0;")
    send(made, "s", [
        ("k", {"V": -5}, 1),  # -5: never matched, nothing
        ("k", {"V": 6}, 2),   # 1: matches
        ("k", {"V": -2}, 3),  # -1: stops matching, a tombstone
        ("k", {"V": -1}, 4),  # -2: already gone, nothing
        ("k", {"V": 5}, 5),   # 3: matches again
    ])
    assert outputs(made, "O") == [("k", {"TOTAL": 1}, 2), ("k", None, 3), ("k", {"TOTAL": 3}, 5)]


def test_a_null_group_key_excludes_the_record_and_logs_it() -> None:
    made = driver(STREAM, "CREATE TABLE o AS SELECT a, b, COUNT(*) AS n FROM s GROUP BY a, b;")
    send(made, "s", [("k", {"A": "x", "B": 1}, 1), ("k", {"A": None, "B": 1}, 2), ("k", {"A": "x", "B": None}, 3),
                     ("k", {"A": "x", "B": 1}, 4)])
    assert outputs(made, "O") == [({"A": "x", "B": 1}, {"N": 1}, 1), ({"A": "x", "B": 1}, {"N": 2}, 4)]
    assert [entry["offset"] for entry in made.processing_log] == [1, 2]
    assert all("null" in entry["reason"] for entry in made.processing_log)


def test_stream_records_without_a_value_are_ignored() -> None:
    made = driver(STREAM, "CREATE TABLE o AS SELECT id, COUNT(*) AS n FROM s GROUP BY id;")
    send(made, "s", [("k", {"V": 1}, 1), ("k", None, 2), ("k", {"V": 1}, 3)])
    assert outputs(made, "O") == [("k", {"N": 1}, 1), ("k", {"N": 2}, 3)]
    assert made.processing_log == []


def test_the_output_timestamp_is_the_largest_that_has_contributed() -> None:
    made = driver(STREAM, "CREATE TABLE o AS SELECT id, COUNT(*) AS n FROM s GROUP BY id;")
    send(made, "s", [("k", {}, 10), ("k", {}, 5), ("j", {}, 7), ("k", {}, 20)])
    send(made, "s", [("k", {}, 15)])  # a later batch remembers 20
    assert outputs(made, "O") == [
        ("k", {"N": 1}, 10),
        ("k", {"N": 2}, 10),
        ("j", {"N": 1}, 7),
        ("k", {"N": 3}, 20),
        ("k", {"N": 4}, 20),
    ]


def test_records_on_two_partitions_aggregate_per_key() -> None:
    made = driver(TWO_PARTITIONS, "CREATE TABLE o AS SELECT id, COUNT(*) AS n, SUM(v) AS total FROM s GROUP BY id;")
    for key, value, timestamp, partition in [("a", 1, 1, 0), ("b", 2, 2, 1), ("a", 3, 3, 0), ("b", 4, 4, 1)]:
        made.produce("s", f'"{key}"'.encode(), f'{{"V": {value}}}'.encode(), timestamp, partition=partition)
    made.process()
    by_key = {key: [(value, time) for k, value, time in outputs(made, "O") if k == key] for key in "ab"}
    assert by_key == {
        "a": [({"N": 1, "TOTAL": 1}, 1), ({"N": 2, "TOTAL": 4}, 3)],
        "b": [({"N": 1, "TOTAL": 2}, 2), ({"N": 2, "TOTAL": 6}, 4)],
    }


def test_a_group_fed_from_two_partitions_is_aggregated_as_one() -> None:
    made = driver(TWO_PARTITIONS, "CREATE TABLE o AS SELECT a, COUNT(*) AS n, SUM(v) AS total FROM s GROUP BY a;")
    for key, value, timestamp, partition in [("k1", 1, 1, 0), ("k2", 2, 2, 1), ("k3", 3, 3, 1), ("k4", 4, 4, 0)]:
        made.produce("s", f'"{key}"'.encode(), f'{{"A": "x", "V": {value}}}'.encode(), timestamp, partition=partition)
    made.process()
    assert outputs(made, "O") == [
        ("x", {"N": 1, "TOTAL": 1}, 1),
        ("x", {"N": 2, "TOTAL": 3}, 2),
        ("x", {"N": 3, "TOTAL": 6}, 3),
        ("x", {"N": 4, "TOTAL": 10}, 4),
    ]
    assert len({record.partition for record in made.records("O")}) == 1  # one key, one partition


@udaf(name="picky_sum")
class PickySum:
    """A user aggregate whose result fails for a total of 13."""

    def init(self) -> int:
        return 0

    def add(self, total: int, value: int) -> int:
        return total + value

    def merge(self, earlier: int, later: int) -> int:
        return earlier + later

    def result(self, total: int) -> int:
        if total == 13:
            raise ValueError("unlucky total")
        return total


def test_a_record_failing_its_batch_costs_only_itself_and_no_record_is_counted_twice() -> None:
    made = driver(TWO_PARTITIONS, "CREATE TABLE o AS SELECT id, COUNT(*) AS n, PICKY_SUM(v) AS total FROM s GROUP BY id;",
                  user_aggregates=[PickySum])
    for key, value, timestamp, partition in [("a", 1, 1, 0), ("b", 13, 2, 1), ("a", 2, 3, 0)]:
        made.produce("s", f'"{key}"'.encode(), f'{{"V": {value}}}'.encode(), timestamp, partition=partition)
    made.process()
    assert outputs(made, "O") == [("a", {"N": 1, "TOTAL": 1}, 1), ("a", {"N": 2, "TOTAL": 3}, 3)]
    assert [(entry["partition"], entry["offset"]) for entry in made.processing_log] == [(1, 0)]
