"""The foreign-key table-table join operator: left rows joined to the right row their foreign key names,
right changes fanned out to every left row pointing at them, tombstones as Kafka Streams emits them."""

from __future__ import annotations

from join_driving import Deleted, JoinFeed, join_step, source_step

from ksqlpy.execution.fk_join import ForeignKeyJoin
from ksqlpy.execution.joins import LEFT, RIGHT
from ksqlpy.types import BIGINT, STRING

LEFT_COLUMNS = (("ID", BIGINT), ("NAME", STRING), ("FK", BIGINT))
RIGHT_COLUMNS = (("ID", BIGINT), ("F1", STRING))


def feed(join_type: str) -> JoinFeed:
    step = join_step(source_step("L", "TABLE", LEFT_COLUMNS), source_step("R", "TABLE", RIGHT_COLUMNS),
                     join_type, foreign_key=True)
    return JoinFeed(ForeignKeyJoin, step)


def left(key: int, name: str, foreign_key: int | None, time: int) -> tuple[int | None, tuple[object, ...], int]:
    return foreign_key, (key, name, foreign_key), time


def left_deleted(key: int, time: int) -> tuple[None, tuple[object, ...], int]:
    """A left tombstone: the key columns are known, the value (and so the foreign key) is not."""
    return None, Deleted((key, None, None)), time


def deleted(key: int, time: int) -> tuple[int, None, int]:
    return key, None, time


def test_inner_join_follows_both_tables() -> None:
    join = feed("INNER")
    assert join.send(RIGHT, [(0, (0, "blah"), 0)]) == []
    assert join.send(LEFT, [left(1, "zero", 0, 10000), left(0, "foo", 100, 13000)]) == [
        (1, 1, "zero", 0, 0, "blah", 10000, False)]
    assert join.send(RIGHT, [(0, (0, "a"), 15000)]) == [(1, 1, "zero", 0, 0, "a", 15000, False)]
    assert join.send(LEFT, [left(10, "bar", 0, 16000)]) == [(10, 10, "bar", 0, 0, "a", 16000, False)]
    # a deleted right row retracts every left row pointing at it, in left key order
    assert join.send(RIGHT, [deleted(0, 17000)]) == [
        (1, None, None, None, None, None, 17000, True), (10, None, None, None, None, None, 17000, True)]
    assert join.send(LEFT, [left_deleted(1, 18000)]) == [(1, None, None, None, None, None, 18000, True)]
    assert join.send(LEFT, [left_deleted(99, 19000)]) == []  # never seen: nothing to delete


def test_left_join_pads_unmatched_rows_with_nulls() -> None:
    join = feed("LEFT")
    assert join.send(LEFT, [left(1, "zero", 0, 0)]) == [(1, 1, "zero", 0, None, None, 0, False)]
    assert join.send(RIGHT, [(0, (0, "blah"), 10000)]) == [(1, 1, "zero", 0, 0, "blah", 10000, False)]
    assert join.send(LEFT, [left(0, "foo", None, 13000)]) == [(0, 0, "foo", None, None, None, 13000, False)]
    assert join.send(RIGHT, [deleted(0, 17000)]) == [(1, 1, "zero", 0, None, None, 17000, False)]
    assert join.send(RIGHT, [deleted(0, 17500)]) == []  # already gone
    assert join.send(LEFT, [left_deleted(0, 19000)]) == [(0, None, None, None, None, None, 19000, True)]


def test_a_left_row_changing_its_foreign_key_moves_to_the_new_right_row() -> None:
    join = feed("INNER")
    join.send(RIGHT, [(0, (0, "zero"), 0)])
    assert join.send(LEFT, [left(1, "a", 0, 10)]) == [(1, 1, "a", 0, 0, "zero", 10, False)]
    # pointing at a right row that does not exist retracts the joined row
    assert join.send(LEFT, [left(1, "a", 5, 20)]) == [(1, None, None, None, None, None, 20, True)]
    assert join.send(RIGHT, [(0, (0, "zero again"), 30)]) == []
    assert join.send(RIGHT, [(5, (5, "five"), 40)]) == [(1, 1, "a", 5, 5, "five", 40, False)]


def test_a_joined_row_takes_the_later_time_and_the_left_rows_partition() -> None:
    join = feed("LEFT")
    join.send(RIGHT, [(7, (7, "r"), 500)], partition=0)
    assert join.send(LEFT, [left(3, "x", 7, 100)], partition=2) == [(3, 3, "x", 7, 7, "r", 500, False)]
    assert join.partitions == [2]
    assert join.send(RIGHT, [(7, (7, "s"), 50)], partition=0) == [(3, 3, "x", 7, 7, "s", 100, False)]
    assert join.partitions == [2]


def test_rows_of_one_batch_see_each_other() -> None:
    join = feed("INNER")
    join.send(RIGHT, [(0, (0, "r"), 0)])
    assert join.send(LEFT, [left(1, "a", 0, 1), left(1, "b", 0, 2), left_deleted(1, 3)]) == [
        (1, 1, "a", 0, 0, "r", 1, False), (1, 1, "b", 0, 0, "r", 2, False),
        (1, None, None, None, None, None, 3, True)]
    assert join.send(RIGHT, [(0, (0, "s"), 4)]) == []
