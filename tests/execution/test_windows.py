"""Windowed aggregation through the in-memory driver: tumbling, hopping and session windows, grace periods,
window bounds in the projection, and windowed keys on the output topic."""

from __future__ import annotations

import struct

import pytest
from stateful_driving import WindowedOutput, driver, late_records, send, windowed_outputs

from ksqlpy import udaf
from ksqlpy.driver import InMemoryDriver
from ksqlpy.serialization.windowed import WindowInfo, split_windowed_keys

STREAM = "CREATE STREAM s (id STRING KEY, v INT) WITH (kafka_topic='s', format='JSON');"
DAY_MS = 24 * 60 * 60 * 1000


def counted(window: str, records: list[tuple[str, int]], extra: str = "") -> list[WindowedOutput]:
    """COUNT(*) per id in `window` over (id, timestamp) records sent in one batch."""
    made = driver(STREAM, f"CREATE TABLE o AS SELECT id, COUNT(*) AS n{extra} FROM s WINDOW {window} GROUP BY id;")
    send(made, "s", [(key, {}, timestamp) for key, timestamp in records])
    return windowed_outputs(made, "O")


def test_tumbling_windows_are_epoch_aligned_start_inclusive_and_end_exclusive() -> None:
    assert counted("TUMBLING (SIZE 10 MILLISECONDS)", [("k", 0), ("k", 9), ("k", 10), ("k", 25)]) == [
        ("k", {"N": 1}, 0, (0, 10, "time")),
        ("k", {"N": 2}, 9, (0, 10, "time")),
        ("k", {"N": 1}, 10, (10, 20, "time")),
        ("k", {"N": 1}, 25, (20, 30, "time")),
    ]


def test_window_bounds_can_be_selected() -> None:
    assert counted("TUMBLING (SIZE 1 SECOND)", [("k", 1500)], ", WINDOWSTART AS ws, WINDOWEND AS we") == [
        ("k", {"N": 1, "WS": 1000, "WE": 2000}, 1500, (1000, 2000, "time")),
    ]


def test_a_hopping_record_falls_in_size_over_advance_windows() -> None:
    assert counted("HOPPING (SIZE 10 MILLISECONDS, ADVANCE BY 5 MILLISECONDS)", [("k", 12)]) == [
        ("k", {"N": 1}, 12, (5, 15, "time")),
        ("k", {"N": 1}, 12, (10, 20, "time")),
    ]


def test_hopping_windows_never_start_before_the_epoch() -> None:
    assert counted("HOPPING (SIZE 10 MILLISECONDS, ADVANCE BY 5 MILLISECONDS)", [("k", 3)]) == [
        ("k", {"N": 1}, 3, (0, 10, "time")),
    ]


def test_hopping_windows_whose_size_is_not_a_multiple_of_the_advance() -> None:
    assert counted("HOPPING (SIZE 10 MILLISECONDS, ADVANCE BY 3 MILLISECONDS)", [("k", 10), ("k", 13)]) == [
        ("k", {"N": 1}, 10, (3, 13, "time")),
        ("k", {"N": 1}, 10, (6, 16, "time")),
        ("k", {"N": 1}, 10, (9, 19, "time")),
        ("k", {"N": 2}, 13, (6, 16, "time")),
        ("k", {"N": 2}, 13, (9, 19, "time")),
        ("k", {"N": 1}, 13, (12, 22, "time")),
    ]


def test_a_record_later_than_window_end_plus_grace_is_dropped_and_counted() -> None:
    made = driver(STREAM, "CREATE TABLE o AS SELECT id, COUNT(*) AS n FROM s "
                          "WINDOW TUMBLING (SIZE 10 MILLISECONDS, GRACE PERIOD 5 MILLISECONDS) GROUP BY id;")
    send(made, "s", [
        ("k", {}, 1),
        ("k", {}, 14),  # stream time 14 < 10 + 5: [0, 10) still open
        ("k", {}, 2),
        ("k", {}, 15),  # stream time 15: [0, 10) closed
        ("k", {}, 3),   # dropped
    ])
    send(made, "s", [("j", {}, 9)])  # stream time is the partition's, not the key's: dropped too
    assert windowed_outputs(made, "O") == [
        ("k", {"N": 1}, 1, (0, 10, "time")),
        ("k", {"N": 1}, 14, (10, 20, "time")),
        ("k", {"N": 2}, 2, (0, 10, "time")),
        ("k", {"N": 2}, 15, (10, 20, "time")),
    ]
    assert late_records(made) == 2
    assert [entry["offset"] for entry in made.processing_log] == [4, 5]


