"""Built-in JSON functions: reading JSON held in strings, and rendering any SQL value as JSON text."""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ksqlpy.functions.registry import ANY, scalar_function
from ksqlpy.text import double_to_text, value_to_text
from ksqlpy.types import (
    BOOLEAN,
    BYTES,
    DATE,
    DOUBLE,
    INTEGER,
    STRING,
    TIME,
    TIMESTAMP,
    ArrayType,
    MapType,
    SqlType,
    StructType,
)

_CATEGORY = "JSON"

# --------------------------------------------------------------------------- reading JSON


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# Floats stay exact decimals, as ksqlDB's JSON functions read them (so 1.50 keeps its scale).
_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant)
_JSON_WHITESPACE = " \t\n\r"


def parse_json(text: str) -> Any:
    """Parses the first JSON value in `text` (trailing content is ignored, as Jackson does); ValueError if none."""
    start = len(text) - len(text.lstrip(_JSON_WHITESPACE))
    try:
        value, _ = _DECODER.raw_decode(text, start)
    except ValueError:
        raise ValueError(f"Invalid JSON format: {text}") from None
    return value


# --------------------------------------------------------------------------- writing JSON

_NEEDS_ESCAPE = re.compile(r'[\x00-\x1f"\\]')
_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _quote(text: str) -> str:
    escaped = _NEEDS_ESCAPE.sub(lambda m: _SHORT_ESCAPES.get(m.group(), f"\\u{ord(m.group()):04X}"), text)
    return f'"{escaped}"'


