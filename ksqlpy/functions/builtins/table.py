"""Built-in table functions: EXPLODE and CUBE_EXPLODE turn one row into one row per element."""

from __future__ import annotations

from typing import Any

from ksqlpy.functions.registry import T, table_function
from ksqlpy.types import ArrayType

TABLE_CATEGORY = "TABLE"


@table_function("EXPLODE", params=[ArrayType(T)], returns=T, category=TABLE_CATEGORY,
                description="Explodes an array: one row per element.")
def explode(items: list[Any]) -> list[Any]:
    return items


@table_function("CUBE_EXPLODE", params=[ArrayType(T)], returns=ArrayType(T), category=TABLE_CATEGORY,
                description="One row per combination of the array's elements, each either kept or NULL.")
def cube_explode(items: list[Any]) -> list[list[Any]]:
    # Combination i keeps element j when bit (n - 1 - j) of i is set: the all-NULL row first, as ksqlDB orders them.
    width = len(items)
    return [
        [item if combination >> (width - 1 - j) & 1 else None for j, item in enumerate(items)]
        for combination in range(2**width)
    ]