def test_without_a_grace_period_windows_accept_records_for_24_hours() -> None:
    made = driver(STREAM, "CREATE TABLE o AS SELECT id, COUNT(*) AS n FROM s "
                          "WINDOW TUMBLING (SIZE 10 MILLISECONDS) GROUP BY id;")
    send(made, "s", [("k", {}, 1), ("k", {}, DAY_MS + 9), ("k", {}, 2), ("k", {}, DAY_MS + 10), ("k", {}, 3)])
    assert windowed_outputs(made, "O") == [
        ("k", {"N": 1}, 1, (0, 10, "time")),
        ("k", {"N": 1}, DAY_MS + 9, (DAY_MS, DAY_MS + 10, "time")),
        ("k", {"N": 2}, 2, (0, 10, "time")),
        ("k", {"N": 1}, DAY_MS + 10, (DAY_MS + 10, DAY_MS + 20, "time")),
    ]
    assert late_records(made) == 1


def test_a_hopping_record_is_dropped_only_from_its_closed_windows() -> None:
    made = driver(STREAM, "CREATE TABLE o AS SELECT id, COUNT(*) AS n FROM s WINDOW HOPPING "
                          "(SIZE 10 MILLISECONDS, ADVANCE BY 5 MILLISECONDS, GRACE PERIOD 0 MILLISECONDS) GROUP BY id;")
    send(made, "s", [("k", {}, 20), ("k", {}, 17), ("k", {}, 12)])
    assert windowed_outputs(made, "O") == [
        ("k", {"N": 1}, 20, (15, 25, "time")),
        ("k", {"N": 1}, 20, (20, 30, "time")),
        ("k", {"N": 2}, 20, (15, 25, "time")),  # 17 is too late for [10, 20) only
    ]
    assert late_records(made) == 3  # [10, 20) for 17; [5, 15) and [10, 20) for 12
    assert [entry["offset"] for entry in made.processing_log] == [1, 2, 2]


def test_stream_time_is_kept_per_partition() -> None:
    made = driver(STREAM.replace("format='JSON'", "format='JSON', partitions=2"),
                  "CREATE TABLE o AS SELECT id, COUNT(*) AS n FROM s "
                  "WINDOW TUMBLING (SIZE 10 MILLISECONDS, GRACE PERIOD 0 MILLISECONDS) GROUP BY id;")
    send(made, "s", [("a", {}, 100)], partition=0)
    send(made, "s", [("b", {}, 1)], partition=1)  # partition 1 has seen no time yet: on time
    send(made, "s", [("a", {}, 1)], partition=0)  # partition 0 is at 100: late
    assert windowed_outputs(made, "O") == [
        ("a", {"N": 1}, 100, (100, 110, "time")),
        ("b", {"N": 1}, 1, (0, 10, "time")),
    ]
    assert late_records(made) == 1


SESSION = "SESSION (10 MILLISECONDS)"


def test_a_session_spans_its_first_and_last_event_times() -> None:
    assert counted(SESSION, [("k", 5), ("k", 12)], ", WINDOWSTART AS ws, WINDOWEND AS we") == [
        ("k", {"N": 1, "WS": 5, "WE": 5}, 5, (5, 5, "session")),
        ("k", None, 5, (5, 5, "session")),
        ("k", {"N": 2, "WS": 5, "WE": 12}, 12, (5, 12, "session")),
    ]


def test_a_record_bridging_two_sessions_deletes_both_and_emits_the_merged_session() -> None:
    assert counted(SESSION, [("k", 0), ("k", 20), ("k", 30), ("j", 10), ("k", 10)]) == [
        ("k", {"N": 1}, 0, (0, 0, "session")),
        ("k", {"N": 1}, 20, (20, 20, "session")),
        ("k", None, 20, (20, 20, "session")),
        ("k", {"N": 2}, 30, (20, 30, "session")),
        ("j", {"N": 1}, 10, (10, 10, "session")),
        ("k", None, 0, (0, 0, "session")),
        ("k", None, 30, (20, 30, "session")),
        ("k", {"N": 4}, 30, (0, 30, "session")),
    ]


