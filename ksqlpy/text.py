"""How SQL values render as text exactly as ksqlDB (Java) renders them: numbers, casts to STRING, CONCAT."""

from __future__ import annotations

import base64
import datetime
import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import orjson

from ksqlpy.types import (
    BOOLEAN,
    BYTES,
    DATE,
    DOUBLE,
    TIME,
    TIMESTAMP,
    ArrayType,
    DecimalType,
    MapType,
    SqlType,
    StructType,
)

__all__ = ["decimal_to_plain_text", "double_to_text", "doubles_to_text", "value_to_text"]

_EPOCH = datetime.datetime(1970, 1, 1)
_MS_PER_DAY = 86_400_000


def _java_scientific(shortest: str, value: float) -> str:
    """Java's computerized scientific notation (1.2345E-4) from the shortest round-tripping decimal text
    of `value` in any notation Python's repr or orjson writes ("0.00012345", "1.2345e-05", "1e+16")."""
    sign = "-" if shortest[0] == "-" else ""
    mantissa, _, exponent_text = shortest.lstrip("-").partition("e")
    whole, _, fraction = mantissa.partition(".")
    if exponent_text:  # one digit before the point
        digits = (whole + fraction).rstrip("0")
        exponent = int(exponent_text)
    elif whole != "0":  # "12345678.9"
        digits = (whole + fraction).rstrip("0")
        exponent = len(whole) - 1
    else:  # "0.00012345"
        significant = fraction.lstrip("0")
        digits = significant.rstrip("0")
        exponent = len(significant) - len(fraction) - 1
    if len(digits) == 1:
        # Java never prints a single significant digit: it picks the two-digit decimal nearest the
        # exact binary value, which differs from "d.0" only for tiny subnormals (4.9E-324, not 5.0E-324).
        two_digits = f"{Decimal(abs(value)):.1e}"
        if float(two_digits) == abs(value):
            mantissa, _, exponent_text = two_digits.partition("e")
            digits, exponent = mantissa.replace(".", "").rstrip("0") or "0", int(exponent_text)
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{exponent}"


def _is_plain_in_java(magnitude: Any) -> Any:
    """Whether Java writes a magnitude in plain notation: for a float, or elementwise for a numpy array."""
    return (magnitude >= 1e-3) & (magnitude < 1e7) | (magnitude == 0.0)


