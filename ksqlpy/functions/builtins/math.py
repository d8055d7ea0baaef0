"""Built-in MATHEMATICAL functions with Java's IEEE-754 and BigDecimal semantics (NaN/Infinity, half-up rounding)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_DOWN, ROUND_HALF_UP, Context, Decimal
from functools import reduce
from typing import Any

from ksqlpy.functions.builtins.collections import natural_order_key
from ksqlpy.functions.registry import ANY_DECIMAL, scalar_function
from ksqlpy.types import (
    BIGINT,
    BYTES,
    DATE,
    DOUBLE,
    INTEGER,
    NULL,
    STRING,
    TIME,
    TIMESTAMP,
    DecimalType,
    SqlType,
    common_numeric_type,
)

CATEGORY = "MATHEMATICAL"

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
# BigDecimal has unbounded precision; the default 28 digits would fail on DECIMAL(38, s) values
_EXACT = Context(prec=1000)


def _wrap(value: int, bits: int) -> int:
    """Two's-complement overflow, as Java's int/long arithmetic does."""
    half = 1 << (bits - 1)
    return ((value + half) % (1 << bits)) - half


def _saturate_long(value: float | Decimal) -> int:
    """Java's (long) cast and Math.round: NaN is 0, out-of-range values clamp to Long.MIN/MAX."""
    if isinstance(value, float) and math.isnan(value):
        return 0
    if value >= _LONG_MAX:
        return _LONG_MAX
    if value <= _LONG_MIN:
        return _LONG_MIN
    return int(value)


def _same_type(args: list[SqlType]) -> SqlType:
    return args[0]


def _integral_part_decimal(args: list[SqlType]) -> SqlType:
    """ROUND/TRUNC(DECIMAL(p, s)) drop the fraction: DECIMAL(p - s, 0)."""
    source = args[0]
    if isinstance(source, DecimalType):
        return DecimalType(max(source.precision - source.scale, 1), 0)
    return source


# --------------------------------------------------------------------------- ABS, CEIL, FLOOR, SIGN


def _declare_per_numeric_type(
    name: str,
    description: str,
    on_int: Callable[[int], int],
    on_double: Callable[[float], float],
    on_decimal: Callable[[Decimal], Decimal],
) -> None:
    """One function with INT, BIGINT, DOUBLE and DECIMAL overloads, each returning its argument's type."""
    scalar_function(name, params=[INTEGER], returns=INTEGER, category=CATEGORY, description=description)(
        lambda value: _wrap(on_int(value), 32)
    )
    scalar_function(name, params=[BIGINT], returns=BIGINT, category=CATEGORY, description=description)(
        lambda value: _wrap(on_int(value), 64)
    )
    scalar_function(name, params=[DOUBLE], returns=DOUBLE, category=CATEGORY, description=description)(on_double)
    scalar_function(
        name, params=[ANY_DECIMAL], returns=_same_type, category=CATEGORY, description=description, factory=True
    )(_rescaling(on_decimal))


def _rescaling(fn: Callable[[Decimal], Decimal]) -> Callable[[list[SqlType], SqlType], Callable[[Decimal], Decimal]]:
    """Wraps a DECIMAL operation so its result keeps the return type's scale."""

    def factory(_arg_types: list[SqlType], return_type: SqlType) -> Callable[[Decimal], Decimal]:
        scale = return_type.scale if isinstance(return_type, DecimalType) else 0
        quantum = Decimal(1).scaleb(-scale)
        return lambda value: fn(value).quantize(quantum, context=_EXACT)

    return factory


def _integral_double(rounding: Callable[[float], int]) -> Callable[[float], float]:
    """Math.floor/ceil: non-finite values pass through and a zero result keeps the argument's sign."""

    def apply(value: float) -> float:
        if not math.isfinite(value):
            return value
        result = float(rounding(value))
        return math.copysign(result, value) if result == 0 else result

    return apply


_declare_per_numeric_type(
    "ABS", "Returns the absolute value of a number.", abs, abs, abs
)
_declare_per_numeric_type(
    "CEIL", "Returns the smallest integer value greater than or equal to a number.",
    lambda v: v, _integral_double(math.ceil), lambda v: v.to_integral_value(rounding=ROUND_CEILING),
)
_declare_per_numeric_type(
    "FLOOR", "Returns the largest integer value less than or equal to a number.",
    lambda v: v, _integral_double(math.floor), lambda v: v.to_integral_value(rounding=ROUND_FLOOR),
)


def _sign(value: float) -> int:
    if math.isnan(value):
        return 0  # (int) Math.signum(NaN)
    return (value > 0) - (value < 0)


for _sign_type in (INTEGER, BIGINT, DOUBLE):
    scalar_function(
        "SIGN", params=[_sign_type], returns=INTEGER, category=CATEGORY,
        description="Returns the sign of a number as an INTEGER: -1, 0 or 1.",
    )(_sign)


