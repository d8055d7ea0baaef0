"""The durable state store: RocksDB through rocksdict, one database per (query, partition) on local disk.

Layout: `<state directory>/<query id>/<partition>` is one RocksDB database, and each operator store of
that task is a column family named after the operator (e.g. `Aggregate-Aggregate-Materialize`), so a
task's stores share one write-ahead log and one set of files, as a Kafka Streams task's stores share a
task directory. Keys are stored as the bytes they are (rocksdict's raw mode), so RocksDB's bytewise order
is the order the StateStore interface promises.

Values are serialized as ksqlpy.state.values says. A restore writes changelog bytes as they are
(write_encoded), once checked to be plain data, so restoring costs no second serialization.

Memory is bounded per provider: one block cache shared by every database (index and filter blocks are
charged to it too) and one write-buffer manager bounding the memtables of all of them together.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from rocksdict import (
    BlockBasedOptions,
    Cache,
    Options,
    Rdict,
    ReadOptions,
    WriteBatch,
    WriteBufferManager,
    WriteOptions,
)

from ksqlpy.errors import KsqlError
from ksqlpy.state.base import StateStore, StoreProvider
from ksqlpy.state.values import decode, encode

MB = 1024 * 1024
STATE_DIR_PROPERTIES = ("state.dir", "ksql.streams.state.dir")  # as SET names it first, then server config


class StateDirectoryInUse(RuntimeError):
    """A database is already open, in this process or another: RocksDB allows one owner at a time."""


def configured_state_directory(properties: Mapping[str, Any]) -> Path | None:
    """The state directory `state.dir` / `ksql.streams.state.dir` name, if either does."""
    for name in STATE_DIR_PROPERTIES:
        configured = str(properties.get(name) or "").strip()
        if configured:
            return Path(configured).expanduser()
    return None


def state_directory(properties: Mapping[str, Any]) -> Path:
    """Where the durable state lives: `state.dir` / `ksql.streams.state.dir`, else a per-user default.

    The default follows the XDG base directory convention: `$XDG_STATE_HOME/ksqlpy`, or
    `~/.local/state/ksqlpy` when XDG_STATE_HOME is unset. The directory is created if missing.
    """
    directory = configured_state_directory(properties)
    if directory is None:
        xdg_state_home = os.environ.get("XDG_STATE_HOME", "")
        # The XDG convention ignores a relative XDG_STATE_HOME.
        base = Path(xdg_state_home) if os.path.isabs(xdg_state_home) else Path.home() / ".local" / "state"
        directory = base / "ksqlpy"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@dataclass(frozen=True)
class RocksDBSettings:
    """Memory bounds and durability of a provider's databases."""

    block_cache_bytes: int = 64 * MB  # shared by every database of the provider
    write_buffer_bytes: int = 16 * MB  # one memtable of one column family
    total_write_buffer_bytes: int = 64 * MB  # all memtables of the provider together
    # The write-ahead log makes a write durable before the memtable is flushed; without it a crash loses
    # what was written since the last flush, which only a changelog restore can bring back.
    write_ahead_log: bool = True

    @classmethod
    def from_properties(cls, properties: Mapping[str, Any]) -> RocksDBSettings:
        """The defaults, with the bounds the configuration sets (SETTING_PROPERTIES, in bytes)."""
        chosen: dict[str, Any] = {}
        for name, field_name in SETTING_PROPERTIES.items():
            value = properties.get(name)
            if value is not None and str(value).strip():
                try:
                    chosen[field_name] = int(str(value).strip())
                except ValueError:
                    raise KsqlError(f"{name} must be a number of bytes, not {value!r}") from None
                if chosen[field_name] <= 0:
                    raise KsqlError(f"{name} must be a positive number of bytes, not {value!r}")
        return cls(**chosen)


SETTING_PROPERTIES = {
    "ksqlpy.state.block.cache.bytes": "block_cache_bytes",
    "ksqlpy.state.write.buffer.bytes": "write_buffer_bytes",
    "ksqlpy.state.total.write.buffer.bytes": "total_write_buffer_bytes",
}


