"""ksqlDB's test-only table function TEST_UDTF: one row per argument value, as text, or one argument as itself."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ksqlpy import udtf
from ksqlpy.functions.udf import sql_type_of
from ksqlpy.text import value_to_text
from ksqlpy.types import ArrayType, MapType, SqlType

T = TypeVar("T")


@udtf(name="TEST_UDTF")
def itself(value: T) -> list[T]:
    return [value]


def _values(value: Any, sql_type: SqlType) -> list[tuple[Any, SqlType]]:
    """A scalar stands for itself, an array for its elements, a map for its values."""
    if isinstance(sql_type, ArrayType):
        return [(element, sql_type.element) for element in value]
    if isinstance(sql_type, MapType):
        return [(element, sql_type.value) for element in value.values()]
    return [(value, sql_type)]


def _each_as_text(type_texts: Sequence[str]) -> Callable[..., list[str]]:
    """A TEST_UDTF overload over these argument types: a row per value, as CAST(value AS STRING) gives it."""
    types = [sql_type_of(text) for text in type_texts]

    def each_as_text(*arguments: Any) -> list[str]:
        return [value_to_text(value, sql_type)
                for argument, argument_type in zip(arguments, types, strict=True)
                for value, sql_type in _values(argument, argument_type)]

    return udtf(each_as_text, name="TEST_UDTF", params=type_texts, returns="STRING")


_SCALARS = ("INT", "BIGINT", "DOUBLE", "BOOLEAN", "STRING", "DECIMAL(20, 10)", "STRUCT<A STRING>")
scalars_as_text = _each_as_text(_SCALARS)
array_elements_as_text = _each_as_text([f"ARRAY<{t}>" for t in _SCALARS])
map_values_as_text = _each_as_text([f"MAP<STRING, {t}>" for t in _SCALARS])
