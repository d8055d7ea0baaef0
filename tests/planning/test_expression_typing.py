"""The expression typer: implicit coercion of IN lists and ARRAY/MAP constructors, and its error messages."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from ksqlpy.errors import StatementError
from ksqlpy.execution.expressions import CompiledExpression
from ksqlpy.functions.registry import FunctionRegistry
from ksqlpy.planning.expressions import ExpressionTyper, Scope, ScopeColumn, TypedExpr, render
from ksqlpy.syntax.parser import parse_expression
from ksqlpy.types import (
    BIGINT,
    BOOLEAN,
    DATE,
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


def typed(sql: str, **columns: SqlType) -> TypedExpr:
    scope = Scope([ScopeColumn(i, name.upper(), t) for i, (name, t) in enumerate(columns.items())])
    return ExpressionTyper(scope, REGISTRY).type(parse_expression(sql))


def evaluate(sql: str, **columns: tuple[SqlType, list[Any]]) -> list[Any]:
    expression = typed(sql, **{name: t for name, (t, _) in columns.items()})
    data = [values for _, values in columns.values()]
    size = len(data[0]) if data else 1

    def fail(row: int, error: BaseException) -> None:
        raise error

    return CompiledExpression(expression).evaluate(data, size, fail)


def type_error(sql: str, **columns: SqlType) -> str:
    with pytest.raises(StatementError) as raised:
        typed(sql, **columns)
    return str(raised.value)


# --------------------------------------------------------------------------- IN lists


def test_in_list_reads_string_literals_as_the_operand_type() -> None:
    # any prefix of true/yes reads as TRUE
    assert evaluate("b IN ('tr', 'Y')", b=(BOOLEAN, [True, False])) == [True, False]
    assert evaluate("b IN ('f')", b=(BOOLEAN, [True, False])) == [False, True]
    assert evaluate("d IN ('1970-01-03')", d=(DATE, [2, 3])) == [True, False]


def test_in_list_numeric_string_literal_widens_the_comparison_type() -> None:
    # '2147483648' is a BIGINT: the INTEGER operand widens rather than the literal overflowing
    assert evaluate("i IN (1, '2147483648')", i=(INTEGER, [1, -2147483648])) == [True, False]
    assert evaluate("b IN ('4.000', 2.5)", b=(BIGINT, [4, 2, 5])) == [True, False, False]


def test_in_list_on_strings_compares_other_literals_as_their_text() -> None:
    result = evaluate("s IN (true, 10, 10.30)", s=(STRING, ["true", "10", "10.3", "10.30"]))
    assert result == [True, True, False, True]


def test_in_list_widens_numbers_of_columns() -> None:
    assert evaluate("i IN (d)", i=(BIGINT, [10, 11]), d=(DOUBLE, [10.0, 11.5])) == [True, False]


def test_in_list_rejects_unreadable_string_literals() -> None:
    assert type_error("i IN (10, 'ten')", i=INTEGER) == 'invalid input syntax for type INTEGER: "ten".'
    assert 'type DECIMAL: "x"' in type_error("d IN ('x')", d=DecimalType(4, 2))
    assert 'type BOOLEAN: "maybe"' in type_error("b IN ('maybe')", b=BOOLEAN)


def test_in_list_type_mismatch_names_both_types_and_the_item() -> None:
    assert type_error("i IN (10, true)", i=INTEGER) == (
        "operator does not exist: INTEGER = BOOLEAN (true)\nHint: You might need to add explicit type casts."
    )
    assert "STRING = DOUBLE (V)" in type_error("s IN (10, v)", s=STRING, v=DOUBLE)
    assert "MAP<STRING, BIGINT> = INTEGER (10)" in type_error("m IN (10)", m=MapType(STRING, BIGINT))


def test_in_list_mismatch_inside_a_constructor_is_reported_for_the_whole_constructor() -> None:
    message = type_error("a IN (a, ARRAY[b])", a=ArrayType(BIGINT), b=BOOLEAN)
    assert "ARRAY<BIGINT> = ARRAY<BOOLEAN> (ARRAY[B])" in message
    message = type_error("s IN (STRUCT(F0 := b))", s=StructType((("F0", BIGINT),)), b=BOOLEAN)
    assert "STRUCT<`F0` BIGINT> = STRUCT<`F0` BOOLEAN> (STRUCT(F0:=B))" in message
    # an unreadable literal inside a constructor keeps its own message
    assert 'type BIGINT: "not 10"' in type_error("a IN (ARRAY['10', 'not 10'])", a=ArrayType(BIGINT))


def test_in_list_coerces_constructor_elements() -> None:
    arrays = (ArrayType(BIGINT), [[1, 2], [3, None], [3]])
    assert evaluate("a IN (ARRAY[1, 2], ARRAY['3', null])", a=arrays) == [True, True, False]
    maps = (MapType(STRING, BIGINT), [{"a": 1}, {"c": None}, {"a": 2}])
    assert evaluate("m IN (MAP('a' := 1), MAP('c' := CAST(null AS BIGINT)))", m=maps) == [True, True, False]


def test_in_list_struct_constructors_may_omit_fields_but_extra_fields_never_match() -> None:
    struct = StructType((("A", BIGINT), ("B", BIGINT)))
    rows = [{"A": 1, "B": 2}, {"A": 3, "B": 2}, {"A": 5, "B": None}, {"A": 7, "B": 2}]
    result = evaluate(
        "s IN (STRUCT(B := 2, A := 1), STRUCT(A := 3, B := 2, C := 4), STRUCT(A := 5), STRUCT(A := '7', B := 2))",
        s=(struct, rows),
    )
    assert result == [True, False, True, True]


def test_in_list_struct_field_names_are_case_sensitive() -> None:
    struct = StructType((("F0", BIGINT),))
    assert evaluate("s IN (STRUCT(`f0` := 20))", s=(struct, [{"F0": 20}])) == [False]


# --------------------------------------------------------------------------- constructors


def test_array_constructor_merges_struct_elements_field_by_field() -> None:
    expression = typed("ARRAY[null, STRUCT(x := a, y := b), STRUCT(y := a, z := b)]", a=INTEGER, b=BIGINT)
    assert expression.type == ArrayType(StructType((("X", INTEGER), ("Y", BIGINT), ("Z", BIGINT))))
    result = evaluate("ARRAY[null, STRUCT(x := a, y := b), STRUCT(y := a, z := b)]", a=(INTEGER, [30]),
                      b=(BIGINT, [40]))
    assert result == [[None, {"X": 30, "Y": 40, "Z": None}, {"X": None, "Y": 30, "Z": 40}]]


def test_array_constructor_coerces_literals_to_the_element_type() -> None:
    assert typed("ARRAY[1, '2', 3.5]").type == ArrayType(DecimalType(11, 1))
    assert evaluate("ARRAY[a, '2']", a=(INTEGER, [1])) == [[1, 2]]


def test_map_constructor_coerces_keys_and_values_separately() -> None:
    expression = "MAP(k := v, 'b' := 'true', 10 := 'no')"
    assert typed(expression, k=STRING, v=BOOLEAN).type == MapType(STRING, BOOLEAN)
    assert evaluate(expression, k=(STRING, ["a"]), v=(BOOLEAN, [False])) == [{"a": False, "b": True, "10": False}]


def test_constructors_with_only_nulls_are_rejected() -> None:
    assert "all NULL elements" in type_error("ARRAY[NULL, NULL]")
    assert "all NULL keys" in type_error("MAP(NULL := 1)")
    assert "all NULL values" in type_error("MAP('a' := NULL)")


def test_render_writes_constructors_the_ksqldb_way() -> None:
    assert render(parse_expression("ARRAY[a, 1]")) == "ARRAY[A, 1]"
    assert render(parse_expression("STRUCT(f := a)")) == "STRUCT(F:=A)"
    assert render(parse_expression("MAP('k' := a)")) == "MAP('k':=A)"


# --------------------------------------------------------------------------- function arguments


def test_string_literal_argument_is_read_as_the_temporal_parameter_it_meets() -> None:
    assert evaluate("GREATEST(d, '2022-06-14')", d=(DATE, [19000, 19200, None])) == [19157, 19200, 19157]


def test_decimal_literal_in_string_keeps_its_scale_when_compared() -> None:
    assert evaluate("d IN ('1.50')", d=(DecimalType(4, 2), [Decimal("1.50"), Decimal("1.51")])) == [True, False]


# --------------------------------------------------------------------------- NULL operands


@pytest.mark.parametrize(("sql", "message"), [
    ("1 + NULL", "Error processing expression: (1 + null). Arithmetic on types INTEGER and null are not supported."),
    ("NULL * NULL", "Error processing expression: (null * null). Arithmetic on types null and null are not supported."),
    ("5.0 / NULL", "Error processing expression: (5.0 / null). Arithmetic on types DECIMAL(2, 1) and null are not "
                   "supported."),
    ("ARRAY[1, 2] + NULL", "Error processing expression: (ARRAY[1, 2] + null). Arithmetic on types ARRAY<INTEGER> "
                           "and null are not supported."),
    ("i = NULL", "Comparison with NULL not supported: INTEGER = NULL\nUse 'IS NULL' or 'IS NOT NULL' instead."),
])
def test_arithmetic_and_comparisons_with_a_null_literal_are_refused(sql: str, message: str) -> None:
    assert type_error(sql, i=INTEGER) == message


def test_a_null_literal_may_still_be_tested_for_distinctness_and_matched_by_case() -> None:
    assert evaluate("i IS DISTINCT FROM NULL", i=(INTEGER, [1, None])) == [True, False]
    assert evaluate("CASE i WHEN NULL THEN 'n' ELSE 'v' END", i=(INTEGER, [1])) == ["v"]
