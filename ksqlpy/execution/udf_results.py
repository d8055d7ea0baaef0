"""What a user function returns, held to its declared SQL type: checked a column at a time, widened where
SQL widens, NULL plus a reported error where the type is wrong.

The check is per batch: one C-level scan of the Python types in a result column (and of the elements of
arrays, maps and structs, flattened the same way) tells whether every value already follows the run-time
conventions of ksqlpy.types. Only a column that fails the scan is walked value by value, and there a
value is converted when its SQL type widens to the declared one as ksqlDB widens arguments (INT → BIGINT
→ DECIMAL → DOUBLE: an int for DOUBLE becomes a float) or when it is the same SQL value in another
Python carrier (numpy scalars, a tuple for an ARRAY, bytearray for BYTES); anything else is rejected.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from itertools import chain
from numbers import Integral, Real
from operator import is_not, itemgetter
from typing import Any

from ksqlpy.errors import EvaluationError
from ksqlpy.execution.casts import to_decimal
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

ColumnCheck = Callable[[list[Any]], bool]
Convert = Callable[[Any], Any]
WrongValueHandler = Callable[[int, "UdfResultTypeError"], None]

_INT_RANGES: dict[SqlType, tuple[int, int]] = {
    INTEGER: (-(2**31), 2**31 - 1),
    BIGINT: (-(2**63), 2**63 - 1),
    TIMESTAMP: (-(2**63), 2**63 - 1),
    DATE: (-(2**31), 2**31 - 1),
    TIME: (0, 86_400_000 - 1),
}
# the one Python type of each of the other primitive SQL types' values
_EXACT_TYPES: dict[SqlType, type] = {BOOLEAN: bool, DOUBLE: float, STRING: str, BYTES: bytes}
_NONE = type(None)
# Values shown in messages: long ones shortened, and a value whose own repr() fails still shown
_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 60
_not_none = partial(is_not, None)


class UdfResultTypeError(TypeError):
    """A value a user function returned is not of its declared SQL type and does not widen to it."""

    def __init__(self, value: Any, sql_type: SqlType, why: str = "") -> None:
        self.shown = f"{_SHORT.repr(value)} ({type(value).__name__})"
        # what is wrong inside an array, map or struct, for the message about the whole value
        self.detail = f"{self.shown} is not a valid {sql_type} value{why}"
        super().__init__(f"returned {self.shown} where {sql_type} is declared{why}")


def _inside(value: Any, sql_type: SqlType, convert: Callable[[], Any]) -> Any:
    """`convert()`, whose element conversions name the element that is wrong in an error about `value`."""
    try:
        return convert()
    except UdfResultTypeError as error:
        raise UdfResultTypeError(value, sql_type, f": {error.detail}") from None


class ResultType:
    """The declared SQL type of a function's results, with its batch check and its one-value conversion."""

    def __init__(self, sql_type: SqlType) -> None:
        self.sql_type = sql_type
        self.fits: ColumnCheck = _column_check(sql_type)
        self.convert: Convert = _converter(sql_type)

    def column(self, values: list[Any], on_wrong: WrongValueHandler) -> list[Any]:
        """`values` as they are when they all fit (the common case, no per-value work), else each one
        converted, or NULL with `on_wrong(index, error)` called."""
        if self.fits(values):
            return values
        fitted: list[Any] = []
        for index, value in enumerate(values):
            try:
                fitted.append(self.convert(value))
            except UdfResultTypeError as error:
                on_wrong(index, error)
                fitted.append(None)
        return fitted


# --------------------------------------------------------------------------- batch checks


def _column_check(sql_type: SqlType) -> ColumnCheck:
    """A check that is True only when every value of a column is already a valid value of `sql_type`."""
    if sql_type in _INT_RANGES:
        low, high = _INT_RANGES[sql_type]

        def integers(column: list[Any]) -> bool:
            present = _present(column, int)
            return present is not None and (not present or (min(present) >= low and max(present) <= high))

        return integers
    if isinstance(sql_type, ArrayType):
        elements = _column_check(sql_type.element)

        def arrays(column: list[Any]) -> bool:
            present = _present(column, list)
            return present is not None and elements(list(chain.from_iterable(present)))

        return arrays
    if isinstance(sql_type, MapType):
        keys, values = _column_check(sql_type.key), _column_check(sql_type.value)

        def maps(column: list[Any]) -> bool:
            present = _present(column, dict)
            return (present is not None
                    and keys(list(chain.from_iterable(map(dict.keys, present))))
                    and values(list(chain.from_iterable(map(dict.values, present)))))

        return maps
    if isinstance(sql_type, StructType):
        names = tuple(name for name, _ in sql_type.fields)
        fields = [(itemgetter(name), _column_check(field_type)) for name, field_type in sql_type.fields]

        def structs(column: list[Any]) -> bool:
            present = _present(column, dict)
            if not present:
                return present is not None
            return set(map(tuple, present)) == {names} and all(check(list(map(get, present))) for get, check in fields)

        return structs
    exact = _EXACT_TYPES.get(sql_type)
    if exact is None:  # DECIMAL: the scale of each value needs a look of its own
        return lambda column: not any(map(_not_none, column))
    allowed = {exact, _NONE}
    return lambda column: set(map(type, column)) <= allowed


