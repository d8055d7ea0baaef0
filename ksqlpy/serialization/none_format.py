"""The NONE format, and any format bound to no columns: the payload is ignored and nothing is written."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ksqlpy.serialization.base import DecodedColumns, RecordSerde

__all__ = ["VoidSerde"]


class VoidSerde(RecordSerde):
    """Carries no columns: any payload reads as an empty row, and rows serialize to no payload."""

    format_name = "NONE"

    def deserialize(self, payload: bytes | None) -> list[Any] | None:
        return None if payload is None else []

    def deserialize_columns(self, payloads: Sequence[bytes | None]) -> DecodedColumns:
        return DecodedColumns([], [p is not None for p in payloads], {})

    def serialize(self, values: Sequence[Any] | None) -> bytes | None:
        return None

    def from_logical(self, logical: Any) -> bytes | None:
        # Whatever a producer sent is ignored on read; keep text so the record still has its key bytes.
        return None if logical is None else str(logical).encode("utf-8")

    def to_logical(self, payload: bytes | None) -> Any:
        return None
