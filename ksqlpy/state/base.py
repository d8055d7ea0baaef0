"""The state store interface: a sorted map from bytes to plain-data values.

Keys are bytes so that byte order can be made time order (windowed keys end in big-endian window
bounds) and one key's windows are a single prefix scan. Values are plain data (see
ksqlpy.functions.aggregate); a durable store serializes them, the in-memory one keeps them as they are.
A Python call into a store costs several times a dict access, so operators group their work and use
multi_get and write_batch once per batch rather than get and put once per record.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from typing import Any


class StateStore(ABC):
    """One operator's state for one partition of one query."""

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def get(self, key: bytes) -> Any | None:
        """The value under `key`, None when there is none."""

    @abstractmethod
    def multi_get(self, keys: Sequence[bytes]) -> list[Any | None]:
        """The values under `keys`, in order, None where there is none."""

    @abstractmethod
    def put(self, key: bytes, value: Any) -> None: ...

    @abstractmethod
    def delete(self, key: bytes) -> None: ...

    @abstractmethod
    def write_batch(self, changes: Mapping[bytes, Any | None]) -> None:
        """Apply many puts at once; a None value deletes its key."""

    @abstractmethod
    def range(self, start: bytes | None = None, end: bytes | None = None) -> Iterator[tuple[bytes, Any]]:
        """Entries with start <= key < end (unbounded where None), in byte order of the keys."""

    def prefix(self, prefix: bytes) -> Iterator[tuple[bytes, Any]]:
        """Entries whose key starts with `prefix`, in byte order."""
        return self.range(prefix, _next_prefix(prefix))

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def close(self) -> None:
        """Release what the store holds (files, handles)."""


class StoreProvider(ABC):
    """Makes the stores of a query: one per (operator, partition), created on first use."""

    @abstractmethod
    def store(self, query_id: str, operator: str, partition: int) -> StateStore: ...

    @abstractmethod
    def drop_query(self, query_id: str) -> None:
        """Remove every store of a query (TERMINATE)."""


def _next_prefix(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with `prefix` (None: no such bound)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])
