"""The stream-stream join: records of two streams paired when their join keys are equal and their times fall
within the join window, each side's records buffered until no record of the other side can pair with them.

A left record at time t pairs with right records at t - before .. t + after (a right record at t with left
records at t - after .. t + before); a pair is emitted at the larger of the two times. Stream time is kept
per partition: each side's buffer has its own, the largest time of that side's records, and keeps a record
for the window plus the grace period (ksqlDB's retention) past it, as Kafka Streams' window stores do (so a
record late on one side may still be buffered while the other side has moved on); windows close by the
join's stream time, the largest record time of either side.

An outer side's record that pairs with nothing is emitted NULL-padded, at its own time. Without a GRACE
PERIOD (ksqlDB's old semantics, 24 hours of grace) that happens at once, and a later pair follows it. With
one, the record waits in the unmatched store until its window closes (stream time passes t + after + grace
for a left record, t + before + grace for a right one) and is emitted then unless it got paired meanwhile;
a record already past that point when it arrives is emitted at once.
"""

from __future__ import annotations

import struct
from bisect import bisect_left, bisect_right
from typing import Any

from ksqlpy.execution.join_rows import JoinedRows, key_values, prefix_bytes
from ksqlpy.execution.joins import LEFT, RIGHT, JoinOperator, RowLogger, StoresFor
from ksqlpy.execution.rows import PARTITION, TIMESTAMP, TOMBSTONE
from ksqlpy.planning.plan import DEFAULT_GRACE_MS, JoinStep

_TIME_SEQUENCE = struct.Struct(">QQ")
_TIME = struct.Struct(">Q")
_SIGN = 1 << 63  # added to a time so that unsigned big-endian bytes sort as the signed times do
_SIDE_BYTE = {LEFT: b"\x01", RIGHT: b"\x00"}  # Kafka Streams orders a time's unmatched right records first

Row = tuple[Any, ...]
Buffered = tuple[int, bytes, Row]  # a buffered record: its time, its buffer store key, its columns


def store_names(join_type: str) -> tuple[str, str, str]:
    """The left buffer's, the right buffer's and the unmatched records' store names, as ksqlDB names them."""
    left = "Join-outer-this-join-store" if join_type in ("LEFT", "FULL") else "Join-this-join-store"
    right = "Join-outer-other-join-store" if join_type in ("RIGHT", "FULL") else "Join-other-join-store"
    return left, right, "Join-outer-shared-join-store"


def _unmatched_key(side: int, buffer_key: bytes) -> bytes:
    """A buffered record's key in the unmatched store, time first so that closed windows are one scan."""
    return buffer_key[-16:-8] + _SIDE_BYTE[side] + buffer_key[:-16] + buffer_key[-8:]


def _sides(side: int, values: Row, other_values: Row | None) -> tuple[Row | None, Row | None]:
    """A record's columns and the other side's (None: absent) as (left, right)."""
    return (values, other_values) if side == LEFT else (other_values, values)


