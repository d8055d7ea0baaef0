"""User aggregates (@udaf) behind the Aggregator interface: row and vectorized folding, undo, failures as
UdfErrors, and hot reload that refuses a new accumulator type."""

from __future__ import annotations

import math
import os
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from ksqlpy import udaf
from ksqlpy.driver import InMemoryDriver
from ksqlpy.errors import StatementError, UdfError
from ksqlpy.functions.aggregate import Aggregator
from ksqlpy.functions.loader import UdfLoader
from ksqlpy.functions.registry import FunctionRegistry, Overload
from ksqlpy.functions.udf import accumulator_type_of, declarations_of
from ksqlpy.types import BIGINT, DOUBLE, STRING, ArrayType

REPO = Path(__file__).resolve().parents[2]


def aggregator_of(target: Any) -> Aggregator:
    """The aggregator a query calling the declared function builds, resolved through a registry."""
    [overload] = declarations_of(target)
    registry = FunctionRegistry()
    registry.add(overload)
    bound = registry.resolve(overload.name, list(overload.params), "aggregate")
    aggregator = bound.overload.impl(bound.arg_types, bound.return_type, [])
    assert isinstance(aggregator, Aggregator)
    return aggregator


@udaf(description="every value, in order")
class Gather:
    """Mutates its accumulator in place, as Python code often does: the adapter must not let that leak."""

    def init(self) -> list[str]:
        return []

    def add(self, acc: list[str], value: str | None) -> list[str]:
        acc.append("-" if value is None else value)
        return acc

    def undo(self, acc: list[str], value: str | None) -> list[str]:
        acc.remove("-" if value is None else value)
        return acc

    def merge(self, a: list[str], b: list[str]) -> list[str]:
        a.extend(b)
        return a

    def result(self, acc: list[str]) -> list[str]:
        return acc


def test_a_row_udaf_folds_rows_with_its_add() -> None:
    [overload] = declarations_of(Gather)
    assert (overload.kind, overload.params, overload.returns) == ("aggregate", (STRING,), ArrayType(STRING))
    gather = aggregator_of(Gather)
    start = gather.add(gather.initial(), [["a", None]])
    assert gather.result(start) == ["a", "-"]
    added, running = gather.add_each(start, [["b", "c"]])
    assert running == [["a", "-", "b"], ["a", "-", "b", "c"]]
    assert gather.result(start) == ["a", "-"], "the given accumulator must not change"
    assert gather.result(gather.merge(start, added)) == ["a", "-", "a", "-", "b", "c"]
    assert gather.result(gather.add(start, [["z"]])) == ["a", "-", "z"]
    assert gather.result(gather.undo(start, [["a"]])) == ["-"]
    assert gather.result(start) == ["a", "-"]
    result = gather.result(added)
    result.clear()
    assert gather.result(added) == ["a", "-", "b", "c"], "a result must be a fresh object"


def test_undo_makes_a_udaf_usable_over_tables() -> None:
    gather = aggregator_of(Gather)
    assert gather.undoable
    accumulator = gather.add(gather.initial(), [["a", "b", "a"]])
    assert gather.result(gather.undo(accumulator, [["a"]])) == ["b", "a"]

    @udaf
    class Total:
        def init(self) -> int:
            return 0

        def add(self, acc: int, value: int) -> int:
            return acc + value

        def merge(self, a: int, b: int) -> int:
            return a + b

        def result(self, acc: int) -> int:
            return acc

    total = aggregator_of(Total)
    assert not total.undoable
    with pytest.raises(StatementError, match="cannot undo"):
        total.undo(5, [[5]])


