"""The stream-stream join operator: windows, outer records emitted eagerly or when their window closes,
stream time per partition, expiry."""

from __future__ import annotations

from join_driving import STREAM_COLUMNS, JoinFeed, join_step, source_step

from ksqlpy.execution.joins import LEFT, RIGHT
from ksqlpy.execution.stream_joins import StreamStreamJoin
from ksqlpy.syntax.ast import WithinSpec

MINUTE = 60_000


def feed(join_type: str, within: WithinSpec, key_columns: tuple[str, ...] = ("ID",)) -> JoinFeed:
    step = join_step(source_step("L", "STREAM", STREAM_COLUMNS), source_step("R", "STREAM", STREAM_COLUMNS),
                     join_type, key_columns, within)
    return JoinFeed(StreamStreamJoin, step)


def test_inner_join_pairs_records_within_the_window_at_the_later_time() -> None:
    join = feed("INNER", WithinSpec(MINUTE, MINUTE))
    assert join.send(LEFT, [(0, (0, "A"), 0)]) == []
    assert join.send(RIGHT, [(0, (0, "a"), MINUTE), (0, (0, "late"), MINUTE + 1), (1, (1, "b"), 0)]) == [
        (0, 0, "A", 0, "a", MINUTE, False)]
    # a left record pairs with every right record of its key around it, in time order
    assert join.send(LEFT, [(0, (0, "B"), MINUTE)]) == [
        (0, 0, "B", 0, "a", MINUTE, False), (0, 0, "B", 0, "late", MINUTE + 1, False)]


def test_a_window_before_and_after_reaches_back_and_ahead_from_each_side() -> None:
    join = feed("INNER", WithinSpec(1000, 2000))  # a left record at t pairs with right records at t-1s .. t+2s
    assert join.send(RIGHT, [(0, (0, str(t)), t) for t in (8999, 9000, 12000, 12001)]) == []
    assert join.send(LEFT, [(0, (0, "L"), 10000)]) == [
        (0, 0, "L", 0, "9000", 10000, False), (0, 0, "L", 0, "12000", 12000, False)]
    # from the right: left records at t-2s .. t+1s
    assert join.send(RIGHT, [(0, (0, "r"), 12000), (0, (0, "too late"), 12001)]) == [
        (0, 0, "L", 0, "r", 12000, False)]


def test_without_grace_an_outer_record_is_emitted_at_once_and_its_pairs_later() -> None:
    join = feed("LEFT", WithinSpec(MINUTE, MINUTE))
    assert join.send(LEFT, [(0, (0, "A"), 0)]) == [(0, 0, "A", None, None, 0, False)]
    assert join.send(RIGHT, [(0, (0, "a"), 1000)]) == [(0, 0, "A", 0, "a", 1000, False)]
    # the right side is not outer in a LEFT join
    assert join.send(RIGHT, [(5, (5, "x"), 2000)]) == []

    right = feed("RIGHT", WithinSpec(MINUTE, MINUTE))
    assert right.send(RIGHT, [(3, (3, "x"), 10)]) == [(3, None, None, 3, "x", 10, False)]
    assert right.send(LEFT, [(3, (3, "X"), 20)]) == [(3, 3, "X", 3, "x", 20, False)]


def test_with_grace_an_unmatched_record_waits_until_its_window_closes() -> None:
    join = feed("LEFT", WithinSpec(MINUTE, MINUTE, MINUTE))
    assert join.send(LEFT, [(0, (0, "A"), 0)]) == []
    assert join.send(RIGHT, [(0, (0, "a"), MINUTE)]) == [(0, 0, "A", 0, "a", MINUTE, False)]
    assert join.send(LEFT, [(1, (1, "B"), 100_000), (2, (2, "C"), 110_000)]) == []
    # B's window closes once stream time passes 100s + 1 min + 1 min grace; A was paired, so never emitted
    assert join.send(LEFT, [(3, (3, "D"), 220_000)]) == []
    assert join.send(LEFT, [(4, (4, "E"), 220_001)]) == [(1, 1, "B", None, None, 100_000, False)]
    # a record whose window closed before it arrived is emitted at once, before the records closing after it
    assert join.send(LEFT, [(5, (5, "F"), 50_000), (6, (6, "G"), 240_000)]) == [
        (5, 5, "F", None, None, 50_000, False), (2, 2, "C", None, None, 110_000, False)]


