"""The format registry: binds a format name to columns, checking first that the format can carry them."""

from __future__ import annotations

from collections.abc import Sequence

from ksqlpy.errors import StatementError
from ksqlpy.schema import Column
from ksqlpy.serialization.base import FormatOptions, RecordSerde
from ksqlpy.serialization.delimited import DelimitedSerde
from ksqlpy.serialization.json_format import JsonSerde
from ksqlpy.serialization.kafka_format import KAFKA_TYPES, KafkaSerde
from ksqlpy.serialization.none_format import VoidSerde
from ksqlpy.types import STRING, ArrayType, DecimalType, MapType, PrimitiveType, SqlType, StructType

__all__ = ["serde_for", "supported_formats"]

_SERDES: dict[str, type[RecordSerde]] = {
    "JSON": JsonSerde,
    "DELIMITED": DelimitedSerde,
    "KAFKA": KafkaSerde,
    "NONE": VoidSerde,
}
# Formats ksqlDB knows that need a schema registry, which ksqlpy does not provide.
_REGISTRY_FORMATS = ("AVRO", "JSON_SR", "PROTOBUF", "PROTOBUF_NOSR")


def supported_formats() -> list[str]:
    return list(_SERDES)


def base_type_name(sql_type: SqlType) -> str:
    """ksqlDB's SqlBaseType name: INTEGER, DECIMAL, ARRAY, MAP, STRUCT..."""
    if isinstance(sql_type, PrimitiveType):
        return sql_type.name
    if isinstance(sql_type, DecimalType):
        return "DECIMAL"
    if isinstance(sql_type, ArrayType):
        return "ARRAY"
    if isinstance(sql_type, MapType):
        return "MAP"
    return "STRUCT"


def _nested_types(sql_type: SqlType) -> list[SqlType]:
    """The type and every type inside it."""
    if isinstance(sql_type, ArrayType):
        inner = [sql_type.element]
    elif isinstance(sql_type, MapType):
        inner = [sql_type.key, sql_type.value]
    elif isinstance(sql_type, StructType):
        inner = [field_type for _, field_type in sql_type.fields]
    else:
        inner = []
    return [sql_type, *(nested for child in inner for nested in _nested_types(child))]


def _column_list(columns: Sequence[Column]) -> str:
    return "[" + ", ".join(str(column) for column in columns) + "]"


def _unsupported_schema(name: str, columns: Sequence[Column], options: FormatOptions, reason: str) -> StatementError:
    part = "Key" if options.is_key else "Value"
    return StatementError(
        f"{part} format does not support schema.\nformat: {name}\n"
        f"schema: Persistence{{columns={_column_list(columns)}, features=[]}}\nreason: {reason}"
    )


def _check_key_columns(columns: Sequence[Column]) -> None:
    for column in columns:
        if any(isinstance(nested, MapType) for nested in _nested_types(column.type)):
            raise StatementError(
                "Map keys, including types that contain maps, are not supported as they may lead to "
                "unexpected behavior due to inconsistent serialization. "
                f"Key column name: `{column.name}`. Column type: {column.type}. "
                "See https://github.com/confluentinc/ksql/issues/6621 for more."
            )


def _check_kafka(columns: Sequence[Column], options: FormatOptions) -> None:
    if len(columns) > 1:
        reason = f"The 'KAFKA' format only supports a single field. Got: {_column_list(columns)}"
        raise _unsupported_schema("KAFKA", columns, options, reason)
    for column in columns:
        if column.type not in KAFKA_TYPES:
            reason = f"The 'KAFKA' format does not support type '{base_type_name(column.type)}'"
            raise _unsupported_schema("KAFKA", columns, options, reason)


def _check_delimited(columns: Sequence[Column], options: FormatOptions) -> None:
    for column in columns:
        if isinstance(column.type, (ArrayType, MapType, StructType)):
            reason = (f"The 'DELIMITED' format does not support type '{base_type_name(column.type)}', "
                      f"column: `{column.name}`")
            raise _unsupported_schema("DELIMITED", columns, options, reason)


def _check_json(columns: Sequence[Column]) -> None:
    for column in columns:
        for nested in _nested_types(column.type):
            if isinstance(nested, MapType) and nested.key != STRING:
                raise StatementError("JSON only supports MAP types with STRING keys")


def serde_for(format_name: str, columns: Sequence[Column], options: FormatOptions) -> RecordSerde:
    """The serde of `format_name` bound to `columns` (a record's key or value columns, in order).

    Raises StatementError, worded as ksqlDB words it, for an unknown format or columns the format
    cannot carry; call it when a statement is validated so these surface as statement errors.
    """
    name = format_name.upper()
    if name not in _SERDES:
        if name in _REGISTRY_FORMATS:
            raise StatementError(f"Format '{name}' is not supported: ksqlpy has no schema registry")
        raise StatementError(f"Unknown format: {name}")
    if options.is_key:
        _check_key_columns(columns)
    if name == "NONE" and columns:
        raise StatementError(
            f"The 'NONE' format can only be used when no columns are defined. Got: {_column_list(columns)}"
        )
    if name == "KAFKA":
        _check_kafka(columns, options)
    elif name == "DELIMITED":
        _check_delimited(columns, options)
    elif name == "JSON":
        _check_json(columns)
    # A key without columns (and any non-JSON value without columns) has nothing to read or write.
    if not columns and (options.is_key or name != "JSON"):
        return VoidSerde(columns, options)
    return _SERDES[name](columns, options)