class Spread:
    """Vectorized: max - min of a group's readings; counts its batch calls."""

    batches: list[tuple[Any, ...]] = []

    def init(self) -> tuple[float, float]:
        return (math.inf, -math.inf)

    def add_batch(self, acc: tuple[float, float], readings: NDArray[np.float64],
                  weights: NDArray[np.int64]) -> tuple[float, float]:
        Spread.batches.append((readings, weights))
        if not len(readings):
            return acc
        return (min(acc[0], float(readings.min())), max(acc[1], float(readings.max())))

    def merge(self, a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
        return (min(a[0], b[0]), max(a[1], b[1]))

    def result(self, acc: tuple[float, float]) -> float | None:
        return acc[1] - acc[0] if acc[0] <= acc[1] else None


def test_a_vectorized_udaf_gets_each_slice_once_as_numpy_arrays_without_null_rows() -> None:
    udaf(Spread)
    [overload] = declarations_of(Spread)
    assert (overload.params, overload.returns) == ((DOUBLE, BIGINT), DOUBLE)
    spread = aggregator_of(Spread)
    Spread.batches.clear()
    accumulator = spread.add(spread.initial(), [[2.0, None, 7.5, 4.0], [1, 2, None, 3]])
    assert spread.result(accumulator) == 2.0
    [(readings, weights)] = Spread.batches
    assert readings.dtype == np.float64 and readings.tolist() == [2.0, 4.0]
    assert weights.dtype == np.int64 and weights.tolist() == [1, 3]
    assert spread.add_each(accumulator, [[10.0], [1]]) == ((2.0, 10.0), [8.0])


def test_a_failing_user_method_raises_a_udf_error_naming_the_function() -> None:
    @udaf(name="fragile")
    class Fragile:
        def init(self) -> int:
            return 0

        def add(self, acc: int, value: int) -> int:
            return acc + 100 // value

        def merge(self, a: int, b: int) -> int:
            raise SystemExit(3)

        def result(self, acc: int) -> int:
            return acc

    fragile = aggregator_of(Fragile)
    assert fragile.result(fragile.add(fragile.initial(), [[50, 25]])) == 6
    with pytest.raises(UdfError, match="UDF FRAGILE failed: ZeroDivisionError") as failure:
        fragile.add(0, [[5, 0]])
    assert "100 // value" in failure.value.trace
    with pytest.raises(UdfError, match="SystemExit"):
        fragile.merge(1, 2)


# --------------------------------------------------------------------------- hot reload


MEAN = '''
    from ksqlpy import udaf

    @udaf(name="mean_of")
    class Mean:
        def init(self) -> tuple[float, int]:
            return (0.0, 0)

        def add(self, acc: tuple[float, int], value: float) -> tuple[float, int]:
            return (acc[0] + value, acc[1] + 1)

        def merge(self, a: tuple[float, int], b: tuple[float, int]) -> tuple[float, int]:
            return (a[0] + b[0], a[1] + b[1])

        def result(self, acc: tuple[float, int]) -> float:
            return acc[0] / acc[1] * SCALE

    SCALE = 1
'''


def write(directory: Path, source: str) -> None:
    path = directory / "means.py"
    existed = path.exists()
    path.write_text(textwrap.dedent(source))
    if existed:  # a rewrite within the file system's timestamp granularity must still count as a change
        stamp = path.stat().st_mtime_ns + 1_000_000_000
        os.utime(path, ns=(stamp, stamp))


def mean_of(registry: FunctionRegistry, *values: float) -> Any:
    bound = registry.resolve("MEAN_OF", [DOUBLE], "aggregate")
    aggregator = bound.overload.impl(bound.arg_types, bound.return_type, [])
    return aggregator.result(aggregator.add(aggregator.initial(), [list(values)]))


def test_a_reload_keeping_the_accumulator_type_takes_over(tmp_path: Path) -> None:
    registry = FunctionRegistry.with_builtins()
    loader = UdfLoader(registry, [tmp_path])
    write(tmp_path, MEAN)
    [loaded] = loader.scan()
    assert (loaded.action, loaded.error) == ("loaded", None)
    [running] = registry.overloads("MEAN_OF")
    assert accumulator_type_of(running.impl) == "tuple[float, int]"
    assert mean_of(registry, 1.0, 2.0) == 1.5

    write(tmp_path, MEAN.replace("SCALE = 1", "SCALE = 10"))
    [reloaded] = loader.scan()
    assert (reloaded.action, reloaded.error) == ("reloaded", None)
    assert registry.overloads("MEAN_OF") == [running]  # the same Overload, with the new implementation
    assert mean_of(registry, 1.0, 2.0) == 15.0


def test_a_reload_changing_the_accumulator_type_is_rejected(tmp_path: Path) -> None:
    registry = FunctionRegistry.with_builtins()
    loader = UdfLoader(registry, [tmp_path])
    write(tmp_path, MEAN)
    loader.scan()
    changed = MEAN.replace("def init(self) -> tuple[float, int]:", "def init(self) -> list[float]:")
    write(tmp_path, changed.replace("return (0.0, 0)", "return [0.0, 0]"))
    [rejected] = loader.scan()
    assert rejected.action == "rejected"
    assert ("aggregate MEAN_OF changes its accumulator type from tuple[float, int] to list[float]"
            in str(rejected))
    assert "the previous version keeps running" in str(rejected)
    assert mean_of(registry, 3.0, 5.0) == 4.0


def test_without_an_annotation_the_accumulator_type_is_what_init_returns(tmp_path: Path) -> None:
    registry = FunctionRegistry.with_builtins()
    loader = UdfLoader(registry, [tmp_path])
    unannotated = MEAN.replace("def init(self) -> tuple[float, int]:", "def init(self):")
    write(tmp_path, unannotated)
    loader.scan()
    write(tmp_path, unannotated.replace("SCALE = 1", "SCALE = 2"))
    assert loader.scan()[0].action == "reloaded"
    write(tmp_path, unannotated.replace("return (0.0, 0)", "return [0.0, 0]"))
    [rejected] = loader.scan()
    assert "changes its accumulator type from tuple to list" in str(rejected)


def test_the_example_udaf_in_udfs_loads_and_aggregates(tmp_path: Path) -> None:
    registry = FunctionRegistry.with_builtins()
    results = UdfLoader(registry, [REPO / "udfs"]).scan()
    assert any(r.path.name == "sensor_stats.py" and r.error is None for r in results), [str(r) for r in results]
    [overload] = registry.overloads("ROOT_MEAN_SQUARE")
    assert isinstance(overload, Overload) and overload.kind == "aggregate"
    bound = registry.resolve("ROOT_MEAN_SQUARE", [DOUBLE], "aggregate")
    rms = bound.overload.impl(bound.arg_types, bound.return_type, [])
    accumulator = rms.add(rms.initial(), [[3.0, None, -4.0]])
    assert rms.result(accumulator) == pytest.approx(math.sqrt(12.5))
    assert rms.add_each(rms.initial(), [[3.0, None, -4.0]])[1] == pytest.approx([3.0, 3.0, math.sqrt(12.5)])
    assert rms.result(rms.undo(accumulator, [[-4.0]])) == pytest.approx(3.0)
    assert rms.result(rms.initial()) is None


def test_a_running_query_aggregates_with_the_reloaded_version_and_keeps_its_state(tmp_path: Path) -> None:
    registry = FunctionRegistry.with_builtins()
    loader = UdfLoader(registry, [tmp_path])
    write(tmp_path, MEAN)
    loader.scan()
    driver = InMemoryDriver(registry=registry)
    driver.execute("CREATE STREAM s (k STRING KEY, v DOUBLE) WITH (kafka_topic='s', value_format='JSON');"
                   "CREATE TABLE m AS SELECT k, MEAN_OF(v) AS m FROM s GROUP BY k;")
    driver.produce("s", b"a", b'{"V": 1.0}', 0)
    driver.produce("s", b"a", b'{"V": 2.0}', 1)
    driver.process()
    write(tmp_path, MEAN.replace("SCALE = 1", "SCALE = 10"))
    assert loader.scan()[0].action == "reloaded"
    driver.produce("s", b"a", b'{"V": 3.0}', 2)
    driver.process()
    # the accumulator (1.0 + 2.0, 2 rows) survived the reload; the new version's result scales it
    assert [record.value for record in driver.records("M")] == [b'{"M":1.0}', b'{"M":1.5}', b'{"M":20.0}']