def test_a_late_record_is_not_kept_for_the_other_side_once_its_retention_passed() -> None:
    join = feed("INNER", WithinSpec(MINUTE, MINUTE, MINUTE))
    join.send(LEFT, [(1, (1, "B"), 330_000)])
    # 90s is older than stream time less the window and grace: the left record is not buffered
    assert join.send(LEFT, [(2, (2, "C"), 90_000)]) == []
    assert len(join.stores["Join-this-join-store"](0)) == 1
    assert join.send(RIGHT, [(2, (2, "c"), 90_000)]) == []


def test_a_record_waits_while_its_window_reaches_stream_time_and_closes_past_it() -> None:
    join = feed("LEFT", WithinSpec(10, 10, 0))
    assert join.send(LEFT, [(1, (1, "A"), 100), (2, (2, "B"), 90)]) == []  # B's window ends at stream time
    assert join.send(LEFT, [(3, (3, "C"), 101)]) == [(2, 2, "B", None, None, 90, False)]


def test_a_buffered_record_expires_as_its_sides_stream_time_passes_its_retention() -> None:
    join = feed("INNER", WithinSpec(100, 100, 0))  # retention: 200
    join.send(LEFT, [(8, (8, "x"), 160)])
    join.send(LEFT, [(0, (0, "A"), 0), (1, (1, "B"), 1)])
    join.send(LEFT, [(9, (9, "y"), 200)])  # the left buffer's stream time: A has expired, B not yet
    assert join.send(RIGHT, [(0, (0, "a"), 50), (1, (1, "b"), 50)]) == [(1, 1, "B", 1, "b", 50, False)]


def test_a_record_late_for_one_side_is_still_buffered_while_its_own_side_is_behind() -> None:
    join = feed("RIGHT", WithinSpec(MINUTE, MINUTE, MINUTE))
    join.send(LEFT, [(1, (1, "B"), 330_000)])
    # the right record is emitted unmatched at once (its window closed by the join's stream time) but kept
    assert join.send(RIGHT, [(3, (3, "d"), 60_000)]) == [(3, None, None, 3, "d", 60_000, False)]
    assert join.send(LEFT, [(3, (3, "D"), 90_000)]) == [(3, 3, "D", 3, "d", 90_000, False)]


def test_a_full_join_emits_closed_unmatched_records_of_both_sides() -> None:
    join = feed("FULL", WithinSpec(10, 20, 0))
    assert join.send(LEFT, [(1, (1, "L"), 100)]) == []
    assert join.send(RIGHT, [(2, (2, "R"), 100)]) == []
    # the right record closes at 100 + 10 (before) + 0 grace, the left at 100 + 20 (after)
    assert join.send(RIGHT, [(9, (9, "x"), 111)]) == [(2, None, None, 2, "R", 100, False)]
    # the left record closes first, then the new one pairs (and takes the right record out of waiting)
    assert join.send(LEFT, [(9, (9, "y"), 121)]) == [
        (1, 1, "L", None, None, 100, False), (9, 9, "y", 9, "x", 121, False)]
    assert join.send(LEFT, [(8, (8, "z"), 1000)]) == []


def test_stream_time_is_kept_per_partition() -> None:
    join = feed("LEFT", WithinSpec(10, 10, 0))
    assert join.send(LEFT, [(1, (1, "A"), 0)], partition=0) == []
    assert join.send(LEFT, [(2, (2, "B"), 1000)], partition=1) == []
    assert join.send(LEFT, [(3, (3, "C"), 1000)], partition=0) == [(1, 1, "A", None, None, 0, False)]


def test_records_with_a_null_key_never_join_and_a_composite_key_fills_the_key_columns() -> None:
    join = feed("LEFT", WithinSpec(10, 10), key_columns=("ID", "ID2"))
    assert join.send(LEFT, [(None, (0, "N"), 0), ((1, 2), (1, "A"), 0)]) == [(1, 2, 1, "A", None, None, 0, False)]
    assert join.send(RIGHT, [((1, 2), (1, "a"), 5), ((1, 3), (1, "b"), 5)]) == [(1, 2, 1, "A", 1, "a", 5, False)]


def test_expired_records_are_swept_from_the_buffers() -> None:
    join = feed("INNER", WithinSpec(10, 10, 0))
    join.send(LEFT, [(0, (0, "A"), 0), (1, (1, "B"), 5)])
    buffer = join.stores["Join-this-join-store"](0)
    assert len(buffer) == 2
    join.send(LEFT, [(7, (7, "x"), 1000)])
    assert len(buffer) == 1
    assert join.send(RIGHT, [(0, (0, "a"), 5)]) == []

