"""Operators over tables (changelogs): the table filter and the suppression of EMIT FINAL.

Both take and give rows shaped like a source's (columns, then the metadata of ksqlpy.execution.rows)
and keep their state per partition in the query's stores, keyed by each row's serialized key.
"""

from __future__ import annotations

from typing import Any

from ksqlpy.execution.aggregation import OperatorStores
from ksqlpy.execution.rows import KEY_BYTES, PARTITION, TIMESTAMP, TOMBSTONE, WINDOWEND
from ksqlpy.planning.plan import SuppressStep


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
    """EMIT FINAL: keeps each window's latest row until stream time passes its end plus the grace period,
    then emits it, windows in order of their end (then key)."""

    def __init__(self, step: SuppressStep, stores: OperatorStores) -> None:
        self.grace = step.input.grace_ms
        self.width = len(step.columns)
        self.stores = stores
        self.stream_times: dict[int, int] = {}

    def process(self, columns: list[list[Any]], meta: list[list[Any]]) -> list[list[Any]]:
        rows = list(zip(*columns, *meta, strict=True))
        touched: set[int] = set()
        for row in rows:
            partition = row[self.width + PARTITION]
            store = self.stores(partition)
            key = row[self.width + KEY_BYTES]
            if row[self.width + TOMBSTONE]:
                store.delete(key)
            else:
                store.put(key, row)
            self.stream_times[partition] = max(self.stream_times.get(partition, -1), row[self.width + TIMESTAMP])
            touched.add(partition)
        closed: list[tuple[int, bytes, tuple[Any, ...]]] = []
        for partition in sorted(touched):
            store = self.stores(partition)
            deadline = self.stream_times[partition] - self.grace
            ready = [(row[self.width + WINDOWEND], key, row) for key, row in store.range()
                     if row[self.width + WINDOWEND] <= deadline]
            for _, key, _ in ready:
                store.delete(key)
            closed += ready
        closed.sort(key=lambda entry: entry[:2])
        if not closed:
            return [[] for _ in range(self.width + len(meta))]
        return [list(column) for column in zip(*(row for _, _, row in closed), strict=True)]
