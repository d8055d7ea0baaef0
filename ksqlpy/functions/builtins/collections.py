"""Built-in ARRAY and MAP functions (ARRAY_*, MAP_*, AS_MAP, ENTRIES, SLICE, GENERATE_SERIES), with Java's ordering and equality."""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from ksqlpy.functions.registry import ANY, K, T, V, scalar_function
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

ARRAY_CATEGORY = "ARRAY"
MAP_CATEGORY = "MAP"

# --------------------------------------------------------------------------- Java semantics shared with math.py


def _utf16_key(text: str) -> bytes:
    # Java's String.compareTo compares UTF-16 code units, which differs from code point order above U+FFFF
    return text.encode("utf-16-be", "surrogatepass")


def _double_key(value: float) -> tuple[bool, float, float]:
    # Double.compareTo puts NaN above +Infinity and -0.0 below 0.0
    if math.isnan(value):
        return (True, 0.0, 0.0)
    return (False, value, math.copysign(1.0, value))


def _signed_bytes_key(value: bytes) -> bytes:
    # ByteBuffer.compareTo compares bytes as signed; flipping the top bit maps that onto unsigned order
    return bytes(b ^ 0x80 for b in value)


def _identity(value: Any) -> Any:
    return value


_ORDERED_AS_IS = (BOOLEAN, INTEGER, BIGINT, DATE, TIME, TIMESTAMP, NULL)


def natural_order_key(sql_type: SqlType) -> Callable[[Any], Any] | None:
    """The sort key giving Java's natural order for values of a primitive type; None if not comparable."""
    if sql_type == STRING:
        return _utf16_key
    if sql_type == DOUBLE:
        return _double_key
    if sql_type == BYTES:
        return _signed_bytes_key
    if sql_type in _ORDERED_AS_IS or isinstance(sql_type, DecimalType):
        return _identity
    return None


def _required_order_key(sql_type: SqlType) -> Callable[[Any], Any]:
    key = natural_order_key(sql_type)
    if key is None:
        raise TypeError(f"Values of type {sql_type} have no natural order")
    return key


def equality_key(value: Any) -> Any:
    """A hashable stand-in for a value that is equal exactly when Java's equals() says the values are equal."""
    if isinstance(value, float):
        if math.isnan(value):
            return ("D", "NaN")
        return ("D", struct.pack(">d", value))  # 0.0 and -0.0 differ, as with Double.equals
    if isinstance(value, Decimal):
        return ("N", value, value.as_tuple().exponent)  # BigDecimal.equals also compares the scale
    if isinstance(value, list):
        return ("L", tuple(equality_key(v) for v in value))
    if isinstance(value, dict):
        return ("M", frozenset((equality_key(k), equality_key(v)) for k, v in value.items()))
    return value


def _distinct(values: Iterable[Any], excluded: set[Any] | None = None) -> list[Any]:
    seen: set[Any] = set() if excluded is None else set(excluded)
    result = []
    for value in values:
        key = equality_key(value)
        if key not in seen:
            seen.add(key)
            result.append(value)
    return result


def _element_type(arg_types: list[SqlType]) -> SqlType:
    first = arg_types[0]
    return first.element if isinstance(first, ArrayType) else NULL


# --------------------------------------------------------------------------- arrays


@scalar_function(
    "ARRAY_LENGTH", params=[ArrayType(ANY)], returns=INTEGER, category=ARRAY_CATEGORY,
    description="Returns the number of elements in an array.",
)
def array_length(array: list[Any]) -> int:
    return len(array)


@scalar_function(
    "ARRAY_CONTAINS", params=[ArrayType(T), T], returns=BOOLEAN, null_on_null=False, category=ARRAY_CATEGORY,
    description="Returns true if the array is non-null and contains the supplied value.",
)
def array_contains(array: list[Any] | None, value: Any) -> bool:
    if array is None:
        return False
    wanted = equality_key(value)
    return any(equality_key(element) == wanted for element in array)


@scalar_function(
    "ARRAY_CONCAT", params=[ArrayType(T), ArrayType(T)], returns=ArrayType(T), null_on_null=False,
    category=ARRAY_CATEGORY,
    description="Concatenates two arrays; NULL if both are NULL, the other one if only one is.",
)
def array_concat(left: list[Any] | None, right: list[Any] | None) -> list[Any] | None:
    if left is None and right is None:
        return None
    return [*(left or []), *(right or [])]


@scalar_function(
    "ARRAY_DISTINCT", params=[ArrayType(T)], returns=ArrayType(T), category=ARRAY_CATEGORY,
    description="Returns the distinct values of an array, NULL included, in order of first occurrence.",
)
def array_distinct(array: list[Any]) -> list[Any]:
    return _distinct(array)


