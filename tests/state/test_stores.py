"""The StateStore contract, run over every store implementation, and the providers that make stores."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ksqlpy.state.base import StateStore, StoreProvider
from ksqlpy.state.memory import InMemoryStore, InMemoryStoreProvider
from ksqlpy.state.rocksdb import RocksDBStoreProvider

# Each factory is given a fresh directory (pytest's tmp_path) that a durable store may keep its files in.
STORE_FACTORIES: dict[str, Callable[[Path], StateStore]] = {
    "memory": lambda _: InMemoryStore("test"),
    "rocksdb": lambda directory: RocksDBStoreProvider(directory).store("query", "operator", 0),
}
PROVIDER_FACTORIES: dict[str, Callable[[Path], StoreProvider]] = {
    "memory": lambda _: InMemoryStoreProvider(),
    "rocksdb": RocksDBStoreProvider,
}


@pytest.fixture(params=sorted(STORE_FACTORIES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    made = STORE_FACTORIES[request.param](tmp_path)
    yield made
    made.close()


@pytest.fixture(params=sorted(PROVIDER_FACTORIES))
def provider(request: pytest.FixtureRequest, tmp_path: Path) -> StoreProvider:
    return PROVIDER_FACTORIES[request.param](tmp_path)


def filled(store: StateStore, keys: list[bytes]) -> StateStore:
    for number, key in enumerate(keys):
        store.put(key, number)
    return store


def keys_of(entries: Iterator[tuple[bytes, object]]) -> list[bytes]:
    return [key for key, _ in entries]


def test_put_get_overwrite_and_delete(store: StateStore) -> None:
    assert store.get(b"a") is None
    store.put(b"a", {"count": 1, "sums": [1.5, None]})
    assert store.get(b"a") == {"count": 1, "sums": [1.5, None]}
    store.put(b"a", {"count": 2, "sums": [3.0, None]})
    assert store.get(b"a") == {"count": 2, "sums": [3.0, None]}
    assert len(store) == 1
    store.delete(b"a")
    assert store.get(b"a") is None
    assert len(store) == 0
    store.delete(b"never there")
    assert len(store) == 0


def test_keys_are_compared_as_bytes_not_text(store: StateStore) -> None:
    store.put(b"\x00", "zero")
    store.put(b"", "empty")
    store.put(b"\xff\xff", "high")
    assert store.get(b"") == "empty"
    assert keys_of(store.range()) == [b"", b"\x00", b"\xff\xff"]


def test_multi_get_keeps_order_and_answers_none_for_missing_keys(store: StateStore) -> None:
    filled(store, [b"a", b"b"])
    assert store.multi_get([b"b", b"missing", b"a", b"b"]) == [1, None, 0, 1]
    assert store.multi_get([]) == []


def test_write_batch_puts_and_deletes_at_once(store: StateStore) -> None:
    filled(store, [b"a", b"b", b"c"])
    store.write_batch({b"a": 10, b"b": None, b"d": 13, b"never there": None})
    assert list(store.range()) == [(b"a", 10), (b"c", 2), (b"d", 13)]
    assert len(store) == 3


def test_range_includes_its_start_and_excludes_its_end(store: StateStore) -> None:
    filled(store, [b"a", b"b", b"c", b"d"])
    assert keys_of(store.range(b"b", b"d")) == [b"b", b"c"]
    assert keys_of(store.range(b"bb", b"d")) == [b"c"]
    assert keys_of(store.range(None, b"c")) == [b"a", b"b"]
    assert keys_of(store.range(b"c", None)) == [b"c", b"d"]
    assert keys_of(store.range()) == [b"a", b"b", b"c", b"d"]
    assert keys_of(store.range(b"b", b"b")) == []
    assert keys_of(store.range(b"d", b"a")) == []


def test_range_yields_values_with_keys(store: StateStore) -> None:
    filled(store, [b"x", b"y"])
    assert list(store.range()) == [(b"x", 0), (b"y", 1)]


def test_store_may_be_written_while_a_scan_walks_it(store: StateStore) -> None:
    filled(store, [b"k1", b"k2", b"k3"])
    walked = []
    for key, _ in store.prefix(b"k"):
        walked.append(key)
        store.delete(key)
    assert walked == [b"k1", b"k2", b"k3"]
    assert len(store) == 0


def test_prefix_scans_only_keys_with_the_prefix(store: StateStore) -> None:
    filled(store, [b"a", b"ab", b"abc", b"ac", b"b", b"\x00ab"])
    assert keys_of(store.prefix(b"ab")) == [b"ab", b"abc"]
    assert keys_of(store.prefix(b"a")) == [b"a", b"ab", b"abc", b"ac"]
    assert keys_of(store.prefix(b"")) == [b"\x00ab", b"a", b"ab", b"abc", b"ac", b"b"]
    assert keys_of(store.prefix(b"z")) == []


def test_prefix_scans_prefixes_ending_in_ff_bytes(store: StateStore) -> None:
    filled(store, [b"a\xfe", b"a\xff", b"a\xff\x00", b"a\xff\xff", b"a\xff\xff\x01", b"b", b"b\x00"])
    assert keys_of(store.prefix(b"a\xff")) == [b"a\xff", b"a\xff\x00", b"a\xff\xff", b"a\xff\xff\x01"]
    assert keys_of(store.prefix(b"a\xff\xff")) == [b"a\xff\xff", b"a\xff\xff\x01"]
    assert keys_of(store.prefix(b"a")) == [b"a\xfe", b"a\xff", b"a\xff\x00", b"a\xff\xff", b"a\xff\xff\x01"]


def test_prefix_of_only_ff_bytes_runs_to_the_end(store: StateStore) -> None:
    filled(store, [b"\xfe", b"\xff", b"\xff\x01", b"\xff\xff", b"\xff\xff\xff"])
    assert keys_of(store.prefix(b"\xff")) == [b"\xff", b"\xff\x01", b"\xff\xff", b"\xff\xff\xff"]
    assert keys_of(store.prefix(b"\xff\xff")) == [b"\xff\xff", b"\xff\xff\xff"]


def test_windowed_keys_sort_by_key_then_big_endian_window_start(store: StateStore) -> None:
    # Window starts chosen so that little-endian or decimal-text order would differ from time order.
    starts = [0, 1, 255, 256, 65_536, 1_581_323_504_000, 2**62]
    for start in reversed(starts):
        store.put(b"k1" + struct.pack(">q", start), start)
        store.put(b"k0" + struct.pack(">q", start), -start)
    assert [value for _, value in store.prefix(b"k1")] == starts
    one_hour_ago = b"k1" + struct.pack(">q", 256)
    now = b"k1" + struct.pack(">q", 1_581_323_504_000)
    assert [value for _, value in store.range(one_hour_ago, now)] == [256, 65_536]


def test_provider_gives_one_store_per_query_operator_and_partition(provider: StoreProvider) -> None:
    addresses = [("q1", "agg", 0), ("q1", "agg", 1), ("q1", "join", 0), ("q2", "agg", 0)]
    stores = [provider.store(*address) for address in addresses]
    for number, made in enumerate(stores):
        made.put(b"k", number)
    assert [provider.store(*address).get(b"k") for address in addresses] == [0, 1, 2, 3]
    assert [len(made) for made in stores] == [1, 1, 1, 1]


def test_drop_query_removes_only_that_querys_stores(provider: StoreProvider) -> None:
    provider.store("q1", "agg", 0).put(b"k", 1)
    provider.store("q1", "agg", 3).put(b"k", 1)
    provider.store("q2", "agg", 0).put(b"k", 2)
    provider.drop_query("q1")
    assert provider.store("q1", "agg", 0).get(b"k") is None
    assert len(provider.store("q1", "agg", 3)) == 0
    assert provider.store("q2", "agg", 0).get(b"k") == 2
    provider.drop_query("never started")
