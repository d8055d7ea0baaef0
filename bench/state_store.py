"""Micro-benchmark of the state stores: per-key cost of each operation, in memory and in RocksDB, and the
rate at which a store is restored (written through write_batch in large batches, as a changelog restore
will write it). Not a test; prints a table.

    .venv/bin/python bench/state_store.py [--keys 100000] [--restore 1000000] [--restore-batch 10000]

Values are shaped like an aggregate's entry (group key values, a count, accumulators). Keys are distinct
16-byte keys in random order; reads ask for keys that are there, but for the `get, absent` row. Operation rows give microseconds per key
and restore rows records/s into a fresh store (the issue's target: >= 200 000), each the best of --repeat
runs: the machine is shared, and the best run is the one least disturbed.
"""

from __future__ import annotations

import argparse
import gc
import pickle
import random
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from ksqlpy.state.base import StateStore
from ksqlpy.state.memory import InMemoryStore
from ksqlpy.state.rocksdb import RocksDBSettings, RocksDBStoreProvider

OPERATION_BATCH = 1000  # keys per multi_get / write_batch call in the operation rows


def entry(number: int) -> tuple[tuple[Any, ...], int, Any]:
    """An aggregate's entry: group key values, a count, accumulators (a SUM, an AVG's sum and count)."""
    return ((f"user_{number}", number % 7), number % 1000, [number * 3, (number * 1.5, number % 1000)])


def decimal_entry(number: int) -> tuple[tuple[Any, ...], int, Any]:
    """The same with DECIMAL accumulators, which pickle (and any codec) writes as text."""
    return ((f"user_{number}", number % 7), number % 1000, [Decimal(number) / 4, (Decimal("2.50"), 7)])


def keys_for(count: int, seed: int) -> list[bytes]:
    keys = [number.to_bytes(8, "big") + b"\x00" * 8 for number in range(count)]
    random.Random(seed).shuffle(keys)
    return keys


@contextmanager
def opened(kind: str, settings: RocksDBSettings | None = None) -> Iterator[StateStore]:
    """A fresh store of `kind` ("memory" or "rocksdb"), removed afterwards."""
    if kind == "memory":
        yield InMemoryStore("bench")
        return
    directory = Path(tempfile.mkdtemp(prefix="ksqlpy-bench-state-"))
    provider = RocksDBStoreProvider(directory, settings)
    try:
        yield provider.store("bench", "Aggregate-Aggregate-Materialize", 0)
    finally:
        provider.close()
        shutil.rmtree(directory)


def drain(results: Iterable[object]) -> None:
    """Runs an operation over its inputs, dropping each result at once: results kept alive would make
    the garbage collector's passes grow with the run and be measured as the operation's cost."""
    deque(results, maxlen=0)


def timed(action: Callable[[], object]) -> float:
    # The benchmark's own inputs (a million prepared entries) are no part of what a store costs; frozen,
    # the collector's full passes do not walk them.
    gc.collect()
    gc.freeze()
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def batches(items: list[Any], size: int) -> list[list[Any]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def operation_costs(kind: str, count: int, repeat: int) -> dict[str, float]:
    """Microseconds per key of put, get (of keys there and not), write_batch and multi_get over `count`
    keys (best of `repeat`)."""
    keys = keys_for(count, seed=1)
    values = [entry(number) for number in range(count)]
    # Absent keys, as an aggregate meets for each new group: RocksDB answers them from its bloom filters.
    absent = [key[:-1] + b"\x01" for key in keys]
    key_batches = batches(keys, OPERATION_BATCH)
    change_batches = [dict(zip(part, values, strict=False)) for part in key_batches]
    best: dict[str, float] = {}
    for _ in range(repeat):
        with opened(kind) as store:
            runs = {
                "put": lambda store=store: drain(map(store.put, keys, values)),
                "get": lambda store=store: drain(map(store.get, keys)),
                "get, absent": lambda store=store: drain(map(store.get, absent)),
                "write_batch": lambda store=store: drain(map(store.write_batch, change_batches)),
                "multi_get": lambda store=store: drain(map(store.multi_get, key_batches)),
            }
            for name, run in runs.items():
                seconds = timed(run) / count * 1e6
                best[name] = min(best.get(name, seconds), seconds)
    return best


def restore_rate(kind: str, records: int, batch_size: int, settings: RocksDBSettings | None = None) -> float:
    """Records/s of writing `records` small entries into a fresh store through write_batch."""
    keys = keys_for(records, seed=2)
    changes = [{key: entry(number) for number, key in enumerate(part)} for part in batches(keys, batch_size)]
    with opened(kind, settings) as store:
        seconds = timed(lambda: drain(map(store.write_batch, changes)))
        assert len(store) == records
    return records / seconds


def round_trip_seconds(
    values: list[Any], dumps: Callable[[Any], bytes], loads: Callable[[bytes], Any]
) -> float:
    return timed(lambda: drain(loads(dumps(value)) for value in values))


def serializer_costs(count: int) -> dict[str, float]:
    """Microseconds per entry to serialize and read back: pickle, and orjson for comparison (orjson alone
    is lossy here: tuples come back as lists, Decimal as a string)."""
    codecs: dict[str, tuple[Callable[[Any], bytes], Callable[[bytes], Any]]] = {
        "pickle": (partial(pickle.dumps, protocol=5), pickle.loads),
        "orjson (lossy)": (partial(orjson.dumps, default=str), orjson.loads),
    }
    costs = {}
    for shape, make in (("entry", entry), ("DECIMAL entry", decimal_entry)):
        values = [make(number) for number in range(count)]
        for codec, (dumps, loads) in codecs.items():
            costs[f"{codec}, {shape}"] = round_trip_seconds(values, dumps, loads) / count * 1e6
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--restore", type=int, default=1_000_000)
    parser.add_argument("--restore-batch", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()

    costs = {kind: operation_costs(kind, arguments.keys, arguments.repeat) for kind in ("memory", "rocksdb")}
    print(
        f"per-key cost, µs ({arguments.keys:,} keys; batches of {OPERATION_BATCH:,}; best of {arguments.repeat})"
    )
    print(f"{'operation':<16}{'memory':>10}{'rocksdb':>10}{'ratio':>8}")
    for name in costs["memory"]:
        memory, rocksdb = costs["memory"][name], costs["rocksdb"][name]
        print(f"{name:<16}{memory:>10.2f}{rocksdb:>10.2f}{rocksdb / memory:>7.1f}x")

    print()
    print(
        f"restore: {arguments.restore:,} entries through write_batch in batches of {arguments.restore_batch:,}"
    )
    contenders: list[tuple[str, str, RocksDBSettings | None]] = [
        ("memory", "memory", None),
        ("rocksdb", "rocksdb (write-ahead log on)", RocksDBSettings()),
        ("rocksdb", "rocksdb (write-ahead log off)", RocksDBSettings(write_ahead_log=False)),
    ]
    for kind, label, settings in contenders:
        rate = max(
            restore_rate(kind, arguments.restore, arguments.restore_batch, settings)
            for _ in range(arguments.repeat)
        )
        print(f"{label:<32}{rate:>12,.0f} records/s")

    print()
    print("serialize + deserialize one entry, µs")
    for name, micros in serializer_costs(arguments.keys).items():
        print(f"{name:<32}{micros:>12.2f}")


if __name__ == "__main__":
    main()
