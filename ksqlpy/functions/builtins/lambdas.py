"""Built-in LAMBDA (higher-order) functions TRANSFORM, FILTER and REDUCE over arrays and maps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ksqlpy.functions.registry import Generic, K, LambdaPattern, T, U, V, scalar_function
from ksqlpy.types import BOOLEAN, ArrayType, MapType

CATEGORY = "LAMBDA"

# The key and value types a map TRANSFORM produces, independent of the input map's K and V
_NEW_KEY = Generic("K2")
_NEW_VALUE = Generic("V2")
# REDUCE's state type
_STATE = Generic("S")


def _java_string_hash(text: str) -> int:
    """String.hashCode over UTF-16 code units, as an unsigned 32-bit value."""
    data = text.encode("utf-16-be", "surrogatepass")
    result = 0
    for i in range(0, len(data), 2):
        result = (31 * result + (data[i] << 8 | data[i + 1])) & 0xFFFFFFFF
    return result


def _java_hash_map_order(mapping: dict[Any, Any]) -> list[tuple[Any, Any]]:
    """The entries in the order a java.util.HashMap copy of the map iterates them: by hash bucket, then insertion.

    ksqlDB hands map arguments to REDUCE as HashMaps, so an order-sensitive fold sees this order. Only STRING
    keys are reordered; other key types keep their order.
    """
    if not all(isinstance(key, str) for key in mapping):
        return list(mapping.items())
    # new HashMap<>(map) sizes its table to the power of two at or above size / 0.75 + 1
    capacity = 1 << max(int(len(mapping) / 0.75 + 1.0) - 1, 0).bit_length()

    def bucket(key: str) -> int:
        hashed = _java_string_hash(key)
        return (hashed ^ (hashed >> 16)) & (capacity - 1)

    return sorted(mapping.items(), key=lambda item: bucket(item[0]))  # sorted() is stable: insertion order next


def _collect_map(entries: list[tuple[Any, Any]]) -> dict[Any, Any]:
    """Builds a map the way Java's Collectors.toMap does: a NULL value or a repeated key is an error."""
    result: dict[Any, Any] = {}
    for key, value in entries:
        if value is None:
            raise ValueError(f"Map entry for key {key!r} has a NULL value")
        if key in result:
            raise ValueError(f"Duplicate key {key!r}")
        result[key] = value
    return result


@scalar_function(
    "TRANSFORM", params=[ArrayType(T), LambdaPattern((T,), U)], returns=ArrayType(U), category=CATEGORY,
    description="Applies a lambda x => ... to each element of an array and returns the transformed array.",
)
def transform_array(array: list[Any], fn: Callable[[Any], Any]) -> list[Any]:
    return [fn(element) for element in array]


@scalar_function(
    "TRANSFORM",
    params=[MapType(K, V), LambdaPattern((K, V), _NEW_KEY), LambdaPattern((K, V), _NEW_VALUE)],
    returns=MapType(_NEW_KEY, _NEW_VALUE),
    category=CATEGORY,
    description="Transforms each map entry with a key lambda (k, v) => ... and a value lambda (k, v) => ....",
)
def transform_map(
    mapping: dict[Any, Any], key_fn: Callable[[Any, Any], Any], value_fn: Callable[[Any, Any], Any]
) -> dict[Any, Any]:
    return _collect_map([(key_fn(k, v), value_fn(k, v)) for k, v in mapping.items()])


@scalar_function(
    "FILTER", params=[ArrayType(T), LambdaPattern((T,), BOOLEAN)], returns=ArrayType(T), category=CATEGORY,
    description="Keeps the elements of an array for which a lambda x => ... is true.",
)
def filter_array(array: list[Any], predicate: Callable[[Any], Any]) -> list[Any]:
    return [element for element in array if predicate(element) is True]


@scalar_function(
    "FILTER", params=[MapType(K, V), LambdaPattern((K, V), BOOLEAN)], returns=MapType(K, V), category=CATEGORY,
    description="Keeps the entries of a map for which a lambda (k, v) => ... is true.",
)
def filter_map(mapping: dict[Any, Any], predicate: Callable[[Any, Any], Any]) -> dict[Any, Any]:
    return _collect_map([(k, v) for k, v in mapping.items() if predicate(k, v) is True])


@scalar_function(
    "REDUCE",
    params=[ArrayType(T), _STATE, LambdaPattern((_STATE, T), _STATE)],
    returns=_STATE,
    null_on_null=False,
    category=CATEGORY,
    description="Folds an array into a state with a lambda (s, x) => ...; NULL state gives NULL, NULL array the state.",
)
def reduce_array(array: list[Any] | None, state: Any, fn: Callable[[Any, Any], Any]) -> Any:
    if state is None or array is None:
        return state
    for element in array:
        state = fn(state, element)
    return state


@scalar_function(
    "REDUCE",
    params=[MapType(K, V), _STATE, LambdaPattern((_STATE, K, V), _STATE)],
    returns=_STATE,
    null_on_null=False,
    category=CATEGORY,
    description="Folds a map into a state with a lambda (s, k, v) => ...; NULL state gives NULL, NULL map the state.",
)
def reduce_map(mapping: dict[Any, Any] | None, state: Any, fn: Callable[[Any, Any, Any], Any]) -> Any:
    if state is None or mapping is None:
        return state
    for key, value in _java_hash_map_order(mapping):
        state = fn(state, key, value)
    return state