@scalar_function(
    "ARRAY_EXCEPT", params=[ArrayType(T), ArrayType(T)], returns=ArrayType(T), category=ARRAY_CATEGORY,
    description="Returns the distinct elements of the first array that are not in the second array.",
)
def array_except(left: list[Any], right: list[Any]) -> list[Any]:
    return _distinct(left, excluded={equality_key(v) for v in right})


@scalar_function(
    "ARRAY_INTERSECT", params=[ArrayType(T), ArrayType(T)], returns=ArrayType(T), category=ARRAY_CATEGORY,
    description="Returns the distinct elements present in both arrays, in the order of the first array.",
)
def array_intersect(left: list[Any], right: list[Any]) -> list[Any]:
    present = {equality_key(v) for v in right}
    return [v for v in _distinct(left) if equality_key(v) in present]


@scalar_function(
    "ARRAY_UNION", params=[ArrayType(T), ArrayType(T)], returns=ArrayType(T), category=ARRAY_CATEGORY,
    description="Returns the distinct elements of both arrays, in the order they are encountered.",
)
def array_union(left: list[Any], right: list[Any]) -> list[Any]:
    return _distinct([*left, *right])


@scalar_function(
    "ARRAY_REMOVE", params=[ArrayType(T), T], returns=ArrayType(T), null_on_null=False, category=ARRAY_CATEGORY,
    description="Removes all elements equal to the given value (NULL removes NULLs) from an array.",
)
def array_remove(array: list[Any] | None, value: Any) -> list[Any] | None:
    if array is None:
        return None
    unwanted = equality_key(value)
    return [element for element in array if equality_key(element) != unwanted]


def _array_extreme_factory(pick: Callable[..., Any]) -> Callable[[list[SqlType], SqlType], Callable[..., Any]]:
    def factory(arg_types: list[SqlType], _return_type: SqlType) -> Callable[[list[Any]], Any]:
        element_type = _element_type(arg_types)

        def extreme(array: list[Any]) -> Any:
            key = _required_order_key(element_type)
            present = [v for v in array if v is not None]
            return pick(present, key=key) if present else None

        return extreme

    return factory


scalar_function(
    "ARRAY_MAX", params=[ArrayType(T)], returns=T, factory=True, category=ARRAY_CATEGORY,
    description="Returns the largest non-NULL element of an array of primitives, or NULL if there is none.",
)(_array_extreme_factory(max))

scalar_function(
    "ARRAY_MIN", params=[ArrayType(T)], returns=T, factory=True, category=ARRAY_CATEGORY,
    description="Returns the smallest non-NULL element of an array of primitives, or NULL if there is none.",
)(_array_extreme_factory(min))


_ASCENDING = ("ASC", "ASCENDING")
_DESCENDING = ("DESC", "DESCENDING")


def _array_sort_factory(arg_types: list[SqlType], _return_type: SqlType) -> Callable[..., list[Any] | None]:
    element_type = _element_type(arg_types)

    def array_sort(array: list[Any], direction: str = "ASC") -> list[Any] | None:
        key = _required_order_key(element_type)
        normalised = direction.upper()
        if normalised not in _ASCENDING + _DESCENDING:
            return None
        present = sorted((v for v in array if v is not None), key=key, reverse=normalised in _DESCENDING)
        # NULLs go last in both directions
        return present + [None] * (len(array) - len(present))

    return array_sort


scalar_function(
    "ARRAY_SORT", params=[ArrayType(T)], returns=ArrayType(T), factory=True, category=ARRAY_CATEGORY,
    description="Sorts an array of primitives in ascending natural order, NULLs last.",
)(_array_sort_factory)

scalar_function(
    "ARRAY_SORT", params=[ArrayType(T), STRING], returns=ArrayType(T), factory=True, category=ARRAY_CATEGORY,
    description="Sorts an array of primitives in 'ASC' or 'DESC' natural order, NULLs last; NULL for other directions.",
)(_array_sort_factory)


_JOINABLE = (BOOLEAN, INTEGER, BIGINT, DOUBLE, STRING)


def _array_join_factory(arg_types: list[SqlType], _return_type: SqlType) -> Callable[..., str | None]:
    element_type = _element_type(arg_types)

    def render(element: Any) -> str:
        if element is None:
            return "null"  # Java's StringJoiner prints a null element as the word null
        if element_type == STRING:
            return str(element)
        if element_type in _JOINABLE or isinstance(element_type, DecimalType):
            from ksqlpy.text import value_to_text

            return value_to_text(element, element_type)
        raise TypeError(f"ARRAY_JOIN does not support elements of type {element_type}")

    def array_join(array: list[Any] | None, delimiter: str | None = ",") -> str | None:
        if array is None:
            return None
        return ("" if delimiter is None else delimiter).join(render(e) for e in array)

    return array_join


