"""The JSON format: lenient reading with ksqlDB's coercions and errors, Java-style writing."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson
import pytest

from ksqlpy.errors import SerdeError
from ksqlpy.schema import Column, Namespace
from ksqlpy.serialization.base import FormatOptions
from ksqlpy.serialization.formats import serde_for
from ksqlpy.serialization.json_format import JsonSerde
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

VALUE = FormatOptions()
UNWRAPPED = FormatOptions(wrap_single_value=False)
KEY = FormatOptions(is_key=True)


def value_serde(*columns: tuple[str, SqlType], options: FormatOptions = VALUE) -> JsonSerde:
    serde = serde_for("JSON", [Column(name, sql_type) for name, sql_type in columns], options)
    assert isinstance(serde, JsonSerde)
    return serde


def read_one(sql_type: SqlType, json_text: str) -> Any:
    """The value a single wrapped column V gets from {"V": <json_text>}."""
    row = value_serde(("V", sql_type)).deserialize(('{"V":' + json_text + "}").encode())
    assert row is not None
    return row[0]


def read_error(sql_type: SqlType, json_text: str) -> str:
    with pytest.raises(SerdeError) as caught:
        read_one(sql_type, json_text)
    return str(caught.value)


class TestFieldMatching:
    def test_fields_match_column_names_case_insensitively_and_missing_fields_are_null(self) -> None:
        serde = value_serde(("ID", BIGINT), ("NAME", STRING), ("AGE", INTEGER))
        assert serde.deserialize(b'{"id": 1, "Name": "x", "extra": true}') == [1, "x", None]

    def test_exact_name_wins_over_upper_cased_match(self) -> None:
        serde = value_serde(("A", INTEGER), ("a", INTEGER))
        assert serde.deserialize(b'{"a": 1, "A": 2}') == [2, 1]
        assert serde.deserialize(b'{"a": 1}') == [1, 1]

    def test_quoted_lower_case_column_needs_exact_key(self) -> None:
        serde = value_serde(("@timestamp", BIGINT))
        assert serde.deserialize(b'{"@TIMESTAMP": 4}') == [None]
        assert serde.deserialize(b'{"@timestamp": 4}') == [4]

    def test_documents_with_different_key_layouts_share_a_serde(self) -> None:
        serde = value_serde(("A", INTEGER), ("B", STRING))
        payloads = [b'{"a": 1, "b": "x"}', b'{"B": "y"}', b'{"b": "z", "A": 3}', b'{}']
        assert [serde.deserialize(p) for p in payloads] == [[1, "x"], [None, "y"], [3, "z"], [None, None]]

    def test_explicit_null_and_null_payloads(self) -> None:
        serde = value_serde(("A", INTEGER))
        assert serde.deserialize(b'{"A": null}') == [None]
        assert serde.deserialize(None) is None
        assert serde.deserialize(b"null") is None

    def test_non_object_for_wrapped_value_is_an_error(self) -> None:
        with pytest.raises(SerdeError, match=r"sourceType: ArrayNode, requiredType: STRUCT<`A` INTEGER>, path: \$$"):
            value_serde(("A", INTEGER)).deserialize(b"[1]")

    def test_invalid_json_is_an_error(self) -> None:
        with pytest.raises(SerdeError, match="Invalid JSON"):
            value_serde(("A", INTEGER)).deserialize(b'{"A": ')
        with pytest.raises(SerdeError, match="Invalid JSON"):
            value_serde(("A", DOUBLE)).deserialize(b'{"A": NaN}')


class TestWrapping:
    def test_unwrapped_single_value_reads_and_writes_the_bare_value(self) -> None:
        serde = value_serde(("V", ArrayType(DOUBLE)), options=UNWRAPPED)
        assert serde.deserialize(b"[10.10]") == [[10.1]]
        assert serde.serialize([[99.99]]) == b"[99.99]"

    def test_unwrapped_struct_is_the_object_itself(self) -> None:
        serde = value_serde(("FOO", StructType((("F1", STRING),))), options=UNWRAPPED)
        assert serde.deserialize(b'{"F1": "bar"}') == [{"F1": "bar"}]
        assert serde.serialize([{"F1": "bar"}]) == b'{"F1":"bar"}'

    def test_unwrapped_null_is_no_payload(self) -> None:
        assert value_serde(("V", BOOLEAN), options=UNWRAPPED).serialize([None]) is None

    def test_single_key_column_is_never_wrapped(self) -> None:
        serde = serde_for("JSON", [Column("K", STRING, Namespace.KEY)], KEY)
        assert serde.deserialize(b'"Hey"') == ["Hey"]
        assert serde.serialize(["Hey"]) == b'"Hey"'

    def test_multi_column_key_is_an_object(self) -> None:
        columns = [Column("K", INTEGER, Namespace.KEY), Column("K2", INTEGER, Namespace.KEY)]
        serde = serde_for("JSON", columns, KEY)
        assert serde.deserialize(b'{"K": null, "K2": 2}') == [None, 2]
        assert serde.serialize([1, 2]) == b'{"K":1,"K2":2}'

    def test_wrap_single_value_false_is_ignored_for_several_columns(self) -> None:
        serde = value_serde(("A", INTEGER), ("B", INTEGER), options=UNWRAPPED)
        assert serde.serialize([1, 2]) == b'{"A":1,"B":2}'


class TestCoercion:
    @pytest.mark.parametrize(
        ("sql_type", "json_text", "expected"),
        [
            (INTEGER, "1", 1),
            (INTEGER, '"123"', 123),
            (INTEGER, '"-2147483648"', -(2**31)),
            (INTEGER, "1.9", 1),  # Java intValue() truncates
            (INTEGER, "-1.9", -1),
            (BIGINT, "998877665544332211", 998877665544332211),
            (BIGINT, '"10000000000"', 10000000000),
            (DOUBLE, "1", 1.0),
            (DOUBLE, "1.5", 1.5),
            (DOUBLE, '"1234.589"', 1234.589),
            (DOUBLE, '" 2.5 "', 2.5),  # Double.parseDouble trims
            (DOUBLE, '"NaN"', "nan"),
            (STRING, '"x"', "x"),
            (STRING, "1", "1"),
            (STRING, "12.50", "12.50"),  # the number's own text, scale kept
            (STRING, "1e5", "1E+5"),  # BigDecimal.toString
            (STRING, "true", "true"),
            (STRING, '{"a": 1.50, "b": [null]}', '{"a":1.50,"b":[null]}'),
            (STRING, '[1, "a", null, [2, 3]]', "[1, a, null, [2, 3]]"),
            (BOOLEAN, "true", True),
            (BOOLEAN, "false", False),
            (DecimalType(6, 4), "10", Decimal("10.0000")),
            (DecimalType(6, 4), "0.01", Decimal("0.0100")),
            (DecimalType(4, 2), '"10.10"', Decimal("10.10")),
            (DecimalType(21, 19), "10.1234512345123451234", Decimal("10.1234512345123451234")),
            (DecimalType(38, 0), "12345678901234567890123456789012345678",
             Decimal("12345678901234567890123456789012345678")),
            (BYTES, '"ew=="', b"{"),
            (TIMESTAMP, "1577836800000", 1577836800000),
            (TIMESTAMP, '"10"', 10),
            (DATE, "-10", -10),
            (TIME, "65000", 65000),
        ],
    )
    def test_value_coercion(self, sql_type: SqlType, json_text: str, expected: Any) -> None:
        value = read_one(sql_type, json_text)
        if expected == "nan":
            assert value != value
        else:
            assert value == expected
            assert type(value) is type(expected)
        if isinstance(expected, Decimal):
            assert value.as_tuple().exponent == expected.as_tuple().exponent

    @pytest.mark.parametrize(
        ("sql_type", "json_text", "message"),
        [
            (INTEGER, '"abc"', "Can't coerce string to type. targetType: INTEGER, path: $.V"),
            (INTEGER, '" 1"', "Can't coerce string to type. targetType: INTEGER"),
            (INTEGER, "true", "Can't convert type. sourceType: BooleanNode, requiredType: INTEGER"),
            (INTEGER, "2147483648", "out of range for type INTEGER"),
            (BIGINT, "9223372036854775808", "out of range for type BIGINT"),
            (BIGINT, "123456789012345678901234567890", "out of range for type BIGINT"),
            (DOUBLE, '"1.5x"', "Can't coerce string to type. targetType: DOUBLE"),
            (DOUBLE, '"inf"', "Can't coerce string to type. targetType: DOUBLE"),
            (BOOLEAN, '"true"', "Can't convert type. sourceType: TextNode, requiredType: BOOLEAN"),
            (BOOLEAN, "1", "sourceType: IntNode, requiredType: BOOLEAN"),
            (DecimalType(4, 2), "123.4", "Numeric field overflow: A field with precision 4 and scale 2 must "
                                         "round to an absolute value less than 10^2. Got 123.4"),
            (DecimalType(4, 2), "1.234", "Cannot fit decimal '1.234' into DECIMAL(4, 2) without rounding."),
            (DecimalType(4, 2), '"x"', "Can't coerce string to type. targetType: DECIMAL(4, 2)"),
            (BYTES, '"not base64!"', "Value is not a valid Base64 encoded string: not base64!"),
            (BYTES, "1", "sourceType: IntNode, requiredType: BYTES"),
            (ArrayType(INTEGER), "{}", "sourceType: ObjectNode, requiredType: ARRAY<INTEGER>"),
            (ArrayType(INTEGER), '[1, "x"]', "targetType: INTEGER, path: $.V[1]"),
            (MapType(STRING, INTEGER), '{"k": "x"}', "path: $.V.k.value"),
            (StructType((("A", INTEGER),)), '{"a": [1]}', "sourceType: ArrayNode, requiredType: INTEGER, path: $.V.A"),
            (StructType((("A", INTEGER),)), "1", "requiredType: STRUCT<`A` INTEGER>, path: $.V"),
        ],
    )
    def test_values_that_do_not_fit_are_errors(self, sql_type: SqlType, json_text: str, message: str) -> None:
        error = read_error(sql_type, json_text)
        assert error.startswith("Failed to deserialize value. ")
        assert message in error

    def test_nested_values_coerce_recursively(self) -> None:
        row_type = StructType((("A", ArrayType(MapType(STRING, DOUBLE))), ("b", DecimalType(3, 1))))
        value = read_one(ArrayType(row_type), '[{"a": [{"x": 1, "y": null}], "b": "1.5"}, null, {}]')
        assert value == [{"A": [{"x": 1.0, "y": None}], "b": Decimal("1.5")}, None, {"A": None, "b": None}]
        assert list(value[0]) == ["A", "b"]  # declared field order

    def test_key_errors_name_the_key(self) -> None:
        serde = serde_for("JSON", [Column("K", INTEGER, Namespace.KEY)], KEY)
        with pytest.raises(SerdeError, match=r"^Failed to deserialize key\. .*path: \$$"):
            serde.deserialize(b'"x"')


class TestWriting:
    def test_compact_text_with_java_numbers_and_declared_order(self) -> None:
        serde = value_serde(
            ("I", INTEGER), ("D", DOUBLE), ("BIG", DOUBLE), ("DEC", DecimalType(6, 4)), ("S", STRING),
            ("B", BOOLEAN), ("BY", BYTES), ("N", BIGINT),
            ("ST", StructType((("Z", INTEGER), ("a", DOUBLE)))), ("M", MapType(STRING, DOUBLE)),
        )
        row = [1, 2.0, 1e7, Decimal("1.5000"), 'q"\n\u00e9', True, b"{", None, {"a": 0.5, "Z": None}, {"k": 3.0}]
        assert serde.serialize(row) == (
            '{"I":1,"D":2.0,"BIG":1.0E7,"DEC":1.5000,"S":"q\\"\\n\u00e9","B":true,"BY":"ew==","N":null,'
            '"ST":{"Z":null,"a":0.5},"M":{"k":3.0}}'
        ).encode()

    def test_non_finite_doubles_are_written_as_strings(self) -> None:
        serde = value_serde(("D", ArrayType(DOUBLE)))
        assert serde.serialize([[float("nan"), float("-inf")]]) == b'{"D":["NaN","-Infinity"]}'

    def test_a_double_column_with_non_finite_values_keeps_finite_ones_as_numbers(self) -> None:
        serde = value_serde(("D", DOUBLE), ("S", STRING))
        doubles = [float("nan"), -1.5, float("inf"), None, 1e-5, float("-inf"), 2.0]
        written = serde.serialize_columns([doubles, ["x"] * len(doubles)], len(doubles))
        assert [json.loads(payload)["D"] for payload in written] == [
            "NaN", -1.5, "Infinity", None, 1e-5, "-Infinity", 2.0
        ]
        assert written[1] == b'{"D":-1.5,"S":"x"}'
        assert written == [serde.serialize([d, "x"]) for d in doubles]

    def test_round_trip(self) -> None:
        serde = value_serde(
            ("A", ArrayType(StructType((("X", DecimalType(5, 2)), ("Y", TIMESTAMP))))),
            ("M", MapType(STRING, ArrayType(BYTES))),
            ("D", DOUBLE),
        )
        row = [[{"X": Decimal("-1.50"), "Y": 5}], {"k": [b"\x00\xff", None]}, -4.9e-324]
        assert serde.deserialize(serde.serialize(row)) == row

    def test_null_row_is_a_tombstone(self) -> None:
        assert value_serde(("A", INTEGER)).serialize(None) is None


class TestLogicalForm:
    def test_from_logical_keeps_decimal_text(self) -> None:
        serde = value_serde(("DEC", DecimalType(6, 4)))
        logical = json.loads('{"DEC": 10.0000, "x": [1, "a", null, true]}', parse_float=Decimal)
        assert serde.from_logical(logical) == b'{"DEC":10.0000,"x":[1,"a",null,true]}'
        assert serde.from_logical(None) is None

    def test_to_logical_parses_non_integers_as_decimals(self) -> None:
        serde = value_serde(("D", DOUBLE))
        logical = serde.to_logical(serde.serialize([2.0]))
        assert logical == {"D": Decimal("2.0")}
        assert str(logical["D"]) == "2.0"
        assert serde.to_logical(None) is None

    def test_from_logical_then_deserialize(self) -> None:
        serde = value_serde(("V", DecimalType(4, 2)), options=UNWRAPPED)
        assert serde.deserialize(serde.from_logical(Decimal("10.10"))) == [Decimal("10.10")]


class TestBatch:
    def test_batch_keeps_order_and_puts_errors_in_place(self) -> None:
        serde = value_serde(("A", INTEGER), ("S", STRING))
        payloads = [b'{"A": 1, "S": 2.50}', None, b'{"A": "x"}', b"oops", b'{"a": 2, "s": "y"}', b"[]",
                    b'{"A": 123456789012345678901234567890}']
        results = serde.deserialize_batch(payloads)
        assert results[0] == [1, "2.50"]
        assert results[1] is None
        assert isinstance(results[2], SerdeError) and "path: $.A" in str(results[2])
        assert isinstance(results[3], SerdeError)
        assert results[4] == [2, "y"]
        assert isinstance(results[5], SerdeError)
        assert isinstance(results[6], SerdeError) and "out of range" in str(results[6])

    def test_batch_agrees_with_single_deserialize(self) -> None:
        serde = value_serde(("A", INTEGER), ("B", DOUBLE), ("C", BOOLEAN), ("D", ArrayType(STRING)))
        payloads = [orjson.dumps({"a": i, "B": i / 3, "c": i % 2 == 0, "d": [i, str(i)]}) for i in range(50)]
        assert serde.deserialize_batch(payloads) == [serde.deserialize(p) for p in payloads]


def test_a_null_map_key_is_written_as_null_text() -> None:
    serde = value_serde(("M", MapType(STRING, INTEGER)))
    assert serde.serialize([{"foo": 10, None: 10}]) == b'{"M":{"foo":10,"null":10}}'


class TestColumns:
    """The column-at-a-time paths give exactly what the row-at-a-time ones give."""

    COLUMNS = (("I", INTEGER), ("D", DOUBLE), ("S", STRING), ("B", BOOLEAN), ("N", BIGINT),
               ("M", MapType(STRING, DOUBLE)))

    def test_columns_read_agree_with_rows_when_layouts_and_fields_vary(self) -> None:
        serde = value_serde(*self.COLUMNS)
        payloads = [orjson.dumps({"I": i, "D": i / 7, "S": f"s,{i}", "B": i % 2 == 0, "N": i * 10**12,
                                  "M": {"k": i}}) for i in range(20)]
        payloads += [b'{"i": 5, "d": 2, "s": "lower-case keys", "b": false, "n": 1, "m": null}',
                     b'{"I": "7", "D": "2.5"}', b'{"I": 1.5}', b"not json", None, b"[1]", b'{"N": 1e30}']
        decoded = serde.deserialize_columns(payloads)
        for index, payload in enumerate(payloads):
            try:
                expected = serde.deserialize(payload)
            except SerdeError as error:
                assert str(decoded.errors[index]) == str(error)
                continue
            assert index not in decoded.errors
            assert [column[index] for column in decoded.columns] == (expected or [None] * len(self.COLUMNS))
        assert decoded.present == [payload is not None for payload in payloads]

    @pytest.mark.parametrize("payloads", [[None, None], [b"[1]", b"x", None], [], [b'{"I": 1}']])
    def test_batches_without_a_usable_object_still_give_every_column(self, payloads: list[bytes | None]) -> None:
        serde = value_serde(*self.COLUMNS)
        decoded = serde.deserialize_columns(payloads)
        assert len(decoded.columns) == len(self.COLUMNS)
        assert all(len(column) == len(payloads) for column in decoded.columns)
        assert sorted(decoded.errors) == [i for i, p in enumerate(payloads) if p is not None and not p.startswith(b"{")]

    def test_columns_written_agree_with_rows(self) -> None:
        serde = value_serde(*self.COLUMNS)
        rows = [
            [1, 1.2e-4, 'comma, "quote" and\nnewline', True, 2**62, {"a": 1e-7}],
            [None, None, None, None, None, None],
            [-3, float("nan"), "\u00e9\u4e2d", False, -(2**63), {}],
            [7, 3.0e-5, "", True, 0, {"b": None}],
            [8, float("-inf"), ",", False, 1, None],
            [9, 12345678.9, "plain", True, 2, {"c": 0.5}],
        ]
        columns = [list(column) for column in zip(*rows, strict=True)]
        assert serde.serialize_columns(columns, len(rows)) == [serde.serialize(row) for row in rows]

    def test_rows_without_commas_in_strings_take_the_one_call_path_and_agree(self) -> None:
        serde = value_serde(("S", STRING), ("D", DOUBLE))
        rows = [[f"car-{i}", i * 1e-5] for i in range(100)]
        columns = [list(column) for column in zip(*rows, strict=True)]
        assert serde.serialize_columns(columns, len(rows)) == [serde.serialize(row) for row in rows]


NESTING_DEPTHS = [400, 1100, 100_000]


def nested(depth: int, opening: bytes = b"[", closing: bytes = b"]") -> bytes:
    return opening * depth + b"1.5" + closing * depth


class TestPoisonRecords:
    """Records no serde can read fail alone, as a SerdeError in the batch, never as another exception."""

    @pytest.mark.parametrize("depth", NESTING_DEPTHS)
    @pytest.mark.parametrize("column_type", [STRING, ArrayType(STRING), DecimalType(4, 2), DOUBLE])
    def test_deeply_nested_documents_are_record_errors(self, depth: int, column_type: SqlType) -> None:
        serde = value_serde(("A", column_type), ("B", INTEGER))
        payloads = [
            b'{"A":' + nested(depth) + b',"B":1}',
            b'{"A":' + nested(depth, b'{"x":', b"}") + b',"B":2}',
            nested(depth),
            b'{"A":null,"B":3}',
        ]
        decoded = serde.deserialize_columns(payloads)
        assert sorted(decoded.errors) == [0, 1, 2]
        assert decoded.columns[1][3] == 3
        assert all(isinstance(row, SerdeError) for row in serde.deserialize_batch(payloads[:3]))
        with pytest.raises(SerdeError, match=r"^Failed to deserialize value"):
            serde.deserialize(payloads[0])

    def test_invalid_utf8_is_a_record_error(self) -> None:
        serde = value_serde(("A", STRING), ("B", INTEGER))
        decoded = serde.deserialize_columns([b'{"A":"\xff","B":1}', b'{"A":"ok","B":2}'])
        assert list(decoded.errors) == [0]
        assert decoded.columns == [[None, "ok"], [None, 2]]
