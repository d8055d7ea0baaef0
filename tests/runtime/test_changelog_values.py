"""What a restore accepts from a changelog topic: plain data only; anything else stops it with a clear error
before it reaches the local store."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from ksqlpy.runtime.changelog import StateRestoreError, _write_restored
from ksqlpy.state.rocksdb import RocksDBStoreProvider
from ksqlpy.state.values import encode


class RunsCode:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, ("true",)


def test_plain_values_are_restored_and_code_is_refused(tmp_path: Path) -> None:
    store = RocksDBStoreProvider(tmp_path).store("Q", "Aggregate", 0)
    _write_restored({"changelog": {b"a": encode(((1, 2.5), 10, ("a",))), b"gone": None}}, {"changelog": store})
    assert store.get(b"a") == ((1, 2.5), 10, ("a",))

    with pytest.raises(StateRestoreError, match=r"changelog holds a record that is not ksqlpy state .*posix\.system"):
        _write_restored({"changelog": {b"b": pickle.dumps(RunsCode())}}, {"changelog": store})
    assert store.get(b"b") is None