scalar_function(
    "ARRAY_JOIN", params=[ArrayType(T)], returns=STRING, factory=True, null_on_null=False,
    category=ARRAY_CATEGORY,
    description="Joins the elements of an array of primitives into a string, separated by commas.",
)(_array_join_factory)

scalar_function(
    "ARRAY_JOIN", params=[ArrayType(T), STRING], returns=STRING, factory=True, null_on_null=False,
    category=ARRAY_CATEGORY,
    description="Joins the elements of an array of primitives into a string, separated by the given delimiter.",
)(_array_join_factory)


@scalar_function(
    "SLICE", params=[ArrayType(T), INTEGER, INTEGER], returns=ArrayType(T), null_on_null=False,
    category=ARRAY_CATEGORY,
    description="Returns the elements from 1-based index 'from' to 'to' inclusive; NULL if out of bounds.",
)
def slice_array(array: list[Any] | None, start: int | None, end: int | None) -> list[Any] | None:
    if array is None:
        return None
    first = 0 if start is None else start - 1
    stop = len(array) if end is None else end
    if first < 0 or stop > len(array) or first > stop:
        return None
    return array[first:stop]


def _series(start: int, end: int, step: int) -> list[int]:
    if step == 0:
        raise ValueError("GENERATE_SERIES step cannot be zero")
    if (end > start and step < 0) or (end < start and step > 0):
        raise ValueError("GENERATE_SERIES step has wrong sign")
    return list(range(start, end + (1 if step > 0 else -1), step))


def _unit_series(start: int, end: int) -> list[int]:
    return _series(start, end, 1 if end > start else -1)


for _integral in (INTEGER, BIGINT):
    scalar_function(
        "GENERATE_SERIES", params=[_integral, _integral], returns=ArrayType(_integral), category=ARRAY_CATEGORY,
        description="Returns the values from start to end inclusive, stepping by 1 or -1.",
    )(_unit_series)
    scalar_function(
        "GENERATE_SERIES", params=[_integral, _integral, INTEGER], returns=ArrayType(_integral),
        category=ARRAY_CATEGORY,
        description="Returns the values from start to end inclusive, stepping by the given non-zero step.",
    )(_series)


# --------------------------------------------------------------------------- maps


@scalar_function(
    "MAP_KEYS", params=[MapType(K, V)], returns=ArrayType(K), category=MAP_CATEGORY,
    description="Returns an array of all the keys of a map.",
)
def map_keys(mapping: dict[Any, Any]) -> list[Any]:
    return list(mapping)


@scalar_function(
    "MAP_VALUES", params=[MapType(K, V)], returns=ArrayType(V), category=MAP_CATEGORY,
    description="Returns an array of all the values of a map.",
)
def map_values(mapping: dict[Any, Any]) -> list[Any]:
    return list(mapping.values())


@scalar_function(
    "MAP_UNION", params=[MapType(K, V), MapType(K, V)], returns=MapType(K, V), null_on_null=False,
    category=MAP_CATEGORY,
    description="Merges two maps, the second map's value winning for shared keys; NULL if both are NULL.",
)
def map_union(first: dict[Any, Any] | None, second: dict[Any, Any] | None) -> dict[Any, Any] | None:
    if first is None and second is None:
        return None
    return {**(first or {}), **(second or {})}


@scalar_function(
    "AS_MAP", params=[ArrayType(STRING), ArrayType(T)], returns=MapType(STRING, T), category=MAP_CATEGORY,
    description="Builds a map from an array of keys and an array of values; missing values become NULL.",
)
def as_map(keys: list[str], values: list[Any]) -> dict[str, Any]:
    return {key: values[i] if i < len(values) else None for i, key in enumerate(keys)}


def _entries_type(args: list[SqlType]) -> SqlType:
    first = args[0]
    value_type = first.value if isinstance(first, MapType) else NULL
    return ArrayType(StructType((("K", STRING), ("V", value_type))))


@scalar_function(
    "ENTRIES", params=[MapType(STRING, V), BOOLEAN], returns=_entries_type, category=MAP_CATEGORY,
    description="Returns an array of STRUCT<K, V> entries of a map, sorted by key when the flag is true.",
)
def entries(mapping: dict[str, Any], sort_by_key: bool) -> list[dict[str, Any]]:
    items: Iterable[tuple[str, Any]] = mapping.items()
    if sort_by_key:
        items = sorted(items, key=lambda item: _utf16_key(item[0]))
    return [{"K": key, "V": value} for key, value in items]