class _Database:
    """One RocksDB database: the stores of one partition of one query, a column family each.

    It closes itself when its last store is closed.
    """

    def __init__(
        self, path: Path, db_options: Options, family_options: Options, write_options: WriteOptions
    ) -> None:
        path.mkdir(parents=True, exist_ok=True)
        # RocksDB refuses to open a database without naming every column family it has.
        self.families = set(Rdict.list_cf(str(path))) if (path / "CURRENT").exists() else set()
        self.families.discard("default")
        try:
            self.rdict = Rdict(
                str(path), db_options, column_families=dict.fromkeys(self.families, family_options)
            )
        except Exception as error:  # rocksdict raises plain Exception for every RocksDB status
            if "lock" not in str(error).lower():
                raise
            raise StateDirectoryInUse(
                f"the state of {path.parent.name} partition {path.name} is open in another store provider "
                f"(each ksqlpy process needs its own state directory: set state.dir): {error}"
            ) from error
        self.path = path
        self._family_options = family_options
        self._write_options = write_options
        self._open_stores: set[str] = set()
        self.closed = False

    def open_store(self, operator: str) -> RocksDBStore:
        if operator in self.families:
            family = self.rdict.get_column_family(operator)
        else:
            family = self.rdict.create_column_family(operator, self._family_options)
            self.families.add(operator)
        family.set_write_options(self._write_options)
        self._open_stores.add(operator)
        return RocksDBStore(self, operator, family)

    def write(self, batch: WriteBatch) -> None:
        self.rdict.write(batch, self._write_options)

    def release(self, operator: str) -> None:
        self._open_stores.discard(operator)
        if not self._open_stores and not self.closed:
            self.rdict.close()
            self.closed = True


class RocksDBStore(StateStore):
    """One operator's column family in its task's database.

    Point reads and writes are one call into RocksDB each plus a pickle; write_batch is one atomic
    WriteBatch; scans walk a RocksDB iterator, which reads from the snapshot taken when the scan starts,
    so the store may be written while a scan walks it. __len__ counts the keys by scanning them: RocksDB
    keeps only an estimate, so it costs a full scan and is meant for tests and diagnostics.
    """

    def __init__(self, database: _Database, operator: str, family: Rdict) -> None:
        super().__init__(f"{database.path}/{operator}")
        self.operator = operator
        self._database = database
        self._family = family
        self.closed = False

    def get(self, key: bytes) -> Any | None:
        stored = self._family.get(key)
        return None if stored is None else decode(stored)

    def multi_get(self, keys: Sequence[bytes]) -> list[Any | None]:
        if not keys:
            return []
        stored_values = cast("list[bytes | None]", self._family.get(list(keys)))  # a list for a list of keys
        return [None if stored is None else decode(stored) for stored in stored_values]

    def put(self, key: bytes, value: Any) -> None:
        self._family[key] = encode(value)

    def delete(self, key: bytes) -> None:
        del self._family[key]

    def write_batch(self, changes: Mapping[bytes, Any | None]) -> None:
        self.write_encoded({key: None if value is None else encode(value) for key, value in changes.items()})

    def write_encoded(self, changes: Mapping[bytes, bytes | None]) -> None:
        """Apply many puts of already serialized values at once, as one WriteBatch; None deletes its key."""
        if not changes:
            return
        batch = WriteBatch(raw_mode=True)
        # The handle is fetched per batch, not kept: a live handle keeps the database open after close.
        batch.set_default_column_family(self._database.rdict.get_column_family_handle(self.operator))
        # The item methods skip parsing put()'s and delete()'s optional column family: a third faster.
        put, delete = batch.__setitem__, batch.__delitem__
        for key, value in changes.items():
            if value is None:
                delete(key)
            else:
                put(key, value)
        self._database.write(batch)

    def range(self, start: bytes | None = None, end: bytes | None = None) -> Iterator[tuple[bytes, Any]]:
        if start is not None and end is not None and start >= end:
            return iter(())
        bounds = ReadOptions()
        if end is not None:
            bounds.set_iterate_upper_bound(end)
        # items() creates the RocksDB iterator (and so its snapshot) now, not at the first next().
        return _loaded(self._family.items(from_key=start, read_opt=bounds), bounds)

    def __len__(self) -> int:
        return sum(1 for _ in self._family.keys())  # noqa: SIM118 - an Rdict is not iterable itself

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._family.close()
            self._database.release(self.operator)


