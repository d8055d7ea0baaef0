"""An operator's stores and positions across batches, commits, failures and partitions moving away."""

from __future__ import annotations

from pathlib import Path

from ksqlpy.state.memory import InMemoryStoreProvider
from ksqlpy.state.operator_stores import OperatorStores, StoreChanges
from ksqlpy.state.rocksdb import RocksDBStoreProvider


def test_positions_follow_batches_and_commits_and_reach_their_own_store() -> None:
    stores = OperatorStores(InMemoryStoreProvider(), "Q", "Aggregate")
    stream_times = stores.positions("stream-time")
    stores(0).put(b"k", 1)
    stream_times[0] = 100
    stores.end_batch()
    stream_times[0] = 200
    stores.discard()  # the batch that moved stream time to 200 is retried in parts
    assert stream_times == {0: 100}
    assert stores.flush() == [StoreChanges("Aggregate", 0, {b"k": 1}),
                              StoreChanges("Aggregate-positions", 0, {b"stream-time": 100})]
    assert stores.flush() == []  # nothing changed since
    stream_times[0] = 300
    stores.end_batch()
    stores.rollback()
    assert stream_times == {0: 100}
    assert stores.store_names == ["Aggregate", "Aggregate-positions"]


def test_a_partition_taken_up_again_resumes_its_positions_from_disk(tmp_path: Path) -> None:
    provider = RocksDBStoreProvider(tmp_path)
    first = OperatorStores(provider, "Q", "Aggregate")
    first.positions("stream-time")[1] = 42
    first(1).put(b"k", (1,))
    first.flush()
    first.release({1})
    provider.close()

    reopened = OperatorStores(RocksDBStoreProvider(tmp_path), "Q", "Aggregate")
    stream_times = reopened.positions("stream-time")
    assert stream_times == {}
    reopened.load(1)
    assert stream_times == {1: 42} and reopened(1).get(b"k") == (1,)
    reopened.discard()  # loaded positions are the baseline that undoing returns to
    assert stream_times == {1: 42}
