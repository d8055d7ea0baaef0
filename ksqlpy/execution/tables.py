"""Operators over tables (changelogs): the table filter and the suppression of EMIT FINAL.

Both take and give rows shaped like a source's (columns, then the metadata of ksqlpy.execution.rows)
and keep their state per partition in the query's stores, keyed by each row's serialized key.
"""

from __future__ import annotations

from typing import Any

from ksqlpy.execution.rows import KEY_BYTES, ORIGIN, PARTITION, TIMESTAMP, TOMBSTONE, WINDOWEND
from ksqlpy.planning.plan import SuppressStep
from ksqlpy.state.operator_stores import OperatorStores


class TableFilterOperator:
    """A WHERE or HAVING over a table: rows that match pass; a row that stops matching becomes a tombstone
    for its key (as ksqlDB emits), and one that never matched is dropped. The store holds the keys whose
    current row matches."""

    def __init__(self, stores: OperatorStores) -> None:
        self.stores = stores

    def process(self, columns: list[list[Any]], width: int, mask: list[Any]) -> list[list[Any]]:
        keys, tombstones, partitions = columns[width + KEY_BYTES], columns[width + TOMBSTONE], columns[width + PARTITION]
        kept: list[int] = []
        deleted: set[int] = set()
        for row, (key, tombstone, partition, passes) in enumerate(
            zip(keys, tombstones, partitions, mask, strict=True)
        ):
            store = self.stores(partition)
            if passes is True and not tombstone:
                store.put(key, True)
                kept.append(row)
            elif store.get(key) is not None:
                store.delete(key)
                kept.append(row)
                deleted.add(row)
        if len(kept) == len(keys) and not deleted:
            return columns
        picked = [[column[row] for row in kept] for column in columns]
        if deleted:
            picked[width + TOMBSTONE] = [row in deleted or tombstones[row] for row in kept]
        return picked


class SuppressOperator:
    """EMIT FINAL over session windows (a time-windowed aggregate emits its own final results): keeps each
    session's latest row until it closes, then emits it, sessions in order of their end (then key). A
    session closes when stream time passes its end plus the inactivity gap and the grace period, as until
    then a record could still extend it (the aggregate's rule for late records)."""

    def __init__(self, step: SuppressStep, stores: OperatorStores) -> None:
        spec = step.input.window_spec
        assert spec is not None and spec.kind == "SESSION"
        # a session closes once stream time exceeds its end plus this
        self.open_for = step.input.grace_ms + spec.size_ms
        self.width = len(step.columns)
        self.stores = stores
        self.stream_times = stores.positions("stream-time")

    def process(self, columns: list[list[Any]], meta: list[list[Any]]) -> list[list[Any]]:
        rows = list(zip(*columns, *meta, strict=True))
        # per partition, the input record that last advanced its stream time: the one that closes windows,
        # whose batch position the released rows take (theirs may be from an earlier batch)
        advanced_by: dict[int, int] = {}
        for row in rows:
            partition = row[self.width + PARTITION]
            store = self.stores(partition)
            key = row[self.width + KEY_BYTES]
            if row[self.width + TOMBSTONE]:
                store.delete(key)
            else:
                store.put(key, row)
            if partition not in advanced_by or row[self.width + TIMESTAMP] > self.stream_times.get(partition, -1):
                advanced_by[partition] = row[self.width + ORIGIN]
            self.stream_times[partition] = max(self.stream_times.get(partition, -1), row[self.width + TIMESTAMP])
        closed: list[tuple[int, bytes, tuple[Any, ...]]] = []
        for partition, origin in sorted(advanced_by.items()):
            store = self.stores(partition)
            stream_time = self.stream_times[partition]
            ready = [(row[self.width + WINDOWEND], key, row) for key, row in store.range()
                     if row[self.width + WINDOWEND] + self.open_for < stream_time]
            for _, key, _ in ready:
                store.delete(key)
            origin_at = self.width + ORIGIN
            closed += [(end, key, (*row[:origin_at], origin, *row[origin_at + 1:])) for end, key, row in ready]
        closed.sort(key=lambda entry: entry[:2])
        if not closed:
            return [[] for _ in range(self.width + len(meta))]
        return [list(column) for column in zip(*(row for _, _, row in closed), strict=True)]
