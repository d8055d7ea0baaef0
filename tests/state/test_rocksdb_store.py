"""What the RocksDB store adds to the StateStore contract: durability, its on-disk layout, exact values."""

from __future__ import annotations

import math
import os
import random
import signal
import struct
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from rocksdict import Rdict

from ksqlpy.errors import KsqlError
from ksqlpy.state.rocksdb import (
    MB,
    RocksDBSettings,
    RocksDBStoreProvider,
    StateDirectoryInUse,
    state_directory,
)

AGGREGATE = "Aggregate-Aggregate-Materialize"
JOIN = "Join-left-StateStore"

PLAIN_VALUES: list[Any] = [
    True,
    False,
    0,
    -(2**70),
    1.5,
    -0.0,
    math.inf,
    "",
    "héllo ✓",
    b"",
    b"\x00\xff",
    Decimal("1.50"),
    Decimal("-0.000"),
    Decimal("12345678901234567890.123456789"),
    (),
    (1, None, "a"),
    ((1, 2), [3, (4,)]),
    [],
    [None, 1.25, (Decimal("2.0"),)],
    {},
    {"count": 3, "sums": [1.5, None]},
    {1: "int key", (2, "tuple key"): [b"x"]},
    ((("k",), 1_581_323_504_000), 7, {"latest": (None, "v")}),
]


def same(left: Any, right: Any) -> bool:
    """Equal and of the same types all the way down (1 == 1.0 == True and (1,) == [1] do not count)."""
    if type(left) is not type(right):
        return False
    if isinstance(left, tuple | list):
        return len(left) == len(right) and all(map(same, left, right))
    if isinstance(left, dict):
        return list(left) == list(right) and all(same(left[k], right[k]) for k in left)
    if isinstance(left, Decimal):
        return left.as_tuple() == right.as_tuple()
    if isinstance(left, float):
        return struct.pack(">d", left) == struct.pack(">d", right)
    return bool(left == right)


def test_same_tells_apart_what_equality_confuses() -> None:
    assert same((1, [2.0]), (1, [2.0]))
    assert not same((1,), [1])
    assert not same(1, True)
    assert not same(Decimal("1.50"), Decimal("1.5"))
    assert not same(0.0, -0.0)
    assert not same({"a": 1, "b": 2}, {"b": 2, "a": 1})


def test_data_is_there_after_the_store_is_closed_and_reopened(tmp_path: Path) -> None:
    provider = RocksDBStoreProvider(tmp_path)
    store = provider.store("CTAS_T_1", AGGREGATE, 0)
    store.put(b"a", 1)
    store.write_batch({b"b": 2, b"c": 3})
    store.delete(b"c")
    store.close()
    assert list(provider.store("CTAS_T_1", AGGREGATE, 0).range()) == [(b"a", 1), (b"b", 2)]
    provider.close()
    reopened = RocksDBStoreProvider(tmp_path)
    assert list(reopened.store("CTAS_T_1", AGGREGATE, 0).range()) == [(b"a", 1), (b"b", 2)]
    reopened.close()


def test_data_is_there_after_a_clean_close_without_the_write_ahead_log(tmp_path: Path) -> None:
    provider = RocksDBStoreProvider(tmp_path, RocksDBSettings(write_ahead_log=False))
    provider.store("q", AGGREGATE, 0).write_batch({b"a": 1})
    provider.close()
    reopened = RocksDBStoreProvider(tmp_path)
    assert reopened.store("q", AGGREGATE, 0).get(b"a") == 1
    reopened.close()


