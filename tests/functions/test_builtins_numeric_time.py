"""Tests for the built-in math, date/time, array/map, geo and lambda functions, called through the registry."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest

from ksqlpy.functions.builtins.datetime import date_time_pattern, resolve_zone
from ksqlpy.functions.registry import FunctionRegistry, LambdaArg
from ksqlpy.types import (
    BIGINT,
    BOOLEAN,
    BYTES,
    DATE,
    DOUBLE,
    INTEGER,
    NULL,
    STRING,
    TIME,
    TIMESTAMP,
    ArrayType,
    DecimalType,
    MapType,
    SqlType,
    StructType,
)

REGISTRY = FunctionRegistry.with_builtins()
Args = list[SqlType | LambdaArg]


def call(name: str, arg_types: Sequence[SqlType | LambdaArg], *args: Any) -> Any:
    """Resolves and invokes a function as the executor does, NULL-on-NULL short cut included."""
    bound = REGISTRY.resolve(name, list(arg_types))
    if bound.overload.null_on_null and any(a is None for a in args):
        return None
    return bound.implementation()(*args)


def return_type(name: str, arg_types: Sequence[SqlType | LambdaArg]) -> SqlType:
    return REGISTRY.resolve(name, list(arg_types)).return_type


def lam(arity: int, body: SqlType | None = None) -> LambdaArg:
    """A lambda argument whose body has type `body`, or the type of its first parameter when omitted."""
    return LambdaArg(arity, lambda params: body if body is not None else params[0])


def dec(text: str) -> Decimal:
    return Decimal(text)


D21 = DecimalType(2, 1)


# --------------------------------------------------------------------------- ABS / CEIL / FLOOR / SIGN


@pytest.mark.parametrize(
    ("name", "arg_type", "value", "expected", "expected_type"),
    [
        ("ABS", INTEGER, -1, 1, INTEGER),
        ("ABS", BIGINT, -2, 2, BIGINT),
        ("ABS", DOUBLE, -3.1, 3.1, DOUBLE),
        ("ABS", D21, dec("-3.2"), dec("3.2"), D21),
        ("ABS", INTEGER, -(2**31), -(2**31), INTEGER),  # Java's Math.abs overflow
        ("CEIL", DOUBLE, 1.1, 2.0, DOUBLE),
        ("CEIL", DOUBLE, -1.5, -1.0, DOUBLE),
        ("CEIL", D21, dec("-1.1"), dec("-1.0"), D21),
        ("CEIL", D21, dec("1.1"), dec("2.0"), D21),
        ("CEIL", INTEGER, 7, 7, INTEGER),
        ("FLOOR", DOUBLE, -1.1, -2.0, DOUBLE),
        ("FLOOR", D21, dec("1.7"), dec("1.0"), D21),
        ("FLOOR", D21, dec("-1.5"), dec("-2.0"), D21),
        ("FLOOR", BIGINT, -5, -5, BIGINT),
        ("SIGN", INTEGER, -7, -1, INTEGER),
        ("SIGN", BIGINT, 0, 0, INTEGER),
        ("SIGN", DOUBLE, 3.0, 1, INTEGER),
        ("SIGN", DOUBLE, math.nan, 0, INTEGER),
    ],
)
def test_per_type_numeric_functions(
    name: str, arg_type: SqlType, value: Any, expected: Any, expected_type: SqlType
) -> None:
    result = call(name, [arg_type], value)
    assert result == expected
    assert type(result) is type(expected)
    if isinstance(expected, Decimal):
        assert str(result) == str(expected)  # same scale
    assert return_type(name, [arg_type]) == expected_type


def test_ceil_of_small_negative_double_is_negative_zero() -> None:
    assert math.copysign(1, call("CEIL", [DOUBLE], -0.5)) == -1


@pytest.mark.parametrize("name", ["ABS", "CEIL", "FLOOR", "SIGN", "ROUND", "SQRT", "EXP", "LN"])
def test_null_argument_gives_null(name: str) -> None:
    assert call(name, [DOUBLE], None) is None


# --------------------------------------------------------------------------- ROUND / TRUNC


@pytest.mark.parametrize(
    ("value", "r0", "r1", "r2", "r_minus1"),
    [
        (1.5, 2, 1.5, 1.5, 0.0),
        (-1.5, -1, -1.5, -1.5, 0.0),
        (-1.7, -2, -1.7, -1.7, 0.0),
        (1.234567, 1, 1.2, 1.23, 0.0),
        (111.0, 111, 111.0, 111.0, 110.0),
        (12345.678, 12346, 12345.7, 12345.68, 12350.0),
        (-12345.678, -12346, -12345.7, -12345.68, -12350.0),
    ],
)
def test_round_double_rounds_ties_towards_positive_infinity(
    value: float, r0: int, r1: float, r2: float, r_minus1: float
) -> None:
    assert call("ROUND", [DOUBLE], value) == r0
    assert call("ROUND", [DOUBLE, INTEGER], value, 1) == r1
    assert call("ROUND", [DOUBLE, INTEGER], value, 2) == r2
    assert call("ROUND", [DOUBLE, INTEGER], value, -1) == r_minus1


def test_round_types() -> None:
    assert return_type("ROUND", [DOUBLE]) == BIGINT
    assert return_type("ROUND", [INTEGER]) == BIGINT
    assert return_type("ROUND", [DOUBLE, INTEGER]) == DOUBLE
    assert return_type("ROUND", [DecimalType(33, 16)]) == DecimalType(17, 0)
    assert return_type("ROUND", [DecimalType(33, 16), INTEGER]) == DecimalType(33, 16)
    assert return_type("ROUND", [DecimalType(2, 2)]) == DecimalType(1, 0)


def test_round_edge_doubles() -> None:
    assert call("ROUND", [DOUBLE], 0.49999999999999994) == 0  # Java's exact floor(x + 0.5)
    assert call("ROUND", [DOUBLE], math.nan) == 0
    assert call("ROUND", [DOUBLE], 1e300) == 2**63 - 1
    assert call("ROUND", [DOUBLE, INTEGER], None, 2) is None


def test_round_large_decimal_keeps_all_digits() -> None:
    value = dec("12345678987654321.2345678987654321")
    assert call("ROUND", [DecimalType(33, 16)], value) == dec("12345678987654321")
    assert str(call("ROUND", [DecimalType(33, 16), INTEGER], value, 0)) == "12345678987654321.0000000000000000"


@pytest.mark.parametrize(
    ("value", "places", "expected"),
    [("10.50", 0, "11.00"), ("-10.50", 0, "-10.00"), ("4.49", 1, "4.50"), ("12.34", -1, "10.00")],
)
def test_round_decimal_with_places_keeps_scale(value: str, places: int, expected: str) -> None:
    assert str(call("ROUND", [DecimalType(4, 2), INTEGER], dec(value), places)) == expected


def test_round_decimal_to_whole() -> None:
    assert str(call("ROUND", [DecimalType(4, 2)], dec("10.50"))) == "11"
    assert str(call("ROUND", [DecimalType(4, 2)], dec("3.21"))) == "3"


def test_trunc() -> None:
    assert call("TRUNC", [INTEGER], -12345) == -12345
    assert call("TRUNC", [BIGINT], 2147483648) == 2147483648
    assert call("TRUNC", [DOUBLE], -1.7) == -1
    assert call("TRUNC", [DOUBLE, INTEGER], 12.3456, 2) == 12.34
    assert call("TRUNC", [DOUBLE, INTEGER], -12.3456, -1) == -10.0
    assert str(call("TRUNC", [DecimalType(5, 2)], dec("-123.45"))) == "-123"
    assert str(call("TRUNC", [DecimalType(5, 2), INTEGER], dec("-123.45"), 1)) == "-123.40"
    assert return_type("TRUNC", [DOUBLE]) == BIGINT


# --------------------------------------------------------------------------- DOUBLE functions


@pytest.mark.parametrize(
    ("name", "args", "expected"),
    [
        ("ASIN", [1], 1.5707963267949),
        ("ACOS", [0.5], 1.0471975511966),
        ("ATAN", [-2], -1.1071487177941),
        ("ATAN2", [1, 1], 0.7853981633974),
        ("COS", [0], 1.0),
        ("SIN", [0.5], 0.4794255386042),
        ("TAN", [-7], -0.8714479827243),
        ("COT", [1], 0.6420926159343),
        ("COSH", [-6], 201.7156361224559),
        ("SINH", [-0.43], -0.4433742144125),
        ("TANH", [7], 0.9999983369439),
        ("DEGREES", [-1.2345], -70.7316398089),
        ("RADIANS", [114], 1.9896753472735),
        ("EXP", [-1], 0.36787944117144233),
        ("LN", [math.e], 1.0),
        ("LOG", [13], 2.5649493574615367),  # ksqlDB's one-argument LOG is the natural logarithm
        ("LOG", [15, 13], 0.9471572411831843),
        ("SQRT", [16], 4.0),
        ("CBRT", [-27], -3.0),
        ("POWER", [2, 10], 1024.0),
        ("PI", [], math.pi),
    ],
)
def test_double_functions(name: str, args: list[float], expected: float) -> None:
    result = call(name, [DOUBLE] * len(args), *[float(a) for a in args])
    assert result == pytest.approx(expected, abs=1e-12, rel=1e-12)
    assert return_type(name, [INTEGER] * len(args)) == DOUBLE


@pytest.mark.parametrize(
    ("name", "args", "expected"),
    [
        ("ACOS", [2.0], math.nan),
        ("ASIN", [-1.1], math.nan),
        ("SQRT", [-1.0], math.nan),
        ("LN", [0.0], -math.inf),
        ("LN", [-1.0], math.nan),
        ("LOG", [-13.0], math.nan),
        ("LOG", [15.0, 0.0], -math.inf),
        ("LOG", [15.0, -13.0], math.nan),
        ("LOG", [0.0, 13.0], math.nan),
        ("LOG", [1.0, 13.0], math.nan),
        ("LOG", [-15.0, 13.0], math.nan),
        ("COT", [0.0], math.inf),
        ("COT", [-0.0], -math.inf),
        ("EXP", [1000.0], math.inf),
        ("COSH", [-1000.0], math.inf),
        ("SINH", [-1000.0], -math.inf),
        ("POWER", [10.0, 400.0], math.inf),
        ("POWER", [-10.0, 401.0], -math.inf),
        ("POWER", [0.0, -1.0], math.inf),
        ("POWER", [-8.0, 1 / 3], math.nan),
        ("SIN", [math.inf], math.nan),
    ],
)
def test_double_functions_follow_ieee_rather_than_raising(name: str, args: list[float], expected: float) -> None:
    result = call(name, [DOUBLE] * len(args), *args)
    if math.isnan(expected):
        assert math.isnan(result)
    else:
        assert result == expected


def test_random_is_between_zero_and_one() -> None:
    values = {call("RANDOM", []) for _ in range(20)}
    assert all(0.0 <= v < 1.0 for v in values)
    assert len(values) > 1


def test_decimal_widens_to_double_for_double_functions() -> None:
    bound = REGISTRY.resolve("SQRT", [DecimalType(4, 2)])
    assert bound.arg_types == [DOUBLE]


# --------------------------------------------------------------------------- GREATEST / LEAST


def test_greatest_and_least_skip_nulls() -> None:
    assert call("GREATEST", [BIGINT, BIGINT, NULL], 2**63 - 1, -(2**63), None) == 2**63 - 1
    assert call("LEAST", [BIGINT, BIGINT, NULL], 2**63 - 1, -(2**63), None) == -(2**63)
    assert call("GREATEST", [DOUBLE, DOUBLE, DOUBLE], 50000.555, -99999.555, None) == 50000.555
    assert call("GREATEST", [STRING, STRING, STRING, NULL], None, None, None, None) is None


def test_greatest_strings_and_bytes_use_java_order() -> None:
    strings = [STRING] * 5
    assert call("GREATEST", strings, "apple", "banana", None, None, "hello") == "hello"
    assert call("LEAST", strings, "!", "Zebra", "aardvark", None, "hello") == "!"
    assert call("GREATEST", [BYTES] * 3, b"apple", b"zebra", b"\xff") == b"zebra"  # signed bytes: 0xff < 'a'


def test_greatest_double_orders_nan_highest() -> None:
    assert math.isnan(call("GREATEST", [DOUBLE, DOUBLE], 1.0, math.nan))


def test_greatest_of_temporal_types() -> None:
    assert call("GREATEST", [DATE, DATE, DATE], 19158, 19187, -92) == 19187
    assert call("LEAST", [TIME, TIME], 33359999, 10) == 10
    assert return_type("LEAST", [TIMESTAMP, TIMESTAMP]) == TIMESTAMP


def test_greatest_decimal_widens_type_and_keeps_winning_value() -> None:
    types = [DecimalType(9, 2), DecimalType(7, 6)]
    assert return_type("GREATEST", types) == DecimalType(13, 6)
    assert str(call("GREATEST", types, dec("1234567.89"), dec("0.123456"))) == "1234567.89"


def test_greatest_mixed_numbers_become_double() -> None:
    types = [INTEGER, BIGINT, DecimalType(30, 18), DOUBLE, NULL]
    assert return_type("GREATEST", types) == DOUBLE
    assert call("GREATEST", types, 500000.0, 1.0, 99999.99999, None, None) == 500000.0


def test_greatest_rejects_mixed_string_and_number_and_no_args() -> None:
    with pytest.raises(Exception, match="does not accept parameters"):
        REGISTRY.resolve("GREATEST", [STRING, INTEGER])
    with pytest.raises(Exception, match="does not accept parameters"):
        REGISTRY.resolve("LEAST", [])


# --------------------------------------------------------------------------- GENERATE_SERIES / GEO_DISTANCE


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((0, 3, 1), [0, 1, 2, 3]),
        ((-2, 1, 2), [-2, 0]),
        ((3, 0, -1), [3, 2, 1, 0]),
        ((1, -2, -2), [1, -1]),
        ((9, 0, -3), [9, 6, 3, 0]),
        ((5, 5, 1), [5]),
    ],
)
def test_generate_series_with_step(args: tuple[int, int, int], expected: list[int]) -> None:
    assert call("GENERATE_SERIES", [INTEGER] * 3, *args) == expected


def test_generate_series_defaults_and_errors() -> None:
    assert call("GENERATE_SERIES", [INTEGER, INTEGER], 3, 1) == [3, 2, 1]
    assert call("GENERATE_SERIES", [BIGINT, BIGINT], 2**40, 2**40 + 2) == [2**40, 2**40 + 1, 2**40 + 2]
    assert return_type("GENERATE_SERIES", [BIGINT, BIGINT, INTEGER]) == ArrayType(BIGINT)
    with pytest.raises(ValueError, match="zero"):
        call("GENERATE_SERIES", [INTEGER] * 3, 0, 3, 0)
    with pytest.raises(ValueError, match="wrong sign"):
        call("GENERATE_SERIES", [INTEGER] * 3, 0, 3, -1)


@pytest.mark.parametrize(
    ("point", "unit", "expected"),
    [
        ((37.4439, -122.1663, 51.5257, -0.1122), None, 8634.659796579544),
        ((37.4439, -122.1663, 51.5257, -0.1122), "KM", 8634.659796579544),
        ((37.4439, -122.1663, 51.5257, -0.1122), "MI", 5365.659729188262),
        ((51.5257, -0.1122, -33.9323, 18.4197), "miles", 6011.1453892944355),
        ((-33.9323, 18.4197, -33.8666, 151.1), "Kilometres", 11005.23304055582),
    ],
)
def test_geo_distance(point: tuple[float, ...], unit: str | None, expected: float) -> None:
    assert call("GEO_DISTANCE", [DOUBLE] * 4 + [STRING], *point, unit) == pytest.approx(expected, rel=1e-12)
    if unit is None:
        assert call("GEO_DISTANCE", [DOUBLE] * 4, *point) == pytest.approx(expected, rel=1e-12)


def test_geo_distance_edge_cases() -> None:
    assert call("GEO_DISTANCE", [DOUBLE] * 4, 39.18660374, -76.73262144, 39.18660374, -76.73222145) == (
        pytest.approx(0.03447366811448324, rel=1e-9)
    )
    assert call("GEO_DISTANCE", [DOUBLE] * 4, None, 0.0, 1.0, 1.0) is None
    assert REGISTRY.resolve("GEO_DISTANCE", [DOUBLE, DOUBLE, INTEGER, DecimalType(3, 1)]).arg_types == [DOUBLE] * 4
    with pytest.raises(ValueError, match="latitude"):
        call("GEO_DISTANCE", [DOUBLE] * 4, 91.0, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="units"):
        call("GEO_DISTANCE", [DOUBLE] * 4 + [STRING], 1.0, 0.0, 0.0, 0.0, "parsecs")
    with pytest.raises(Exception, match="does not accept parameters"):
        REGISTRY.resolve("GEO_DISTANCE", [DOUBLE, DOUBLE, STRING, INTEGER])


# --------------------------------------------------------------------------- arrays

INTS = ArrayType(INTEGER)


def test_array_length_and_contains() -> None:
    assert call("ARRAY_LENGTH", [ArrayType(ArrayType(BOOLEAN))], [[]]) == 1
    assert call("ARRAY_LENGTH", [INTS], None) is None
    assert return_type("ARRAY_LENGTH", [INTS]) == INTEGER
    assert call("ARRAY_CONTAINS", [ArrayType(STRING), STRING], ["Pink", None], "Pink") is True
    assert call("ARRAY_CONTAINS", [ArrayType(STRING), STRING], ["Pink", None], None) is True
    assert call("ARRAY_CONTAINS", [ArrayType(STRING), STRING], ["Red"], "Pink") is False
    assert call("ARRAY_CONTAINS", [ArrayType(STRING), STRING], None, "Pink") is False
    assert call("ARRAY_CONTAINS", [ArrayType(DOUBLE), DOUBLE], [math.nan], math.nan) is True


def test_array_set_functions() -> None:
    pair = [INTS, INTS]
    assert call("ARRAY_DISTINCT", [INTS], [1, 1, None, 2, None]) == [1, None, 2]
    assert call("ARRAY_EXCEPT", pair, [0, 0, 1, 0, -1], [1, -2]) == [0, -1]
    assert call("ARRAY_EXCEPT", pair, [0, 0, 1, 0, -1], []) == [0, 1, -1]
    assert call("ARRAY_INTERSECT", pair, [0, 0, 1, 0, -1], [1, -2, 0]) == [0, 1]
    assert call("ARRAY_UNION", pair, [0, 0, 1, 0, -1], [3, 4]) == [0, 1, -1, 3, 4]
    for name in ("ARRAY_EXCEPT", "ARRAY_INTERSECT", "ARRAY_UNION"):
        assert call(name, pair, None, [1]) is None
        assert call(name, pair, [1], None) is None


def test_array_distinct_of_complex_elements() -> None:
    lists = [["foo", "bar", "foo"], ["foo", "bar", "foo"], ["foo"]]
    assert call("ARRAY_DISTINCT", [ArrayType(ArrayType(STRING))], lists) == [["foo", "bar", "foo"], ["foo"]]
    maps = [{"apple": 1, "banana": 2}, {"banana": 2, "apple": 1}, None, None]
    assert call("ARRAY_DISTINCT", [ArrayType(MapType(STRING, INTEGER))], maps) == [{"apple": 1, "banana": 2}, None]


def test_array_distinct_respects_decimal_scale_and_double_zero_sign() -> None:
    assert call("ARRAY_DISTINCT", [ArrayType(DOUBLE)], [0.0, -0.0, 0.0]) == [0.0, -0.0]


def test_array_concat() -> None:
    pair = [INTS, INTS]
    assert call("ARRAY_CONCAT", pair, [0, 3], [1, None]) == [0, 3, 1, None]
    assert call("ARRAY_CONCAT", pair, None, [1, -2]) == [1, -2]
    assert call("ARRAY_CONCAT", pair, [0, 3], None) == [0, 3]
    assert call("ARRAY_CONCAT", pair, None, None) is None
    assert return_type("ARRAY_CONCAT", [INTS, ArrayType(BIGINT)]) == ArrayType(BIGINT)


def test_array_remove() -> None:
    strings = [ArrayType(STRING), STRING]
    assert call("ARRAY_REMOVE", strings, ["foo", "bar", "foo"], "foo") == ["bar"]
    assert call("ARRAY_REMOVE", strings, ["Foo", None, "baz"], None) == ["Foo", "baz"]
    assert call("ARRAY_REMOVE", strings, None, "foo") is None


def test_array_max_min() -> None:
    assert call("ARRAY_MAX", [INTS], [-1, 2, None, 0]) == 2
    assert call("ARRAY_MIN", [INTS], [-1, 2, None, 0]) == -1
    assert call("ARRAY_MAX", [ArrayType(BOOLEAN)], [False, None, True]) is True
    assert call("ARRAY_MAX", [ArrayType(STRING)], ["Foo", "Bar", None, "baz"]) == "baz"
    assert call("ARRAY_MIN", [ArrayType(STRING)], ["Foo", "Bar", None, "baz"]) == "Bar"
    assert call("ARRAY_MAX", [INTS], [None, None]) is None
    assert call("ARRAY_MIN", [INTS], []) is None
    assert return_type("ARRAY_MAX", [ArrayType(D21)]) == D21
    with pytest.raises(TypeError):
        call("ARRAY_MAX", [ArrayType(INTS)], [[1], [2]])


def test_array_sort_places_nulls_last() -> None:
    strings = ["foo", "fo", "Food", None, "F", "food"]
    assert call("ARRAY_SORT", [ArrayType(STRING)], strings) == ["F", "Food", "fo", "foo", "food", None]
    assert call("ARRAY_SORT", [ArrayType(BOOLEAN)], [None, False, True]) == [False, True, None]
    doubles = [0.0, 0.1, -12345.678, None, 0.3]
    assert call("ARRAY_SORT", [ArrayType(DOUBLE)], doubles) == [-12345.678, 0.0, 0.1, 0.3, None]
    assert call("ARRAY_SORT", [ArrayType(D21)], [dec("1.0"), dec("-9.9"), None]) == [dec("-9.9"), dec("1.0"), None]
    assert call("ARRAY_SORT", [INTS, STRING], [0, None, 1, -1], "desc") == [1, 0, -1, None]
    assert call("ARRAY_SORT", [INTS, STRING], [0, 1], "DESCENDING") == [1, 0]
    assert call("ARRAY_SORT", [INTS, STRING], [0, 1], "sideways") is None
    assert call("ARRAY_SORT", [INTS], []) == []
    assert call("ARRAY_SORT", [INTS], None) is None


def test_array_join() -> None:
    assert call("ARRAY_JOIN", [ArrayType(STRING)], ["a", None, "c"]) == "a,null,c"
    assert call("ARRAY_JOIN", [INTS, STRING], [1, 2, 3], "-") == "1-2-3"
    assert call("ARRAY_JOIN", [ArrayType(DOUBLE), STRING], [1.0, 1e7], None) == "1.01.0E7"
    assert call("ARRAY_JOIN", [ArrayType(BOOLEAN), STRING], [True, False], "|") == "true|false"
    assert call("ARRAY_JOIN", [ArrayType(D21)], [dec("1.5"), dec("-0.1")]) == "1.5,-0.1"
    assert call("ARRAY_JOIN", [INTS], None) is None
    with pytest.raises(TypeError):
        call("ARRAY_JOIN", [ArrayType(INTS)], [[1]])


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [(1, 2, ["a", "b"]), (2, 3, ["b", "c"]), (None, 1, ["a"]), (3, None, ["c"]), (0, 2, None), (2, 4, None),
     (3, 2, []), (3, 1, None), (3, 3, ["c"])],
)
def test_slice(start: int | None, end: int | None, expected: list[str] | None) -> None:
    assert call("SLICE", [ArrayType(STRING), INTEGER, INTEGER], ["a", "b", "c"], start, end) == expected


# --------------------------------------------------------------------------- maps


def test_map_keys_values_union() -> None:
    a_map = MapType(STRING, INTEGER)
    assert call("MAP_KEYS", [a_map], {"foo": 10, "bar": None}) == ["foo", "bar"]
    assert call("MAP_VALUES", [a_map], {"foo": 10, "bar": None}) == [10, None]
    assert call("MAP_KEYS", [a_map], None) is None
    assert return_type("MAP_VALUES", [MapType(STRING, INTS)]) == ArrayType(INTS)
    union = [a_map, a_map]
    assert call("MAP_UNION", union, {"apple": 10, "banana": 20}, {"apple": 50}) == {"apple": 50, "banana": 20}
    assert call("MAP_UNION", union, None, {"cherry": 99}) == {"cherry": 99}
    assert call("MAP_UNION", union, None, None) is None


def test_as_map() -> None:
    types = [ArrayType(STRING), INTS]
    assert call("AS_MAP", types, ["a", "b"], [1, 2, 3]) == {"a": 1, "b": 2}
    assert call("AS_MAP", types, ["a", "b", "c"], [1, 2]) == {"a": 1, "b": 2, "c": None}
    assert call("AS_MAP", types, None, [1]) is None
    assert return_type("AS_MAP", types) == MapType(STRING, INTEGER)


def test_entries() -> None:
    types = [MapType(STRING, DOUBLE), BOOLEAN]
    assert call("ENTRIES", types, {"K2": 2.0, "K1": 1.0}, True) == [{"K": "K1", "V": 1.0}, {"K": "K2", "V": 2.0}]
    assert call("ENTRIES", types, {"K2": 2.0, "K1": 1.0}, False) == [{"K": "K2", "V": 2.0}, {"K": "K1", "V": 1.0}]
    assert call("ENTRIES", types, None, True) is None
    assert return_type("ENTRIES", types) == ArrayType(StructType((("K", STRING), ("V", DOUBLE))))


# --------------------------------------------------------------------------- lambdas


def test_transform_array() -> None:
    assert call("TRANSFORM", [INTS, lam(1)], [3, 6], lambda x: x + 5) == [8, 11]
    assert call("TRANSFORM", [ArrayType(STRING), lam(1)], ["a", None], lambda x: x and x.upper()) == ["A", None]
    assert call("TRANSFORM", [INTS, lam(1)], None, lambda x: x) is None
    bound = REGISTRY.resolve("TRANSFORM", [ArrayType(DOUBLE), lam(1, STRING)])
    assert bound.return_type == ArrayType(STRING)
    assert bound.lambda_param_types == {1: [DOUBLE]}


def test_transform_map() -> None:
    types: Args = [MapType(STRING, INTS), lam(2, STRING), lam(2, INTEGER)]
    bound = REGISTRY.resolve("TRANSFORM", types)
    assert bound.return_type == MapType(STRING, INTEGER)
    assert bound.lambda_param_types == {1: [STRING, INTS], 2: [STRING, INTS]}
    result = call("TRANSFORM", types, {"a": [2, 4, 5], "b": [-1, -2]}, lambda k, v: k + "_test", lambda k, v: min(v))
    assert result == {"a_test": 2, "b_test": -2}


def test_transform_map_rejects_duplicate_keys_and_null_values() -> None:
    types: Args = [MapType(STRING, INTS), lam(2, STRING), lam(2, INTS)]
    with pytest.raises(ValueError, match="Duplicate key"):
        call("TRANSFORM", types, {"5": [0, 2], "4": [2]}, lambda k, v: str(max(v)), lambda k, v: v)
    with pytest.raises(ValueError, match="NULL value"):
        call("TRANSFORM", types, {"q": []}, lambda k, v: k, lambda k, v: None)


def test_filter() -> None:
    assert call("FILTER", [ArrayType(STRING), lam(1, BOOLEAN)], ["ya", "no", None], lambda x: x == "ya") == ["ya"]
    decimals = [dec("9.22"), dec("9.56"), None]
    assert call("FILTER", [ArrayType(DecimalType(4, 2)), lam(1, BOOLEAN)], decimals, lambda x: None) == []
    map_type = MapType(STRING, INTEGER)
    kept = call("FILTER", [map_type, lam(2, BOOLEAN)], {"a": 15, "abcd": 15}, lambda k, v: len(k) > 3)
    assert kept == {"abcd": 15}
    assert return_type("FILTER", [map_type, lam(2, BOOLEAN)]) == map_type
    with pytest.raises(ValueError, match="NULL value"):
        call("FILTER", [map_type, lam(2, BOOLEAN)], {"abcd": None}, lambda k, v: True)
    with pytest.raises(Exception, match="does not accept parameters"):
        REGISTRY.resolve("FILTER", [INTS, lam(1, INTEGER)])


def test_reduce() -> None:
    array_types: Args = [INTS, INTEGER, lam(2, INTEGER)]
    assert call("REDUCE", array_types, [1, 2, 3], 0, lambda s, x: s + x) == 6
    assert call("REDUCE", array_types, None, 7, lambda s, x: s + x) == 7
    assert call("REDUCE", array_types, [1, 2], None, lambda s, x: s + x) is None
    strings: Args = [ArrayType(STRING), STRING, lam(2, STRING)]
    assert call("REDUCE", strings, ["to be or", None], "", lambda s, x: s + (x or "")) == "to be or"
    map_types: Args = [MapType(STRING, INTEGER), INTEGER, lam(3, INTEGER)]
    reduced = call("REDUCE", map_types, {"123": 3, "12": 7, "1234": 2}, 0,
                   lambda s, k, v: s + v if len(k) > 3 else s - v)
    assert reduced == -8
    bound = REGISTRY.resolve("REDUCE", map_types)
    assert bound.return_type == INTEGER
    assert bound.lambda_param_types == {2: [INTEGER, STRING, INTEGER]}


def test_reduce_map_visits_entries_in_java_hash_map_order() -> None:
    types: Args = [MapType(STRING, DOUBLE), DOUBLE, lam(3, DOUBLE)]
    mapping = {"yes, thanks": 3.5, "nope": 7.3, "sure, yeah": 2.1}
    visited: list[str] = []

    def fold(state: float, key: str, value: float) -> float:
        visited.append(key)
        return float(math.ceil(value * state) if "ye" in key else math.floor(state * value))

    assert call("REDUCE", types, mapping, 3.2, fold) == 189.0
    assert visited == ["yes, thanks", "sure, yeah", "nope"]


def test_reduce_state_widens_to_lambda_result() -> None:
    bound = REGISTRY.resolve("REDUCE", [INTS, INTEGER, lam(2, BIGINT)])
    assert bound.return_type == BIGINT
    assert bound.arg_types[1] == BIGINT


# --------------------------------------------------------------------------- date/time formatting and parsing


@pytest.mark.parametrize(
    ("days", "pattern", "expected"),
    [
        (17662, "yyyy-MM-dd", "2018-05-11"),
        (18027, "dd/MM/yyyy", "11/05/2019"),
        (18993, "dd-MMM-yyyy", "01-Jan-2022"),
        (0, "dd-MM-yyyy", "01-01-1970"),
        (-1, "dd-MM-yyyy'Sophia'", "31-12-1969Sophia"),
        (18993, "EEEE d MMMM yy, 'Q'Q, D", "Saturday 1 January 22, Q1, 1"),
        (0, "'It''s' yyyy", "It's 1970"),
    ],
)
def test_format_date(days: int, pattern: str, expected: str) -> None:
    assert call("FORMAT_DATE", [DATE, STRING], days, pattern) == expected
    assert call("DATETOSTRING", [INTEGER, STRING], days, pattern) == expected


def test_format_date_rejects_time_fields() -> None:
    with pytest.raises(ValueError, match="Unsupported field"):
        call("FORMAT_DATE", [DATE, STRING], 0, "yyyy HH")


@pytest.mark.parametrize(
    ("millis", "pattern", "expected"),
    [
        (65000, "HH_mm_ss_SSS", "00_01_05_000"),
        (1234567, "HHmmss'AAAAA'", "002034AAAAA"),
        (46800000, "hh:mm a", "01:00 PM"),
        (0, "h K k H", "12 0 24 0"),
    ],
)
def test_format_time(millis: int, pattern: str, expected: str) -> None:
    assert call("FORMAT_TIME", [TIME, STRING], millis, pattern) == expected


@pytest.mark.parametrize(
    ("zone", "pattern", "expected"),
    [
        (None, "yyyy-MM-dd HH:mm:ss", "2018-05-11 21:58:33"),
        ("America/Los_Angeles", "yyyy-MM-dd HH:mm:ss zzz", "2018-05-11 14:58:33 PDT"),
        ("Europe/London", "yyyy-MM-dd HH:mm:ss zzz", "2018-05-11 22:58:33 BST"),
        ("UTC", "yyyy-MM-dd HH:mm:ss Z", "2018-05-11 21:58:33 +0000"),
        ("+05:30", "yyyy-MM-dd'T'HH:mm:ss.SSSXXX", "2018-05-12T03:28:33.000+05:30"),
        ("UTC", "X|XX|xxx|O|VV", "Z|Z|+00:00|GMT|UTC"),
        ("America/New_York", "VV O OOOO x", "America/New_York GMT-4 GMT-04:00 -04"),
        ("PST", "HH:mm", "14:58"),
    ],
)
def test_format_timestamp(zone: str | None, pattern: str, expected: str) -> None:
    millis = 1526075913000
    if zone is None:
        assert call("FORMAT_TIMESTAMP", [TIMESTAMP, STRING], millis, pattern) == expected
        assert call("TIMESTAMPTOSTRING", [BIGINT, STRING], millis, pattern) == expected
    else:
        assert call("FORMAT_TIMESTAMP", [TIMESTAMP, STRING, STRING], millis, pattern, zone) == expected
        assert call("TIMESTAMPTOSTRING", [BIGINT, STRING, STRING], millis, pattern, zone) == expected


def test_format_timestamp_bad_zone_or_pattern_raises() -> None:
    with pytest.raises(ValueError, match="time-zone"):
        call("FORMAT_TIMESTAMP", [TIMESTAMP, STRING, STRING], 0, "yyyy", "Mars/Olympus")
    with pytest.raises(ValueError, match="Unknown pattern letter"):
        call("FORMAT_TIMESTAMP", [TIMESTAMP, STRING], 0, "yyyy-MM-ddTHH")
    assert call("FORMAT_TIMESTAMP", [TIMESTAMP, STRING], None, "yyyy") is None


@pytest.mark.parametrize(
    ("text", "pattern", "expected"),
    [
        ("2018-05-11Lit", "yyyy-MM-dd'Lit'", 17662),
        ("11/05/2019", "dd/MM/yyyy", 18027),
        ("01-JAN-2022", "dd-MMM-yyyy", 18993),
        ("JAN-2022", "MMM-yyyy", 18993),
        ("20220101", "yyyyMMdd", 18993),
        ("2012-01-01", "yyyy-MM-dd", 15340),
        ("2021-02-31", "yyyy-MM-dd", 18686),  # the day clamps to the month's end
        ("22-001", "yy-DDD", 18993),
    ],
)
def test_parse_date(text: str, pattern: str, expected: int) -> None:
    assert call("PARSE_DATE", [STRING, STRING], text, pattern) == expected
    assert call("STRINGTODATE", [STRING, STRING], text, pattern) == expected


@pytest.mark.parametrize(
    ("text", "pattern"),
    [("2004", "yyyy-MM-dd"), ("foo", "yyyyMMdd"), ("2020-01-01 10", "yyyy-MM-dd HH"), ("2020-13-01", "yyyy-MM-dd")],
)
def test_parse_date_failures_raise(text: str, pattern: str) -> None:
    with pytest.raises(ValueError):
        call("STRINGTODATE", [STRING, STRING], text, pattern)


def test_parse_date_is_lenient_like_simple_date_format() -> None:
    assert call("PARSE_DATE", [STRING, STRING], "2003-12-24-01-01", "yyyy-MM-dd") == 12410
    assert call("PARSE_DATE", [STRING, STRING], "2020-01-01 00", "yyyy-MM-dd HH") == 18262
    with pytest.raises(ValueError, match="time field"):
        call("PARSE_DATE", [STRING, STRING], "2020-01-01 10", "yyyy-MM-dd HH")
    with pytest.raises(ValueError):
        call("PARSE_DATE", [STRING, STRING], "2004", "yyyy-MM-dd")
    with pytest.raises(ValueError):
        call("STRINGTODATE", [STRING, STRING], "2003-12-24-01-01", "yyyy-MM-dd")


@pytest.mark.parametrize(
    ("text", "pattern", "expected"),
    [
        ("00:01:05Lit", "HH:mm:ss'Lit'", 65000),
        ("11/05/19", "HH/mm/ss", 39919000),
        ("01:00:00 PM", "hh:mm:ss a", 46800000),
        ("01:00:00 Pm", "hh:mm:ss a", 46800000),
        ("12:30 am", "hh:mm a", 1800000),
        ("7.25", "H.SS", 25200250),
    ],
)
def test_parse_time(text: str, pattern: str, expected: int) -> None:
    assert call("PARSE_TIME", [STRING, STRING], text, pattern) == expected


def test_parse_time_rejects_date_fields() -> None:
    with pytest.raises(ValueError, match="date field"):
        call("PARSE_TIME", [STRING, STRING], "2020 10", "yyyy HH")


@pytest.mark.parametrize(
    ("text", "pattern", "zone", "expected"),
    [
        ("2018-05-11T21:58:33Z", "yyyy-MM-dd'T'HH:mm:ssX", None, 1526075913000),
        ("2020-05-11T21:58:33z", "yyyy-MM-dd'T'HH:mm:ssX", None, 1589234313000),
        ("2019-08-27T13:31:09.2+0000", "yyyy-MM-dd'T'HH:mm:ss.SX", None, 1566912669200),
        ("2018-05-11T21:58:33 PST", "yyyy-MM-dd'T'HH:mm:ss zzz", None, 1526101113000),
        ("2018-05-11 21:58:33", "yyyy-MM-dd HH:mm:ss", "America/Los_Angeles", 1526101113000),
        ("2018-05-11 21:58:33 +02:00", "yyyy-MM-dd HH:mm:ss XXX", "America/Los_Angeles", 1526068713000),
        ("2021-06-31 12:18:39.446", "yyyy-MM-dd HH:mm:ss.SSS", None, 1625055519446),
        ("1970-01-01[UTC]", "yyyy-MM-dd'['VV']'", "+01:00", 0),
        ("2020-01-02", "yyyy-MM-dd[ HH:mm]", None, 1577923200000),
        ("2020-01-02 10:00", "yyyy-MM-dd[ HH:mm]", None, 1577959200000),
    ],
)
def test_parse_timestamp(text: str, pattern: str, zone: str | None, expected: int) -> None:
    if zone is None:
        assert call("PARSE_TIMESTAMP", [STRING, STRING], text, pattern) == expected
        assert call("STRINGTOTIMESTAMP", [STRING, STRING], text, pattern) == expected
    else:
        assert call("PARSE_TIMESTAMP", [STRING, STRING, STRING], text, pattern, zone) == expected
        assert call("STRINGTOTIMESTAMP", [STRING, STRING, STRING], text, pattern, zone) == expected


def test_parse_timestamp_in_daylight_saving_gap_moves_forward() -> None:
    # 02:30 does not exist on 2021-03-14 in Los Angeles; Java shifts it to 03:30 PDT (10:30 UTC)
    parsed = call("PARSE_TIMESTAMP", [STRING, STRING, STRING], "2021-03-14 02:30", "yyyy-MM-dd HH:mm",
                  "America/Los_Angeles")
    assert parsed == 1615717800000


def test_patterns_are_cached_and_round_trip() -> None:
    assert date_time_pattern("yyyy-MM-dd") is date_time_pattern("yyyy-MM-dd")
    pattern = date_time_pattern("yyyy-MM-dd'T'HH:mm:ss.SSSXXX")
    zone = resolve_zone("Asia/Kolkata")
    for millis in (0, 1526075913123, -86_400_001):
        assert pattern.parse_timestamp(pattern.format_timestamp(millis, zone)) == millis


@pytest.mark.parametrize(
    ("zone_id", "expected_id"),
    [("UTC", "UTC"), ("Z", "Z"), ("+0200", "+02:00"), ("-5", "-05:00"), ("GMT+2", "GMT+02:00"),
     ("Europe/London", "Europe/London"), ("PST", "America/Los_Angeles")],
)
def test_resolve_zone(zone_id: str, expected_id: str) -> None:
    assert resolve_zone(zone_id).zone_id == expected_id


def test_convert_tz() -> None:
    types = [TIMESTAMP, STRING, STRING]
    assert call("CONVERT_TZ", types, 100, "+0200", "+0500") == 10800100
    assert call("CONVERT_TZ", types, 1589234313000, "+0200", "+0500") == 1589245113000
    assert call("CONVERT_TZ", types, 1589234313000, "UTC", "America/Los_Angeles") == 1589234313000 - 7 * 3600000
    assert call("CONVERT_TZ", types, None, "UTC", "UTC") is None
    with pytest.raises(ValueError):
        call("CONVERT_TZ", types, 0, "UTC", "Nowhere/Special")


def test_conversions_between_representations() -> None:
    assert call("FROM_UNIXTIME", [BIGINT], 1589234313000) == 1589234313000
    assert return_type("FROM_UNIXTIME", [BIGINT]) == TIMESTAMP
    assert call("UNIX_TIMESTAMP", [TIMESTAMP], 100) == 100
    assert return_type("UNIX_TIMESTAMP", [TIMESTAMP]) == BIGINT
    assert call("FROM_DAYS", [INTEGER], 19000) == 19000
    assert return_type("FROM_DAYS", [INTEGER]) == DATE
    assert call("UNIX_DATE", [DATE], 10) == 10
    assert return_type("UNIX_DATE", [DATE]) == INTEGER
    assert call("UNIX_DATE", [DATE], None) is None


def test_wall_clock_functions() -> None:
    before = int(time.time() * 1000)
    now = call("UNIX_TIMESTAMP", [])
    assert before - 1000 <= now <= int(time.time() * 1000) + 1000
    assert call("UNIX_DATE", []) == now // 86_400_000


# --------------------------------------------------------------------------- interval arithmetic


@pytest.mark.parametrize(
    ("name", "unit", "interval", "value", "expected"),
    [
        ("DATEADD", "DAYS", 10, 10, 20),
        ("DATEADD", "DAYS", -5, 2, -3),
        ("DATEADD", "HOURS", 25, 0, 1),
        ("DATEADD", "HOURS", -1, 0, 0),  # Java's millisecond-to-day conversion truncates towards zero
        ("DATESUB", "DAYS", 10, 5, -5),
        ("DATESUB", "MILLISECONDS", 5, 5, 4),
        ("TIMEADD", "MILLISECONDS", 10, 86399995, 5),
        ("TIMEADD", "MILLISECONDS", -5, 2, 86399997),
        ("TIMEADD", "HOURS", 25, 0, 3600000),
        ("TIMESUB", "MILLISECONDS", 10, 5, 86399995),
        ("TIMESUB", "MILLISECONDS", -5, 86399997, 2),
        ("TIMESTAMPADD", "MILLISECONDS", 10, 10, 20),
        ("TIMESTAMPADD", "DAYS", 1, 0, 86400000),
        ("TIMESTAMPADD", "MICROSECONDS", 1500, 0, 1),
        ("TIMESTAMPADD", "NANOSECONDS", -1_500_000, 0, -1),
        ("TIMESTAMPSUB", "MILLISECONDS", -5, -100, -95),
        ("TIMESTAMPSUB", "SECONDS", 1, 5000, 4000),
        ("TIMESTAMPADD", "second", 1, 0, 1000),  # singular and lower-case unit names are accepted too
    ],
)
def test_interval_arithmetic(name: str, unit: str, interval: int, value: int, expected: int) -> None:
    value_type = {"DATE": DATE, "TIME": TIME, "TIMESTAMP": TIMESTAMP}[name[:-3]]
    assert call(name, [STRING, INTEGER, value_type], unit, interval, value) == expected
    assert return_type(name, [STRING, INTEGER, value_type]) == value_type


def test_interval_arithmetic_nulls_and_errors() -> None:
    types = [STRING, INTEGER, TIMESTAMP]
    assert call("TIMESTAMPADD", types, "MILLISECONDS", None, 5) is None
    assert call("TIMESTAMPADD", types, "MILLISECONDS", 5, None) is None
    with pytest.raises(ValueError, match="Unknown time unit"):
        call("TIMESTAMPADD", types, "FORTNIGHTS", 1, 0)
    with pytest.raises(Exception, match="does not accept parameters"):
        REGISTRY.resolve("DATEADD", [DATE, INTEGER, DATE])
    with pytest.raises(Exception, match="does not accept parameters"):
        REGISTRY.resolve("TIMESUB", [TIME, INTEGER, TIME])


# --------------------------------------------------------------------------- catalogue


def test_every_overload_is_described_and_categorised() -> None:
    names = ["ABS", "ROUND", "GREATEST", "ARRAY_SORT", "MAP_UNION", "ENTRIES", "TRANSFORM", "REDUCE",
             "GEO_DISTANCE", "PARSE_TIMESTAMP", "TIMESTAMPADD"]
    for name in names:
        for overload in REGISTRY.overloads(name):
            assert overload.description
            assert overload.category in {"MATHEMATICAL", "ARRAY", "MAP", "LAMBDA", "DATE_TIME", "OTHER"}
