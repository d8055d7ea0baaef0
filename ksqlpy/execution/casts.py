"""Value conversions between SQL types (CAST and implicit widening), built once per (source, target) pair."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any

from ksqlpy.errors import EvaluationError
from ksqlpy.text import double_to_text, value_to_text
from ksqlpy.types import (
    BIGINT,
    BOOLEAN,
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

Converter = Callable[[Any], Any]

DECIMAL_CONTEXT = Context(prec=100)
MS_PER_DAY = 86_400_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_TRUE_WORDS = {"true", "t", "yes", "y"}
_FALSE_WORDS = {"false", "f", "no", "n"}


def wrap_int32(value: int) -> int:
    """Java's narrowing of a long to an int."""
    return ((value + 2**31) % 2**32) - 2**31


def wrap_int64(value: int) -> int:
    return ((value + 2**63) % 2**64) - 2**63


def to_decimal(value: Decimal, target: DecimalType) -> Decimal:
    """Round HALF_UP to the target scale; a value with too many integer digits is an error."""
    quantized = value.quantize(Decimal(1).scaleb(-target.scale), rounding=ROUND_HALF_UP, context=DECIMAL_CONTEXT)
    if quantized.adjusted() + 1 > target.precision - target.scale and quantized != 0:
        raise EvaluationError(f"Numeric field overflow: value {value} does not fit {target}")
    return quantized


def parse_timestamp_text(text: str) -> int:
    """ISO-8601 text (date, optional time, optional zone; UTC when none) -> epoch milliseconds."""
    cleaned = text.strip()
    try:
        parsed = dt.datetime.fromisoformat(cleaned.replace("Z", "+00:00"))
    except ValueError as error:
        raise EvaluationError(f"Cannot parse '{text}' as a TIMESTAMP") from error
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    delta = parsed - _EPOCH
    return delta.days * MS_PER_DAY + delta.seconds * 1000 + delta.microseconds // 1000


_PARTIAL_TIMESTAMP = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?)?)?)?)?"
    r"(Z|[+-]\d{2}(?::?\d{2})?)?"
)


def parse_partial_timestamp(text: str) -> int:
    """ksqlDB's reading of a timestamp literal compared with ROWTIME: '2018', '2018-01-01T00:00', '...+0445'."""
    match = _PARTIAL_TIMESTAMP.fullmatch(text.strip())
    if match is None:
        raise EvaluationError(f"Cannot parse '{text}' as a timestamp")
    year, month, day, hour, minute, second, millis, zone = match.groups()
    offset = dt.timedelta()
    if zone and zone != "Z":
        digits = zone[1:].replace(":", "")
        offset = dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        if zone[0] == "-":
            offset = -offset
    if int(hour or 0) > 24 or int(minute or 0) > 59 or int(second or 0) > 59:
        raise EvaluationError(f"Cannot parse '{text}' as a timestamp: time of day out of range")
    try:
        day_start = dt.datetime(int(year), int(month or 1), int(day or 1), tzinfo=dt.timezone(offset))
    except ValueError as error:
        raise EvaluationError(f"Cannot parse '{text}' as a timestamp: {error}") from error
    # the time of day is added rather than set: ISO-8601's (and Java's) 'T24' is the next day's midnight
    moment = day_start + dt.timedelta(hours=int(hour or 0), minutes=int(minute or 0), seconds=int(second or 0),
                                      milliseconds=int((millis or "0").ljust(3, "0")))
    delta = moment - _EPOCH
    return delta.days * MS_PER_DAY + delta.seconds * 1000 + delta.microseconds // 1000


def parse_date_text(text: str) -> int:
    try:
        return (dt.date.fromisoformat(text.strip()) - dt.date(1970, 1, 1)).days
    except ValueError as error:
        raise EvaluationError(f"Cannot parse '{text}' as a DATE") from error


def parse_time_text(text: str) -> int:
    try:
        parsed = dt.time.fromisoformat(text.strip())
    except ValueError as error:
        raise EvaluationError(f"Cannot parse '{text}' as a TIME") from error
    return ((parsed.hour * 60 + parsed.minute) * 60 + parsed.second) * 1000 + parsed.microsecond // 1000


def _parse_boolean(text: str) -> bool:
    word = text.strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise EvaluationError(f"invalid input syntax for type BOOLEAN: \"{text}\"")


