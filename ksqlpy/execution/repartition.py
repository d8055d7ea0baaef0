"""The values of the records a re-keying GROUP BY writes through its repartition topic, and reading them back.

A repartition record's value is one aggregate input row: the group key columns, the aggregates' argument
columns and, when an aggregate orders its rows by offset, the source record's offset (the repartition
topic's own offsets would order rows by arrival there instead). It is a tuple of plain values in the state
values' encoding (ksqlpy.state.values), which keeps every SQL value's Python type exactly (DECIMAL's scale,
STRUCT field order, BYTES). Anyone able to write to the topic could have put the bytes there, so they are
read with the plain-data-only decoder: a record that is not such a row is refused, never run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ksqlpy.state.values import decode_received, encode


def encoded_rows(columns: Sequence[Sequence[Any]], rows: Sequence[int]) -> list[bytes]:
    """The values of the rows `rows` of `columns`, one per row."""
    return [encode(row) for row in zip(*([column[r] for r in rows] for column in columns), strict=True)]


def decoded_rows(values: Sequence[bytes | None], width: int) -> tuple[list[tuple[Any, ...]], list[int], dict[int, str]]:
    """The rows of `width` columns in `values`: the rows, the positions they were read from, and why each
    other position could not be read."""
    rows: list[tuple[Any, ...]] = []
    read: list[int] = []
    errors: dict[int, str] = {}
    for position, value in enumerate(values):
        if value is None:
            errors[position] = "the record has no value"
            continue
        try:
            row = decode_received(value)
        except Exception as error:  # whatever bytes from outside make the decoder raise are that record's fault
            errors[position] = f"{type(error).__name__}: {error}"
            continue
        if type(row) is not tuple or len(row) != width:
            errors[position] = f"expected a row of {width} values, not {type(row).__name__}"
            continue
        rows.append(row)
        read.append(position)
    return rows, read, errors
