"""Overload resolution in the function registry: exact matches, implicit casts, ambiguity and messages."""

from __future__ import annotations

from typing import Any

import pytest

from ksqlpy.errors import StatementError
from ksqlpy.functions.registry import STRING_LITERAL, FunctionRegistry, Overload
from ksqlpy.types import BIGINT, DATE, DOUBLE, INTEGER, NULL, STRING, TIMESTAMP, DecimalType, SqlType

REGISTRY = FunctionRegistry.with_builtins()


def resolution_error(name: str, *args: SqlType) -> str:
    with pytest.raises(StatementError) as raised:
        REGISTRY.resolve(name, list(args))
    return str(raised.value)


def test_exact_match_wins_over_implicit_casts() -> None:
    assert REGISTRY.resolve("GREATEST", [BIGINT, BIGINT, NULL]).return_type == BIGINT
    assert REGISTRY.resolve("GREATEST", [DecimalType(9, 2), DecimalType(7, 6)]).return_type == DecimalType(13, 6)


def test_single_implicit_cast_candidate_is_taken() -> None:
    bound = REGISTRY.resolve("GREATEST", [INTEGER, BIGINT, DecimalType(30, 18), DOUBLE, NULL])
    assert bound.return_type == DOUBLE
    assert bound.arg_types[:2] == [DOUBLE, DOUBLE]


def test_equally_good_implicit_casts_are_ambiguous() -> None:
    assert resolution_error("LEAST", INTEGER, BIGINT) == (
        "Function 'least' cannot be resolved due to ambiguous method parameters (INTEGER, BIGINT)."
    )
    assert "ambiguous method parameters (null, null)" in resolution_error("GREATEST", NULL, NULL)


def test_no_candidate_names_the_arguments_and_the_alternatives() -> None:
    message = resolution_error("GREATEST", STRING, INTEGER)
    assert message.startswith("Function 'greatest' does not accept parameters (STRING, INTEGER).\n")
    assert "GREATEST(STRING, STRING...)" in message


def test_messages_use_the_declared_name_of_the_function() -> None:
    assert resolution_error("COALESCE").startswith("Function 'COALESCE' does not accept parameters ()")


def test_string_literal_meets_temporal_parameters_only_by_implicit_cast() -> None:
    assert REGISTRY.resolve("LEAST", [DATE, NULL, STRING_LITERAL]).arg_types == [DATE, DATE, DATE]
    assert REGISTRY.resolve("LEAST", [TIMESTAMP, STRING_LITERAL]).return_type == TIMESTAMP
    # a string literal among strings stays a string
    assert REGISTRY.resolve("LEAST", [STRING, STRING_LITERAL]).return_type == STRING
    # a string column is not a literal: no implicit cast to DATE
    assert "does not accept parameters (DATE, STRING)" in resolution_error("LEAST", DATE, STRING)


def test_fixed_arity_overload_is_preferred_to_a_variadic_one() -> None:
    registry = FunctionRegistry()

    def impl(*_: Any) -> None:
        return None

    registry.add(Overload("F", (STRING, STRING), STRING, impl, variadic=True))
    registry.add(Overload("F", (STRING,), INTEGER, impl))
    assert registry.resolve("F", [STRING]).return_type == INTEGER
    assert registry.resolve("F", [STRING, STRING]).return_type == STRING
