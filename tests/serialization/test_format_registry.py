"""Format lookup and the checks that a format can carry a schema, with ksqlDB's error wording."""

from __future__ import annotations

import pytest

from ksqlpy.errors import StatementError
from ksqlpy.schema import Column, Namespace
from ksqlpy.serialization.base import FormatOptions
from ksqlpy.serialization.delimited import DelimitedSerde
from ksqlpy.serialization.formats import serde_for, supported_formats
from ksqlpy.serialization.json_format import JsonSerde
from ksqlpy.serialization.kafka_format import KafkaSerde
from ksqlpy.types import (
    BOOLEAN,
    BYTES,
    DOUBLE,
    INTEGER,
    STRING,
    TIMESTAMP,
    ArrayType,
    DecimalType,
    MapType,
    SqlType,
    StructType,
)

VALUE = FormatOptions()
KEY = FormatOptions(is_key=True)


def value_columns(*types: SqlType) -> list[Column]:
    return [Column(f"V{i}", sql_type) for i, sql_type in enumerate(types)]


def error_of(name: str, columns: list[Column], options: FormatOptions = VALUE) -> str:
    with pytest.raises(StatementError) as caught:
        serde_for(name, columns, options)
    return str(caught.value)


def test_supported_formats() -> None:
    assert supported_formats() == ["JSON", "DELIMITED", "KAFKA", "NONE"]


def test_names_are_case_insensitive() -> None:
    assert isinstance(serde_for("json", value_columns(INTEGER), VALUE), JsonSerde)
    assert isinstance(serde_for("Delimited", value_columns(INTEGER), VALUE), DelimitedSerde)
    assert isinstance(serde_for("KafkA", value_columns(INTEGER), VALUE), KafkaSerde)


def test_unknown_format() -> None:
    assert error_of("FOO", []) == "Unknown format: FOO"
    assert "schema registry" in error_of("AVRO", value_columns(INTEGER))


def test_kafka_takes_one_column() -> None:
    message = error_of("KAFKA", value_columns(INTEGER, STRING))
    assert "The 'KAFKA' format only supports a single field. Got: [`V0` INTEGER, `V1` STRING]" in message
    key_columns = [Column("K1", INTEGER, Namespace.KEY), Column("K2", INTEGER, Namespace.KEY)]
    assert error_of("KAFKA", key_columns, KEY) == (
        "Key format does not support schema.\nformat: KAFKA\n"
        "schema: Persistence{columns=[`K1` INTEGER KEY, `K2` INTEGER KEY], features=[]}\n"
        "reason: The 'KAFKA' format only supports a single field. Got: [`K1` INTEGER KEY, `K2` INTEGER KEY]"
    )


@pytest.mark.parametrize(
    ("sql_type", "base_name"),
    [(BOOLEAN, "BOOLEAN"), (DecimalType(2, 1), "DECIMAL"), (TIMESTAMP, "TIMESTAMP"),
     (ArrayType(INTEGER), "ARRAY"), (MapType(STRING, INTEGER), "MAP"), (StructType((("F", DOUBLE),)), "STRUCT")],
)
def test_kafka_type_support(sql_type: SqlType, base_name: str) -> None:
    assert f"The 'KAFKA' format does not support type '{base_name}'" in error_of("KAFKA", value_columns(sql_type))


def test_kafka_key_message_names_the_schema() -> None:
    columns = [Column("ID", ArrayType(INTEGER), Namespace.KEY)]
    assert error_of("KAFKA", columns, KEY) == (
        "Key format does not support schema.\nformat: KAFKA\n"
        "schema: Persistence{columns=[`ID` ARRAY<INTEGER> KEY], features=[]}\n"
        "reason: The 'KAFKA' format does not support type 'ARRAY'"
    )


@pytest.mark.parametrize("sql_type", [INTEGER, BYTES, DOUBLE, STRING])
def test_kafka_accepts_its_types(sql_type: SqlType) -> None:
    assert isinstance(serde_for("KAFKA", value_columns(sql_type), VALUE), KafkaSerde)


def test_delimited_rejects_nested_types() -> None:
    columns = [Column("K", StructType((("F", DOUBLE),)), Namespace.KEY)]
    assert error_of("DELIMITED", columns, KEY) == (
        "Key format does not support schema.\nformat: DELIMITED\n"
        "schema: Persistence{columns=[`K` STRUCT<`F` DOUBLE> KEY], features=[]}\n"
        "reason: The 'DELIMITED' format does not support type 'STRUCT', column: `K`"
    )
    assert "The 'DELIMITED' format does not support type 'ARRAY'" in error_of("DELIMITED", value_columns(ArrayType(INTEGER)))
    assert "format does not support type 'MAP'" in error_of("DELIMITED", value_columns(MapType(STRING, INTEGER)))


def test_json_maps_need_string_keys() -> None:
    nested = ArrayType(StructType((("M", MapType(INTEGER, DOUBLE)),)))
    assert error_of("JSON", value_columns(nested)) == "JSON only supports MAP types with STRING keys"
    assert isinstance(serde_for("JSON", value_columns(MapType(STRING, DOUBLE)), VALUE), JsonSerde)


@pytest.mark.parametrize("format_name", ["JSON", "DELIMITED", "KAFKA"])
def test_keys_cannot_contain_maps(format_name: str) -> None:
    columns = [Column("K", ArrayType(MapType(INTEGER, DOUBLE)), Namespace.KEY)]
    assert error_of(format_name, columns, KEY) == (
        "Map keys, including types that contain maps, are not supported as they may lead to unexpected "
        "behavior due to inconsistent serialization. Key column name: `K`. Column type: "
        "ARRAY<MAP<INTEGER, DOUBLE>>. See https://github.com/confluentinc/ksql/issues/6621 for more."
    )


def test_none_format_takes_no_columns() -> None:
    assert error_of("NONE", [Column("K", STRING, Namespace.KEY)], KEY) == (
        "The 'NONE' format can only be used when no columns are defined. Got: [`K` STRING KEY]"
    )
    assert error_of("NONE", [Column("FOO", INTEGER)]) == (
        "The 'NONE' format can only be used when no columns are defined. Got: [`FOO` INTEGER]"
    )
