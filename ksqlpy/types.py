"""SQL types of the ksqlDB dialect and the Python values that carry them at run time.

Value conventions (every layer relies on these; None is SQL NULL everywhere):

| SQL type        | Python value                                                        |
|-----------------|---------------------------------------------------------------------|
| BOOLEAN         | bool                                                                |
| INTEGER, BIGINT | int (INTEGER kept in signed 32-bit range, BIGINT in 64-bit)         |
| DOUBLE          | float                                                               |
| DECIMAL(p, s)   | decimal.Decimal, quantized to exactly s fractional digits           |
| STRING          | str                                                                 |
| BYTES           | bytes                                                               |
| TIMESTAMP       | int, milliseconds since the epoch (UTC)                             |
| DATE            | int, days since the epoch                                           |
| TIME            | int, milliseconds since midnight                                    |
| ARRAY<T>        | list                                                                |
| MAP<K, V>       | dict                                                                |
| STRUCT<...>     | dict of field name -> value, every declared field present, in order |
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BIGINT",
    "BOOLEAN",
    "BYTES",
    "DATE",
    "DOUBLE",
    "INTEGER",
    "NULL",
    "STRING",
    "TIME",
    "TIMESTAMP",
    "ArrayType",
    "DecimalType",
    "MapType",
    "PrimitiveType",
    "SqlType",
    "StructType",
    "common_numeric_type",
    "decimal_for_integral",
    "is_numeric",
    "widens_to",
]


class SqlType:
    """Base of all SQL types; instances are immutable and compare by value."""

    def __str__(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError


@dataclass(frozen=True)
class PrimitiveType(SqlType):
    name: str

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return self.name


BOOLEAN = PrimitiveType("BOOLEAN")
INTEGER = PrimitiveType("INTEGER")
BIGINT = PrimitiveType("BIGINT")
DOUBLE = PrimitiveType("DOUBLE")
STRING = PrimitiveType("STRING")
BYTES = PrimitiveType("BYTES")
TIMESTAMP = PrimitiveType("TIMESTAMP")
DATE = PrimitiveType("DATE")
TIME = PrimitiveType("TIME")
# The type of a bare NULL literal before context gives it one.
NULL = PrimitiveType("NULL")

PRIMITIVES_BY_NAME: dict[str, PrimitiveType] = {
    "BOOLEAN": BOOLEAN,
    "INT": INTEGER,
    "INTEGER": INTEGER,
    "BIGINT": BIGINT,
    "DOUBLE": DOUBLE,
    "STRING": STRING,
    "VARCHAR": STRING,
    "BYTES": BYTES,
    "TIMESTAMP": TIMESTAMP,
    "DATE": DATE,
    "TIME": TIME,
}


@dataclass(frozen=True)
class DecimalType(SqlType):
    precision: int
    scale: int

    def __str__(self) -> str:
        return f"DECIMAL({self.precision}, {self.scale})"


@dataclass(frozen=True)
class ArrayType(SqlType):
    element: SqlType

    def __str__(self) -> str:
        return f"ARRAY<{self.element}>"


@dataclass(frozen=True)
class MapType(SqlType):
    key: SqlType
    value: SqlType

    def __str__(self) -> str:
        return f"MAP<{self.key}, {self.value}>"


@dataclass(frozen=True)
class StructType(SqlType):
    fields: tuple[tuple[str, SqlType], ...]

    def __str__(self) -> str:
        inner = ", ".join(f"`{name}` {ftype}" for name, ftype in self.fields)
        return f"STRUCT<{inner}>"

    def field(self, name: str) -> SqlType | None:
        for fname, ftype in self.fields:
            if fname == name:
                return ftype
        return None


_NUMERIC_RANK: dict[SqlType, int] = {INTEGER: 0, BIGINT: 1, DOUBLE: 3}


def is_numeric(t: SqlType) -> bool:
    return t in _NUMERIC_RANK or isinstance(t, DecimalType)


def _rank(t: SqlType) -> int:
    return 2 if isinstance(t, DecimalType) else _NUMERIC_RANK[t]


def decimal_for_integral(t: SqlType) -> DecimalType:
    """The DECIMAL that holds every value of an integral type exactly (ksqlDB's rule)."""
    if t == INTEGER:
        return DecimalType(10, 0)
    if t == BIGINT:
        return DecimalType(19, 0)
    if isinstance(t, DecimalType):
        return t
    raise TypeError(f"{t} is not integral")


def widens_to(source: SqlType, target: SqlType) -> bool:
    """True when a value of `source` may be used where `target` is expected without an explicit CAST.

    ksqlDB widens INTEGER -> BIGINT -> DECIMAL -> DOUBLE, and NULL goes anywhere.
    """
    if source in (target, NULL):
        return True
    if is_numeric(source) and is_numeric(target):
        if isinstance(target, DecimalType):
            if isinstance(source, DecimalType):
                return (target.precision - target.scale >= source.precision - source.scale
                        and target.scale >= source.scale)
            return source in (INTEGER, BIGINT)
        return _rank(source) < _rank(target)
    if isinstance(source, ArrayType) and isinstance(target, ArrayType):
        return widens_to(source.element, target.element)
    if isinstance(source, MapType) and isinstance(target, MapType):
        return widens_to(source.key, target.key) and widens_to(source.value, target.value)
    return False


def common_numeric_type(left: SqlType, right: SqlType) -> SqlType:
    """The type both operands of a binary numeric operation are widened to."""
    if left == NULL:
        return right
    if right == NULL:
        return left
    if _rank(left) >= 3 or _rank(right) >= 3:
        return DOUBLE
    if isinstance(left, DecimalType) or isinstance(right, DecimalType):
        dl, dr = decimal_for_integral(left), decimal_for_integral(right)
        scale = max(dl.scale, dr.scale)
        digits = max(dl.precision - dl.scale, dr.precision - dr.scale)
        return DecimalType(min(digits + scale, 38), scale)
    return BIGINT if BIGINT in (left, right) else INTEGER
