"""Number parsing and range rules of the Java runtime ksqlDB's serdes rely on (Integer.parseInt, BigDecimal...)."""

from __future__ import annotations

import re
from decimal import Context, Decimal

from ksqlpy.types import BIGINT, TIMESTAMP, DecimalType, SqlType

__all__ = [
    "fit_decimal",
    "integer_bounds",
    "parse_java_decimal",
    "parse_java_double",
    "parse_java_integer",
]

_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
# Double.parseDouble trims whitespace and accepts a trailing type suffix (1.5d, 2f).
_DOUBLE_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[dDfF]?")
_DOUBLE_SPECIALS = {"NaN": float("nan"), "Infinity": float("inf"), "+Infinity": float("inf"),
                    "-Infinity": float("-inf")}
_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

# Wide enough for any DECIMAL(38, s) value, so quantize never fails for lack of digits.
_EXACT = Context(prec=1000)

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _number_format_error(text: str) -> ValueError:
    # The wording of Java's NumberFormatException.
    return ValueError(f'For input string: "{text}"')


def integer_bounds(sql_type: SqlType) -> tuple[int, int]:
    """The smallest and largest value of an integral type: 64-bit for BIGINT and TIMESTAMP, else 32-bit."""
    if sql_type in (BIGINT, TIMESTAMP):
        return _INT64_MIN, _INT64_MAX
    return _INT32_MIN, _INT32_MAX


def parse_java_integer(text: str, sql_type: SqlType) -> int:
    """Integer.parseInt / Long.parseLong (chosen by the type's width): no whitespace, no fraction."""
    if not _INTEGER_TEXT.fullmatch(text):
        raise _number_format_error(text)
    value = int(text)
    lowest, highest = integer_bounds(sql_type)
    if not lowest <= value <= highest:
        raise _number_format_error(text)
    return value


def parse_java_double(text: str) -> float:
    """Double.parseDouble: surrounding whitespace ignored, NaN/Infinity spelled the Java way."""
    trimmed = text.strip()
    special = _DOUBLE_SPECIALS.get(trimmed)
    if special is not None:
        return special
    if not _DOUBLE_TEXT.fullmatch(trimmed):
        raise _number_format_error(text)
    return float(trimmed.rstrip("dDfF"))


def parse_java_decimal(text: str) -> Decimal:
    """new BigDecimal(text): plain or scientific notation, no whitespace, no NaN/Infinity."""
    if not _DECIMAL_TEXT.fullmatch(text):
        raise _number_format_error(text)
    return Decimal(text)


def fit_decimal(value: Decimal, decimal_type: DecimalType) -> Decimal:
    """ksqlDB's DecimalUtil.ensureFit: reject values too wide for the type, or that would need rounding.

    Returns the value with exactly the type's scale (10 into DECIMAL(6,4) -> 10.0000).
    """
    precision, scale = decimal_type.precision, decimal_type.scale
    integer_digits = precision - scale
    if not value.is_finite() or value.copy_abs() >= Decimal(10).scaleb(integer_digits - 1):
        raise ValueError(
            f"Numeric field overflow: A field with precision {precision} and scale {scale} must round "
            f"to an absolute value less than 10^{integer_digits}. Got {format(value, 'f')}"
        )
    fitted = value.quantize(Decimal(1).scaleb(-scale), context=_EXACT)
    if fitted != value:
        raise ValueError(
            f"Cannot fit decimal '{format(value, 'f')}' into DECIMAL({precision}, {scale}) without rounding."
        )
    return fitted