def _present(column: list[Any], kind: type) -> list[Any] | None:
    """The column's non-NULL values when every one of them is exactly a `kind`, else None."""
    kinds = set(map(type, column))
    if not kinds <= {kind, _NONE}:
        return None
    return list(filter(_not_none, column)) if _NONE in kinds else column


# --------------------------------------------------------------------------- one value


def _converter(sql_type: SqlType) -> Convert:
    """A function turning one returned value into a valid value of `sql_type` or raising UdfResultTypeError."""
    if sql_type in _INT_RANGES:
        low, high = _INT_RANGES[sql_type]

        def integer(value: Any) -> Any:
            if value is None:
                return None
            if isinstance(value, Integral) and not isinstance(value, bool):
                number = int(value)
                if low <= number <= high:
                    return number
                raise UdfResultTypeError(value, sql_type, ": out of range")
            raise UdfResultTypeError(value, sql_type)

        return integer
    if sql_type == DOUBLE:
        return _double
    if sql_type == BOOLEAN:
        return _boolean
    if sql_type == STRING:
        return partial(_of_class, str, str, sql_type)
    if sql_type == BYTES:
        return partial(_of_class, (bytes, bytearray, memoryview), bytes, sql_type)
    if isinstance(sql_type, DecimalType):
        return partial(_decimal, sql_type)
    if isinstance(sql_type, ArrayType):
        element = _converter(sql_type.element)

        def array(value: Any) -> Any:
            if value is None:
                return None
            items = value.tolist() if hasattr(value, "tolist") else value  # a numpy array holds plain values
            if isinstance(items, (list, tuple)):
                return _inside(value, sql_type, lambda: [element(item) for item in items])
            raise UdfResultTypeError(value, sql_type)

        return array
    if isinstance(sql_type, MapType):
        key, item = _converter(sql_type.key), _converter(sql_type.value)

        def mapping(value: Any) -> Any:
            if value is None:
                return None
            if not isinstance(value, dict):
                raise UdfResultTypeError(value, sql_type)
            return _inside(value, sql_type, lambda: {key(k): item(v) for k, v in value.items()})

        return mapping
    if isinstance(sql_type, StructType):
        return _struct_converter(sql_type)
    raise TypeError(f"no run-time value convention for {sql_type}")


def _double(value: Any) -> Any:
    if value is None or type(value) is float:
        return value
    if isinstance(value, (Real, Decimal)) and not isinstance(value, bool):
        return float(value)
    raise UdfResultTypeError(value, DOUBLE)


def _boolean(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    import numpy  # only a value that is not a bool gets here; the shell starts without numpy

    if isinstance(value, numpy.bool_):
        return bool(value)
    raise UdfResultTypeError(value, BOOLEAN)


def _of_class(accepted: type | tuple[type, ...], make: type, sql_type: SqlType, value: Any) -> Any:
    if value is None or type(value) is make:
        return value
    if isinstance(value, accepted):
        return make(value)
    raise UdfResultTypeError(value, sql_type)


def _decimal(sql_type: DecimalType, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, Integral) and not isinstance(value, bool):
        value = Decimal(int(value))
    if not isinstance(value, Decimal) or not value.is_finite():
        raise UdfResultTypeError(value, sql_type)
    try:
        return to_decimal(value, sql_type)
    except EvaluationError as error:
        raise UdfResultTypeError(value, sql_type, f": {error}") from error


def _struct_converter(sql_type: StructType) -> Convert:
    converters = {name: _converter(field_type) for name, field_type in sql_type.fields}
    # ksqlDB upper-cases unquoted field names; a Python function naturally returns them as written
    by_upper = {name.upper(): name for name in converters}

    def struct(value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise UdfResultTypeError(value, sql_type)
        fields = dict.fromkeys(converters)
        for key, item in value.items():
            name = key if key in converters else by_upper.get(key.upper()) if isinstance(key, str) else None
            if name is None:
                raise UdfResultTypeError(value, sql_type, f": it has no field {key!r}")
            fields[name] = _inside(value, sql_type, partial(converters[name], item))
        return fields

    return struct
