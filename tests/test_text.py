"""Java-style rendering of numbers and CAST(... AS STRING) text."""

from __future__ import annotations

import math
import random
from decimal import Decimal
from typing import Any

import pytest

from ksqlpy.text import decimal_to_plain_text, double_to_text, doubles_to_text, value_to_text
from ksqlpy.types import (
    BIGINT,
    BOOLEAN,
    BYTES,
    DATE,
    DOUBLE,
    INTEGER,
    STRING,
    TIME,
    TIMESTAMP,
    ArrayType,
    DecimalType,
    MapType,
    SqlType,
    StructType,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1.0"),
        (100.0, "100.0"),
        (-2.5, "-2.5"),
        (0.1, "0.1"),
        (12345.678, "12345.678"),
        (0.001, "0.001"),  # lower edge of plain notation
        (9999999.0, "9999999.0"),  # upper edge of plain notation
        (1e7, "1.0E7"),
        (12345678.9, "1.23456789E7"),
        (0.000999, "9.99E-4"),
        (1.234e-5, "1.234E-5"),
        (1e-5, "1.0E-5"),
        (-1e21, "-1.0E21"),
        (1e23, "1.0E23"),
        (0.0, "0.0"),
        (-0.0, "-0.0"),
        (float("nan"), "NaN"),
        (float("inf"), "Infinity"),
        (float("-inf"), "-Infinity"),
        (5e-324, "4.9E-324"),  # Double.MIN_VALUE: Java shows two digits nearest the exact value
        (-5e-324, "-4.9E-324"),
        (1e-323, "9.9E-324"),
        (2.2250738585072014e-308, "2.2250738585072014E-308"),
        (1.7976931348623157e308, "1.7976931348623157E308"),
    ],
)
def test_double_to_text_matches_java(value: float, text: str) -> None:
    assert double_to_text(value) == text


def test_double_to_text_round_trips() -> None:
    for value in (0.1 + 0.2, 1 / 3, 123456.789e10, 2.0**-40, 7e-10):
        assert float(double_to_text(value)) == value


def test_decimal_plain_text_keeps_scale_and_never_uses_exponent() -> None:
    assert decimal_to_plain_text(Decimal("1.50")) == "1.50"
    assert decimal_to_plain_text(Decimal("1E+3")) == "1000"
    assert decimal_to_plain_text(Decimal("1E-7")) == "0.0000001"


@pytest.mark.parametrize(
    ("value", "sql_type", "text"),
    [
        (10, INTEGER, "10"),
        (-9223372036854775808, BIGINT, "-9223372036854775808"),
        (1e7, DOUBLE, "1.0E7"),
        (10.3, DOUBLE, "10.3"),
        (Decimal("10.120"), DecimalType(5, 3), "10.120"),
        (Decimal("0.0000001"), DecimalType(8, 7), "0.0000001"),
        (True, BOOLEAN, "true"),
        (False, BOOLEAN, "false"),
        ("bob", STRING, "bob"),
        (b"{", BYTES, "ew=="),
        (0, TIMESTAMP, "1970-01-01T00:00:00.000"),
        (1577836800123, TIMESTAMP, "2020-01-01T00:00:00.123"),
        (-1, TIMESTAMP, "1969-12-31T23:59:59.999"),
        (18262, DATE, "2020-01-01"),
        (-1, DATE, "1969-12-31"),
        (36_000_000, TIME, "10:00"),  # LocalTime.toString drops zero seconds
        (36_005_250, TIME, "10:00:05"),  # and milliseconds are not shown
        ([1, 3], ArrayType(INTEGER), "[1, 3]"),
        (["a", None], ArrayType(STRING), "[a, null]"),
        ([1.0, 1e7], ArrayType(DOUBLE), "[1.0, 1.0E7]"),
        ([Decimal("1E-7")], ArrayType(DecimalType(8, 7)), "[1E-7]"),  # BigDecimal.toString inside
        ([[1], []], ArrayType(ArrayType(INTEGER)), "[[1], []]"),
        ({"a": 1, "b": 2}, MapType(STRING, INTEGER), "{a=1, b=2}"),
        ({"F0": 1, "f1": 3}, StructType((("F0", INTEGER), ("f1", INTEGER))), "Struct{F0=1,f1=3}"),
        ({"A": None, "B": "x"}, StructType((("A", INTEGER), ("B", STRING))), "Struct{B=x}"),
        ([{"A": 1}], ArrayType(StructType((("A", INTEGER),))), "[Struct{A=1}]"),
        ([0], ArrayType(TIMESTAMP), "[1970-01-01 00:00:00.0]"),
        ([1500], ArrayType(TIMESTAMP), "[1970-01-01 00:00:01.5]"),
        ([36_000_000], ArrayType(TIME), "[10:00:00]"),
        ([b"ab"], ArrayType(BYTES), "[java.nio.HeapByteBuffer[pos=0 lim=2 cap=2]]"),
    ],
)
def test_value_to_text_is_ksqldb_cast_to_string(value: Any, sql_type: SqlType, text: str) -> None:
    assert value_to_text(value, sql_type) == text


def test_value_to_text_of_null_is_java_null_text() -> None:
    assert value_to_text(None, INTEGER) == "null"


def test_doubles_to_text_agrees_with_double_to_text_in_every_range() -> None:
    rng = random.Random(11)
    values = [rng.random() * 10.0**exponent * rng.choice((1, -1)) for exponent in range(-320, 308) for _ in range(20)]
    values += [float(rng.randrange(-(10**17), 10**17)) for _ in range(2000)]
    edges = [1e-5, 1e-4, 1e-3, 1e7, 1e16, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308]
    values += [math.nextafter(edge, direction) for edge in edges[:-1] for direction in (0.0, math.inf)] + edges
    values += [0.0, -0.0, 1.0, 100, 3]
    assert all(map(math.isfinite, values))  # a non-finite value sends the whole batch the per-value way
    assert doubles_to_text(values) == [double_to_text(float(value)) for value in values]
    assert doubles_to_text([1.5, math.nan, -math.inf, 2.5e-5]) == ["1.5", "NaN", "-Infinity", "2.5E-5"]
    assert doubles_to_text([]) == []