# --------------------------------------------------------------------------- ROUND and TRUNC


def _to_places(value: Decimal, places: int, rounding: str) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=rounding, context=_EXACT)


def _round_half_up(value: Decimal, places: int) -> Decimal:
    # Math.round rounds ties towards positive infinity, so negative ties round half-down
    return _to_places(value, places, ROUND_HALF_UP if value > 0 else ROUND_HALF_DOWN)


def _truncate(value: Decimal, places: int) -> Decimal:
    return _to_places(value, places, ROUND_DOWN)


def _double_to_decimal(value: float) -> Decimal:
    """BigDecimal.valueOf(double): the decimal of the double's shortest text; fails for NaN/Infinity."""
    if not math.isfinite(value):
        raise ValueError(f"Cannot convert {value} to a decimal")
    return Decimal(repr(value))


def _java_math_round(value: float) -> int:
    """Math.round: floor(value + 1/2) computed exactly (0.49999999999999994 rounds to 0)."""
    if not math.isfinite(value):
        return _saturate_long(value)
    floor = math.floor(value)
    return _saturate_long(floor + 1 if value - floor >= 0.5 else floor)


def _declare_rounding(name: str, verb: str, to_places: Callable[[Decimal, int], Decimal],
                      double_to_long: Callable[[float], int]) -> None:
    scalar_function(
        name, params=[INTEGER], returns=BIGINT, category=CATEGORY,
        description=f"{verb} an INT to a BIGINT (which leaves it unchanged).",
    )(lambda value: value)
    scalar_function(
        name, params=[BIGINT], returns=BIGINT, category=CATEGORY,
        description=f"{verb} a BIGINT (which leaves it unchanged).",
    )(lambda value: value)
    scalar_function(
        name, params=[DOUBLE], returns=BIGINT, category=CATEGORY,
        description=f"{verb} a DOUBLE to a whole BIGINT.",
    )(double_to_long)
    scalar_function(
        name, params=[DOUBLE, INTEGER], returns=DOUBLE, category=CATEGORY,
        description=f"{verb} a DOUBLE to the given number of decimal places (negative: left of the point).",
    )(lambda value, places: float(to_places(_double_to_decimal(value), places)))

    def decimal_factory(arg_types: list[SqlType], return_type: SqlType) -> Callable[..., Decimal]:
        scale = return_type.scale if isinstance(return_type, DecimalType) else 0
        quantum = Decimal(1).scaleb(-scale)
        # the result keeps the return type's scale whatever the number of places asked for
        return lambda value, places=0: to_places(value, places).quantize(quantum, context=_EXACT)

    scalar_function(
        name, params=[ANY_DECIMAL], returns=_integral_part_decimal, factory=True, category=CATEGORY,
        description=f"{verb} a DECIMAL to a whole DECIMAL with scale 0.",
    )(decimal_factory)
    scalar_function(
        name, params=[ANY_DECIMAL, INTEGER], returns=_same_type, factory=True, category=CATEGORY,
        description=f"{verb} a DECIMAL to the given number of decimal places, keeping its type.",
    )(decimal_factory)


_declare_rounding("ROUND", "Rounds (ties towards positive infinity)", _round_half_up, _java_math_round)
_declare_rounding("TRUNC", "Truncates (towards zero)", _truncate, _saturate_long)


# --------------------------------------------------------------------------- DOUBLE functions


def _declare_double_function(name: str, description: str, fn: Callable[..., float], arity: int = 1) -> None:
    scalar_function(name, params=[DOUBLE] * arity, returns=DOUBLE, category=CATEGORY, description=description)(fn)


def _nan_outside_domain(fn: Callable[[float], float]) -> Callable[[float], float]:
    """Python raises where Java's Math returns NaN (e.g. ACOS(2), SQRT(-1), SIN(Infinity))."""

    def apply(value: float) -> float:
        try:
            return fn(value)
        except ValueError:
            return math.nan

    return apply


def _overflowing(fn: Callable[[float], float], infinity_sign: Callable[[float], float]) -> Callable[[float], float]:
    """Python raises where Java's Math overflows to an infinity."""

    def apply(value: float) -> float:
        try:
            return fn(value)
        except OverflowError:
            return math.copysign(math.inf, infinity_sign(value))

    return apply


def _natural_log(value: float) -> float:
    if value == 0:
        return -math.inf
    if value < 0:
        return math.nan
    return math.log(value)


def _log_with_base(base: float, value: float) -> float:
    if base <= 0 or base == 1:
        return math.nan
    return _natural_log(value) / _natural_log(base)


def _cot(value: float) -> float:
    tangent = _nan_outside_domain(math.tan)(value)
    if tangent == 0:
        return math.copysign(math.inf, tangent)
    return 1.0 / tangent


def _is_odd_integer(value: float) -> bool:
    return math.isfinite(value) and value == math.floor(value) and math.fmod(value, 2) != 0


