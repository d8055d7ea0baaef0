"""A batch that fails and is retried in parts leaves no trace in a stateful query's state: the records that
succeed are aggregated exactly once, the one at fault is logged."""

from __future__ import annotations

import json

from ksqlpy.driver import InMemoryDriver
from ksqlpy.functions.registry import FunctionRegistry
from ksqlpy.functions.udf import declarations_of, udaf
from ksqlpy.state.memory import InMemoryStore
from ksqlpy.state.write_behind import WriteBehindStore


@udaf(name="fragile_total")
class FragileTotal:
    """Sums, but cannot report a total of exactly 13 (a stand-in for an aggregate with a bug)."""

    def init(self) -> int:
        return 0

    def add(self, acc: int, value: int) -> int:
        return acc + value

    def merge(self, a: int, b: int) -> int:
        return a + b

    def result(self, acc: int) -> int:
        if acc == 13:
            raise RuntimeError("unlucky total")
        return acc


def test_a_batch_retried_in_parts_counts_each_good_record_once() -> None:
    registry = FunctionRegistry.with_builtins()
    for overload in declarations_of(FragileTotal):
        registry.add(overload)
    driver = InMemoryDriver(registry=registry)
    driver.execute("CREATE STREAM s (k STRING KEY, v INT) WITH (kafka_topic='s', value_format='JSON', partitions=2);"
                   "CREATE TABLE t AS SELECT k, COUNT(*) AS n, FRAGILE_TOTAL(v) AS total FROM s GROUP BY k;")
    # partition 0's group is aggregated and stored before partition 1's fails the batch
    driver.produce("s", b"a", json.dumps({"V": 5}).encode(), 0, partition=0)
    driver.produce("s", b"b", json.dumps({"V": 13}).encode(), 1, partition=1)
    driver.produce("s", b"a", json.dumps({"V": 1}).encode(), 2, partition=0)
    driver.process()
    values = [(record.key, json.loads(record.value or b"null")) for record in driver.records("T")]
    assert values == [(b"a", {"N": 1, "TOTAL": 5}), (b"a", {"N": 2, "TOTAL": 6})]
    assert [(entry["partition"], entry["offset"]) for entry in driver.processing_log] == [(1, 0)]
    assert "unlucky total" in str(driver.processing_log[0]["reason"])


def test_the_write_behind_cache_holds_writes_until_flushed_and_drops_them_when_discarded() -> None:
    base = InMemoryStore("s")
    base.put(b"a", 1)
    cached = WriteBehindStore(base)
    cached.put(b"b", 2)
    cached.delete(b"a")
    assert (cached.get(b"a"), cached.get(b"b"), base.get(b"b")) == (None, 2, None)
    assert list(cached.range()) == [(b"b", 2)] and cached.multi_get([b"a", b"b", b"c"]) == [None, 2, None]
    cached.discard()
    assert list(cached.range()) == [(b"a", 1)]
    cached.write_batch({b"c": 3, b"a": None})
    cached.flush()
    assert list(base.range()) == [(b"c", 3)]


def test_the_write_behind_cache_keeps_finished_batches_until_the_commit_and_rolls_them_back_on_failure() -> None:
    base = InMemoryStore("s")
    cached = WriteBehindStore(base)
    cached.put(b"a", 1)
    cached.end_batch()  # batch one done
    cached.put(b"b", 2)
    cached.discard()  # batch two retried: only its own write goes
    assert (cached.get(b"a"), cached.get(b"b"), base.get(b"a")) == (1, None, None)
    cached.delete(b"a")
    cached.put(b"c", 3)
    assert cached.flush() == {b"a": None, b"c": 3}  # the commit writes both batches at once, and says what
    assert list(base.range()) == [(b"c", 3)]
    cached.put(b"d", 4)
    cached.end_batch()
    cached.rollback()  # a failed commit drops every batch since the last one
    assert cached.get(b"d") is None and cached.flush() == {}
