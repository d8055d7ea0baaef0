"""The write-behind cache in front of a store: a batch's writes are held and reach the store in one write
batch, or are dropped if the batch is processed again.

Reads see the held writes. A query's pipeline flushes when a batch is done, and discards when a batch
fails and is retried in parts, so a retry never applies a change twice; over a durable store, one
WriteBatch per flush is also what keeps writes cheap.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ksqlpy.state.base import StateStore

_DELETED = object()  # held in place of a value: the key is deleted


class WriteBehindStore(StateStore):
    """A store's view with the writes since the last flush held in memory."""

    def __init__(self, store: StateStore) -> None:
        super().__init__(store.name)
        self.store = store
        self._held: dict[bytes, Any] = {}

    def get(self, key: bytes) -> Any | None:
        value = self._held.get(key, None)
        if value is None:
            return self.store.get(key)
        return None if value is _DELETED else value

    def multi_get(self, keys: Sequence[bytes]) -> list[Any | None]:
        if not self._held:
            return self.store.multi_get(keys)
        missing = [key for key in keys if key not in self._held]
        found = dict(zip(missing, self.store.multi_get(missing), strict=True))
        return [found[key] if key in found else self.get(key) for key in keys]

    def put(self, key: bytes, value: Any) -> None:
        self._held[key] = value

    def delete(self, key: bytes) -> None:
        self._held[key] = _DELETED

    def write_batch(self, changes: Mapping[bytes, Any | None]) -> None:
        held = self._held
        for key, value in changes.items():
            held[key] = _DELETED if value is None else value

    def range(self, start: bytes | None = None, end: bytes | None = None) -> Iterator[tuple[bytes, Any]]:
        entries = dict(self.store.range(start, end))
        for key, value in self._held.items():
            if (start is None or key >= start) and (end is None or key < end):
                if value is _DELETED:
                    entries.pop(key, None)
                else:
                    entries[key] = value
        return iter(sorted(entries.items()))

    def __len__(self) -> int:
        return sum(1 for _ in self.range())

    def flush(self) -> None:
        """Write the held changes to the store, as one write batch."""
        if self._held:
            self.store.write_batch({key: None if value is _DELETED else value for key, value in self._held.items()})
            self._held = {}

    def discard(self) -> None:
        self._held = {}

    def close(self) -> None:
        self.discard()
        self.store.close()
