"""An operator's state in one query: a store per partition behind a write-behind cache, and its positions.

Positions are small named integers per partition that an operator keeps beside its entries (stream time,
the close time of the last final emission, the late-record count). They live in memory while the query
runs and, like the entries, reach a store of their own (`<operator>-positions`) at each commit, so that a
restarted or moved partition resumes with them. Work is undone at two levels, as the write-behind cache
undoes it: a batch retried in parts (discard), a commit that failed (rollback).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ksqlpy.state.base import StoreProvider
from ksqlpy.state.write_behind import WriteBehindStore

Positions = dict[str, dict[int, int]]  # name -> partition -> value


@dataclass(frozen=True)
class StoreChanges:
    """What one commit wrote to one store of one partition (None: the key was deleted)."""

    store: str
    partition: int
    changes: dict[bytes, Any | None]


def _copied(positions: Positions) -> Positions:
    return {name: dict(values) for name, values in positions.items()}


def _restored(positions: Positions, saved: Positions) -> None:
    """Set `positions` back to `saved`, in place: operators hold the inner dicts."""
    for name, values in positions.items():
        values.clear()
        values.update(saved.get(name, {}))


class OperatorStores:
    """The stores of one operator of one query, one per partition, each behind a write-behind cache."""

    def __init__(self, provider: StoreProvider, query_id: str, operator: str) -> None:
        self.provider = provider
        self.query_id = query_id
        self.operator = operator
        self.positions_store = f"{operator}-positions"
        self._stores: dict[int, WriteBehindStore] = {}
        self._positions: Positions = {}
        self._batch_start: Positions = {}  # as the current batch found them
        self._flushed: Positions = {}  # as the last commit wrote them

    @property
    def store_names(self) -> list[str]:
        """The stores this operator keeps per partition: its entries, and its positions if it has any."""
        return [self.operator, *([self.positions_store] if self._positions else [])]

    def positions(self, name: str) -> dict[int, int]:
        """The operator's `name` position per partition, a dict the operator updates in place."""
        return self._positions.setdefault(name, {})

    def __call__(self, partition: int) -> WriteBehindStore:
        store = self._stores.get(partition)
        if store is None:
            store = WriteBehindStore(self.provider.store(self.query_id, self.operator, partition))
            self._stores[partition] = store
        return store

    def end_batch(self) -> None:
        """A batch is done: its writes are kept for the next commit."""
        for store in self._stores.values():
            store.end_batch()
        self._batch_start = _copied(self._positions)

    def discard(self) -> None:
        """Undo the current batch."""
        for store in self._stores.values():
            store.discard()
        _restored(self._positions, self._batch_start)

    def pending(self) -> list[StoreChanges]:
        """What the finished batches changed, per store, as flush would write it."""
        self.end_batch()
        changed = [StoreChanges(self.operator, partition, changes)
                   for partition, store in self._stores.items() if (changes := store.pending())]
        moved: dict[int, dict[bytes, Any | None]] = {}
        for name, values in self._positions.items():
            flushed = self._flushed.get(name, {})
            for partition, value in values.items():
                if flushed.get(partition) != value:
                    moved.setdefault(partition, {})[name.encode()] = value
        return changed + [StoreChanges(self.positions_store, partition, changes) for partition, changes in moved.items()]

    def flush(self) -> list[StoreChanges]:
        """Commit: write what the finished batches changed to the stores; returns the changes per store."""
        changed = self.pending()
        for store in self._stores.values():
            store.flush()
        for changes in changed:
            if changes.store == self.positions_store:
                self.provider.store(self.query_id, changes.store, changes.partition).write_batch(changes.changes)
        self._flushed = _copied(self._positions)
        return changed

    def rollback(self) -> None:
        """Undo everything since the last commit."""
        for store in self._stores.values():
            store.rollback()
        _restored(self._positions, self._flushed)
        self._batch_start = _copied(self._flushed)

    def load(self, partition: int) -> None:
        """Take up a partition's positions from its store (after the partition was restored)."""
        if not self._positions:
            return
        stored = self.provider.store(self.query_id, self.positions_store, partition)
        for name, values in self._positions.items():
            value = stored.get(name.encode())
            for saved in (values, self._batch_start.setdefault(name, {}), self._flushed.setdefault(name, {})):
                if value is None:
                    saved.pop(partition, None)
                else:
                    saved[partition] = value

    def release(self, partitions: set[int]) -> None:
        """Give up partitions (moved to another process): forget their caches and positions."""
        for partition in partitions:
            store = self._stores.pop(partition, None)
            if store is not None:
                store.rollback()
            for positions in (self._positions, self._batch_start, self._flushed):
                for values in positions.values():
                    values.pop(partition, None)
