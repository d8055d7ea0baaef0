"""Scans through the write-behind cache see exactly the held writes, as they change after an earlier scan."""

from __future__ import annotations

from ksqlpy.state.memory import InMemoryStore
from ksqlpy.state.write_behind import WriteBehindStore


def test_writes_after_a_scan_appear_in_later_scans_in_key_order() -> None:
    store = WriteBehindStore(InMemoryStore("s"))
    store.write_batch({b"a": 1, b"c": 3})
    store.flush()
    store.put(b"e", 5)
    assert list(store.range(b"b")) == [(b"c", 3), (b"e", 5)]
    store.put(b"b", 2)
    store.delete(b"c")
    store.write_batch({b"d": 4, b"a": None})
    assert list(store.range()) == [(b"b", 2), (b"d", 4), (b"e", 5)]
    assert list(store.range(b"b", b"e")) == [(b"b", 2), (b"d", 4)]


def test_scans_forget_discarded_and_rolled_back_writes_and_read_flushed_ones_from_the_store() -> None:
    store = WriteBehindStore(InMemoryStore("s"))
    store.put(b"a", 1)
    store.end_batch()
    store.put(b"b", 2)
    assert [key for key, _ in store.range()] == [b"a", b"b"]
    store.discard()
    assert [key for key, _ in store.range()] == [b"a"]
    store.put(b"c", 3)
    store.flush()
    store.put(b"d", 4)
    assert [key for key, _ in store.range()] == [b"a", b"c", b"d"]
    store.rollback()
    store.put(b"b", 2)
    assert [key for key, _ in store.range()] == [b"a", b"b", b"c"]