def test_a_record_inside_a_session_rewrites_it() -> None:
    assert counted(SESSION, [("k", 10), ("k", 20), ("k", 15)]) == [
        ("k", {"N": 1}, 10, (10, 10, "session")),
        ("k", None, 10, (10, 10, "session")),
        ("k", {"N": 2}, 20, (10, 20, "session")),
        ("k", None, 20, (10, 20, "session")),
        ("k", {"N": 3}, 20, (10, 20, "session")),
    ]


def test_a_record_at_a_one_event_sessions_time_updates_it_without_a_tombstone() -> None:
    # the merged session is the record's own: Kafka Streams overwrites it in place
    assert counted(SESSION, [("k", 10), ("k", 10)]) == [
        ("k", {"N": 1}, 10, (10, 10, "session")),
        ("k", {"N": 2}, 10, (10, 10, "session")),
    ]


def test_records_further_apart_than_the_gap_open_separate_sessions() -> None:
    assert counted(SESSION, [("k", 10), ("k", 21)]) == [
        ("k", {"N": 1}, 10, (10, 10, "session")),
        ("k", {"N": 1}, 21, (21, 21, "session")),
    ]


def test_having_over_sessions_passes_no_tombstone_for_a_session_never_in_the_result() -> None:
    made = driver(STREAM, "CREATE TABLE o AS SELECT id, COUNT(*) AS n FROM s "
                          "WINDOW SESSION (10 MILLISECONDS) GROUP BY id HAVING COUNT(*) >= 2;")
    send(made, "s", [("k", {}, 0), ("k", {}, 5), ("k", {}, 8), ("k", {}, 30)])
    assert windowed_outputs(made, "O") == [
        ("k", {"N": 2}, 5, (0, 5, "session")),
        ("k", None, 5, (0, 5, "session")),  # [0, 5] was in the result: its merge deletes it
        ("k", {"N": 3}, 8, (0, 8, "session")),
    ]


@pytest.mark.parametrize(("stream_time", "dropped"), [(18, 0), (19, 1)])
def test_a_session_ending_before_stream_time_minus_gap_and_grace_is_late(stream_time: int, dropped: int) -> None:
    made = driver(STREAM, "CREATE TABLE o AS SELECT id, COUNT(*) AS n FROM s "
                          "WINDOW SESSION (10 MILLISECONDS, GRACE PERIOD 5 MILLISECONDS) GROUP BY id;")
    send(made, "s", [("j", {}, stream_time), ("k", {}, 3)])
    assert windowed_outputs(made, "O")[1:] == ([] if dropped else [("k", {"N": 1}, 3, (3, 3, "session"))])
    assert late_records(made) == dropped


def test_a_record_merging_into_a_closed_session_is_late() -> None:
    made = driver(STREAM, "CREATE TABLE o AS SELECT id, COUNT(*) AS n FROM s "
                          "WINDOW SESSION (10 MILLISECONDS, GRACE PERIOD 5 MILLISECONDS) GROUP BY id;")
    send(made, "s", [("k", {}, 0), ("j", {}, 100), ("k", {}, 3)])
    assert windowed_outputs(made, "O") == [
        ("k", {"N": 1}, 0, (0, 0, "session")),
        ("j", {"N": 1}, 100, (100, 100, "session")),
    ]
    assert late_records(made) == 1


@udaf(name="unmergeable_sum")
class UnmergeableSum:
    """A user aggregate whose merge fails: sessions it aggregates cannot be bridged."""

    def init(self) -> int:
        return 0

    def add(self, total: int, value: int) -> int:
        return total + value

    def merge(self, earlier: int, later: int) -> int:
        raise ValueError("cannot merge")

    def result(self, total: int) -> int:
        return total


def test_a_record_whose_sessions_cannot_merge_is_logged_and_left_out_once() -> None:
    made = driver(STREAM, "CREATE TABLE o AS SELECT id, COUNT(*) AS n, UNMERGEABLE_SUM(v) AS total FROM s "
                          "WINDOW SESSION (10 MILLISECONDS) GROUP BY id;", user_aggregates=[UnmergeableSum])
    send(made, "s", [("a", {"V": 1}, 1), ("b", {"V": 2}, 2), ("a", {"V": 3}, 20), ("a", {"V": 4}, 10)])
    # the other records count once each: the failure does not retry the batch over state already changed
    assert windowed_outputs(made, "O") == [
        ("a", {"N": 1, "TOTAL": 1}, 1, (1, 1, "session")),
        ("b", {"N": 1, "TOTAL": 2}, 2, (2, 2, "session")),
        ("a", {"N": 1, "TOTAL": 3}, 20, (20, 20, "session")),
    ]
    assert [(entry["offset"], entry["reason"]) for entry in made.processing_log] == [
        (3, "Error merging sessions: UDF UNMERGEABLE_SUM failed: ValueError: cannot merge"),
    ]


