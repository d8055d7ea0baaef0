"""The DELIMITED format: CSV parsing, Java-style values and commons-csv quoting."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from ksqlpy.errors import SerdeError
from ksqlpy.schema import Column
from ksqlpy.serialization.base import FormatOptions
from ksqlpy.serialization.delimited import DelimitedSerde, format_line
from ksqlpy.serialization.formats import serde_for
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
    DecimalType,
    SqlType,
)


def delimited(*types: SqlType, delimiter: str = ",") -> DelimitedSerde:
    columns = [Column(f"C{i}", sql_type) for i, sql_type in enumerate(types)]
    serde = serde_for("DELIMITED", columns, FormatOptions(delimiter=delimiter))
    assert isinstance(serde, DelimitedSerde)
    return serde


class TestReading:
    def test_fields_are_parsed_per_column_type(self) -> None:
        serde = delimited(BOOLEAN, INTEGER, BIGINT, DOUBLE, STRING, DecimalType(4, 2), BYTES, TIMESTAMP, DATE, TIME)
        row = serde.deserialize(b"true,10,10000000000,10.3,bob,1.5,ew==,10,-10,65000")
        assert row == [True, 10, 10000000000, 10.3, "bob", Decimal("1.50"), b"{", 10, -10, 65000]

    def test_empty_fields_are_null(self) -> None:
        assert delimited(STRING, INTEGER, STRING).deserialize(b",1,") == [None, 1, None]
        assert delimited(STRING, STRING).deserialize(b'"",x') == [None, "x"]

    def test_quoted_fields(self) -> None:
        serde = delimited(STRING, BIGINT)
        assert serde.deserialize(b'"a,b ""c""\nd","10"') == ['a,b "c"\nd', 10]

    def test_custom_delimiter(self) -> None:
        assert delimited(BIGINT, STRING, INTEGER, delimiter="|").deserialize(b"0|zero|0") == [0, "zero", 0]
        assert delimited(BIGINT, STRING, delimiter="\t").deserialize(b"1\tx y") == [1, "x y"]

    def test_boolean_is_parsed_like_java(self) -> None:
        serde = delimited(BOOLEAN)
        assert [serde.deserialize(text) for text in (b"TRUE", b"yes", b"false")] == [[True], [False], [False]]

    def test_decimal_keeps_the_column_scale(self) -> None:
        serde = delimited(DecimalType(6, 4))
        assert serde.deserialize(b'"12.0"') == [Decimal("12.0000")]
        assert str(serde.deserialize(b"10.0000")[0]) == "10.0000"  # type: ignore[index]

    def test_only_the_first_record_counts(self) -> None:
        assert delimited(STRING).deserialize(b"\n\nfirst\nsecond") == ["first"]

    @pytest.mark.parametrize(
        ("types", "payload", "message"),
        [
            ((INTEGER, INTEGER), b"1,2,3", "Column count mismatch on deserialization. expected: 2, got: 3"),
            ((INTEGER, INTEGER), b"1", "expected: 2, got: 1"),
            ((INTEGER,), b"abc", 'For input string: "abc"'),
            ((INTEGER,), b"2147483648", 'For input string: "2147483648"'),
            ((INTEGER,), b" 1", 'For input string: " 1"'),
            ((DOUBLE,), b"1.5.5", 'For input string: "1.5.5"'),
            ((DecimalType(4, 2),), b"123.45", "Numeric field overflow"),
            ((DecimalType(4, 2),), b"1.234", "without rounding"),
            ((BYTES,), b"%%%", "Value is not a valid Base64 encoded string"),
            ((STRING,), b"", "No fields in record"),
            ((STRING, INTEGER), b"caf\xe9,1", "not valid UTF-8 (invalid continuation byte at byte 3)"),
        ],
    )
    def test_bad_records(self, types: tuple[SqlType, ...], payload: bytes, message: str) -> None:
        with pytest.raises(SerdeError, match=r"^Error deserializing delimited: ") as caught:
            delimited(*types).deserialize(payload)
        assert message in str(caught.value)

    def test_java_double_spellings(self) -> None:
        serde = delimited(DOUBLE)
        assert serde.deserialize(b"1e7") == [1e7]
        assert serde.deserialize(b"2.5d") == [2.5]
        assert serde.deserialize(b"-Infinity") == [float("-inf")]

    def test_null_payload(self) -> None:
        assert delimited(STRING).deserialize(None) is None

    def test_a_record_that_is_not_utf8_fails_alone_in_its_batch(self) -> None:
        decoded = delimited(STRING, INTEGER).deserialize_columns([b"a,1", b"\xff\xfe,2", b"c,3"])
        assert decoded.columns == [["a", None, "c"], [1, None, 3]]
        assert list(decoded.errors) == [1]


class TestWriting:
    @pytest.mark.parametrize(
        ("types", "row", "line"),
        [
            ((BOOLEAN, INTEGER, BIGINT, DOUBLE, STRING), [True, 10, 101, 10.3, "bob"], "true,10,101,10.3,bob"),
            ((INTEGER, DOUBLE, DOUBLE), [0, 5e-324, 1.7976931348623157e308], "0,4.9E-324,1.7976931348623157E308"),
            ((DecimalType(6, 4),), [Decimal("10.0000")], "10.0000"),
            ((DecimalType(8, 7),), [Decimal("1E-7")], "0.0000001"),
            ((BYTES,), [b"variations"], "dmFyaWF0aW9ucw=="),
            ((TIMESTAMP, DATE, TIME), [10, 10, 10], "10,10,10"),
            ((STRING, INTEGER, STRING), [None, 456, "foo"], ",456,foo"),
            ((INTEGER, STRING), [0, None], "0,"),
            ((DATE,), [-10], '"-10"'),  # a record starting with a non-alphanumeric is quoted
            ((INTEGER, INTEGER), [101, -101], "101,-101"),  # but not later fields
            ((STRING, BYTES, STRING), ["!", b"!", "!"], '"!",IQ==,"!"'),
            ((STRING, BYTES, STRING), ["#", b"#", "#"], '"#",Iw==,"#"'),
            ((STRING, STRING), ["a", "$x"], "a,$x"),
            ((STRING, STRING), ["a", " x"], 'a," x"'),
            ((STRING, STRING), ["a", "x "], 'a,"x "'),
            ((STRING, STRING), ["a", "x,y"], 'a,"x,y"'),
            ((STRING, STRING), ["a", 'say "hi"'], 'a,"say ""hi"""'),
            ((STRING, STRING), ["a", "two\nlines"], 'a,"two\nlines"'),
            ((STRING, STRING), ["", ""], '"",'),  # an empty first field is quoted, later ones are not
            ((STRING,), ["\u00e9t\u00e9"], '"\u00e9t\u00e9"'),
            ((STRING, STRING), ["some constant", "1"], "some constant,1"),
        ],
    )
    def test_lines(self, types: tuple[SqlType, ...], row: list[Any], line: str) -> None:
        assert delimited(*types).serialize(row) == line.encode()

    def test_delimiter_inside_a_value_is_quoted_for_that_delimiter(self) -> None:
        assert format_line(["a|b", "c,d"], "|") == '"a|b"|c,d'

    def test_round_trip(self) -> None:
        serde = delimited(STRING, DOUBLE, DecimalType(5, 2), BOOLEAN, BYTES, BIGINT)
        row = ['-x, "y"\r\nz', -1e-7, Decimal("-1.50"), False, b"\x00\xff", -(2**63)]
        assert serde.deserialize(serde.serialize(row)) == row

    def test_null_row(self) -> None:
        assert delimited(STRING).serialize(None) is None

    def test_null_single_key_column_is_no_key(self) -> None:
        key = serde_for("DELIMITED", [Column("K", BIGINT)], FormatOptions(is_key=True))
        assert key.serialize([None]) is None
        assert delimited(BIGINT).serialize([None]) == b""  # a value keeps its (empty) line


def test_logical_form_is_the_text_line() -> None:
    serde = delimited(STRING, INTEGER)
    assert serde.from_logical('"x",1') == b'"x",1'
    assert serde.to_logical(b"x,1") == "x,1"
    assert serde.from_logical(None) is None and serde.to_logical(None) is None
