"""How SQL values render as text exactly as ksqlDB (Java) renders them: numbers, casts to STRING, CONCAT."""

from __future__ import annotations

from typing import Any

from ksqlpy.types import SqlType


def double_to_text(value: float) -> str:
    """Java's Double.toString: 1.0, 1.0E7, 1.234E-5, NaN, Infinity."""
    raise NotImplementedError


def value_to_text(value: Any, sql_type: SqlType) -> str:
    """CAST(value AS STRING) for any type, as ksqlDB does it."""
    raise NotImplementedError
