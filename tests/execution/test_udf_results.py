"""UDF results held to their declared SQL type: the per-batch check, and per-value widening or rejection."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from ksqlpy.execution.udf_results import ResultType, UdfResultTypeError
from ksqlpy.syntax.parser import parse_type


@pytest.mark.parametrize(("declared", "column"), [
    ("BIGINT", [1, None, -(2**63), 2**63 - 1]),
    ("INT", [2**31 - 1, -(2**31)]),
    ("DOUBLE", [1.5, None, float("nan")]),
    ("STRING", ["a", None]),
    ("BOOLEAN", [True, None]),
    ("BYTES", [b"x"]),
    ("ARRAY<BIGINT>", [[1, None], None, []]),
    ("MAP<STRING, ARRAY<DOUBLE>>", [{"a": [1.0]}, {}, None]),
    ("STRUCT<A INT, B STRING>", [{"A": 1, "B": None}, None]),
    ("DECIMAL(4, 2)", [None]),
    ("TIMESTAMP", [0, None]),
    ("BIGINT", []),
])
def test_columns_of_valid_values_pass_the_batch_check_as_they_are(declared: str, column: list[Any]) -> None:
    result = ResultType(parse_type(declared))
    assert result.fits(column)
    assert result.column(column, pytest.fail) is column


@pytest.mark.parametrize(("declared", "returned", "expected"), [
    ("DOUBLE", 3, 3.0),
    ("DOUBLE", Decimal("2.5"), 2.5),
    ("DOUBLE", np.float32(0.5), 0.5),
    ("BIGINT", np.int64(7), 7),
    ("INT", np.uint8(7), 7),
    ("BOOLEAN", np.bool_(True), True),
    ("BYTES", bytearray(b"ab"), b"ab"),
    ("STRING", np.str_("s"), "s"),
    ("DECIMAL(4, 2)", Decimal("1.005"), Decimal("1.01")),
    ("DECIMAL(4, 2)", 12, Decimal("12.00")),
    ("ARRAY<DOUBLE>", (1, 2.5), [1.0, 2.5]),
    ("ARRAY<BIGINT>", np.array([1, 2]), [1, 2]),
    ("MAP<STRING, DOUBLE>", {"a": 1}, {"a": 1.0}),
    ("STRUCT<A INT, B STRING>", {"a": 1}, {"A": 1, "B": None}),
])
def test_values_that_widen_or_differ_only_in_their_python_carrier_are_converted(
        declared: str, returned: Any, expected: Any) -> None:
    result = ResultType(parse_type(declared))
    assert not result.fits([returned])
    [converted] = result.column([returned], pytest.fail)
    assert converted == expected and type(converted) is type(expected)


@pytest.mark.parametrize(("declared", "returned", "message"), [
    ("BIGINT", "1", "returned '1' (str) where BIGINT is declared"),
    ("BIGINT", 1.0, "returned 1.0 (float) where BIGINT is declared"),
    ("BIGINT", False, "returned False (bool) where BIGINT is declared"),
    ("INT", 2**31, "returned 2147483648 (int) where INTEGER is declared: out of range"),
    ("TIME", -1, "where TIME is declared: out of range"),
    ("DOUBLE", "1.5", "returned '1.5' (str) where DOUBLE is declared"),
    ("DOUBLE", True, "returned True (bool) where DOUBLE is declared"),
    ("BOOLEAN", 1, "returned 1 (int) where BOOLEAN is declared"),
    ("STRING", b"s", "returned b's' (bytes) where STRING is declared"),
    ("DECIMAL(4, 2)", 1.5, "returned 1.5 (float) where DECIMAL(4, 2) is declared"),
    ("DECIMAL(4, 2)", Decimal("123.4"), "where DECIMAL(4, 2) is declared: Numeric field overflow"),
    ("DECIMAL(4, 2)", Decimal("NaN"), "returned Decimal('NaN') (Decimal) where DECIMAL(4, 2) is declared"),
    ("ARRAY<BIGINT>", "ab", "returned 'ab' (str) where ARRAY<BIGINT> is declared"),
    ("ARRAY<BIGINT>", [1, "a"],
     "returned [1, 'a'] (list) where ARRAY<BIGINT> is declared: 'a' (str) is not a valid BIGINT value"),
    ("MAP<STRING, BIGINT>", {1: 1}, "where MAP<STRING, BIGINT> is declared: 1 (int) is not a valid STRING value"),
    ("STRUCT<A INT>", {"A": 1, "Z": 2}, "where STRUCT<`A` INTEGER> is declared: it has no field 'Z'"),
    ("STRUCT<A INT>", {"A": "1"}, "is declared: '1' (str) is not a valid INTEGER value"),
    ("BIGINT", "x" * 200, "returned 'xxxxxxxx"),
])
def test_values_of_the_wrong_type_are_null_and_reported(declared: str, returned: Any, message: str) -> None:
    result = ResultType(parse_type(declared))
    assert not result.fits([returned])
    wrong: list[tuple[int, UdfResultTypeError]] = []
    assert result.column([None, returned], lambda index, error: wrong.append((index, error))) == [None, None]
    [(index, error)] = wrong
    assert index == 1 and message in str(error) and len(str(error)) < 200


def test_one_wrong_value_does_not_cost_the_others() -> None:
    result = ResultType(parse_type("DOUBLE"))
    wrong: list[int] = []
    assert result.column([1.5, "x", 2], lambda index, _: wrong.append(index)) == [1.5, None, 2.0]
    assert wrong == [1]
