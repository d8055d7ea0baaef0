"""The order a query reading several co-partitioned topics (a join) processes their records in.

Kafka Streams processes a task's records in timestamp order across its input partitions: it takes the
oldest head among them, and while an input has nothing buffered but may have data on the broker, it waits
for it (max.task.idle.ms) rather than run ahead of it. Without that, a stream record could be joined before
the table row it should meet, merely because its topic's fetch came back first.

Here the task of partition p is partition p of every assigned input topic (see TimeAligner). Fetched
records wait in a queue per input; they are released oldest first while every other input of their task
has records queued, or is known to be at its end (an end-of-partition event since its last record), or has
kept the task waiting for longer than the idle limit.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable

from confluent_kafka import Message

from ksqlpy.runtime.clients import PartitionId

# How long a task waits for an input that may still have data, when max.task.idle.ms does not say longer:
# bounded, so that an input whose end is never reported cannot stall the join.
DEFAULT_IDLE_LIMIT_S = 2.0


def _timestamp(message: Message) -> int:
    return message.timestamp()[1]


class TimeAligner:
    """Holds a multi-topic query's fetched records and releases them in timestamp order per task.

    A task is partition p of every assigned input (co-partitioned inputs), or, with `one_task`, every
    assigned input together: a foreign-key join, whose inputs need not be co-partitioned, keeps its state in
    one place and must see all of them in time order.
    """

    def __init__(self, one_task: bool = False, idle_limit_s: float = DEFAULT_IDLE_LIMIT_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.one_task = one_task
        self.idle_limit_s = idle_limit_s
        self._clock = clock
        self._assigned: set[PartitionId] = set()
        self._queues: dict[PartitionId, deque[Message]] = {}
        self._at_end: set[PartitionId] = set()
        self._waiting_since: dict[int, float] = {}  # task -> when it began to wait

    def __len__(self) -> int:
        """Records held back (asked from other threads too: the queues are counted from a copy of the list)."""
        return sum(len(queue) for queue in list(self._queues.values()))

    def _task(self, place: PartitionId) -> int:
        return 0 if self.one_task else place[1]

    def assign(self, places: Iterable[PartitionId]) -> None:
        """Partitions the consumer was given: each is an input of its task from now on."""
        self._assigned.update(places)

    def revoke(self, places: Iterable[PartitionId]) -> None:
        """Partitions the consumer gave up: no longer inputs, and what they queued is dropped."""
        places = set(places)
        self._assigned -= places
        self.forget(places)

    def reset(self) -> None:
        """The consumer is gone: nothing is assigned or queued."""
        self._assigned.clear()
        self.forget()

    def ended(self, place: PartitionId) -> None:
        """An end-of-partition event: the input has nothing more on the broker for now."""
        self._at_end.add(place)

    def forget(self, places: Iterable[PartitionId] | None = None) -> None:
        """Drop what is queued (for `places`, else everywhere): the consumer was moved back or lost them."""
        for place in list(self._queues) if places is None else places:
            self._queues.pop(place, None)
            self._at_end.discard(place)
            self._waiting_since.pop(self._task(place), None)

    def release(self, records: list[Message]) -> list[Message]:
        """Queue `records` (records only, in fetch order) and return every record that may now be processed."""
        for message in records:
            place = (message.topic() or "", message.partition() or 0)
            self._queues.setdefault(place, deque()).append(message)
            self._at_end.discard(place)
        released: list[Message] = []
        for task in sorted({self._task(place) for place in self._queues}):
            released += self._release_task(task)
        return released

    def _release_task(self, task: int) -> list[Message]:
        inputs = sorted({place for place in (*self._assigned, *self._queues) if self._task(place) == task})
        queues = [self._queues.setdefault(place, deque()) for place in inputs]
        released: list[Message] = []
        while any(queues):
            blocking = [place for place, queue in zip(inputs, queues, strict=True)
                        if not queue and place not in self._at_end]
            if blocking:
                began = self._waiting_since.setdefault(task, self._clock())
                if self._clock() - began < self.idle_limit_s:
                    break
            else:
                self._waiting_since.pop(task, None)
            filled = [queue for queue in queues if queue]
            if len(filled) == 1:  # one input has records and none is awaited: all of them go, in order
                released.extend(filled[0])
                filled[0].clear()
                continue
            # Several: the oldest queue goes on while its records are no newer than every other queue's oldest.
            oldest = min(filled, key=lambda queue: _timestamp(queue[0]))
            limit = min(_timestamp(queue[0]) for queue in filled if queue is not oldest)
            while oldest and _timestamp(oldest[0]) <= limit:
                released.append(oldest.popleft())
        if not any(queues):
            self._waiting_since.pop(task, None)
        return released
