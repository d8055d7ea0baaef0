"""The JSON format: ksqlDB's lenient, Jackson-style reading with coercion, and Java-style compact writing."""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from decimal import Decimal
from itertools import repeat
from operator import itemgetter
from typing import Any

import orjson

from ksqlpy.errors import SerdeError
from ksqlpy.schema import Column
from ksqlpy.serialization.base import DecodedColumns, FormatOptions, RecordSerde, presence
from ksqlpy.serialization.java_numbers import (
    fit_decimal,
    integer_bounds,
    parse_java_decimal,
    parse_java_double,
    parse_java_integer,
)
from ksqlpy.text import decimal_to_plain_text, double_to_text, doubles_to_text, value_to_text
from ksqlpy.types import (
    BIGINT,
    BOOLEAN,
    BYTES,
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

__all__ = ["JsonSerde", "logical_json_text"]

Coercer = Callable[[Any], Any]
Writer = Callable[[Any], str]

_MISSING = object()
_INTEGRAL_TYPES = (INTEGER, BIGINT, DATE, TIME, TIMESTAMP)
# Parsed ints in these ranges already are the column's value (the column-wise fast path checks only this).
_INTEGRAL_BOUNDS: dict[SqlType, tuple[int, int]] = {INTEGER: (-(2**31), 2**31), BIGINT: (-(2**63), 2**63)}


class _CoercionError(Exception):
    """A JSON value that does not fit its SQL type; `path` says where, JSONPath-style, as ksqlDB does."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def under(self, part: str) -> _CoercionError:
        return _CoercionError(self.message, part + self.path)


class _NeedsExactNumbers(Exception):
    """The fast parser turned a JSON number into a float, but its original text is needed."""


def _jackson_node_name(value: Any) -> str:
    # The Jackson node class names ksqlDB puts in its conversion errors.
    if isinstance(value, bool):
        return "BooleanNode"
    if isinstance(value, int):
        if -(2**31) <= value < 2**31:
            return "IntNode"
        return "LongNode" if -(2**63) <= value < 2**63 else "BigIntegerNode"
    if isinstance(value, (float, Decimal)):
        return "DecimalNode"
    if isinstance(value, str):
        return "TextNode"
    if isinstance(value, list):
        return "ArrayNode"
    return "ObjectNode"


def _cannot_convert(value: Any, sql_type: SqlType) -> _CoercionError:
    return _CoercionError(
        f"Can't convert type. sourceType: {_jackson_node_name(value)}, requiredType: {sql_type}"
    )


def _cannot_coerce_string(sql_type: SqlType) -> _CoercionError:
    return _CoercionError(f"Can't coerce string to type. targetType: {sql_type}")


def _coerce_boolean(value: Any) -> Any:
    if value is True or value is False:
        return value
    raise _cannot_convert(value, BOOLEAN)


def _integral_coercer(sql_type: SqlType) -> Coercer:
    lowest, highest = integer_bounds(sql_type)

    def coerce(value: Any) -> Any:
        kind = type(value)
        if kind is int:
            number = value
        elif kind is float or kind is Decimal:
            if not math.isfinite(value):
                raise _cannot_convert(value, sql_type)
            number = int(value)  # Java's intValue()/longValue() truncate toward zero
        elif kind is str:
            try:
                number = parse_java_integer(value, sql_type)
            except ValueError:
                raise _cannot_coerce_string(sql_type) from None
        else:
            raise _cannot_convert(value, sql_type)
        if lowest <= number <= highest:
            return number
        raise _CoercionError(f"Value {number} is out of range for type {sql_type}")

    return coerce


def _coerce_double(value: Any) -> Any:
    kind = type(value)
    if kind is float:
        return value
    if kind is int or kind is Decimal:
        try:
            return float(value)
        except OverflowError:
            return math.copysign(math.inf, value)
    if kind is str:
        try:
            return parse_java_double(value)
        except ValueError:
            raise _cannot_coerce_string(DOUBLE) from None
    raise _cannot_convert(value, DOUBLE)


def _coerce_string(value: Any) -> Any:
    """Jackson's asText for scalars, JSON text for objects, '[a, b]' for arrays, as ksqlDB does."""
    kind = type(value)
    if kind is str:
        return value
    if kind is bool:
        return "true" if value else "false"
    if kind is int or kind is Decimal:
        return str(value)  # BigDecimal.toString keeps the written scale: 1.50 stays "1.50"
    if kind is float:
        raise _NeedsExactNumbers
    if kind is list:
        return "[" + ", ".join("null" if item is None else _coerce_string(item) for item in value) + "]"
    if _contains_float(value):
        raise _NeedsExactNumbers
    return logical_json_text(value)


def _contains_float(document: Any) -> bool:
    if isinstance(document, float):
        return True
    if isinstance(document, dict):
        return any(map(_contains_float, document.values()))
    if isinstance(document, list):
        return any(map(_contains_float, document))
    return False


def _decimal_coercer(decimal_type: DecimalType) -> Coercer:
    def coerce(value: Any) -> Any:
        kind = type(value)
        if kind is Decimal:
            number = value
        elif kind is int:
            number = Decimal(value)
        elif kind is float:
            raise _NeedsExactNumbers
        elif kind is str:
            try:
                number = parse_java_decimal(value)
            except ValueError:
                raise _cannot_coerce_string(decimal_type) from None
        else:
            raise _cannot_convert(value, decimal_type)
        try:
            return fit_decimal(number, decimal_type)
        except ValueError as error:
            raise _CoercionError(str(error)) from None

    return coerce


def _coerce_bytes(value: Any) -> Any:
    if type(value) is not str:
        raise _cannot_convert(value, BYTES)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _CoercionError(f"Value is not a valid Base64 encoded string: {value}") from None


def _array_coercer(array_type: ArrayType) -> Coercer:
    element = _nullable(_coercer_for(array_type.element))

    def coerce(value: Any) -> Any:
        if type(value) is not list:
            raise _cannot_convert(value, array_type)
        result = []
        for index, item in enumerate(value):
            try:
                result.append(element(item))
            except _CoercionError as error:
                raise error.under(f"[{index}]") from None
        return result

    return coerce


def _map_coercer(map_type: MapType) -> Coercer:
    # Map keys are JSON object keys, always strings; only STRING-keyed maps reach here.
    element = _nullable(_coercer_for(map_type.value))

    def coerce(value: Any) -> Any:
        if type(value) is not dict:
            raise _cannot_convert(value, map_type)
        result = {}
        for key, item in value.items():
            try:
                result[key] = element(item)
            except _CoercionError as error:
                raise error.under(f".{key}.value") from None
        return result

    return coerce


class _NeverMatches:
    """A type no parsed JSON value has: columns without a fast path always go through their coercer."""


# Parsed values of these types already are the column's value; everything else goes through a coercer.
_READY_TYPES: dict[SqlType, type] = {STRING: str, DOUBLE: float, BOOLEAN: bool}
_LAYOUT_CACHE_LIMIT = 256


class _FieldReader:
    """Reads named fields of JSON objects into a list in declared order, coercing each value.

    A field is found by its exact name, else by a key whose upper-case form equals the name (unquoted
    SQL names are upper case, so this is ksqlDB's 'case-insensitive' lookup); a missing field is NULL.
    Objects on one topic share their key layout, so the key each name resolves to is worked out once
    per layout and cached.
    """

    def __init__(self, names: Sequence[str], types: Sequence[SqlType]) -> None:
        self._names = tuple(names)
        coercers = [_coercer_for(sql_type) for sql_type in types]
        self.columns = [(_READY_TYPES.get(sql_type, _NeverMatches), coerce)
                         for sql_type, coerce in zip(types, coercers, strict=True)]
        self._layouts: dict[tuple[str, ...], list[str | None]] = {}

    def keys_for(self, document: dict[str, Any]) -> list[str | None]:
        layout = tuple(document)
        keys = self._layouts.get(layout)
        if keys is None:
            upper_cased = {key.upper(): key for key in layout}
            keys = [name if name in document else upper_cased.get(name) for name in self._names]
            if len(self._layouts) >= _LAYOUT_CACHE_LIMIT:
                self._layouts.clear()
            self._layouts[layout] = keys
        return keys

    def __call__(self, document: dict[str, Any]) -> list[Any]:
        get = document.get
        raw = [get(key) for key in self.keys_for(document)]  # type: ignore[arg-type]  # None finds nothing
        try:
            return [value if type(value) is ready else (None if value is None else coerce(value))
                    for value, (ready, coerce) in zip(raw, self.columns, strict=True)]
        except _CoercionError:
            for name, value, (_, coerce) in zip(self._names, raw, self.columns, strict=True):
                try:
                    if value is not None:
                        coerce(value)
                except _CoercionError as error:
                    raise error.under(f".{name}") from None
            raise


def _struct_coercer(struct_type: StructType) -> Coercer:
    names = [name for name, _ in struct_type.fields]
    read_fields = _FieldReader(names, [field_type for _, field_type in struct_type.fields])

    def coerce(value: Any) -> Any:
        if type(value) is not dict:
            raise _cannot_convert(value, struct_type)
        return dict(zip(names, read_fields(value), strict=True))

    return coerce


def _nullable(coerce: Coercer) -> Coercer:
    return lambda value: None if value is None else coerce(value)


def _coercer_for(sql_type: SqlType) -> Coercer:
    """How a non-null parsed JSON value becomes a value of `sql_type` (see ksqlpy.types)."""
    if sql_type == STRING:
        return _coerce_string
    if sql_type in _INTEGRAL_TYPES:
        return _integral_coercer(sql_type)
    if sql_type == DOUBLE:
        return _coerce_double
    if sql_type == BOOLEAN:
        return _coerce_boolean
    if sql_type == BYTES:
        return _coerce_bytes
    if isinstance(sql_type, DecimalType):
        return _decimal_coercer(sql_type)
    if isinstance(sql_type, ArrayType):
        return _array_coercer(sql_type)
    if isinstance(sql_type, MapType):
        return _map_coercer(sql_type)
    if isinstance(sql_type, StructType):
        return _struct_coercer(sql_type)
    raise TypeError(f"JSON cannot carry type {sql_type}")


def _contains_decimal(sql_type: SqlType) -> bool:
    if isinstance(sql_type, DecimalType):
        return True
    if isinstance(sql_type, ArrayType):
        return _contains_decimal(sql_type.element)
    if isinstance(sql_type, MapType):
        return _contains_decimal(sql_type.value)
    if isinstance(sql_type, StructType):
        return any(_contains_decimal(field_type) for _, field_type in sql_type.fields)
    return False


# ---- writing -------------------------------------------------------------------------------------


def _json_string(text: str) -> str:
    return orjson.dumps(text).decode("utf-8")


def _write_double(value: Any) -> str:
    number = float(value)
    if math.isfinite(number):
        return double_to_text(number)
    return '"' + double_to_text(number) + '"'  # Jackson writes non-finite doubles as strings


def _write_boolean(value: Any) -> str:
    return "true" if value else "false"


def _write_bytes(value: Any) -> str:
    return '"' + base64.b64encode(value).decode("ascii") + '"'


def _write_nullable(write: Writer) -> Writer:
    return lambda value: "null" if value is None else write(value)


def _array_writer(array_type: ArrayType) -> Writer:
    element = _write_nullable(_writer_for(array_type.element))
    return lambda value: "[" + ",".join(map(element, value)) + "]"


def _map_writer(map_type: MapType) -> Writer:
    element = _write_nullable(_writer_for(map_type.value))
    key_type = map_type.key

    def write(value: Any) -> str:
        # JSON object keys are text; a NULL key is written as "null", as Java's String.valueOf does
        entries = (_json_string(value_to_text(key, key_type)) + ":" + element(item) for key, item in value.items())
        return "{" + ",".join(entries) + "}"

    return write


def _struct_writer(struct_type: StructType) -> Writer:
    fields = [(name, _json_string(name) + ":", _write_nullable(_writer_for(field_type)))
              for name, field_type in struct_type.fields]

    def write(value: Any) -> str:
        return "{" + ",".join(label + write_field(value.get(name)) for name, label, write_field in fields) + "}"

    return write


def _writer_for(sql_type: SqlType) -> Writer:
    """How a non-null value of `sql_type` is written as JSON text, the way ksqlDB (Jackson) writes it."""
    if sql_type == STRING:
        return _json_string
    if sql_type in _INTEGRAL_TYPES:
        return str
    if sql_type == DOUBLE:
        return _write_double
    if sql_type == BOOLEAN:
        return _write_boolean
    if sql_type == BYTES:
        return _write_bytes
    if isinstance(sql_type, DecimalType):
        return decimal_to_plain_text
    if isinstance(sql_type, ArrayType):
        return _array_writer(sql_type)
    if isinstance(sql_type, MapType):
        return _map_writer(sql_type)
    if isinstance(sql_type, StructType):
        return _struct_writer(sql_type)
    raise TypeError(f"JSON cannot carry type {sql_type}")


def _parse_objects(payloads: Sequence[bytes | None]) -> tuple[list[dict[str, Any] | None], set[int]]:
    """Each payload parsed, and the rows that are not a plain JSON object (None in their place)."""
    try:
        documents: list[Any] = list(map(orjson.loads, payloads))  # type: ignore[arg-type]  # None raises
        if set(map(type, documents)) == {dict}:
            return documents, set()
    except orjson.JSONDecodeError:
        pass
    documents, slow = [], set()
    for index, payload in enumerate(payloads):
        document: Any = None
        if payload is not None:
            try:
                document = orjson.loads(payload)
            except orjson.JSONDecodeError:
                slow.add(index)
            if type(document) is not dict:
                slow.add(index)
                document = None
        documents.append(document)
    return documents, slow


def _field_column(documents: list[dict[str, Any] | None], key: str) -> list[Any]:
    """One field of every document; _MISSING where a document lacks it."""
    try:
        return list(map(itemgetter(key), documents))  # type: ignore[arg-type]  # None rows raise: slow path
    except (KeyError, TypeError):
        return [d.get(key, _MISSING) if d is not None else None for d in documents]


def _rows_needing_coercion(column: list[Any], ready: type, bounds: tuple[int, int] | None) -> Iterable[int]:
    """Rows whose parsed value is not already the column's value (checked at C speed when all are)."""
    kinds = set(map(type, column))
    if bounds is not None:
        low, high = bounds
        if kinds == {int} and low <= min(column) and max(column) < high:
            return ()
        return (i for i, v in enumerate(column) if v is not None and (type(v) is not int or not low <= v < high))
    if kinds <= {ready, type(None)}:
        return ()
    return (i for i, v in enumerate(column) if v is not None and type(v) is not ready)


ColumnWriter = Callable[[Sequence[Any]], list[bytes]]


def _write_native_column(column: Sequence[Any]) -> list[bytes]:
    """Strings, integers, booleans and nulls, as orjson writes them, in one orjson call for the column."""
    # Outside strings orjson writes a comma only between elements, so the split is right unless a
    # string holds a comma, which the count of parts shows.
    parts = orjson.dumps(column)[1:-1].split(b",")
    return parts if len(parts) == len(column) else list(map(orjson.dumps, column))


def _write_double_column(column: Sequence[Any]) -> list[bytes]:
    present = [v for v in column if v is not None] if None in column else column
    texts = doubles_to_text(present)
    if not all(map(math.isfinite, present)):
        # Jackson quotes NaN and Infinity (QUOTE_NON_NUMERIC_NUMBERS); finite values stay numbers
        texts = [text if math.isfinite(value) else f'"{text}"' for text, value in zip(texts, present, strict=True)]
    written = list(map(str.encode, texts))
    if present is column:
        return written
    rest = iter(written)
    return [b"null" if v is None else next(rest) for v in column]


def _column_writer(sql_type: SqlType) -> ColumnWriter:
    """How a column of `sql_type` is written as one JSON text per row, the way ksqlDB (Jackson) writes it."""
    if sql_type in _INTEGRAL_TYPES or sql_type in (BOOLEAN, STRING):
        return _write_native_column
    if sql_type == DOUBLE:
        return _write_double_column
    write = _writer_for(sql_type)
    return lambda column: [b"null" if v is None else write(v).encode("utf-8") for v in column]


def logical_json_text(document: Any) -> str:
    """Compact JSON text of an untyped document (dicts, lists, str, int, Decimal, float, bool, None).

    Decimals keep their exact text (Decimal('1.50') -> 1.50) and floats render the Java way.
    """
    if document is None:
        return "null"
    if isinstance(document, bool):
        return _write_boolean(document)
    if isinstance(document, (int, Decimal)):
        return str(document)
    if isinstance(document, float):
        return _write_double(document)
    if isinstance(document, str):
        return _json_string(document)
    if isinstance(document, (bytes, bytearray)):
        return _write_bytes(document)
    if isinstance(document, dict):
        return "{" + ",".join(_json_string(str(key)) + ":" + logical_json_text(item)
                              for key, item in document.items()) + "}"
    if isinstance(document, (list, tuple)):
        return "[" + ",".join(map(logical_json_text, document)) + "]"
    raise TypeError(f"not a JSON document: {type(document).__name__}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"Non-standard token '{name}'")


def _parse_exact(payload: bytes) -> Any:
    """Parse keeping every non-integer number's exact text as a Decimal."""
    return json.loads(payload, parse_float=Decimal, parse_constant=_reject_constant)


class JsonSerde(RecordSerde):
    """JSON objects with one field per column, or the bare value of a single unwrapped column."""

    format_name = "JSON"

    def __init__(self, columns: Sequence[Column], options: FormatOptions) -> None:
        super().__init__(columns, options)
        self._target = "key" if options.is_key else "value"
        # Single key columns are never wrapped; single value columns only when WRAP_SINGLE_VALUE allows.
        self._unwrapped = len(self.columns) == 1 and (options.is_key or not options.wrap_single_value)
        names = [column.name for column in self.columns]
        types = [column.type for column in self.columns]
        self._row_type = StructType(tuple(zip(names, types, strict=True)))
        self._single = _coercer_for(types[0]) if self._unwrapped else None
        self._read_fields = _FieldReader(names, types)
        # Where exact decimals matter anyway, skip the fast float-parsing path.
        self._always_exact = any(_contains_decimal(sql_type) for sql_type in types)
        self._write_single = _writer_for(types[0]) if self._unwrapped else None
        self._field_writers = [(_json_string(name) + ":", _write_nullable(_writer_for(sql_type)))
                               for name, sql_type in zip(names, types, strict=True)]
        self._names = names
        self._types = types
        self._column_writers = [_column_writer(sql_type) for sql_type in types]
        # what comes before each field's text in an object, and after the last
        self._object_pieces = [(b"{" if i == 0 else b",") + orjson.dumps(name) + b":" for i, name in enumerate(names)]
        self._object_pieces.append(b"}")

    def _row(self, document: Any) -> list[Any] | None:
        if document is None:
            return None
        if self._single is not None:
            return [self._single(document)]
        if type(document) is not dict:
            raise _cannot_convert(document, self._row_type)
        return self._read_fields(document)

    def _parse_error(self, error: Exception) -> SerdeError:
        return SerdeError(f"Failed to deserialize {self._target}. Invalid JSON: {error}")

    def deserialize(self, payload: bytes | None) -> list[Any] | None:
        if payload is None:
            return None
        try:
            if not self._always_exact:
                try:
                    document = orjson.loads(payload)
                except orjson.JSONDecodeError:
                    document = _MISSING  # e.g. integers beyond 64 bits: the exact parser decides
                if document is not _MISSING:
                    try:
                        return self._row(document)
                    except _NeedsExactNumbers:
                        pass
            try:
                document = _parse_exact(payload)
            except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
                raise self._parse_error(error) from None
            return self._row(document)
        except _CoercionError as error:
            raise SerdeError(
                f"Failed to deserialize {self._target}. {error.message}, path: ${error.path}"
            ) from None
        except RecursionError:
            # Parsing and coercion descend one Python call per level, so a document nested deeper than
            # Python's recursion limit (~1000 calls, a few hundred levels) is rejected rather than read.
            raise self._parse_error(ValueError("the document is nested too deeply")) from None

    def deserialize_batch(self, payloads: Sequence[bytes | None]) -> list[list[Any] | SerdeError | None]:
        if self._always_exact or self._single is not None:
            return super().deserialize_batch(payloads)
        # The common case inlined: orjson parse of an object read straight through the field reader;
        # anything unusual goes the full way through deserialize().
        loads, read_fields, deserialize = orjson.loads, self._read_fields, self.deserialize
        out: list[list[Any] | SerdeError | None] = []
        append = out.append
        for payload in payloads:
            try:
                document = loads(payload) if payload is not None else None
                if type(document) is dict:
                    append(read_fields(document))
                    continue
            except (orjson.JSONDecodeError, _CoercionError, _NeedsExactNumbers, RecursionError):
                pass
            try:
                append(deserialize(payload))
            except SerdeError as error:
                append(error)
        return out

    def deserialize_columns(self, payloads: Sequence[bytes | None]) -> DecodedColumns:
        if self._always_exact or self._single is not None:
            return super().deserialize_columns(payloads)
        columns = self._columns_of_uniform_objects(payloads)
        slow: set[int] = set()  # rows that need the full row-by-row path (odd layouts, coercions, errors)
        if columns is None:
            documents, slow = _parse_objects(payloads)
            first = next((d for d in documents if d is not None), None)
            keys = self._read_fields.keys_for(first) if first is not None else [None] * len(self._names)
            columns = [_field_column(documents, key) if key is not None else [None] * len(documents) for key in keys]
            for key in keys:
                if key is None:  # a field the first object lacks: the full path decides row by row
                    slow.update(i for i, d in enumerate(documents) if d is not None)
        for column, (ready, _), column_type in zip(columns, self._read_fields.columns, self._types, strict=True):
            slow.update(_rows_needing_coercion(column, ready, _INTEGRAL_BOUNDS.get(column_type)))
        present = presence(payloads)
        errors: dict[int, SerdeError] = {}
        for index in slow:
            try:
                row = self.deserialize(payloads[index])
            except SerdeError as error:
                errors[index] = error
                row = None
            for column, value in zip(columns, row or [None] * len(columns), strict=True):
                column[index] = value
        return DecodedColumns(columns, present, errors)

    def _columns_of_uniform_objects(self, payloads: Sequence[bytes | None]) -> list[list[Any]] | None:
        """Every column at once when every payload is an object holding every field; None otherwise.

        Each object's fields are taken as soon as it is parsed, while it is still in the CPU cache.
        """
        try:
            first = orjson.loads(payloads[0]) if payloads else None  # type: ignore[arg-type]  # None raises
            keys = self._read_fields.keys_for(first) if type(first) is dict else [None]
            if len(keys) < 2 or None in keys:
                return None
            rows = list(map(itemgetter(*keys), map(orjson.loads, payloads)))  # type: ignore[arg-type]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return None
        return list(map(list, zip(*rows, strict=True)))

    def serialize_columns(self, columns: Sequence[Sequence[Any]], size: int) -> list[bytes | None]:
        if self._write_single is not None:
            write = self._write_single
            return [None if v is None else write(v).encode("utf-8") for v in columns[0]]
        if not columns:
            return [b"{}"] * size
        pieces: list[Iterable[bytes]] = [repeat(self._object_pieces[0])]
        for write_column, column, after in zip(self._column_writers, columns, self._object_pieces[1:], strict=True):
            pieces += [write_column(column), repeat(after)]
        return list(map(b"".join, zip(*pieces, strict=False)))  # the repeats are endless

    def serialize(self, values: Sequence[Any] | None) -> bytes | None:
        if values is None:
            return None
        if self._write_single is not None:
            # An unwrapped NULL is no record content at all (ksqlDB writes a null payload).
            return None if values[0] is None else self._write_single(values[0]).encode("utf-8")
        fields = ",".join(label + write(value)
                          for (label, write), value in zip(self._field_writers, values, strict=True))
        return ("{" + fields + "}").encode("utf-8")

    def project(self, indexes: Sequence[int]) -> RecordSerde | None:
        if self._unwrapped or self.options.is_key:
            return None
        # Fields are looked up by name, so a subset of an object's columns is read the same way.
        return JsonSerde([self.columns[i] for i in indexes], replace(self.options, wrap_single_value=True))

    def from_logical(self, logical: Any) -> bytes | None:
        return None if logical is None else logical_json_text(logical).encode("utf-8")

    def to_logical(self, payload: bytes | None) -> Any:
        return None if payload is None else _parse_exact(payload)
