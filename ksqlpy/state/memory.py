"""The in-memory state store: a SortedDict per store, values kept as the objects they are."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sortedcontainers import SortedDict

from ksqlpy.state.base import StateStore, StoreProvider


class InMemoryStore(StateStore):
    """A sorted map in memory.

    Point reads go straight to the dict SortedDict is built on; writes to an existing key cost a dict
    write, a new key also an insertion into the sorted key list. Scans return a snapshot taken when the
    scan starts, so an operator may write to the store while it walks a range (as it may over RocksDB).
    """

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._entries: SortedDict = SortedDict()

    def get(self, key: bytes) -> Any | None:
        return self._entries.get(key)

    def multi_get(self, keys: Sequence[bytes]) -> list[Any | None]:
        return list(map(self._entries.get, keys))

    def put(self, key: bytes, value: Any) -> None:
        self._entries[key] = value

    def delete(self, key: bytes) -> None:
        self._entries.pop(key, None)

    def write_batch(self, changes: Mapping[bytes, Any | None]) -> None:
        entries = self._entries
        for key, value in changes.items():
            if value is None:
                entries.pop(key, None)
            else:
                entries[key] = value

    def range(self, start: bytes | None = None, end: bytes | None = None) -> Iterator[tuple[bytes, Any]]:
        entries = self._entries
        keys = entries.irange(minimum=start, maximum=end, inclusive=(True, False))
        return iter([(key, entries[key]) for key in keys])

    def __len__(self) -> int:
        return len(self._entries)

    def close(self) -> None:
        self._entries.clear()


class InMemoryStoreProvider(StoreProvider):
    """Hands out one InMemoryStore per (query, operator, partition), kept until the query is dropped."""

    def __init__(self) -> None:
        self._stores: dict[tuple[str, str, int], InMemoryStore] = {}

    def store(self, query_id: str, operator: str, partition: int) -> InMemoryStore:
        address = (query_id, operator, partition)
        found = self._stores.get(address)
        if found is None:
            found = self._stores[address] = InMemoryStore(f"{query_id}/{operator}/{partition}")
        return found

    def drop_query(self, query_id: str) -> None:
        for address in [a for a in self._stores if a[0] == query_id]:
            self._stores.pop(address).close()