def _power(base: float, exponent: float) -> float:
    try:
        return math.pow(base, exponent)
    except OverflowError:
        negative = base < 0 and _is_odd_integer(exponent)
        return -math.inf if negative else math.inf
    except ValueError:
        if base == 0 and exponent < 0:
            negative = math.copysign(1, base) < 0 and _is_odd_integer(exponent)
            return -math.inf if negative else math.inf
        return math.nan


def _positive(_value: float) -> float:
    return 1.0


_DOUBLE_FUNCTIONS: list[tuple[str, str, Callable[[float], float]]] = [
    ("ACOS", "Returns the arc cosine of a value in radians; NaN outside [-1, 1].", _nan_outside_domain(math.acos)),
    ("ASIN", "Returns the arc sine of a value in radians; NaN outside [-1, 1].", _nan_outside_domain(math.asin)),
    ("ATAN", "Returns the arc tangent of a value in radians.", math.atan),
    ("CBRT", "Returns the cube root of a value.", math.cbrt),
    ("COS", "Returns the cosine of an angle in radians.", _nan_outside_domain(math.cos)),
    ("COSH", "Returns the hyperbolic cosine of a value.", _overflowing(math.cosh, _positive)),
    ("COT", "Returns the cotangent of an angle in radians; Infinity with the argument's sign at zero.", _cot),
    ("DEGREES", "Converts an angle in radians to degrees.", math.degrees),
    ("EXP", "Returns e raised to the power of a value.", _overflowing(math.exp, _positive)),
    ("LN", "Returns the natural logarithm of a value; -Infinity for 0 and NaN for negatives.", _natural_log),
    ("LOG", "Returns the natural logarithm of a value; -Infinity for 0 and NaN for negatives.", _natural_log),
    ("RADIANS", "Converts an angle in degrees to radians.", math.radians),
    ("SIN", "Returns the sine of an angle in radians.", _nan_outside_domain(math.sin)),
    ("SINH", "Returns the hyperbolic sine of a value.", _overflowing(math.sinh, lambda v: v)),
    ("SQRT", "Returns the square root of a value; NaN for negatives.", _nan_outside_domain(math.sqrt)),
    ("TAN", "Returns the tangent of an angle in radians.", _nan_outside_domain(math.tan)),
    ("TANH", "Returns the hyperbolic tangent of a value.", math.tanh),
]

for _name, _description, _fn in _DOUBLE_FUNCTIONS:
    _declare_double_function(_name, _description, _fn)

_declare_double_function(
    "LOG", "Returns the logarithm of a value in the given base (LOG(base, value)); NaN for bases <= 0 or 1.",
    _log_with_base, arity=2,
)
_declare_double_function(
    "ATAN2", "Returns the angle theta of the point (x, y) given as ATAN2(y, x), in radians.", math.atan2, arity=2
)
_declare_double_function(
    "POWER", "Returns base raised to the power of exponent; Infinity when the result overflows.", _power, arity=2
)
_declare_double_function("PI", "Returns an approximate value of pi.", lambda: math.pi, arity=0)
_declare_double_function("RANDOM", "Returns a random DOUBLE between 0.0 and 1.0.", random.random, arity=0)


# --------------------------------------------------------------------------- GREATEST and LEAST


def _widest_decimal(args: list[SqlType]) -> SqlType:
    decimals = [t for t in args if t != NULL]
    return reduce(common_numeric_type, decimals) if decimals else NULL


def _extreme_factory(pick: Callable[..., Any]) -> Callable[[list[SqlType], SqlType], Callable[..., Any]]:
    def factory(_arg_types: list[SqlType], return_type: SqlType) -> Callable[..., Any]:
        key = natural_order_key(return_type) or (lambda value: value)

        def extreme(*values: Any) -> Any:
            present = [v for v in values if v is not None]
            return pick(present, key=key) if present else None

        return extreme

    return factory


def _declare_extreme(name: str, pick: Callable[..., Any], adjective: str) -> None:
    description = f"Returns the {adjective} non-NULL value of its arguments, or NULL if all are NULL."
    for comparable in (INTEGER, BIGINT, DOUBLE, STRING, BYTES, DATE, TIME, TIMESTAMP):
        scalar_function(
            name, params=[comparable, comparable], returns=comparable, variadic=True, null_on_null=False,
            factory=True, category=CATEGORY, description=description,
        )(_extreme_factory(pick))
    # BigDecimal's compareTo ignores scale; ksqlDB returns the winning value with its own scale
    scalar_function(
        name, params=[ANY_DECIMAL, ANY_DECIMAL], returns=_widest_decimal, variadic=True, null_on_null=False,
        factory=True, category=CATEGORY, description=description,
    )(_extreme_factory(pick))


_declare_extreme("GREATEST", max, "largest")
_declare_extreme("LEAST", min, "smallest")
