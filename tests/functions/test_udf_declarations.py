"""@udf / @udtf / @udaf and model(): SQL signatures from hints or explicit types, and lazy model loading."""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from ksqlpy import Model, model, udaf, udf, udtf
from ksqlpy.errors import KsqlError
from ksqlpy.functions.registry import Overload
from ksqlpy.functions.udf import UdfDeclarationError, declarations_of
from ksqlpy.types import BIGINT, BOOLEAN, DOUBLE, INTEGER, STRING, ArrayType, DecimalType, MapType


def declared(target: Any) -> Overload:
    overloads = declarations_of(target)
    assert len(overloads) == 1
    return overloads[0]


def test_row_udf_types_come_from_hints() -> None:
    @udf(description="joins", author="ann", version="2.1")
    def label(name: str, count: int, ratio: float | None, flag: bool, tags: list[str],
              scores: dict[str, int]) -> str:
        return name

    overload = declared(label)
    assert overload.name == "LABEL"
    assert overload.params == (STRING, BIGINT, DOUBLE, BOOLEAN, ArrayType(STRING), MapType(STRING, BIGINT))
    assert overload.returns == STRING
    assert overload.param_names == ("name", "count", "ratio", "flag", "tags", "scores")
    assert (overload.description, overload.author, overload.version) == ("joins", "ann", "2.1")
    assert overload.kind == "scalar" and not overload.vectorized


def test_explicit_types_win_and_fix_a_star_args_arity() -> None:
    @udf(name="score", vectorized=True, params=["DOUBLE"] * 3, returns="DECIMAL(4, 2)")
    def anything(*columns: Any) -> Any:
        return columns[0]

    overload = declared(anything)
    assert overload.name == "SCORE"
    assert overload.params == (DOUBLE, DOUBLE, DOUBLE)
    assert not overload.variadic
    assert overload.returns == DecimalType(4, 2)
    assert overload.param_names == ("columns1", "columns2", "columns3")


def test_named_explicit_types_name_a_star_args_function_parameters() -> None:
    @udf(vectorized=True, params={"speed": "DOUBLE", "rpm": "INT"}, returns="DOUBLE")
    def ratio(*columns: Any) -> Any:
        return columns[0] / columns[1]

    overload = declared(ratio)
    assert (overload.params, overload.param_names, overload.variadic) == ((DOUBLE, INTEGER), ("speed", "rpm"), False)


def test_star_args_from_hints_is_variadic() -> None:
    @udf
    def total(*values: int) -> int:
        return sum(values)

    overload = declared(total)
    assert overload.variadic and overload.params == (BIGINT,)


def test_vectorized_hints_describe_columns() -> None:
    @udf(vectorized=True)
    def mix(x: NDArray[np.float64], n: NDArray[np.int64], ok: NDArray[np.bool_], s: list[str]) -> NDArray[np.float64]:
        return x

    overload = declared(mix)
    assert overload.params == (DOUBLE, BIGINT, BOOLEAN, STRING)
    assert overload.returns == DOUBLE and overload.vectorized


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: udf(lambda x: x), "has no type hint"),
        (lambda: udf(params=["DOUBLE"], returns="DOUBLE")(lambda a, b: a), "declares 1 types for 2 parameters"),
        (lambda: udf(params=["NOT A TYPE"], returns="DOUBLE")(lambda a: a), "Not a SQL type"),
    ],
)
def test_bad_declarations_say_what_is_wrong(make: Any, message: str) -> None:
    with pytest.raises(UdfDeclarationError, match=message):
        make()


def test_decimal_hint_needs_precision() -> None:
    with pytest.raises(UdfDeclarationError, match="precision and scale"):
        @udf
        def money(x: Decimal) -> Decimal:
            return x


def test_missing_return_type_is_an_error() -> None:
    with pytest.raises(UdfDeclarationError, match="return type"):
        @udf
        def nothing(x: int):  # type: ignore[no-untyped-def]
            return x


def test_udtf_returns_its_list_element_type() -> None:
    @udtf(description="splits")
    def words(text: str) -> list[str]:
        return text.split()

    overload = declared(words)
    assert (overload.kind, overload.params, overload.returns) == ("table", (STRING,), STRING)
    with pytest.raises(UdfDeclarationError, match="returns a list"):
        @udtf
        def single(text: str) -> str:
            return text


def test_udaf_signature_comes_from_add_and_result() -> None:
    @udaf(description="mean of doubles")
    class Mean:
        def init(self) -> tuple[float, int]:
            return (0.0, 0)

        def add(self, acc: tuple[float, int], value: float) -> tuple[float, int]:
            return (acc[0] + value, acc[1] + 1)

        def merge(self, a: tuple[float, int], b: tuple[float, int]) -> tuple[float, int]:
            return (a[0] + b[0], a[1] + b[1])

        def result(self, acc: tuple[float, int]) -> float:
            return acc[0] / acc[1]

    overload = declared(Mean)
    assert (overload.kind, overload.params, overload.returns) == ("aggregate", (DOUBLE,), DOUBLE)
    aggregator = overload.impl([DOUBLE], DOUBLE, [])
    acc = aggregator.add(aggregator.initial(), [[1.0, 2.0, 6.0]])
    assert aggregator.result(aggregator.merge(acc, aggregator.add(aggregator.initial(), [[3.0]]))) == 3.0

    with pytest.raises(UdfDeclarationError, match="needs methods merge, result"):
        @udaf
        class Half:
            def init(self) -> int:
                return 0

            def add(self, acc: int, value: int) -> int:
                return acc + value


def test_model_loads_once_lazily_and_warms_up(tmp_path: Path) -> None:
    artifact = tmp_path / "weights.bin"
    artifact.write_bytes(b"v1")
    loads: list[Path] = []
    warmed: list[str] = []

    def load(path: Path) -> str:
        loads.append(path)
        return path.read_text()

    handle: Model[str] = model("toy", artifact, load, warmup=warmed.append)
    assert not handle.loaded and loads == []
    threads = [threading.Thread(target=handle.get) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert handle.get() == "v1"
    assert loads == [artifact] and warmed == ["v1"]
    first_hash = handle.sha256()
    artifact.write_bytes(b"v2")
    assert handle.sha256() != first_hash
    assert handle.describe()["Model path"] == str(artifact)


def test_model_prepare_loads_in_the_background_and_a_failed_load_raises(tmp_path: Path) -> None:
    ready = threading.Event()

    def load(path: Path) -> int:
        ready.set()
        return 7

    handle = model("bg", tmp_path, load)
    handle.prepare()
    assert ready.wait(5)

    def broken(path: Path) -> int:
        raise OSError("no such file")

    failing = model("broken", tmp_path / "missing", broken)
    with pytest.raises(KsqlError, match=r"Model broken could not be loaded.*no such file"):
        failing.get()
