"""Compiled expressions over batches: SQL NULL semantics, Java arithmetic, error isolation per row."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest

from ksqlpy.errors import StatementError
from ksqlpy.execution.expressions import CompiledExpression
from ksqlpy.functions.registry import FunctionRegistry
from ksqlpy.planning.expressions import ExpressionTyper, Scope, ScopeColumn
from ksqlpy.syntax.parser import parse_expression
from ksqlpy.types import (
    BIGINT,
    BOOLEAN,
    DOUBLE,
    INTEGER,
    STRING,
    ArrayType,
    DecimalType,
    MapType,
    SqlType,
    StructType,
)

REGISTRY = FunctionRegistry.with_builtins()


def evaluate(sql: str, **columns: tuple[SqlType, list[Any]]) -> tuple[list[Any], list[tuple[int, str]]]:
    scope = Scope([ScopeColumn(i, name.upper(), t) for i, (name, (t, _)) in enumerate(columns.items())])
    typed = ExpressionTyper(scope, REGISTRY).type(parse_expression(sql))
    data = [values for _, values in columns.values()]
    size = len(data[0]) if data else 1
    errors: list[tuple[int, str]] = []
    result = CompiledExpression(typed).evaluate(data, size, lambda row, e: errors.append((row, str(e))))
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