def parse_lenient_boolean(text: str) -> bool | None:
    """How ksqlDB reads a string literal where a BOOLEAN is expected: any prefix of true/yes/false/no
    ('tr', 'Y', 'f'), case-insensitively; None when the text is none of these."""
    word = text.strip().lower()
    if not word:
        return None
    if "true".startswith(word) or "yes".startswith(word):
        return True
    if "false".startswith(word) or "no".startswith(word):
        return False
    return None


def _parse_integral(text: str, target: SqlType) -> int:
    try:
        value = int(text.strip())
    except ValueError as error:
        raise EvaluationError(f"invalid input syntax for type {target}: \"{text}\"") from error
    limit = 2**31 if target == INTEGER else 2**63
    if not -limit <= value < limit:
        raise EvaluationError(f"invalid input syntax for type {target}: \"{text}\"")
    return value


def _parse_decimal(text: str, target: DecimalType) -> Decimal:
    try:
        return to_decimal(Decimal(text.strip()), target)
    except InvalidOperation as error:
        raise EvaluationError(f"invalid input syntax for type {target}: \"{text}\"") from error


def _double_to_integral(value: float, target: SqlType) -> int:
    if value != value:  # NaN casts to 0, as in Java
        return 0
    bound = 2**31 if target == INTEGER else 2**63
    if value >= bound:
        return bound - 1
    if value < -bound:
        return -bound
    return int(value)


def _numeric_converter(source: SqlType, target: SqlType) -> Converter:
    if target == DOUBLE:
        return float
    if isinstance(target, DecimalType):
        if source == DOUBLE:
            return lambda v: to_decimal(Decimal(double_to_text(v)) if v == v else Decimal("NaN"), target)
        return lambda v: to_decimal(Decimal(v), target)
    if source == DOUBLE:
        return lambda v: _double_to_integral(v, target)
    wrap = wrap_int32 if target == INTEGER else wrap_int64
    if isinstance(source, DecimalType):
        return lambda v: wrap(int(v))
    if source == BIGINT and target == INTEGER:
        return wrap_int32
    return int


def _from_string(target: SqlType) -> Converter:
    if target in (INTEGER, BIGINT):
        return lambda v: _parse_integral(v, target)
    if target == DOUBLE:
        return lambda v: float(v.strip())
    if isinstance(target, DecimalType):
        return lambda v: _parse_decimal(v, target)
    if target == BOOLEAN:
        return _parse_boolean
    if target == TIMESTAMP:
        return parse_timestamp_text
    if target == DATE:
        return parse_date_text
    if target == TIME:
        return parse_time_text
    return lambda v: v.encode("utf-8")


def _null_safe(convert: Converter) -> Converter:
    return lambda v: None if v is None else convert(v)


def converter(source: SqlType, target: SqlType) -> Converter:
    """A function converting non-NULL values of `source` to `target`."""
    if source in (target, NULL):
        return lambda v: v
    if target == STRING:
        return lambda v: value_to_text(v, source)
    if source == STRING:
        return _from_string(target)
    if source in (INTEGER, BIGINT, DOUBLE) or isinstance(source, DecimalType):
        return _numeric_converter(source, target)
    if source == TIMESTAMP and target == DATE:
        return lambda v: v // MS_PER_DAY
    if source == TIMESTAMP and target == TIME:
        return lambda v: v % MS_PER_DAY
    if source == DATE and target == TIMESTAMP:
        return lambda v: v * MS_PER_DAY
    if isinstance(source, ArrayType) and isinstance(target, ArrayType):
        element = _null_safe(converter(source.element, target.element))
        return lambda v: [element(x) for x in v]
    if isinstance(source, MapType) and isinstance(target, MapType):
        key = _null_safe(converter(source.key, target.key))
        value = _null_safe(converter(source.value, target.value))
        return lambda v: {key(k): value(x) for k, x in v.items()}
    if isinstance(source, StructType) and isinstance(target, StructType):
        fields = [
            (name, _null_safe(converter(source.field(name) or NULL, ftype)))
            for name, ftype in target.fields
        ]
        return lambda v: {name: convert(v.get(name)) for name, convert in fields}
    raise EvaluationError(f"Cast of {source} to {target} is not supported")