class StreamStreamJoin(JoinOperator):
    """INNER, LEFT, RIGHT or FULL join of two streams WITHIN a window (see the module docstring)."""

    def __init__(self, step: JoinStep, stores_for: StoresFor, log_row: RowLogger) -> None:
        super().__init__(step, stores_for, log_row)
        if step.within is None:
            raise ValueError("A stream-stream join needs a WITHIN window")
        before, after = step.within.before_ms, step.within.after_ms
        self.eager = step.within.grace_ms is None
        self.grace = DEFAULT_GRACE_MS if step.within.grace_ms is None else step.within.grace_ms
        self.retention = before + after + self.grace
        # how far back and ahead of its own time a record of each side looks on the other side
        self.reach = {LEFT: (before, after), RIGHT: (after, before)}
        self.outer = {LEFT: step.join_type in ("LEFT", "FULL"), RIGHT: step.join_type in ("RIGHT", "FULL")}
        left_name, right_name, unmatched_name = store_names(step.join_type)
        self.buffers = {LEFT: stores_for(left_name), RIGHT: stores_for(right_name)}
        waits = not self.eager and (self.outer[LEFT] or self.outer[RIGHT])
        self.unmatched = stores_for(unmatched_name) if waits else None
        positions = self.buffers[LEFT].positions
        self.stream_times = positions("stream-time")
        self.side_times = {LEFT: positions("left-stream-time"), RIGHT: positions("right-stream-time")}
        self.sequences = positions("sequence")  # per partition: the last number given a buffered record
        self.last_sweeps = positions("last-expiry-sweep")
        # per partition: no unmatched record waits from before this time (saves scans that would find none)
        self.waiting_from = positions("unmatched-from")

    def process(
        self, side: int, keys: list[Any], columns: list[list[Any]], meta: list[list[Any]],
    ) -> list[list[Any]]:
        out = JoinedRows(self, meta)
        other = LEFT if side == RIGHT else RIGHT
        back, ahead = self.reach[side]
        candidates = self._other_side(other, keys, meta)
        own = self.buffers[side]
        times, partitions, tombstones = meta[TIMESTAMP], meta[PARTITION], meta[TOMBSTONE]
        for row, key in enumerate(keys):
            if key is None or tombstones[row]:
                continue
            time, partition = times[row], partitions[row]
            stream_time = max(self.stream_times.get(partition, time), time)
            self.stream_times[partition] = stream_time
            self._emit_closed(partition, stream_time, row, out)
            own_time = max(self.side_times[side].get(partition, time), time)
            self.side_times[side][partition] = own_time
            # records at or before a horizon have expired from their buffer
            other_horizon = self.side_times[other].get(partition, time) - self.retention
            prefix = prefix_bytes(key)
            values = tuple(column[row] for column in columns)
            matched = False
            found_times, found = candidates[(partition, prefix)]
            for other_time, other_key, other_values in found[
                    bisect_left(found_times, time - back):bisect_right(found_times, time + ahead)]:
                if other_time <= other_horizon:
                    continue
                matched = True
                out.add(key_values(key, out.key_width), *_sides(side, values, other_values), max(time, other_time),
                        row, partition)
                if self.unmatched is not None and self.outer[other]:
                    self.unmatched(partition).delete(_unmatched_key(other, other_key))
            sequence = self.sequences.get(partition, 0) + 1
            self.sequences[partition] = sequence
            buffer_key = prefix + _TIME_SEQUENCE.pack(time + _SIGN, sequence)
            if not matched and self.outer[side]:
                if self.unmatched is None or time + ahead < stream_time:
                    out.add(key_values(key, out.key_width), *_sides(side, values, None), time, row, partition)
                else:
                    self.unmatched(partition).put(_unmatched_key(side, buffer_key), (key, values))
                    self.waiting_from[partition] = min(self.waiting_from.get(partition, time), time)
            if time > own_time - self.retention:
                own(partition).put(buffer_key, values)
        for partition in {partitions[row] for row, key in enumerate(keys) if key is not None}:
            self._sweep(partition)
        return out.columns()

    def _other_side(self, other: int, keys: list[Any], meta: list[list[Any]]) -> dict[tuple[int, bytes], tuple[
            list[int], list[Buffered]]]:
        """The other side's buffered records each (partition, key) of the batch may pair with, by time: one
        range scan per distinct key, over the times the batch's records of that key reach."""
        back, ahead = self.reach[LEFT if other == RIGHT else RIGHT]
        spans: dict[tuple[int, bytes], tuple[int, int]] = {}
        for row, key in enumerate(keys):
            if key is None:
                continue
            time = meta[TIMESTAMP][row]
            slot = (meta[PARTITION][row], prefix_bytes(key))
            low, high = spans.get(slot, (time, time))
            spans[slot] = (min(low, time), max(high, time))
        found: dict[tuple[int, bytes], tuple[list[int], list[Buffered]]] = {}
        for (partition, prefix), (low, high) in spans.items():
            entries = [(_TIME_SEQUENCE.unpack_from(entry_key, len(entry_key) - 16)[0] - _SIGN, entry_key, values)
                       for entry_key, values in self.buffers[other](partition).range(
                           prefix + _TIME.pack(low - back + _SIGN), prefix + _TIME.pack(high + ahead + 1 + _SIGN))]
            found[(partition, prefix)] = ([entry[0] for entry in entries], entries)
        return found

    def _emit_closed(self, partition: int, stream_time: int, trigger: int, out: JoinedRows) -> None:
        """Emit, NULL-padded, the unmatched records whose window stream time has now closed."""
        if self.unmatched is None:
            return
        soonest = min(ahead for _, ahead in self.reach.values())
        bound = stream_time - self.grace - soonest  # no record from this time on has closed yet
        waiting_from = self.waiting_from.get(partition)
        if waiting_from is None or waiting_from >= bound:
            return
        store = self.unmatched(partition)
        still_waiting = bound
        for entry_key, waiting in store.range(_TIME.pack(waiting_from + _SIGN), _TIME.pack(bound + _SIGN)):
            time = _TIME.unpack_from(entry_key)[0] - _SIGN
            side = LEFT if entry_key[8:9] == _SIDE_BYTE[LEFT] else RIGHT
            if time + self.reach[side][1] + self.grace >= stream_time:
                still_waiting = min(still_waiting, time)
                continue
            store.delete(entry_key)
            key, values = waiting
            out.add(key_values(key, out.key_width), *_sides(side, values, None), time, trigger, partition)
        self.waiting_from[partition] = still_waiting

    def _sweep(self, partition: int) -> None:
        """Drop the partition's expired buffered records, once per quarter retention of stream time."""
        stream_time = self.stream_times[partition]
        last = self.last_sweeps.get(partition)
        if last is not None and stream_time - last < max(1, self.retention // 4):
            return
        self.last_sweeps[partition] = stream_time
        for side, stores in self.buffers.items():
            if partition not in self.side_times[side]:
                continue
            horizon = self.side_times[side][partition] - self.retention
            store = stores(partition)
            store.write_batch({entry_key: None for entry_key, _ in store.range()
                               if _TIME.unpack_from(entry_key, len(entry_key) - 16)[0] - _SIGN <= horizon})
