"""The KAFKA format (Kafka's primitive serializers) and the NONE format."""

from __future__ import annotations

import struct
from decimal import Decimal
from typing import Any

import pytest

from ksqlpy.errors import SerdeError
from ksqlpy.schema import Column, Namespace
from ksqlpy.serialization.base import FormatOptions
from ksqlpy.serialization.formats import serde_for
from ksqlpy.serialization.kafka_format import KafkaSerde
from ksqlpy.serialization.none_format import VoidSerde
from ksqlpy.types import BIGINT, BYTES, DOUBLE, INTEGER, STRING, SqlType


def kafka(sql_type: SqlType) -> KafkaSerde:
    serde = serde_for("KAFKA", [Column("V", sql_type)], FormatOptions())
    assert isinstance(serde, KafkaSerde)
    return serde


@pytest.mark.parametrize(
    ("sql_type", "value", "payload"),
    [
        (INTEGER, 10, b"\x00\x00\x00\x0a"),
        (INTEGER, -1, b"\xff\xff\xff\xff"),
        (BIGINT, 10000000000, struct.pack(">q", 10000000000)),
        (DOUBLE, 1.1, struct.pack(">d", 1.1)),
        (STRING, "h\u00e9", "h\u00e9".encode()),
        (BYTES, b"\x00\x01", b"\x00\x01"),
    ],
)
def test_binary_encodings(sql_type: SqlType, value: Any, payload: bytes) -> None:
    serde = kafka(sql_type)
    assert serde.serialize([value]) == payload
    assert serde.deserialize(payload) == [value]


@pytest.mark.parametrize(
    ("sql_type", "payload", "message"),
    [
        (INTEGER, b"\x00\x00\x00", "Size of data received by IntegerDeserializer is not 4"),
        (BIGINT, b"\x00" * 4, "Size of data received by LongDeserializer is not 8"),
        (DOUBLE, b"", "Size of data received by DoubleDeserializer is not 8"),
    ],
)
def test_wrong_widths_are_errors(sql_type: SqlType, payload: bytes, message: str) -> None:
    with pytest.raises(SerdeError, match=message):
        kafka(sql_type).deserialize(payload)


def test_out_of_range_integer_cannot_be_written() -> None:
    with pytest.raises(SerdeError, match="KAFKA Integer"):
        kafka(INTEGER).serialize([2**31])


def test_nulls() -> None:
    serde = kafka(INTEGER)
    assert serde.deserialize(None) is None
    assert serde.serialize(None) is None
    assert serde.serialize([None]) is None


@pytest.mark.parametrize(
    ("sql_type", "logical", "value", "read_back"),
    [
        (INTEGER, 2, 2, 2),
        (BIGINT, 10000000000, 10000000000, 10000000000),
        (DOUBLE, Decimal("2.2"), 2.2, 2.2),
        (STRING, "bar", "bar", "bar"),
        (STRING, 1, "1", "1"),
        (BYTES, "dmFyaWF0aW9ucw==", b"variations", "dmFyaWF0aW9ucw=="),
    ],
)
def test_logical_form_is_the_plain_scalar(sql_type: SqlType, logical: Any, value: Any, read_back: Any) -> None:
    serde = kafka(sql_type)
    payload = serde.from_logical(logical)
    assert serde.deserialize(payload) == [value]
    assert serde.to_logical(payload) == read_back
    assert serde.from_logical(None) is None and serde.to_logical(None) is None


def test_none_format_ignores_payloads() -> None:
    serde = serde_for("NONE", [], FormatOptions(is_key=True))
    assert isinstance(serde, VoidSerde)
    assert serde.deserialize(b"data that should be ignored") == []
    assert serde.deserialize(None) is None
    assert serde.serialize([]) is None
    assert serde.to_logical(b"x") is None


def test_keyless_sources_use_a_void_key_serde_whatever_the_format() -> None:
    for name in ("KAFKA", "JSON", "DELIMITED"):
        serde = serde_for(name, [], FormatOptions(is_key=True))
        assert isinstance(serde, VoidSerde)
        assert serde.deserialize(b"should be ignored") == []


def test_single_key_column() -> None:
    serde = serde_for("KAFKA", [Column("K", STRING, Namespace.KEY)], FormatOptions(is_key=True))
    assert serde.deserialize(b"") == [""]
