"""Compiled expressions over batches: SQL NULL semantics, Java arithmetic, error isolation per row."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any, NamedTuple

import pytest

from ksqlpy.errors import StatementError
from ksqlpy.execution.expressions import CompiledExpression
from ksqlpy.functions.registry import FunctionRegistry
from ksqlpy.planning.expressions import ExpressionTyper, Op, Scope, ScopeColumn, TypedExpr
from ksqlpy.syntax.parser import parse_expression
from ksqlpy.types import (
    BIGINT,
    BOOLEAN,
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

REGISTRY = FunctionRegistry.with_builtins()


def typed(sql: str, **columns: tuple[SqlType, list[Any]]) -> TypedExpr:
    scope = Scope([ScopeColumn(i, name.upper(), t) for i, (name, (t, _)) in enumerate(columns.items())])
    return ExpressionTyper(scope, REGISTRY).type(parse_expression(sql))


def evaluate(sql: str, **columns: tuple[SqlType, list[Any]]) -> tuple[list[Any], list[tuple[int, str]]]:
    data = [values for _, values in columns.values()]
    size = len(data[0]) if data else 1
    errors: list[tuple[int, str]] = []
    result = CompiledExpression(typed(sql, **columns)).evaluate(data, size, lambda row, e: errors.append((row, str(e))))
    return result, errors


def test_arithmetic_propagates_null_and_widens() -> None:
    result, _ = evaluate("a + b * 2", a=(INTEGER, [1, None, 3]), b=(DOUBLE, [0.5, 1.0, None]))
    assert result == [2.0, None, None]


def test_integer_division_truncates_toward_zero_like_java() -> None:
    result, _ = evaluate("a / b", a=(INTEGER, [7, -7, 7]), b=(INTEGER, [2, 2, -2]))
    assert result == [3, -3, -3]
    result, _ = evaluate("a % b", a=(INTEGER, [7, -7]), b=(INTEGER, [3, 3]))
    assert result == [1, -1]


def test_failing_row_yields_null_and_is_reported_while_others_flow() -> None:
    result, errors = evaluate("a / b", a=(BIGINT, [10, 10, 9]), b=(BIGINT, [2, 0, 3]))
    assert result == [5, None, 3]
    assert [row for row, _ in errors] == [1]


def test_double_division_by_zero_is_infinite() -> None:
    result, errors = evaluate("a / b", a=(DOUBLE, [1.0, -1.0]), b=(DOUBLE, [0.0, 0.0]))
    assert result == [math.inf, -math.inf] and not errors


def test_decimal_arithmetic_keeps_sql_scale() -> None:
    result, _ = evaluate("a + b", a=(DecimalType(4, 2), [Decimal("1.10")]), b=(DecimalType(3, 1), [Decimal("2.5")]))
    assert result == [Decimal("3.60")] and str(result[0]) == "3.60"


def test_three_valued_logic() -> None:
    a = (BOOLEAN, [True, True, False, None, None])
    b = (BOOLEAN, [None, False, None, None, False])
    assert evaluate("a AND b", a=a, b=b)[0] == [None, False, False, None, False]
    assert evaluate("a OR b", a=a, b=b)[0] == [True, True, None, None, None]
    assert evaluate("NOT a", a=a)[0] == [False, False, True, None, None]


def test_comparisons_with_null_are_false_as_in_ksqldb() -> None:
    x = (INTEGER, [1, 5, None, 10])
    assert evaluate("x > 4", x=x)[0] == [False, True, False, True]
    assert evaluate("x BETWEEN 2 AND 9", x=x)[0] == [False, True, False, False]
    assert evaluate("x IN (1, 10)", x=x)[0] == [True, False, False, True]
    assert evaluate("x IS DISTINCT FROM 5", x=x)[0] == [True, False, True, True]
    assert evaluate("x IS NOT DISTINCT FROM NULL", x=x)[0] == [False, False, True, False]


def test_like_with_escape() -> None:
    s = (STRING, ["50%", "50x", "a_b", None])
    assert evaluate("s LIKE '50!%' ESCAPE '!'", s=s)[0] == [True, False, False, None]
    assert evaluate("s LIKE 'a_b'", s=s)[0] == [False, False, True, None]


def test_case_forms() -> None:
    x = (INTEGER, [1, 2, 3, None])
    assert evaluate("CASE WHEN x = 1 THEN 'one' WHEN x > 2 THEN 'big' ELSE 'other' END", x=x)[0] == [
        "one",
        "other",
        "big",
        "other",
    ]
    assert evaluate("CASE x WHEN 2 THEN 'two' END", x=x)[0] == [None, "two", None, None]


def test_cast_failures_are_row_errors() -> None:
    result, errors = evaluate("CAST(s AS INT)", s=(STRING, ["12", "x", " 7 "]))
    assert result == [12, None, 7]
    assert len(errors) == 1 and errors[0][0] == 1


def test_collections_are_one_based_and_null_safe() -> None:
    arr = (ArrayType(INTEGER), [[10, 20, 30], [], None])
    assert evaluate("arr[1]", arr=arr)[0] == [10, None, None]
    assert evaluate("arr[-1]", arr=arr)[0] == [30, None, None]
    m = (MapType(STRING, INTEGER), [{"a": 1}, {}])
    assert evaluate("m['a']", m=m)[0] == [1, None]
    st = (StructType((("F", INTEGER),)), [{"F": 3}, None])
    assert evaluate("st->f", st=st)[0] == [3, None]


def test_constructors() -> None:
    result, _ = evaluate("ARRAY[x, x + 1]", x=(INTEGER, [1]))
    assert result == [[1, 2]]
    result, _ = evaluate("STRUCT(a := x, b := 'k')", x=(INTEGER, [1]))
    assert result == [{"A": 1, "B": "k"}]


def test_type_errors_name_the_problem() -> None:
    with pytest.raises(StatementError, match="cannot be resolved"):
        evaluate("nope + 1", x=(INTEGER, [1]))
    with pytest.raises(StatementError, match="Cannot compare"):
        evaluate("x > 'a'", x=(INTEGER, [1]))


def test_null_arithmetic_inside_a_lambda_fails_the_whole_call() -> None:
    # ksqlDB's generated Java unboxes lambda operands: one NULL element fails TRANSFORM, which yields NULL
    result, errors = evaluate("TRANSFORM(a, x => x + 5)", a=(ArrayType(INTEGER), [[3, 6], [5, None], None]))
    assert result == [[8, 11], None, None]
    assert [row for row, _ in errors] == [1]


def test_null_safe_operations_inside_a_lambda_stay_null_safe() -> None:
    result, errors = evaluate("TRANSFORM(a, x => x IS NULL)", a=(ArrayType(INTEGER), [[1, None]]))
    assert result == [[False, True]]
    assert errors == []


# --------------------------------------------------------------------------- boundaries: comparisons, BETWEEN, subscripts


class Boundary(NamedTuple):
    """Values of one type just below, equal to and just above a pivot of another (or the same) type."""

    left: SqlType
    below: Any
    equal: Any
    above: Any
    right: SqlType
    pivot: Any
    literal: str | None  # the pivot written in SQL, where the left type can be compared with a literal


PIVOT_MS = 1_600_000_000_000  # 2020-09-13T12:26:40Z
PIVOT_DAY = 19_000  # 2022-01-08
NOON_MS = 43_200_000
BEYOND_DOUBLE = 2**53 + 1  # the first integer a double cannot hold: compared as doubles it equals its neighbour

BOUNDARIES = {
    "int": Boundary(INTEGER, 9, 10, 11, INTEGER, 10, "10"),
    "int-extremes": Boundary(INTEGER, -2_147_483_648, -2_147_483_647, 2_147_483_647, INTEGER, -2_147_483_647,
                             "-2147483647"),
    "bigint": Boundary(BIGINT, BEYOND_DOUBLE - 1, BEYOND_DOUBLE, BEYOND_DOUBLE + 1, BIGINT, BEYOND_DOUBLE,
                       str(BEYOND_DOUBLE)),
    "double": Boundary(DOUBLE, math.nextafter(1.5, -math.inf), 1.5, math.nextafter(1.5, math.inf), DOUBLE, 1.5, "1.5"),
    "decimal": Boundary(DecimalType(4, 2), Decimal("1.49"), Decimal("1.50"), Decimal("1.51"), DecimalType(4, 2),
                        Decimal("1.50"), "1.50"),
    "string": Boundary(STRING, "abb", "abc", "abca", STRING, "abc", "'abc'"),
    "string-case": Boundary(STRING, "Z", "a", "b", STRING, "a", "'a'"),  # Java orders by code unit: 'Z' < 'a'
    "timestamp": Boundary(TIMESTAMP, PIVOT_MS - 1, PIVOT_MS, PIVOT_MS + 1, TIMESTAMP, PIVOT_MS,
                          "'2020-09-13T12:26:40.000'"),
    "date": Boundary(DATE, PIVOT_DAY - 1, PIVOT_DAY, PIVOT_DAY + 1, DATE, PIVOT_DAY, "'2022-01-08'"),
    "time": Boundary(TIME, NOON_MS - 1, NOON_MS, NOON_MS + 1, TIME, NOON_MS, "'12:00:00'"),
    "int-vs-bigint": Boundary(INTEGER, 9, 10, 11, BIGINT, 10, None),
    "int-vs-double": Boundary(INTEGER, 9, 10, 11, DOUBLE, 10.0, None),
    "bigint-vs-decimal": Boundary(BIGINT, 9, 10, 11, DecimalType(3, 1), Decimal("10.0"), None),
    "decimal-vs-double": Boundary(DecimalType(4, 2), Decimal("1.49"), Decimal("1.50"), Decimal("1.51"), DOUBLE, 1.5,
                                  None),
    "date-vs-timestamp": Boundary(DATE, PIVOT_DAY - 1, PIVOT_DAY, PIVOT_DAY + 1, TIMESTAMP, PIVOT_DAY * 86_400_000,
                                  None),
}

# Each operator's verdict on a left value just below, equal to, just above the pivot, then on a NULL left
# value and on a NULL pivot: ksqlDB's comparisons are two-valued, a NULL operand makes them false.
VERDICTS = {
    "=": [False, True, False, False, False],
    "<>": [True, False, True, False, False],
    "!=": [True, False, True, False, False],
    "<": [True, False, False, False, False],
    "<=": [True, True, False, False, False],
    ">": [False, False, True, False, False],
    ">=": [False, True, True, False, False],
}
MIRRORED = {"=": "=", "<>": "<>", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


def boundary_columns(case: Boundary) -> dict[str, tuple[SqlType, list[Any]]]:
    return {
        "x": (case.left, [case.below, case.equal, case.above, None, case.equal]),
        "y": (case.right, [case.pivot, case.pivot, case.pivot, case.pivot, None]),
    }


@pytest.mark.parametrize("operator", VERDICTS)
@pytest.mark.parametrize("case", BOUNDARIES.values(), ids=BOUNDARIES.keys())
def test_comparison_boundaries_between_columns(case: Boundary, operator: str) -> None:
    columns = boundary_columns(case)
    assert evaluate(f"x {operator} y", **columns) == (VERDICTS[operator], [])
    assert evaluate(f"y {MIRRORED[operator]} x", **columns) == (VERDICTS[operator], [])


LITERAL_BOUNDARIES = {name: case for name, case in BOUNDARIES.items() if case.literal is not None}


@pytest.mark.parametrize("operator", VERDICTS)
@pytest.mark.parametrize("case", LITERAL_BOUNDARIES.values(), ids=LITERAL_BOUNDARIES.keys())
def test_comparison_boundaries_against_literals(case: Boundary, operator: str) -> None:
    x = (case.left, [case.below, case.equal, case.above, None])
    expected = VERDICTS[operator][:4]
    assert evaluate(f"x {operator} {case.literal}", x=x) == (expected, [])
    assert evaluate(f"{case.literal} {MIRRORED[operator]} x", x=x) == (expected, [])
    # a NULL pivot makes every verdict false (the column test above); a NULL literal ksqlDB refuses outright
    with pytest.raises(StatementError, match="Comparison with NULL not supported"):
        evaluate(f"x {operator} NULL", x=x)


# (type, just below the low bound, low, inside, high, just above the high bound; the bounds written in SQL)
BETWEEN_CASES = {
    "int": (INTEGER, [1, 2, 5, 9, 10], "2", "9"),
    "bigint": (BIGINT, [BEYOND_DOUBLE - 1, BEYOND_DOUBLE, BEYOND_DOUBLE + 1, BEYOND_DOUBLE + 2, BEYOND_DOUBLE + 3],
               str(BEYOND_DOUBLE), str(BEYOND_DOUBLE + 2)),
    "double": (DOUBLE, [math.nextafter(0.5, -math.inf), 0.5, 1.0, 1.5, math.nextafter(1.5, math.inf)], "0.5", "1.5"),
    "decimal": (DecimalType(4, 2), [Decimal(v) for v in ("0.49", "0.50", "1.00", "1.50", "1.51")], "0.50", "1.50"),
    "string": (STRING, ["ab", "abc", "abd", "abe", "abea"], "'abc'", "'abe'"),
    "timestamp": (TIMESTAMP, [PIVOT_MS - 1, PIVOT_MS, PIVOT_MS + 500, PIVOT_MS + 1000, PIVOT_MS + 1001],
                  "'2020-09-13T12:26:40.000'", "'2020-09-13T12:26:41.000'"),
    "date": (DATE, [PIVOT_DAY - 1, PIVOT_DAY, PIVOT_DAY + 1, PIVOT_DAY + 2, PIVOT_DAY + 3], "'2022-01-08'",
             "'2022-01-10'"),
}


@pytest.mark.parametrize(("sql_type", "values", "low", "high"), BETWEEN_CASES.values(), ids=BETWEEN_CASES.keys())
def test_between_includes_both_bounds(sql_type: SqlType, values: list[Any], low: str, high: str) -> None:
    x = (sql_type, [*values, None])
    assert evaluate(f"x BETWEEN {low} AND {high}", x=x) == ([False, True, True, True, False, False], [])
    # ksqlDB negates the (two-valued) BETWEEN, so NOT BETWEEN holds for a NULL operand
    assert evaluate(f"x NOT BETWEEN {low} AND {high}", x=x) == ([True, False, False, False, True, True], [])


def test_between_with_null_or_column_bounds() -> None:
    x = (INTEGER, [5, 5, 5, 5, 5])
    low = (INTEGER, [5, None, 1, 6, 5])
    high = (INTEGER, [5, 9, None, 9, 4])  # equal bounds, a NULL bound each side, x below, bounds reversed
    assert evaluate("x BETWEEN low AND high", x=x, low=low, high=high) == ([True, False, False, False, False], [])
    assert evaluate("x NOT BETWEEN low AND high", x=x, low=low, high=high) == ([False, True, True, True, True], [])
    assert evaluate("x BETWEEN NULL AND 9", x=x)[0] == [False] * 5
    assert evaluate("x BETWEEN 1 AND NULL", x=x)[0] == [False] * 5


def test_between_widens_mixed_numeric_bounds() -> None:
    x = (INTEGER, [1, 2, 3])
    assert evaluate("x BETWEEN 1.5 AND 3", x=x) == ([False, True, True], [])
    assert evaluate("x BETWEEN low AND 2", x=x, low=(DOUBLE, [1.0, 2.0, 2.5])) == ([True, True, False], [])


NUMBERS = [10, 20, 30]
# index -> element: 1-based from the front, negative from the back, anything else NULL
ARRAY_INDEXES = {-4: None, -3: 10, -2: 20, -1: 30, 0: None, 1: 10, 2: 20, 3: 30, 4: None}


@pytest.mark.parametrize(("index", "element"), ARRAY_INDEXES.items())
def test_array_subscript_by_literal(index: int, element: int | None) -> None:
    arr = (ArrayType(INTEGER), [NUMBERS, [], None])
    assert evaluate(f"arr[{index}]", arr=arr) == ([element, None, None], [])


def test_array_subscript_by_column() -> None:
    arr = (ArrayType(INTEGER), [NUMBERS] * (len(ARRAY_INDEXES) + 1))
    i = (INTEGER, [*ARRAY_INDEXES, None])
    assert evaluate("arr[i]", arr=arr, i=i) == ([*ARRAY_INDEXES.values(), None], [])
    assert evaluate("arr[i - 1]", arr=arr, i=(INTEGER, [index + 1 for index in ARRAY_INDEXES])) == (
        list(ARRAY_INDEXES.values()), []
    )


def test_array_subscript_single_element_and_null_elements() -> None:
    arr = (ArrayType(STRING), [["only"], [None, "b"]])
    assert evaluate("arr[1]", arr=arr)[0] == ["only", None]
    assert evaluate("arr[-1]", arr=arr)[0] == ["only", "b"]
    assert evaluate("arr[2]", arr=arr)[0] == [None, "b"]
    assert evaluate("arr[-2]", arr=arr)[0] == [None, None]


def test_nested_subscripts() -> None:
    grid = (ArrayType(ArrayType(INTEGER)), [[[1, 2], [3, 4]]])
    assert evaluate("grid[2][1]", grid=grid)[0] == [3]
    assert evaluate("grid[-1][-1]", grid=grid)[0] == [4]
    assert evaluate("grid[3][1]", grid=grid)[0] == [None]
    lists = (MapType(STRING, ArrayType(INTEGER)), [{"a": [7, 8]}])
    assert evaluate("lists['a'][2]", lists=lists)[0] == [8]
    assert evaluate("lists['b'][1]", lists=lists)[0] == [None]


def test_map_subscript() -> None:
    m = (MapType(STRING, INTEGER), [{"a": 1, "A": 2, "": 3}, {"a": None}, {}, None])
    assert evaluate("m['a']", m=m)[0] == [1, None, None, None]
    assert evaluate("m['A']", m=m)[0] == [2, None, None, None]  # keys are case-sensitive
    assert evaluate("m['']", m=m)[0] == [3, None, None, None]
    assert evaluate("m[k]", m=m, k=(STRING, ["A", "a", "a", "a"]))[0] == [2, None, None, None]
    assert evaluate("m[k]", m=m, k=(STRING, [None, None, None, None]))[0] == [None] * 4


# --------------------------------------------------------------------------- long runs of one operator

TERMS = 1_000
CHAIN_FLAGS = (BOOLEAN, [True, False, None, False, None])
CHAIN_NUMBERS = (INTEGER, [0, 999, 1_000, None, 500])


def kleene(values: list[bool | None], decisive: bool) -> bool | None:
    """A reference AND (`decisive` False) or OR (True) of SQL booleans."""
    if decisive in values:
        return decisive
    return None if None in values else not decisive


@pytest.mark.parametrize(("operator", "decisive"), [("OR", True), ("AND", False)])
def test_a_thousand_term_logical_chain_is_three_valued(operator: str, decisive: bool) -> None:
    # comparisons and a nullable flag in turn: the flag's NULLs make NULL unless some term decides
    comparison = "=" if decisive else "<>"
    sql = f" {operator} ".join(f"a {comparison} {i}" if i % 2 else "f" for i in range(TERMS))
    expected = [
        kleene([((a == i) is decisive if a is not None else False) if i % 2 else f for i in range(TERMS)], decisive)
        for a, f in zip(CHAIN_NUMBERS[1], CHAIN_FLAGS[1], strict=True)
    ]
    result, errors = evaluate(sql, a=CHAIN_NUMBERS, f=CHAIN_FLAGS)
    assert result == expected and not errors
    assert expected.count(None) >= 1 and expected.count(decisive) >= 1 and expected.count(not decisive) >= 1


def test_a_thousand_term_arithmetic_chain_folds_left_to_right_with_null() -> None:
    sql = "a" + "".join(f" {'+-'[i % 2]} {i * 7}" for i in range(1, TERMS))
    expected: list[int | None] = []
    for a in CHAIN_NUMBERS[1]:
        value = a
        for i in range(1, TERMS):
            if value is not None:
                value = value - i * 7 if i % 2 else value + i * 7
        expected.append(value)
    result, errors = evaluate(sql, a=CHAIN_NUMBERS)
    assert result == expected and not errors
    assert None in expected


def test_a_thousand_term_concatenation_is_null_if_any_part_is() -> None:
    result, errors = evaluate(" || ".join(["s", *(f"'{i % 10}'" for i in range(1, TERMS))]),
                              s=(STRING, ["x", None, ""]))
    digits = "".join(str(i % 10) for i in range(1, TERMS))
    assert result == ["x" + digits, None, digits] and not errors
    assert evaluate("s + '1' + s", s=(STRING, ["x", None]))[0] == ["x1x", None]


MIXED = {
    "i": (INTEGER, [2, None, -7, 2_147_483_647]),
    "b": (BIGINT, [3_000_000_000, 1, 5, 1]),
    "d": (DOUBLE, [0.5, 2.0, None, -1.25]),
    "dec": (DecimalType(5, 2), [Decimal("1.25"), Decimal("-3.50"), Decimal("0.01"), None]),
    "dec2": (DecimalType(3, 1), [Decimal("2.5"), Decimal("0.1"), Decimal("-1.0"), Decimal("9.9")]),
}


@pytest.mark.parametrize(("chain", "nested"), [
    ("i + b + d + dec", "((i + b) + d) + dec"),
    ("i - b * 2 + dec - dec2 * i", "((i - (b * 2)) + dec) - (dec2 * i)"),
    ("dec + dec2 + i + b - dec / dec2", "(((dec + dec2) + i) + b) - (dec / dec2)"),
    ("i + b / i % b * d - i", "(i + (((b / i) % b) * d)) - i"),
    ("i + b + (d * dec2 * d + i - (i - b - dec + d) + d) - i + b",
     "(((i + b) + ((((d * dec2) * d) + i) - (((i - b) - dec) + d)) + d) - i) + b"),
    ("dec2" + " + dec2" * 40, "(" * 40 + "dec2" + " + dec2)" * 40),
    ("i * dec2" + " * dec2" * 10 + " / i", "(" * 11 + "i * dec2)" + " * dec2)" * 10 + " / i"),
])
def test_mixed_type_chains_type_and_compute_each_step_as_if_nested(chain: str, nested: str) -> None:
    flat, bracketed = typed(chain, **MIXED), typed(nested, **MIXED)
    assert flat.type == bracketed.type
    assert evaluate(chain, **MIXED) == evaluate(nested, **MIXED)


def test_a_long_arithmetic_chain_is_flat_in_the_typed_tree() -> None:
    chain = typed("i" + " + b" * 999, **MIXED)
    assert isinstance(chain, Op) and chain.op == "chain" and len(chain.args) == 999
    assert chain.type == BIGINT
