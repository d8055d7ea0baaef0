"""Tables through the in-memory driver: upserts, tombstones, NULL keys, filters and aggregation over tables."""

from __future__ import annotations

import pytest
from stateful_driving import driver, log_reasons, outputs, send

from ksqlpy import udaf
from ksqlpy.errors import StatementError

TABLE = "CREATE TABLE t (id STRING PRIMARY KEY, g STRING, v INT) WITH (kafka_topic='t', format='JSON');"


def test_a_table_upserts_by_key_and_a_null_value_deletes_the_row() -> None:
    made = driver(TABLE, "CREATE TABLE o AS SELECT id, v FROM t;")
    send(made, "t", [("a", {"V": 1}, 1), ("b", {"V": 2}, 2), ("a", {"V": 3}, 3), ("a", None, 4)])
    assert outputs(made, "O") == [
        ("a", {"V": 1}, 1),
        ("b", {"V": 2}, 2),
        ("a", {"V": 3}, 3),
        ("a", None, 4),  # the CTAS passes the delete on as a tombstone
    ]


def test_a_table_record_with_a_null_key_is_dropped_and_logged() -> None:
    made = driver(TABLE, "CREATE TABLE o AS SELECT id, v FROM t;")
    send(made, "t", [("a", {"V": 1}, 1), (None, {"V": 2}, 2), ("b", {"V": 3}, 3)])
    assert outputs(made, "O") == [("a", {"V": 1}, 1), ("b", {"V": 3}, 3)]
    assert [(entry["offset"], entry["topic"]) for entry in made.processing_log] == [(1, "t")]
    assert "null key" in log_reasons(made)[0]


def test_a_where_over_a_table_deletes_rows_that_stop_matching_and_ignores_rows_that_never_matched() -> None:
    made = driver(TABLE, "CREATE TABLE o AS SELECT id, v FROM t WHERE v > 5;")
    send(made, "t", [
        ("a", {"V": 10}, 1),  # matches
        ("a", {"V": 1}, 2),   # stops matching: deleted
        ("b", {"V": 1}, 3),   # never matched: nothing
        ("b", {"V": 2}, 4),   # still not: nothing
        ("a", {"V": 9}, 5),   # matches again
        ("a", None, 6),       # deleted at the source
        ("b", None, 7),       # never in the result: nothing
        ("a", {"V": 1}, 8),   # not in the result any more: nothing
    ])
    assert outputs(made, "O") == [("a", {"V": 10}, 1), ("a", None, 2), ("a", {"V": 9}, 5), ("a", None, 6)]


def test_a_projection_over_a_table_computes_each_row_and_keeps_tombstones() -> None:
    made = driver(TABLE, "CREATE TABLE o AS SELECT id, v * 2 AS twice, UCASE(g) AS loud FROM t;")
    send(made, "t", [("a", {"V": 4, "G": "x"}, 1), ("a", {"V": 5, "G": None}, 2), ("a", None, 3)])
    assert outputs(made, "O") == [
        ("a", {"TWICE": 8, "LOUD": "X"}, 1),
        ("a", {"TWICE": 10, "LOUD": None}, 2),
        ("a", None, 3),
    ]


def aggregated(*records: tuple[str, dict[str, object] | None, int]) -> list[tuple[object, object, int]]:
    made = driver(TABLE, "CREATE TABLE o AS SELECT g, COUNT(*) AS n, SUM(v) AS total FROM t GROUP BY g;")
    send(made, "t", records)
    return outputs(made, "O")


def test_a_table_aggregate_counts_each_source_key_once() -> None:
    assert aggregated(("a", {"G": "x", "V": 1}, 1), ("b", {"G": "x", "V": 2}, 2)) == [
        ("x", {"N": 1, "TOTAL": 1}, 1),
        ("x", {"N": 2, "TOTAL": 3}, 2),
    ]


def test_a_row_moving_group_updates_its_old_group_then_its_new_one() -> None:
    assert aggregated(("a", {"G": "x", "V": 1}, 1), ("b", {"G": "x", "V": 2}, 2), ("a", {"G": "y", "V": 10}, 3))[2:] == [
        ("x", {"N": 1, "TOTAL": 2}, 3),
        ("y", {"N": 1, "TOTAL": 10}, 3),
    ]


def test_a_row_updated_within_its_group_gives_one_update() -> None:
    assert aggregated(("a", {"G": "x", "V": 1}, 1), ("b", {"G": "x", "V": 2}, 2), ("b", {"G": "x", "V": 5}, 3))[2:] == [
        ("x", {"N": 2, "TOTAL": 6}, 3),
    ]


def test_a_tombstone_retracts_its_row_from_its_group() -> None:
    assert aggregated(("a", {"G": "x", "V": 1}, 1), ("b", {"G": "x", "V": 2}, 2), ("b", None, 3), ("b", None, 4))[2:] == [
        ("x", {"N": 1, "TOTAL": 1}, 3),  # the second tombstone deletes nothing: no update
    ]


def test_a_table_aggregate_keeps_the_largest_contributing_timestamp() -> None:
    assert aggregated(("a", {"G": "x", "V": 1}, 9), ("b", {"G": "x", "V": 2}, 4)) == [
        ("x", {"N": 1, "TOTAL": 1}, 9),
        ("x", {"N": 2, "TOTAL": 3}, 9),
    ]