def raw_keys(window: str, records: list[tuple[str, int]]) -> list[bytes | None]:
    """The key bytes on the output topic, read back through a stream with a BYTES key."""
    made = driver(
        STREAM,
        f"CREATE TABLE o AS SELECT id, COUNT(*) AS n FROM s WINDOW {window} GROUP BY id;",
        "CREATE STREAM raw (k BYTES KEY, n BIGINT) WITH (kafka_topic='O', key_format='KAFKA', value_format='JSON');",
        "CREATE STREAM copied AS SELECT k, n FROM raw;",
    )
    send(made, "s", [(key, {}, timestamp) for key, timestamp in records])
    return [record.key for record in made.records("COPIED")]


def test_a_time_windowed_key_is_the_key_then_the_window_start() -> None:
    keys = raw_keys("TUMBLING (SIZE 10 MILLISECONDS)", [("k", 25)])
    assert keys == [b'"k"' + struct.pack(">q", 20)]
    assert split_windowed_keys(keys, WindowInfo("TUMBLING", 10)) == ([b'"k"'], [20], [30])


def test_a_session_windowed_key_is_the_key_then_the_end_then_the_start() -> None:
    keys = raw_keys(SESSION, [("k", 5), ("k", 7)])
    assert keys == [
        b'"k"' + struct.pack(">qq", 5, 5),
        b'"k"' + struct.pack(">qq", 5, 5),
        b'"k"' + struct.pack(">qq", 7, 5),
    ]
    assert split_windowed_keys(keys, WindowInfo("SESSION")) == ([b'"k"'] * 3, [5, 5, 5], [5, 5, 7])


def _aggregate_store_size(made: InMemoryDriver) -> int:
    (query_id,) = made.engine.queries
    return len(made.engine.state.store(query_id, "Aggregate-Aggregate-Materialize", 0))


@pytest.mark.parametrize(("window", "kept"), [
    # windows that start within the retention of stream time (1000): 980, 990 and 1000
    ("TUMBLING (SIZE 10 MILLISECONDS, RETENTION 20 MILLISECONDS, GRACE PERIOD 0 MILLISECONDS)", 3),
    # sessions that could still take a record: ended at or after stream time - gap - grace (the one at 1000)
    ("SESSION (10 MILLISECONDS, GRACE PERIOD 0 MILLISECONDS)", 1),
])
def test_windows_past_their_retention_leave_the_store(window: str, kept: int) -> None:
    made = InMemoryDriver()
    made.execute("CREATE STREAM s (k STRING KEY, v INT) WITH (kafka_topic='s', value_format='JSON');"
                 f"CREATE TABLE t AS SELECT k, COUNT(*) AS n FROM s WINDOW {window} GROUP BY k;")
    for time in range(0, 1001, 10 if window.startswith("TUMBLING") else 100):
        made.produce("s", b"a", b'{"V": 1}', time)
    made.process()
    assert _aggregate_store_size(made) == kept
    assert len(made.records("T")) == (101 if window.startswith("TUMBLING") else 11)  # every window was emitted


def test_terminate_removes_the_query_state() -> None:
    made = InMemoryDriver()
    made.execute("CREATE STREAM s (k STRING KEY, v INT) WITH (kafka_topic='s', value_format='JSON');"
                 "CREATE TABLE t AS SELECT k, COUNT(*) AS n FROM s WINDOW TUMBLING (SIZE 1 SECOND) GROUP BY k;")
    made.produce("s", b"a", b'{"V": 1}', 0)
    made.process()
    assert _aggregate_store_size(made) == 1
    (query_id,) = made.engine.queries
    made.execute(f"TERMINATE {query_id};")
    assert len(made.engine.state.store(query_id, "Aggregate-Aggregate-Materialize", 0)) == 0  # a fresh, empty one
