"""When stateful queries emit, through the in-memory driver: EMIT FINAL holding windows back until they
close, and the record cache (cache.max.bytes.buffering) giving every update or the latest per key."""

from __future__ import annotations

from stateful_driving import WindowedOutput, driver, late_records, outputs, send, windowed_outputs

STREAM = "CREATE STREAM s (id STRING KEY, v INT) WITH (kafka_topic='s', format='JSON');"
CACHED = {"cache.max.bytes.buffering": 10_000_000}


def test_emit_final_emits_each_window_once_when_stream_time_reaches_its_end_plus_grace() -> None:
    made = driver(STREAM, "CREATE TABLE o AS SELECT id, COUNT(*) AS n FROM s WINDOW TUMBLING "
                          "(SIZE 10 MILLISECONDS, GRACE PERIOD 5 MILLISECONDS) GROUP BY id EMIT FINAL;")
    send(made, "s", [("k", {}, 1), ("j", {}, 2), ("k", {}, 12), ("k", {}, 14)])
    assert windowed_outputs(made, "O") == []  # stream time 14 < 10 + 5
    send(made, "s", [("k", {}, 15)])
    assert windowed_outputs(made, "O") == [
        ("j", {"N": 1}, 2, (0, 10, "time")),
        ("k", {"N": 1}, 1, (0, 10, "time")),
    ]
    send(made, "s", [("k", {}, 3), ("k", {}, 16)])  # [0, 10) is closed: 3 is dropped, not re-emitted
    assert len(windowed_outputs(made, "O")) == 2
    assert late_records(made) == 1


def test_emit_final_without_a_grace_period_closes_a_window_at_its_end() -> None:
    made = driver(STREAM, "CREATE TABLE o AS SELECT id, COUNT(*) AS n FROM s "
                          "WINDOW TUMBLING (SIZE 2 MILLISECONDS) GROUP BY id EMIT FINAL;")
    send(made, "s", [("k", {}, 0), ("k", {}, 1)])
    assert windowed_outputs(made, "O") == []
    send(made, "s", [("k", {}, 2)])
    assert windowed_outputs(made, "O") == [("k", {"N": 2}, 1, (0, 2, "time"))]


def test_emit_final_emits_a_session_once_no_record_can_extend_it() -> None:
    made = driver(STREAM, "CREATE TABLE o AS SELECT id, COUNT(*) AS n FROM s "
                          "WINDOW SESSION (10 MILLISECONDS, GRACE PERIOD 0 MILLISECONDS) GROUP BY id EMIT FINAL;")
    send(made, "s", [("k", {}, 0), ("j", {}, 1), ("k", {}, 5)])
    assert windowed_outputs(made, "O") == []
    send(made, "s", [("k", {}, 12)])  # extends k's session to [0, 12]; j's [1, 1] can no longer grow
    assert windowed_outputs(made, "O") == [("j", {"N": 1}, 1, (1, 1, "session"))]
    send(made, "s", [("k", {}, 22)])  # 22 - gap = 12: a record at 12 would still join k's session
    assert len(windowed_outputs(made, "O")) == 1
    send(made, "s", [("k", {}, 40)])
    assert windowed_outputs(made, "O")[1:] == [("k", {"N": 4}, 22, (0, 22, "session"))]


def counts(properties: dict[str, int] | None, query: str, batches: list[list[tuple[str, int]]]) -> list[WindowedOutput]:
    made = driver(STREAM, query, properties=properties)
    for batch in batches:
        send(made, "s", [(key, {"V": 1}, timestamp) for key, timestamp in batch])
    return windowed_outputs(made, "O")


COUNT_BY_ID = "CREATE TABLE o AS SELECT id, COUNT(*) AS n FROM s GROUP BY id;"


def test_without_a_record_cache_every_record_gives_an_update() -> None:
    assert counts(None, COUNT_BY_ID, [[("k", 1), ("j", 2), ("k", 3), ("k", 4)]]) == [
        ("k", {"N": 1}, 1, None),
        ("j", {"N": 1}, 2, None),
        ("k", {"N": 2}, 3, None),
        ("k", {"N": 3}, 4, None),
    ]


def test_a_record_cache_gives_each_key_its_latest_update_per_batch_in_order_of_last_update() -> None:
    assert counts(CACHED, COUNT_BY_ID, [[("k", 1), ("j", 2), ("k", 3), ("k", 4)], [("k", 5)]]) == [
        ("j", {"N": 1}, 2, None),
        ("k", {"N": 3}, 4, None),
        ("k", {"N": 4}, 5, None),  # the next batch carries on from the state
    ]


def test_a_record_cache_gives_each_window_its_latest_update() -> None:
    query = "CREATE TABLE o AS SELECT id, COUNT(*) AS n FROM s WINDOW TUMBLING (SIZE 10 MILLISECONDS) GROUP BY id;"
    assert counts(CACHED, query, [[("k", 1), ("k", 12), ("k", 3), ("k", 13)]]) == [
        ("k", {"N": 2}, 3, (0, 10, "time")),
        ("k", {"N": 2}, 13, (10, 20, "time")),
    ]


def test_a_record_cache_gives_each_session_its_latest_update_and_hides_sessions_merged_within_the_batch() -> None:
    query = "CREATE TABLE o AS SELECT id, COUNT(*) AS n FROM s WINDOW SESSION (10 MILLISECONDS) GROUP BY id;"
    assert counts(CACHED, query, [[("k", 1), ("k", 5), ("k", 30)], [("k", 8)]]) == [
        ("k", {"N": 2}, 5, (1, 5, "session")),
        ("k", {"N": 1}, 30, (30, 30, "session")),
        # a session emitted by an earlier batch is deleted downstream when it merges
        ("k", None, 5, (1, 5, "session")),
        ("k", {"N": 3}, 8, (1, 8, "session")),
    ]


def test_a_record_cache_gives_each_group_of_a_table_aggregate_its_latest_update() -> None:
    made = driver("CREATE TABLE t (id STRING PRIMARY KEY, g STRING, v INT) WITH (kafka_topic='t', format='JSON');",
                  "CREATE TABLE o AS SELECT g, SUM(v) AS total FROM t GROUP BY g;", properties=CACHED)
    send(made, "t", [("a", {"G": "x", "V": 1}, 1), ("b", {"G": "x", "V": 2}, 2), ("a", {"G": "y", "V": 3}, 3)])
    assert outputs(made, "O") == [("x", {"TOTAL": 2}, 3), ("y", {"TOTAL": 3}, 3)]


def test_with_a_record_cache_having_sees_only_the_latest_update() -> None:
    made = driver(STREAM, "CREATE TABLE o AS SELECT id, SUM(v) AS total FROM s GROUP BY id HAVING SUM(v) > 2;",
                  properties=CACHED)
    send(made, "s", [("a", {"V": 1}, 1), ("a", {"V": 5}, 2), ("a", {"V": -5}, 3)])
    assert outputs(made, "O") == []  # 6 was never the batch's latest: nothing to delete either