def double_to_text(value: float) -> str:
    """Java's Double.toString: 1.0, 1.0E7, 1.234E-5, NaN, Infinity.

    Plain notation for 1e-3 <= |x| < 1e7, computerized scientific notation otherwise, always with at
    least one digit after the point, using the shortest digits that read back as the same double.
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if _is_plain_in_java(abs(value)):
        # Python's repr is plain notation here too, with the same shortest digits and the same ".0".
        return repr(value)
    return _java_scientific(repr(value), value)


def doubles_to_text(values: Sequence[float]) -> list[str]:
    """double_to_text of many values, with the shortest digits of all of them found in one orjson call."""
    import numpy as np  # loaded with the first batch written, not with the shell

    floats = list(map(float, values))
    if not floats:
        return []
    if not all(map(math.isfinite, floats)):
        return list(map(double_to_text, floats))
    # orjson writes the same shortest digits as repr, in plain notation from 1e-5 up to 1e16.
    texts = np.array(orjson.dumps(floats)[1:-1].decode("ascii").split(","), dtype=object)
    column = np.asarray(floats, dtype=np.float64)
    java_ready = _is_plain_in_java(np.abs(column))  # plain in orjson and in Java alike
    for exponent, low, high in ((-4, 1e-4, 1e-3), (-5, 1e-5, 1e-4)):  # scores, rates: rewritten by position
        selected = (column >= low) & (column < high)
        if selected.any():
            texts[selected] = _java_from_plain_fractions(texts[selected].tolist(), exponent)
            java_ready |= selected
    for index in np.flatnonzero(~java_ready).tolist():
        texts[index] = _java_scientific(texts[index], floats[index])
    return texts.tolist()


def _java_from_plain_fractions(texts: list[str], exponent: int) -> list[str]:
    """_java_scientific of positive plain texts whose first digit has `exponent`: "0.00012" -> "1.2E-4"."""
    first = 1 - exponent  # "0." and then -exponent - 1 zeros
    return [f"{text[first]}.{text[first + 1:] or '0'}E{exponent}" for text in texts]


def decimal_to_plain_text(value: Decimal) -> str:
    """BigDecimal.toPlainString: never scientific notation, keeps the scale (Decimal('1.50') -> '1.50')."""
    return format(value, "f")


def _timestamp_iso(epoch_ms: int) -> str:
    moment = _EPOCH + datetime.timedelta(milliseconds=epoch_ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def _date_iso(epoch_days: int) -> str:
    return (_EPOCH + datetime.timedelta(days=epoch_days)).date().isoformat()


def _time_of_day_seconds(ms_of_day: int) -> tuple[int, int, int]:
    seconds = (ms_of_day // 1000) % 86_400
    return seconds // 3600, (seconds // 60) % 60, seconds % 60


def _time_local(ms_of_day: int) -> str:
    # ksqlDB formats TIME via LocalTime.ofSecondOfDay(...).toString(): millis dropped, seconds
    # omitted when zero ("10:00"), as java.time does.
    hours, minutes, seconds = _time_of_day_seconds(ms_of_day)
    if seconds == 0:
        return f"{hours:02d}:{minutes:02d}"
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}"


def _java_sql_timestamp(epoch_ms: int) -> str:
    """java.sql.Timestamp.toString in UTC: '2020-01-01 00:00:00.0', fraction without trailing zeros."""
    moment = _EPOCH + datetime.timedelta(milliseconds=epoch_ms)
    fraction = f"{moment.microsecond // 1000:03d}".rstrip("0") or "0"
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + fraction


def _java_object_text(value: Any, sql_type: SqlType) -> str:
    """Java's toString of the value as ksqlDB holds it, used for elements inside ARRAY/MAP/STRUCT."""
    if value is None:
        return "null"
    if isinstance(sql_type, DecimalType):
        return str(value)  # BigDecimal.toString, which shares Python's scientific-notation rule
    if sql_type == TIMESTAMP:
        return _java_sql_timestamp(value)
    if sql_type == DATE:
        return _date_iso(value)
    if sql_type == TIME:
        hours, minutes, seconds = _time_of_day_seconds(value)
        return f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    if sql_type == BYTES:
        return f"java.nio.HeapByteBuffer[pos=0 lim={len(value)} cap={len(value)}]"
    if isinstance(sql_type, ArrayType):
        return "[" + ", ".join(_java_object_text(item, sql_type.element) for item in value) + "]"
    if isinstance(sql_type, MapType):
        entries = (
            f"{_java_object_text(key, sql_type.key)}={_java_object_text(item, sql_type.value)}"
            for key, item in value.items()
        )
        return "{" + ", ".join(entries) + "}"
    if isinstance(sql_type, StructType):
        # Kafka Connect's Struct.toString skips null fields.
        fields = (
            f"{name}={_java_object_text(value.get(name), field_type)}"
            for name, field_type in sql_type.fields
            if value.get(name) is not None
        )
        return "Struct{" + ",".join(fields) + "}"
    return _scalar_text(value, sql_type)


def _scalar_text(value: Any, sql_type: SqlType) -> str:
    if sql_type == BOOLEAN or isinstance(value, bool):
        return "true" if value else "false"
    if sql_type == DOUBLE or isinstance(value, float):
        return double_to_text(float(value))
    # INTEGER, BIGINT and STRING print as themselves.
    return str(value)


def value_to_text(value: Any, sql_type: SqlType) -> str:
    """CAST(value AS STRING) for any type, as ksqlDB does it.

    NULL renders as 'null' (Java's String.valueOf); callers that need SQL NULL semantics should map
    None to None before calling. BYTES has no CAST to STRING in ksqlDB; it renders as base64 here.
    """
    if value is None:
        return "null"
    if isinstance(sql_type, DecimalType):
        return decimal_to_plain_text(value)
    if sql_type == TIMESTAMP:
        return _timestamp_iso(value)
    if sql_type == DATE:
        return _date_iso(value)
    if sql_type == TIME:
        return _time_local(value)
    if sql_type == BYTES:
        return base64.b64encode(value).decode("ascii")
    return _java_object_text(value, sql_type)
