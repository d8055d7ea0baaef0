"""A join's inputs are taken in timestamp order per task, waiting (within a limit) for an input that may
still hold older records."""

from __future__ import annotations

from confluent_kafka import Message

from ksqlpy.runtime.alignment import TimeAligner
from ksqlpy.runtime.worker import batches_of


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(topic: str, partition: int, timestamp: int) -> Message:
    return Message(topic=topic, partition=partition, value=f"{topic}@{timestamp}".encode(), timestamp=(1, timestamp))


def values(messages: list[Message]) -> list[str]:
    return [(message.value() or b"").decode() for message in messages]


def aligner_of(clock: Clock, *tasks: int, one_task: bool = False) -> TimeAligner:
    """An aligner for a join of a stream and a table, assigned both topics' partitions `tasks`."""
    aligner = TimeAligner(one_task, idle_limit_s=2.0, clock=clock)
    aligner.assign((topic, task) for topic in ("stream", "table") for task in tasks)
    return aligner


def test_a_task_waits_for_its_other_input_and_then_takes_both_oldest_first() -> None:
    clock = Clock()
    aligner = aligner_of(clock, 0)
    assert aligner.release([record("stream", 0, 20)]) == []  # the table may hold older rows: wait
    assert len(aligner) == 1
    assert values(aligner.release([record("table", 0, 10), record("table", 0, 30)])) == ["table@10", "stream@20"]
    aligner.ended(("stream", 0))  # nothing more on the broker for the stream: the table row may go
    assert values(aligner.release([])) == ["table@30"]


def test_an_input_at_its_end_does_not_hold_the_other_back() -> None:
    aligner = aligner_of(Clock(), 1)
    aligner.ended(("table", 1))
    assert values(aligner.release([record("stream", 1, 5), record("stream", 1, 6)])) == ["stream@5", "stream@6"]


def test_tasks_are_independent_and_the_wait_is_bounded() -> None:
    clock = Clock()
    aligner = aligner_of(clock, 0, 1)
    aligner.ended(("table", 1))
    released = aligner.release([record("stream", 0, 1), record("stream", 1, 2)])
    assert values(released) == ["stream@2"]  # task 1's table is at its end, task 0's is not
    clock.now = 2.5
    assert values(aligner.release([])) == ["stream@1"]  # waited long enough for task 0's table


def test_forgetting_drops_what_is_held_back() -> None:
    aligner = aligner_of(Clock(), 0)
    aligner.release([record("stream", 0, 1)])
    aligner.forget([("stream", 0)])
    assert len(aligner) == 0


def test_records_of_two_inputs_are_interleaved_by_time_and_an_input_alone_goes_whole() -> None:
    aligner = aligner_of(Clock(), 0)
    fetched = [record("stream", 0, t) for t in (1, 3, 5)] + [record("table", 0, t) for t in (2, 4)]
    assert values(aligner.release(fetched)) == ["stream@1", "table@2", "stream@3", "table@4"]  # stream@5 waits
    aligner.ended(("table", 0))
    assert values(aligner.release([record("stream", 0, t) for t in (6, 7)])) == ["stream@5", "stream@6", "stream@7"]


def test_a_partition_only_one_input_has_waits_for_nothing_and_one_task_orders_across_partitions() -> None:
    clock = Clock()
    aligner = TimeAligner(idle_limit_s=2.0, clock=clock)
    aligner.assign([("orders", 0), ("orders", 2), ("customers", 0)])  # customers has no partition 2
    assert values(aligner.release([record("orders", 2, 3)])) == ["orders@3"]
    together = TimeAligner(one_task=True, idle_limit_s=2.0, clock=clock)
    together.assign([("orders", 2), ("customers", 0)])
    released = together.release([record("orders", 2, 3), record("customers", 0, 1), record("customers", 0, 5)])
    assert values(released) == ["customers@1", "orders@3"]  # customers@5 waits for orders' partition 2


def test_released_records_become_batches_in_release_order_even_when_a_partitions_times_go_back() -> None:
    released = [record("table", 0, 4), record("stream", 0, 5), record("stream", 0, 3)]
    batches = batches_of(released, ["stream", "table"])
    assert [(batch.topic, batch.timestamps) for batch in batches] == [("table", [4]), ("stream", [5, 3])]
