"""The DELIMITED format: one CSV line per record, parsed and quoted the way ksqlDB (commons-csv) does."""

from __future__ import annotations

import base64
import binascii
import csv
import io
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ksqlpy.errors import SerdeError
from ksqlpy.schema import Column
from ksqlpy.serialization.base import FormatOptions, RecordSerde
from ksqlpy.serialization.java_numbers import (
    fit_decimal,
    parse_java_decimal,
    parse_java_double,
    parse_java_integer,
)
from ksqlpy.text import decimal_to_plain_text, double_to_text
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
    DecimalType,
    SqlType,
)

__all__ = ["DelimitedSerde"]

FieldParser = Callable[[str], Any]
FieldWriter = Callable[[Any], str]

_INTEGRAL_TYPES = (INTEGER, BIGINT, DATE, TIME, TIMESTAMP)
_QUOTE = '"'

# A single field may be a long string; the csv module's default cap (128 KiB) is not ksqlDB's.
csv.field_size_limit(max(csv.field_size_limit(), min(sys.maxsize, 2**31 - 1)))


def _parse_boolean(text: str) -> bool:
    return text.lower() == "true"  # Boolean.parseBoolean: anything else is false


def _parse_bytes(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"Value is not a valid Base64 encoded string: {text}") from None


def _parser_for(sql_type: SqlType) -> FieldParser:
    if sql_type == STRING:
        return str
    if sql_type in _INTEGRAL_TYPES:
        return lambda text: parse_java_integer(text, sql_type)
    if sql_type == DOUBLE:
        return parse_java_double
    if sql_type == BOOLEAN:
        return _parse_boolean
    if sql_type == BYTES:
        return _parse_bytes
    if isinstance(sql_type, DecimalType):
        return lambda text: fit_decimal(parse_java_decimal(text), sql_type)
    raise TypeError(f"DELIMITED cannot carry type {sql_type}")


def _write_boolean(value: Any) -> str:
    return "true" if value else "false"


def _write_bytes(value: Any) -> str:
    return base64.b64encode(value).decode("ascii")


def _writer_for(sql_type: SqlType) -> FieldWriter:
    if sql_type == STRING or sql_type in _INTEGRAL_TYPES:
        return str
    if sql_type == DOUBLE:
        return lambda value: double_to_text(float(value))
    if sql_type == BOOLEAN:
        return _write_boolean
    if sql_type == BYTES:
        return _write_bytes
    if isinstance(sql_type, DecimalType):
        return decimal_to_plain_text
    raise TypeError(f"DELIMITED cannot carry type {sql_type}")


def _needs_quotes(text: str, first_in_record: bool, delimiter: str) -> bool:
    """commons-csv's minimal quoting as ksqlDB's version applies it.

    Beyond the usual (delimiter, quote, line breaks, trailing whitespace), a record's first field is
    quoted unless it starts with an ASCII letter or digit (so "-10" at the start of a line is quoted),
    and any field starting with a character up to '#' (space, '!', '"', '#') is quoted.
    """
    if not text:
        return first_in_record  # an empty first field alone would read as an empty line
    first = text[0]
    if first_in_record and not (first.isascii() and first.isalnum()):
        return True
    if first <= "#":
        return True
    if "\n" in text or "\r" in text or _QUOTE in text or delimiter in text:
        return True
    return text[-1] <= " "


def format_line(fields: Sequence[str | None], delimiter: str) -> str:
    """One CSV line; None is a NULL field, written as nothing at all."""
    pieces = []
    for position, text in enumerate(fields):
        if text is None:
            pieces.append("")
        elif _needs_quotes(text, position == 0, delimiter):
            pieces.append(_QUOTE + text.replace(_QUOTE, _QUOTE * 2) + _QUOTE)
        else:
            pieces.append(text)
    return delimiter.join(pieces)


def parse_first_record(text: str, delimiter: str) -> list[str] | None:
    """The fields of the first non-empty CSV record in `text` (quotes undone), or None if there is none."""
    for record in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar=_QUOTE,
                             doublequote=True, strict=False):
        if record:
            return record
    return None


class DelimitedSerde(RecordSerde):
    """Columns as the fields of one delimited line; an empty field is NULL."""

    format_name = "DELIMITED"

    def __init__(self, columns: Sequence[Column], options: FormatOptions) -> None:
        super().__init__(columns, options)
        self._delimiter = options.delimiter
        self._parsers = [_parser_for(column.type) for column in self.columns]
        self._writers = [_writer_for(column.type) for column in self.columns]
        # A single NULL key column is written as no key at all, as ksqlDB's unwrapped key serdes do.
        self._null_key_is_no_key = options.is_key and len(self.columns) == 1

    def deserialize(self, payload: bytes | None) -> list[Any] | None:
        if payload is None:
            return None
        try:
            fields = parse_first_record(payload.decode("utf-8"), self._delimiter)
        except UnicodeDecodeError as error:
            raise SerdeError(f"Error deserializing delimited: the record is not valid UTF-8 ({error.reason} "
                             f"at byte {error.start})") from None
        except csv.Error as error:
            raise SerdeError(f"Error deserializing delimited: {error}") from None
        if fields is None:
            raise SerdeError("Error deserializing delimited: No fields in record")
        if len(fields) != len(self._parsers):
            raise SerdeError(
                "Error deserializing delimited: Column count mismatch on deserialization. "
                f"expected: {len(self._parsers)}, got: {len(fields)}"
            )
        try:
            return [parse(text) if text else None for parse, text in zip(self._parsers, fields, strict=True)]
        except ValueError as error:
            raise SerdeError(f"Error deserializing delimited: {error}") from None

    def serialize(self, values: Sequence[Any] | None) -> bytes | None:
        if values is None:
            return None
        if self._null_key_is_no_key and values[0] is None:
            return None
        texts = [None if value is None else write(value)
                 for write, value in zip(self._writers, values, strict=True)]
        return format_line(texts, self._delimiter).encode("utf-8")

    def from_logical(self, logical: Any) -> bytes | None:
        return None if logical is None else str(logical).encode("utf-8")

    def to_logical(self, payload: bytes | None) -> Any:
        return None if payload is None else payload.decode("utf-8", errors="replace")
