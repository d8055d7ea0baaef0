"""The write-behind cache in front of a store: writes are held in memory and reach the store in one write
batch per commit, or are dropped if the work that made them is done again.

Two levels are held. The current batch's writes are dropped when the batch fails and is retried in parts
(discard), so a retry never applies a change twice; a finished batch's writes are kept (end_batch) until
the commit writes them all to the store as one write batch (flush), which also returns them so they can
be logged to a changelog. A commit that fails drops what it held (rollback). Reads see every held write;
the first scan after a flush puts the held keys in order, and later writes keep that order, so that an
operator scanning many small ranges (a stream-stream join) does not walk every held write each time.
Over a durable store, one WriteBatch per commit is what keeps writes cheap: a key updated by every batch
is written once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sortedcontainers import SortedSet

from ksqlpy.state.base import StateStore

_DELETED = object()  # held in place of a value: the key is deleted
_ABSENT = object()


class WriteBehindStore(StateStore):
    """A store's view with the writes since the last flush held in memory."""

    def __init__(self, store: StateStore) -> None:
        super().__init__(store.name)
        self.store = store
        self._batch: dict[bytes, Any] = {}  # the current batch's writes
        self._kept: dict[bytes, Any] = {}  # finished batches' writes, not yet flushed
        self._held_order: SortedSet | None = None  # the held keys in order, once a scan has needed them

    def get(self, key: bytes) -> Any | None:
        value = self._batch.get(key, None)
        if value is None:
            value = self._kept.get(key, None)
            if value is None:
                return self.store.get(key)
        return None if value is _DELETED else value

    def multi_get(self, keys: Sequence[bytes]) -> list[Any | None]:
        if not self._batch and not self._kept:
            return self.store.multi_get(keys)
        missing = [key for key in keys if key not in self._batch and key not in self._kept]
        found = dict(zip(missing, self.store.multi_get(missing), strict=True))
        return [found[key] if key in found else self.get(key) for key in keys]

    def put(self, key: bytes, value: Any) -> None:
        self._batch[key] = value
        if self._held_order is not None:
            self._held_order.add(key)

    def delete(self, key: bytes) -> None:
        self._batch[key] = _DELETED
        if self._held_order is not None:
            self._held_order.add(key)

    def write_batch(self, changes: Mapping[bytes, Any | None]) -> None:
        held = self._batch
        for key, value in changes.items():
            held[key] = _DELETED if value is None else value
        if self._held_order is not None:
            self._held_order.update(changes)

    def range(self, start: bytes | None = None, end: bytes | None = None) -> Iterator[tuple[bytes, Any]]:
        entries = dict(self.store.range(start, end))
        if self._batch or self._kept:
            if self._held_order is None:
                self._held_order = SortedSet(self._kept.keys() | self._batch.keys())
            for key in self._held_order.irange(start, end, inclusive=(True, False)):
                value = self._batch.get(key, _ABSENT)
                if value is _ABSENT:
                    value = self._kept[key]
                if value is _DELETED:
                    entries.pop(key, None)
                else:
                    entries[key] = value
        return iter(sorted(entries.items()))

    def __len__(self) -> int:
        return sum(1 for _ in self.range())

    def end_batch(self) -> None:
        """The current batch is done: keep its writes for the next flush."""
        if self._batch:
            if self._kept:
                self._kept.update(self._batch)
            else:
                self._kept = self._batch
            self._batch = {}

    def pending(self) -> dict[bytes, Any | None]:
        """Every held change of the finished batches (None: deleted), as flush would write them."""
        self.end_batch()
        return {key: None if value is _DELETED else value for key, value in self._kept.items()}

    def flush(self) -> dict[bytes, Any | None]:
        """Write every held change to the store as one write batch; returns them (None: deleted)."""
        changes = self.pending()
        if changes:
            self.store.write_batch(changes)
            self._kept = {}
            self._held_order = None
        return changes

    def discard(self) -> None:
        """Drop the current batch's writes."""
        self._batch = {}
        self._held_order = None

    def rollback(self) -> None:
        """Drop every write since the last flush."""
        self._batch = {}
        self._kept = {}
        self._held_order = None

    def close(self) -> None:
        self.rollback()
        self.store.close()