def test_written_data_survives_kill_9_through_the_write_ahead_log(tmp_path: Path) -> None:
    writer = textwrap.dedent(
        f"""
        import os, signal
        from ksqlpy.state.rocksdb import RocksDBStoreProvider
        store = RocksDBStoreProvider({str(tmp_path)!r}).store("q", {AGGREGATE!r}, 0)
        store.write_batch({{b"k%d" % i: i for i in range(1000)}})
        store.put(b"last", "written")
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    finished = subprocess.run([sys.executable, "-c", writer], check=False)
    assert finished.returncode == -signal.SIGKILL
    provider = RocksDBStoreProvider(tmp_path)
    store = provider.store("q", AGGREGATE, 0)
    assert store.get(b"last") == "written"
    assert store.multi_get([b"k0", b"k999"]) == [0, 999]
    provider.close()


def test_one_database_per_query_and_partition_with_a_column_family_per_operator(tmp_path: Path) -> None:
    provider = RocksDBStoreProvider(tmp_path)
    provider.store("q", AGGREGATE, 0).put(b"k", "aggregate")
    provider.store("q", JOIN, 0).put(b"k", "join")
    provider.store("q", AGGREGATE, 1).put(b"k", "partition 1")
    assert [list(provider.store("q", AGGREGATE, 0).range()), list(provider.store("q", JOIN, 0).range())] == [
        [(b"k", "aggregate")],
        [(b"k", "join")],
    ]
    provider.store("q", JOIN, 0).delete(b"k")
    assert provider.store("q", AGGREGATE, 0).get(b"k") == "aggregate"
    provider.close()
    assert sorted(path.name for path in (tmp_path / "q").iterdir()) == ["0", "1"]
    assert sorted(Rdict.list_cf(str(tmp_path / "q" / "0"))) == sorted(["default", AGGREGATE, JOIN])
    assert sorted(Rdict.list_cf(str(tmp_path / "q" / "1"))) == sorted(["default", AGGREGATE])


def test_a_database_open_elsewhere_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    owner = RocksDBStoreProvider(tmp_path)
    owner.store("q", AGGREGATE, 0)
    with pytest.raises(StateDirectoryInUse, match="q partition 0 is open in another store provider"):
        RocksDBStoreProvider(tmp_path).store("q", JOIN, 0)
    owner.close()
    successor = RocksDBStoreProvider(tmp_path)
    assert successor.store("q", JOIN, 0).get(b"k") is None
    successor.close()


def test_closing_one_store_leaves_the_others_of_its_database_open(tmp_path: Path) -> None:
    provider = RocksDBStoreProvider(tmp_path)
    aggregate = provider.store("q", AGGREGATE, 0)
    join = provider.store("q", JOIN, 0)
    aggregate.close()
    join.put(b"k", 1)
    assert join.get(b"k") == 1
    assert provider.store("q", AGGREGATE, 0).get(b"k") is None
    provider.close()


def test_drop_query_closes_and_removes_its_directory_only(tmp_path: Path) -> None:
    provider = RocksDBStoreProvider(tmp_path)
    provider.store("q1", AGGREGATE, 0).put(b"k", 1)
    provider.store("q1", JOIN, 2).put(b"k", 1)
    provider.store("q2", AGGREGATE, 0).put(b"k", 2)
    provider.drop_query("q1")
    assert not (tmp_path / "q1").exists()
    assert provider.store("q2", AGGREGATE, 0).get(b"k") == 2
    assert provider.store("q1", AGGREGATE, 0).get(b"k") is None
    provider.close()


def test_drop_query_removes_state_left_by_an_earlier_run(tmp_path: Path) -> None:
    earlier = RocksDBStoreProvider(tmp_path)
    earlier.store("q", AGGREGATE, 3).put(b"k", 1)
    earlier.close()
    RocksDBStoreProvider(tmp_path).drop_query("q")
    assert not (tmp_path / "q").exists()


@pytest.mark.parametrize("query_id", ["", ".", "..", "a/b", "../elsewhere"])
def test_a_query_id_that_is_not_a_plain_name_is_refused(tmp_path: Path, query_id: str) -> None:
    provider = RocksDBStoreProvider(tmp_path / "state")
    with pytest.raises(ValueError, match="cannot name a state directory"):
        provider.store(query_id, AGGREGATE, 0)
    with pytest.raises(ValueError, match="cannot name a state directory"):
        provider.drop_query(query_id)
    assert not tmp_path.joinpath("elsewhere").exists()


def test_every_plain_data_value_comes_back_exactly(tmp_path: Path) -> None:
    keys = [struct.pack(">i", number) for number in range(len(PLAIN_VALUES))]
    provider = RocksDBStoreProvider(tmp_path)
    store = provider.store("q", AGGREGATE, 0)
    for key, value in zip(keys, PLAIN_VALUES, strict=True):
        store.put(key, value)
        assert same(store.get(key), value), value
    store.write_batch(dict(zip(keys, reversed(PLAIN_VALUES), strict=True)))
    assert all(map(same, store.multi_get(keys), reversed(PLAIN_VALUES)))
    provider.close()
    reopened = RocksDBStoreProvider(tmp_path)
    scanned = [value for _, value in reopened.store("q", AGGREGATE, 0).range()]
    assert all(map(same, scanned, reversed(PLAIN_VALUES)))
    reopened.close()


def test_a_one_megabyte_value(tmp_path: Path) -> None:
    provider = RocksDBStoreProvider(tmp_path)
    store = provider.store("q", AGGREGATE, 0)
    large = (random.Random(1).randbytes(1024 * 1024), "x" * 1024 * 1024)
    store.put(b"large", large)
    store.put(b"small", 1)
    assert store.get(b"large") == large
    assert list(store.range()) == [(b"large", large), (b"small", 1)]
    provider.close()


def test_a_write_batch_of_100k_keys_scans_back_in_byte_order(tmp_path: Path) -> None:
    numbers = list(range(100_000))
    random.Random(7).shuffle(numbers)
    provider = RocksDBStoreProvider(tmp_path)
    store = provider.store("q", AGGREGATE, 0)
    store.write_batch({b"key" + struct.pack(">q", number): (number, [number * 2]) for number in numbers})
    scanned = list(store.range())
    assert [value for _, value in scanned] == [(number, [number * 2]) for number in range(100_000)]
    assert [key for key, _ in scanned] == sorted(key for key, _ in scanned)
    assert len(store) == 100_000
    lower, upper = b"key" + struct.pack(">q", 500), b"key" + struct.pack(">q", 99_500)
    assert len(list(store.range(lower, upper))) == 99_000
    provider.close()


def test_memory_stays_within_the_configured_block_cache_and_write_buffers(tmp_path: Path) -> None:
    settings = RocksDBSettings(block_cache_bytes=MB, write_buffer_bytes=MB // 2, total_write_buffer_bytes=MB)
    provider = RocksDBStoreProvider(tmp_path, settings)
    stores = [
        provider.store("q", operator, partition) for operator in (AGGREGATE, JOIN) for partition in (0, 1)
    ]
    payload = bytes(1000)
    most = {"block cache": 0, "write buffers": 0}
    for round_number in range(40):  # 16 MB written, four times each store's write buffer
        for store in stores:
            store.write_batch({b"%06d" % (round_number * 100 + n): payload for n in range(100)})
        for kind, used in provider.memory_usage().items():
            most[kind] = max(most[kind], used)
    for store in stores:
        assert sum(1 for _ in store.range()) == 4000
    after_scans = provider.memory_usage()
    assert 0 < most["write buffers"] <= MB * 1.25  # RocksDB lets memtables overshoot while a flush runs
    assert 0 < after_scans["block cache"] <= MB * 1.25
    provider.close()


def test_scan_bounds_hold_after_the_scan_is_handed_on(tmp_path: Path) -> None:
    # RocksDB points into the upper bound rather than copying it; the scan must keep the bound alive.
    provider = RocksDBStoreProvider(tmp_path)
    store = provider.store("q", AGGREGATE, 0)
    keys = [b"key" + bytes([first, second]) for first in b"abc" for second in b"abc"]
    store.write_batch(dict.fromkeys(keys, 1))
    scans = [store.prefix(b"key" + bytes([first])) for first in b"abc"]  # each bound made, then dropped
    reused = [bytes([0xFF, 0xFF]) for _ in range(10_000)]  # take over the memory the bounds were in, if freed
    assert [[key for key, _ in scan] for scan in scans] == [keys[0:3], keys[3:6], keys[6:9]]
    assert len(reused) == 10_000
    provider.close()


def test_state_directory_comes_from_the_properties(tmp_path: Path) -> None:
    assert state_directory({"ksql.streams.state.dir": str(tmp_path / "server")}) == tmp_path / "server"
    assert (
        state_directory({"state.dir": str(tmp_path / "set"), "ksql.streams.state.dir": "x"})
        == tmp_path / "set"
    )
    assert (tmp_path / "server").is_dir()
    assert (tmp_path / "set").is_dir()


def test_state_directory_defaults_to_the_users_xdg_state_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert state_directory({}) == tmp_path / "xdg" / "ksqlpy"
    assert (tmp_path / "xdg" / "ksqlpy").is_dir()
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert state_directory({"state.dir": ""}) == tmp_path / "home" / ".local" / "state" / "ksqlpy"
    assert os.path.isdir(tmp_path / "home" / ".local" / "state" / "ksqlpy")


def test_memory_bounds_come_from_the_configuration() -> None:
    settings = RocksDBSettings.from_properties({"ksqlpy.state.block.cache.bytes": "1048576",
                                                "ksqlpy.state.total.write.buffer.bytes": " 2097152 "})
    assert (settings.block_cache_bytes, settings.total_write_buffer_bytes) == (MB, 2 * MB)
    assert settings.write_buffer_bytes == RocksDBSettings().write_buffer_bytes
    with pytest.raises(KsqlError, match=r"ksqlpy.state.block.cache.bytes must be a number of bytes, not '64MB'"):
        RocksDBSettings.from_properties({"ksqlpy.state.block.cache.bytes": "64MB"})
    with pytest.raises(KsqlError, match="must be a positive number of bytes"):
        RocksDBSettings.from_properties({"ksqlpy.state.write.buffer.bytes": "0"})