def render_json(value: Any) -> str:
    """Compact JSON text of a JSON-shaped Python value, numbers written the way Jackson writes them."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        text = double_to_text(value)
        return text if math.isfinite(value) else _quote(text)
    if isinstance(value, list):
        return "[" + ",".join(render_json(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_quote(str(key))}:{render_json(item)}" for key, item in value.items()) + "}"
    raise TypeError(f"cannot render {type(value).__name__} as JSON")


def _as_text(value: Any) -> str:
    """A JSON node as text: strings without their quotes, anything else as JSON."""
    return value if isinstance(value, str) else render_json(value)


# --------------------------------------------------------------------------- EXTRACTJSONFIELD

_PATH_STEP = re.compile(r"\.(?P<name>[^.\[]+)|\[\s*(?P<index>\d+)\s*\]|\[\s*(?P<q>['\"])(?P<quoted>.*?)(?P=q)\s*\]")


def _path_steps(path: str) -> list[str]:
    if not path.startswith("$"):
        raise ValueError(f"Invalid JsonPath '{path}': must start with '$'")
    steps: list[str] = []
    pos = 1
    while pos < len(path):
        step = _PATH_STEP.match(path, pos)
        if step is None:
            raise ValueError(f"Invalid JsonPath '{path}' at position {pos}")
        steps.append(step.group("name") or step.group("index") or step.group("quoted"))
        pos = step.end()
    return steps


_MISSING = object()


@scalar_function(
    "EXTRACTJSONFIELD", params=[STRING, STRING], returns=STRING, category=_CATEGORY,
    description="Extracts the value at a JSONPath from a JSON string, as a string; NULL if the path is absent.",
)
def extract_json_field(text: str, path: str) -> str | None:
    node: Any = parse_json(text)
    for step in _path_steps(path):
        if isinstance(node, list):
            node = node[int(step)] if step.isdigit() and int(step) < len(node) else _MISSING
        elif isinstance(node, dict):
            node = node.get(step, _MISSING)
        else:
            node = _MISSING
        if node is _MISSING:
            return None
    return _as_text(node)


# --------------------------------------------------------------------------- inspecting JSON strings


@scalar_function(
    "IS_JSON_STRING", params=[STRING], returns=BOOLEAN, null_on_null=False, category=_CATEGORY,
    description="Returns true if the string parses as a JSON value, otherwise false (also for NULL).",
)
def is_json_string(text: str | None) -> bool:
    if text is None:
        return False
    try:
        parse_json(text)
    except ValueError:
        return False
    return True


def _same_json_scalar(element: Any, wanted: Any) -> bool:
    # JSON kinds must agree: true is not 1, 1 is not 1.0
    if isinstance(wanted, bool) or isinstance(element, bool):
        return isinstance(wanted, bool) and isinstance(element, bool) and element == wanted
    if isinstance(wanted, int):
        return isinstance(element, int) and element == wanted
    if isinstance(wanted, (float, Decimal)):
        return isinstance(element, Decimal) and float(element) == float(wanted)
    return type(element) is type(wanted) and element == wanted


@scalar_function(
    "JSON_ARRAY_CONTAINS", params=[STRING, ANY], returns=BOOLEAN, null_on_null=False, category=_CATEGORY,
    description="Returns true if a JSON array string holds the given value at its top level.",
)
def json_array_contains(text: str | None, wanted: Any) -> bool:
    if text is None:
        return False
    try:
        array = parse_json(text)
    except ValueError:
        return False
    if not isinstance(array, list):
        return False
    return any(_same_json_scalar(element, wanted) for element in array)


@scalar_function(
    "JSON_ARRAY_LENGTH", params=[STRING], returns=INTEGER, category=_CATEGORY,
    description="Returns the length of a JSON array string, or NULL if it is not an array.",
)
def json_array_length(text: str) -> int | None:
    array = parse_json(text)
    return len(array) if isinstance(array, list) else None


@scalar_function(
    "JSON_KEYS", params=[STRING], returns=ArrayType(STRING), category=_CATEGORY,
    description="Returns the top-level keys of a JSON object string, or NULL if it is not an object.",
)
def json_keys(text: str) -> list[str] | None:
    document = parse_json(text)
    return list(document) if isinstance(document, dict) else None


@scalar_function(
    "JSON_RECORDS", params=[STRING], returns=MapType(STRING, STRING), category=_CATEGORY,
    description="Returns the top-level entries of a JSON object string as a map of key to value text.",
)
def json_records(text: str) -> dict[str, str] | None:
    document = parse_json(text)
    if not isinstance(document, dict):
        return None
    return {key: _as_text(value) for key, value in document.items()}


@scalar_function(
    "JSON_ITEMS", params=[STRING], returns=ArrayType(STRING), category=_CATEGORY,
    description="Returns the elements of a JSON array string, each as JSON text; NULL if it is not an array.",
)
def json_items(text: str) -> list[str] | None:
    array = parse_json(text)
    return [render_json(item) for item in array] if isinstance(array, list) else None


@scalar_function(
    "JSON_CONCAT", params=[STRING, STRING], returns=STRING, variadic=True, category=_CATEGORY,
    description="Merges JSON objects (later keys win) or concatenates JSON arrays, wrapping other values.",
)
def json_concat(*texts: str) -> str | None:
    try:
        documents = [parse_json(text) for text in texts]
    except ValueError:
        return None
    if all(isinstance(document, dict) for document in documents):
        merged: dict[str, Any] = {}
        for document in documents:
            merged.update(document)
        return render_json(merged)
    items: list[Any] = []
    for document in documents:
        items.extend(document if isinstance(document, list) else [document])
    return render_json(items)


# --------------------------------------------------------------------------- TO_JSON_STRING

_Converter = Callable[[Any], Any]


def _identity(value: Any) -> Any:
    return value


def _json_shape(sql_type: SqlType) -> _Converter:
    """How a value of `sql_type` becomes a JSON-shaped Python value (struct fields and map keys sorted)."""
    if sql_type in (DATE, TIME, TIMESTAMP):
        return lambda value: value_to_text(value, sql_type)
    if sql_type == BYTES:
        return lambda value: base64.b64encode(value).decode("ascii")
    if sql_type == DOUBLE:
        return float
    if isinstance(sql_type, ArrayType):
        element = _json_shape(sql_type.element)
        return lambda value: [None if item is None else element(item) for item in value]
    if isinstance(sql_type, MapType):
        key_text = _identity if sql_type.key == STRING else (lambda key: value_to_text(key, sql_type.key))
        entry = _json_shape(sql_type.value)
        return lambda value: {
            key_text(key): None if item is None else entry(item)
            for key, item in sorted(value.items(), key=lambda pair: key_text(pair[0]))
        }
    if isinstance(sql_type, StructType):
        fields = sorted((name, _json_shape(field_type)) for name, field_type in sql_type.fields)
        return lambda value: {
            name: None if value.get(name) is None else shape(value[name]) for name, shape in fields
        }
    return _identity


@scalar_function(
    "TO_JSON_STRING", params=[ANY], returns=STRING, null_on_null=False, factory=True, category=_CATEGORY,
    description="Renders any value as JSON text (NULL as 'null').",
)
def to_json_string(arg_types: list[SqlType], return_type: SqlType) -> Callable[[Any], str]:
    shape = _json_shape(arg_types[0])

    def render(value: Any) -> str:
        return "null" if value is None else render_json(shape(value))

    return render