def test_a_row_whose_group_key_becomes_null_is_retracted_and_logged() -> None:
    made = driver(TABLE, "CREATE TABLE o AS SELECT g, COUNT(*) AS n, SUM(v) AS total FROM t GROUP BY g;")
    send(made, "t", [("a", {"G": "x", "V": 1}, 1), ("a", {"G": None, "V": 2}, 2), ("a", {"G": "x", "V": 3}, 3)])
    assert outputs(made, "O") == [
        ("x", {"N": 1, "TOTAL": 1}, 1),
        ("x", {"N": 0, "TOTAL": 0}, 2),
        ("x", {"N": 1, "TOTAL": 3}, 3),
    ]
    assert [entry["offset"] for entry in made.processing_log] == [1]


def test_a_row_leaving_a_where_before_a_table_aggregate_is_retracted() -> None:
    made = driver(TABLE, "CREATE TABLE o AS SELECT g, COUNT(*) AS n, SUM(v) AS total FROM t WHERE v > 0 GROUP BY g;")
    send(made, "t", [
        ("a", {"G": "x", "V": 1}, 1),
        ("b", {"G": "x", "V": 2}, 2),
        ("a", {"G": "x", "V": -1}, 3),  # leaves the filter: retracted
        ("c", {"G": "x", "V": -1}, 4),  # never passed: nothing
        ("a", None, 5),                 # already gone: nothing
    ])
    assert outputs(made, "O") == [
        ("x", {"N": 1, "TOTAL": 1}, 1),
        ("x", {"N": 2, "TOTAL": 3}, 2),
        ("x", {"N": 1, "TOTAL": 2}, 3),
    ]


def test_having_over_a_table_aggregate_deletes_a_group_that_stops_matching() -> None:
    made = driver(TABLE, "CREATE TABLE o AS SELECT g, SUM(v) AS total FROM t GROUP BY g HAVING COUNT(*) > 1;")
    send(made, "t", [("a", {"G": "x", "V": 1}, 1), ("b", {"G": "x", "V": 2}, 2), ("a", None, 3)])
    assert outputs(made, "O") == [("x", {"TOTAL": 3}, 2), ("x", None, 3)]


def test_a_table_aggregate_over_two_partitions_retracts_rows_from_either() -> None:
    made = driver(TABLE.replace("format='JSON'", "format='JSON', partitions=2"),
                  "CREATE TABLE o AS SELECT g, COUNT(*) AS n, SUM(v) AS total FROM t GROUP BY g;")
    for key, value, timestamp, partition in [
        (b'"a"', b'{"G": "x", "V": 1}', 1, 0),
        (b'"b"', b'{"G": "x", "V": 2}', 2, 1),
        (b'"a"', b'{"G": "y", "V": 3}', 3, 0),
        (b'"b"', None, 4, 1),
    ]:
        made.produce("t", key, value, timestamp, partition=partition)
    made.process()
    # across partitions, output order is only defined per key
    by_group = {group: [(value, time) for key, value, time in outputs(made, "O") if key == group] for group in "xy"}
    assert by_group == {
        "x": [({"N": 1, "TOTAL": 1}, 1), ({"N": 2, "TOTAL": 3}, 2), ({"N": 1, "TOTAL": 2}, 3), ({"N": 0, "TOTAL": 0}, 4)],
        "y": [({"N": 1, "TOTAL": 3}, 3)],
    }


@udaf(name="superstitious_sum")
class SuperstitiousSum:
    """A user aggregate that cannot take 13 back."""

    def init(self) -> int:
        return 0

    def add(self, total: int, value: int) -> int:
        return total + value

    def undo(self, total: int, value: int) -> int:
        if value == 13:
            raise ValueError("unlucky")
        return total - value

    def merge(self, earlier: int, later: int) -> int:
        return earlier + later

    def result(self, total: int) -> int:
        return total


def test_a_row_whose_old_values_cannot_be_retracted_is_logged_and_left_out_once() -> None:
    made = driver(TABLE, "CREATE TABLE o AS SELECT g, COUNT(*) AS n, SUPERSTITIOUS_SUM(v) AS total FROM t GROUP BY g;",
                  user_aggregates=[SuperstitiousSum])
    send(made, "t", [("a", {"G": "x", "V": 1}, 1), ("b", {"G": "x", "V": 13}, 2), ("b", {"G": "y", "V": 2}, 3),
                     ("a", {"G": "y", "V": 4}, 4)])
    # the other rows count once each: the failure does not retry the batch over state already changed
    assert outputs(made, "O") == [
        ("x", {"N": 1, "TOTAL": 1}, 1),
        ("x", {"N": 2, "TOTAL": 14}, 2),
        ("x", {"N": 1, "TOTAL": 13}, 4),  # b stays in x as it was
        ("y", {"N": 1, "TOTAL": 4}, 4),
    ]
    assert [(entry["offset"], entry["reason"]) for entry in made.processing_log] == [
        (2, "Error updating the aggregate with the row: UDF SUPERSTITIOUS_SUM failed: ValueError: unlucky"),
    ]


@pytest.mark.parametrize(
    ("aggregates", "named"),
    [
        ("MIN(v)", "MIN"),
        ("TOPK(v, 2)", "TOPK"),
        ("LATEST_BY_OFFSET(v), MIN(v), MAX(v)", "LATEST_BY_OFFSET, MIN and MAX"),
        ("COUNT(*), MAX(v), SUM(v), MIN(v)", "MAX and MIN"),
    ],
)
def test_aggregates_that_cannot_undo_a_row_are_refused_over_tables(aggregates: str, named: str) -> None:
    made = driver(TABLE)
    with pytest.raises(StatementError) as raised:
        made.execute(f"CREATE TABLE o AS SELECT id, {aggregates} FROM t GROUP BY id;")
    assert str(raised.value) == (
        f"The aggregation functions {named} cannot be applied to a table source, only to a stream source."
    )
