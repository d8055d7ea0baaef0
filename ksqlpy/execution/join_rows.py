"""What the stateful join operators share: join keys as store key bytes, and output rows built one at a time
and handed back as columns in the layout of ksqlpy.execution.joins."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from ksqlpy.execution.joins import JoinOperator
from ksqlpy.execution.rows import META_COLUMNS, ORIGIN, ROWOFFSET, ROWPARTITION
from ksqlpy.state.values import encode

_INT64 = struct.Struct(">q")
_LENGTH = struct.Struct(">I")


def _part_bytes(value: Any) -> bytes:
    # Integers and strings as Kafka's KAFKA serdes write them, so a scan over keys meets them in the order
    # ksqlDB's stores do; anything else only needs to be the same bytes for equal values.
    if isinstance(value, int) and not isinstance(value, bool) and -(1 << 63) <= value < (1 << 63):
        return _INT64.pack(value)
    if isinstance(value, str):
        return value.encode()
    return encode(value)


def key_bytes(key: Any) -> bytes:
    """A join key (a value, or a tuple of values for a composite key) as bytes, equal for equal keys."""
    if isinstance(key, tuple):
        return b"".join(_LENGTH.pack(len(part)) + part for part in map(_part_bytes, key))
    return _part_bytes(key)


def prefix_bytes(key: Any) -> bytes:
    """A join key as bytes no other key's bytes start with, to lead a store key that goes on."""
    data = key_bytes(key)
    return _LENGTH.pack(len(data)) + data


def key_values(key: Any, width: int) -> tuple[Any, ...]:
    """A join key as the values of `width` key columns."""
    return key if isinstance(key, tuple) and width != 1 else (key,)


class JoinedRows:
    """One call's output rows: the key columns, the left input's columns, the right input's (an absent side's
    NULL), then the metadata, each derived from the row that triggered it."""

    def __init__(self, operator: JoinOperator, meta: list[list[Any]]) -> None:
        self.key_width = operator.width - operator.left_width - operator.right_width
        self.left_nulls = (None,) * operator.left_width
        self.right_nulls = (None,) * operator.right_width
        self.width = operator.width + META_COLUMNS
        self.meta = meta
        self.rows: list[tuple[Any, ...]] = []

    def add(self, key: tuple[Any, ...], left: Sequence[Any] | None, right: Sequence[Any] | None, time: int,
            trigger: int, partition: int, tombstone: bool = False) -> None:
        """A row keyed `key` (the key columns' values) at `time`, caused by input row `trigger`, its state kept
        in `partition`; its KEY_BYTES are the key's bytes, which identify a joined table's entries."""
        meta = self.meta
        self.rows.append((
            *key, *(self.left_nulls if left is None else left), *(self.right_nulls if right is None else right),
            time, meta[ROWPARTITION][trigger], meta[ROWOFFSET][trigger], None, None, meta[ORIGIN][trigger],
            tombstone, time, partition, key_bytes(key),
        ))

    def columns(self) -> list[list[Any]]:
        if not self.rows:
            return [[] for _ in range(self.width)]
        return [list(column) for column in zip(*self.rows, strict=True)]