def _loaded(items: Iterable[tuple[Any, bytes]], bounds: ReadOptions) -> Iterator[tuple[bytes, Any]]:
    """Unpickles the values of a scan, holding its read options while it runs: they own the upper bound,
    RocksDB's iterator only points to it (rocksdict 0.3 does not keep them alive), and would compare keys
    with freed memory if they were collected first."""
    for key, stored in items:
        yield key, decode(stored)


class RocksDBStoreProvider(StoreProvider):
    """Opens one database per (query, partition) under `directory`, a column family per operator store.

    A store stays open until closed or its query dropped; store() for the same address returns the same
    open store, and after close reopens it from disk.
    """

    def __init__(self, directory: Path, settings: RocksDBSettings | None = None) -> None:
        self.directory = Path(directory)
        self.settings = settings or RocksDBSettings()
        self.block_cache = Cache(self.settings.block_cache_bytes)
        # Allowing stalls makes the total a bound: past it writes wait for a flush instead of growing
        # memtables (without, 4 stores measured 4x the total).
        self.write_buffers = WriteBufferManager(self.settings.total_write_buffer_bytes, True)
        self._databases: dict[tuple[str, int], _Database] = {}
        self._stores: dict[tuple[str, str, int], RocksDBStore] = {}

    def store(self, query_id: str, operator: str, partition: int) -> RocksDBStore:
        address = (query_id, operator, partition)
        found = self._stores.get(address)
        if found is None or found.closed:
            found = self._stores[address] = self._database(query_id, partition).open_store(operator)
        return found

    def drop_query(self, query_id: str) -> None:
        for address in [a for a in self._stores if a[0] == query_id]:
            self._stores.pop(address).close()
        for task in [t for t in self._databases if t[0] == query_id]:
            del self._databases[task]
        shutil.rmtree(self._query_directory(query_id), ignore_errors=True)

    def partition_directory(self, query_id: str, partition: int) -> Path:
        """Where a (query, partition)'s database lives."""
        return self._query_directory(query_id) / str(partition)

    def close_partition(self, query_id: str, partition: int) -> None:
        """Close the stores of one partition of a query; their data stays on disk."""
        for address in [a for a in self._stores if a[0] == query_id and a[2] == partition]:
            self._stores.pop(address).close()
        self._databases.pop((query_id, partition), None)

    def drop_partition(self, query_id: str, partition: int) -> None:
        """Remove the stores of one partition of a query, from disk too (before restoring it in full)."""
        self.close_partition(query_id, partition)
        shutil.rmtree(self.partition_directory(query_id, partition), ignore_errors=True)

    def memory_usage(self) -> dict[str, int]:
        """Bytes the provider's databases hold in memory, by kind, each bounded by its setting."""
        return {"block cache": self.block_cache.get_usage(), "write buffers": self.write_buffers.get_usage()}

    def close(self) -> None:
        """Close every open store (and so every database); their data stays on disk."""
        for store in self._stores.values():
            store.close()
        self._stores.clear()
        self._databases.clear()

    def _database(self, query_id: str, partition: int) -> _Database:
        task = (query_id, partition)
        database = self._databases.get(task)
        if database is None or database.closed:
            path = self.partition_directory(query_id, partition)
            database = self._databases[task] = _Database(
                path, self._db_options(), self._family_options(), self._write_options()
            )
        return database

    def _query_directory(self, query_id: str) -> Path:
        if not query_id or query_id in (".", "..") or "/" in query_id or os.sep in query_id:
            raise ValueError(f"a query id cannot name a state directory: {query_id!r}")
        return self.directory / query_id

    def _db_options(self) -> Options:
        options = self._family_options()
        options.create_if_missing(True)
        options.create_missing_column_families(True)
        options.set_write_buffer_manager(self.write_buffers)
        return options

    def _family_options(self) -> Options:
        table = BlockBasedOptions()
        table.set_block_cache(self.block_cache)
        table.set_cache_index_and_filter_blocks(True)
        # Most lookups of a growing aggregate are for keys not there yet; a bloom filter answers those
        # without reading a block.
        table.set_bloom_filter(10, False)
        options = Options(raw_mode=True)
        options.set_block_based_table_factory(table)
        options.set_write_buffer_size(self.settings.write_buffer_bytes)
        return options

    def _write_options(self) -> WriteOptions:
        options = WriteOptions()
        # rocksdict's stub declares disable_wal a method; it is a property.
        options.disable_wal = not self.settings.write_ahead_log  # type: ignore[method-assign, assignment]
        return options
