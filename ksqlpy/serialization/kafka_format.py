"""The KAFKA format: one column in Kafka's own primitive encodings (big-endian ints, IEEE doubles, UTF-8)."""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ksqlpy.errors import SerdeError
from ksqlpy.schema import Column
from ksqlpy.serialization.base import FormatOptions, RecordSerde
from ksqlpy.types import BIGINT, BYTES, DOUBLE, INTEGER, STRING, SqlType

__all__ = ["KAFKA_TYPES", "KafkaSerde"]


@dataclass(frozen=True)
class _Codec:
    decode: Callable[[bytes], Any]
    encode: Callable[[Any], bytes]
    # Test files write KAFKA records as plain scalars; BYTES as base64 text.
    from_scalar: Callable[[Any], Any]
    to_scalar: Callable[[Any], Any]


def _fixed_width(layout: str, java_type: str, from_scalar: Callable[[Any], Any]) -> _Codec:
    packer = struct.Struct(layout)

    def decode(payload: bytes) -> Any:
        if len(payload) != packer.size:
            # The wording of Kafka's own deserializers.
            raise SerdeError(f"Size of data received by {java_type}Deserializer is not {packer.size}")
        return packer.unpack(payload)[0]

    def encode(value: Any) -> bytes:
        try:
            return packer.pack(value)
        except struct.error as error:
            raise SerdeError(f"Cannot serialize {value!r} as a KAFKA {java_type}: {error}") from None

    return _Codec(decode, encode, from_scalar, lambda value: value)


def _scalar_text(scalar: Any) -> str:
    return scalar if isinstance(scalar, str) else str(scalar)


def _identity(value: Any) -> Any:
    return value


_CODECS: dict[SqlType, _Codec] = {
    INTEGER: _fixed_width(">i", "Integer", int),
    BIGINT: _fixed_width(">q", "Long", int),
    DOUBLE: _fixed_width(">d", "Double", float),
    STRING: _Codec(
        decode=lambda payload: payload.decode("utf-8", errors="replace"),
        encode=lambda value: value.encode("utf-8"),
        from_scalar=_scalar_text,
        to_scalar=_identity,
    ),
    BYTES: _Codec(
        decode=bytes,
        encode=bytes,
        from_scalar=lambda scalar: base64.b64decode(scalar),
        to_scalar=lambda value: base64.b64encode(value).decode("ascii"),
    ),
}

KAFKA_TYPES: tuple[SqlType, ...] = tuple(_CODECS)


class KafkaSerde(RecordSerde):
    """A single column of type INTEGER, BIGINT, DOUBLE, STRING or BYTES; a NULL value is a null payload."""

    format_name = "KAFKA"

    def __init__(self, columns: Sequence[Column], options: FormatOptions) -> None:
        super().__init__(columns, options)
        (column,) = self.columns
        self._codec = _CODECS[column.type]

    def deserialize(self, payload: bytes | None) -> list[Any] | None:
        if payload is None:
            return None
        return [self._codec.decode(payload)]

    def serialize(self, values: Sequence[Any] | None) -> bytes | None:
        if values is None or values[0] is None:
            return None
        return self._codec.encode(values[0])

    def from_logical(self, logical: Any) -> bytes | None:
        if logical is None:
            return None
        return self._codec.encode(self._codec.from_scalar(logical))

    def to_logical(self, payload: bytes | None) -> Any:
        if payload is None:
            return None
        return self._codec.to_scalar(self._codec.decode(payload))
