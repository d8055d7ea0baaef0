"""Tests for the built-in string, regex, encoding, JSON, URL, NULL-handling and conversion functions."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest

from ksqlpy.functions.registry import FunctionRegistry
from ksqlpy.types import (
    BIGINT,
    BOOLEAN,
    BYTES,
    DATE,
    DOUBLE,
    INTEGER,
    NULL,
    STRING,
    TIME,
    TIMESTAMP,
    ArrayType,
    DecimalType,
    MapType,
    SqlType,
    StructType,
)

REGISTRY = FunctionRegistry.with_builtins()


def _type_of(value: Any) -> SqlType:
    if value is None:
        return NULL
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int):
        return INTEGER
    if isinstance(value, float):
        return DOUBLE
    if isinstance(value, bytes):
        return BYTES
    if isinstance(value, str):
        return STRING
    raise TypeError(f"give explicit types for {value!r}")


def call(name: str, *args: Any, types: Sequence[SqlType] | None = None) -> Any:
    """Calls a built-in as the executor does: NULL short-circuit, then the implementation (errors propagate)."""
    arg_types = list(types) if types is not None else [_type_of(arg) for arg in args]
    bound = REGISTRY.resolve(name, arg_types)
    if bound.overload.null_on_null and any(arg is None for arg in args):
        return None
    return bound.implementation()(*args)


def evaluate(name: str, *args: Any, types: Sequence[SqlType] | None = None) -> Any:
    """Like `call`, but a failing implementation gives NULL, as the executor's processing-log path does."""
    try:
        return call(name, *args, types=types)
    except ValueError:
        return None


# --------------------------------------------------------------------------- registration


def test_every_function_of_this_family_is_registered_with_a_category_and_description() -> None:
    names = [
        "CONCAT", "CONCAT_WS", "CHR", "ELT", "FIELD", "ENCODE", "FROM_BYTES", "TO_BYTES", "INITCAP", "INSTR",
        "LCASE", "UCASE", "LEN", "LPAD", "RPAD", "MASK", "MASK_KEEP_LEFT", "MASK_KEEP_RIGHT", "MASK_LEFT",
        "MASK_RIGHT", "REPLACE", "REGEXP_EXTRACT", "REGEXP_EXTRACT_ALL", "REGEXP_REPLACE",
        "REGEXP_SPLIT_TO_ARRAY", "SPLIT", "SPLIT_TO_MAP", "SUBSTRING", "TRIM", "LTRIM", "RTRIM", "UUID", "MD5",
        "EXTRACTJSONFIELD", "IS_JSON_STRING", "JSON_ARRAY_CONTAINS", "JSON_ARRAY_LENGTH", "JSON_CONCAT",
        "JSON_ITEMS", "JSON_KEYS", "JSON_RECORDS", "TO_JSON_STRING", "URL_DECODE_PARAM", "URL_ENCODE_PARAM",
        "URL_EXTRACT_FRAGMENT", "URL_EXTRACT_HOST", "URL_EXTRACT_PARAMETER", "URL_EXTRACT_PATH",
        "URL_EXTRACT_PORT", "URL_EXTRACT_PROTOCOL", "URL_EXTRACT_QUERY", "COALESCE", "IFNULL", "NULLIF",
        "AS_VALUE", "INT_FROM_BYTES", "BIGINT_FROM_BYTES", "DOUBLE_FROM_BYTES",
    ]
    for name in names:
        overloads = REGISTRY.overloads(name)
        assert overloads, name
        assert all(o.description and o.category for o in overloads), name


def test_return_types_follow_the_arguments() -> None:
    assert REGISTRY.resolve("SUBSTRING", [BYTES, INTEGER]).return_type == BYTES
    assert REGISTRY.resolve("SPLIT", [STRING, STRING]).return_type == ArrayType(STRING)
    assert REGISTRY.resolve("SPLIT_TO_MAP", [STRING, STRING, STRING]).return_type == MapType(STRING, STRING)
    assert REGISTRY.resolve("COALESCE", [INTEGER, BIGINT]).return_type == BIGINT
    assert REGISTRY.resolve("URL_EXTRACT_PORT", [STRING]).return_type == INTEGER


# --------------------------------------------------------------------------- concatenation and lists


def test_concat_treats_null_as_empty() -> None:
    assert call("CONCAT", "prefix-", "s1", "-postfix") == "prefix-s1-postfix"
    assert call("CONCAT", "a", None, "b", types=[STRING, STRING, STRING]) == "ab"
    assert call("CONCAT", b"yes", None, b"no", types=[BYTES, BYTES, BYTES]) == b"yesno"
    assert call("CONCAT", None, None, types=[STRING, STRING]) == ""


def test_concat_ws_skips_nulls_but_not_a_null_separator() -> None:
    assert call("CONCAT_WS", "SEP", "foo", None, "baz", None, "literal",
                types=[STRING] * 6) == "fooSEPbazSEPliteral"
    assert call("CONCAT_WS", "SEP", None, None, "literal", types=[STRING] * 4) == "literal"
    assert call("CONCAT_WS", None, "foo", "bar", types=[STRING] * 3) is None
    assert call("CONCAT_WS", b"-", b"a", None, b"b", types=[BYTES] * 4) == b"a-b"


def test_elt_and_field_are_one_based_complements() -> None:
    assert call("ELT", 2, "a", "b", "c") == "b"
    assert call("ELT", 0, "a", "b") is None
    assert call("ELT", 3, "a", "b") is None
    assert call("ELT", None, "a", types=[INTEGER, STRING]) is None
    assert call("FIELD", "hello", "world", "hello") == 2
    assert call("FIELD", "hello", None, "world", types=[STRING] * 3) == 0
    assert call("FIELD", None, "hello", types=[STRING, STRING]) == 0


# --------------------------------------------------------------------------- characters and case


@pytest.mark.parametrize(
    ("argument", "expected"),
    [(75, "K"), (22909, "好"), (-1, None), (0x110000, None), (0xD800, None),
     ("\\u004b", "K"), ("\\u597d", "好"), ("\\ud820\\udeb8", "\U000182b8"), ("75", None), ("004b", None),
     ("bogus", None), ("", None), ("\\u004b\\u004b", None), ("\\ud820", None)],
)
def test_chr(argument: int | str, expected: str | None) -> None:
    assert call("CHR", argument) == expected


def test_case_functions() -> None:
    assert call("LCASE", "FoO") == "foo"
    assert call("UCASE", "FoO") == "FOO"
    assert call("INITCAP", "the   Quick br0wn fOx") == "The   Quick Br0wn Fox"
    assert call("INITCAP", "some_string") == "Some_string"
    assert call("UCASE", None, types=[STRING]) is None


def test_trims_strip_spaces_and_control_characters_only() -> None:
    assert call("TRIM", "  \t teen spirit \n ") == "teen spirit"
    assert call("LTRIM", "  a  ") == "a  "
    assert call("RTRIM", "  a  ") == "  a"
    assert call("TRIM", "\u00a0a\u00a0") == "\u00a0a\u00a0"  # Java's trim leaves no-break spaces


def test_len_counts_utf16_units_and_bytes() -> None:
    assert call("LEN", "ABC") == 3
    assert call("LEN", "") == 0
    assert call("LEN", "a😀") == 3
    assert call("LEN", b"abc") == 3
    assert call("LEN", None, types=[BYTES]) is None


# --------------------------------------------------------------------------- search and replace


@pytest.mark.parametrize(
    ("args", "expected"),
    [(("CORPORATE FLOOR", "OR"), 2), (("CORPORATE FLOOR", "OR", 3), 5), (("CORPORATE FLOOR", "OR", 3, 2), 14),
     (("CORPORATE FLOOR", "OR", -3), 5), (("CORPORATE FLOOR", "OR", -3, 2), 2),
     (("corporate floor", "or", -4), 5), (("corporate floor", "or", -4, 2), 2),
     (("CORPORATE FLOOR", "MISSING"), 0), (("short", "or", 4), 0), (("short", "or", -4), 0),
     (("short", "or", -100), 0), (("short", "or", 0), 0), (("short", "or", 1, 0), 0),
     (("should I stay or should I go", "or"), 15)],
)
def test_instr(args: tuple[Any, ...], expected: int) -> None:
    assert call("INSTR", *args) == expected


def test_replace_is_literal() -> None:
    assert call("REPLACE", "anaconda", "a", "o") == "onocondo"
    assert call("REPLACE", "a.b", ".", "$1") == "a$1b"
    assert call("REPLACE", "anaconda", None, "o", types=[STRING] * 3) is None


# --------------------------------------------------------------------------- slicing, padding, splitting


@pytest.mark.parametrize(
    ("args", "expected"),
    [(("some_string", 6), "string"), (("some_string", 6, 3), "str"), (("another", 6, 3), "er"),
     (("short", 6, 3), ""), (("zb", 2), "b"), (("stream", 1, 4), "stre"), (("stream", 0, 2), "st"),
     (("stream", -3), "eam"), (("stream", -3, 2), "ea"), (("stream", -10, 2), "st"), (("stream", 2, -1), "")],
)
def test_substring_of_strings(args: tuple[Any, ...], expected: str) -> None:
    assert call("SUBSTRING", *args) == expected


def test_substring_of_bytes_and_nulls() -> None:
    assert call("SUBSTRING", b"some_string", 6) == b"string"
    assert call("SUBSTRING", b"short", 6, 3) == b""
    assert call("SUBSTRING", "abc", None, types=[STRING, INTEGER]) is None


@pytest.mark.parametrize(
    ("function", "args", "expected"),
    [("LPAD", ("Foo", 7, "Bar"), "BarBFoo"), ("LPAD", ("Foo", 2, "Bar"), "Fo"), ("LPAD", ("", 2, "Bar"), "Ba"),
     ("LPAD", ("123", 5, "0"), "00123"), ("RPAD", ("foo", 7, "Bar"), "fooBarB"), ("RPAD", ("foo", 5, "Bar"), "fooBa"),
     ("RPAD", ("foo", 2, "Bar"), "fo"), ("RPAD", ("", 7, "Bar"), "BarBarB"), ("RPAD", ("foo", -1, "Bar"), None),
     ("RPAD", ("foo", 7, ""), None), ("LPAD", (b"yes", 8, b"no"), b"nonony" + b"es"),
     ("RPAD", (b"yes", 8, b"no"), b"yesnonon"), ("LPAD", (b"yes", 0, b"no"), b""),
     ("LPAD", (b"yes", 3, b""), None)],
)
def test_padding(function: str, args: tuple[Any, ...], expected: Any) -> None:
    assert call(function, *args) == expected


def test_padding_with_null_padding_is_null() -> None:
    assert call("LPAD", "foo", 5, None, types=[STRING, INTEGER, STRING]) is None


@pytest.mark.parametrize(
    ("text", "delimiter", "expected"),
    [("a$$b.c", "$$", ["a", "b.c"]), (".abc$$", "$$", [".abc", ""]), ("abc", "$$", ["abc"]), ("", "$$", [""]),
     ("a.b", "", ["a", ".", "b"]), ("", "", [""]), (",A,", ",", ["", "A", ""])],
)
def test_split(text: str, delimiter: str, expected: list[str]) -> None:
    assert call("SPLIT", text, delimiter) == expected
    assert call("SPLIT", text.encode(), delimiter.encode()) == [part.encode() for part in expected]


def test_split_to_map() -> None:
    assert call("SPLIT_TO_MAP", "apple:=green/cherry:=red/apple:=pink/junk", "/", ":=") == {
        "apple": "pink", "cherry": "red"}
    assert call("SPLIT_TO_MAP", "a=1", "", "=") is None
    assert call("SPLIT_TO_MAP", "a=1", None, "=", types=[STRING] * 3) is None
    assert call("SPLIT_TO_MAP", None, "/", "=", types=[STRING] * 3) is None


# --------------------------------------------------------------------------- masking


def test_mask_defaults_and_custom_characters() -> None:
    assert call("MASK", "My Test $123") == "Xx-Xxxx--nnn"
    assert call("MASK", "My Test $123", "*", None, "1", None, types=[STRING] * 5) == "*y *est $111"
    assert call("MASK", None, "*", "*", "*", "*", types=[STRING] * 5) is None


@pytest.mark.parametrize(
    ("function", "expected", "count_beyond_length", "custom_with_zero"),
    [("MASK_KEEP_LEFT", "My Txxx--nnn", "ab", "ULD"), ("MASK_KEEP_RIGHT", "Xx-Xxxx-$123", "ab", "ULD"),
     ("MASK_LEFT", "Xx-Xest $123", "xx", "Ab1"), ("MASK_RIGHT", "My Test -nnn", "xx", "Ab1")],
)
def test_partial_masks(function: str, expected: str, count_beyond_length: str, custom_with_zero: str) -> None:
    assert call(function, "My Test $123", 4) == expected
    assert call(function, "ab", 10) == count_beyond_length
    custom_types = [STRING, INTEGER] + [STRING] * 4
    assert call(function, "Ab1", 0, "U", "L", "D", "O", types=custom_types) == custom_with_zero
    assert call(function, None, 1, "U", "L", "D", "O", types=custom_types) is None


def test_partial_mask_rejects_negative_counts() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        call("MASK_LEFT", "abc", -1)


# --------------------------------------------------------------------------- identifiers and hashes


def test_uuid() -> None:
    generated = call("UUID")
    assert uuid.UUID(generated).version == 4
    assert generated != call("UUID")
    raw = bytes(range(16))
    assert call("UUID", raw) == str(uuid.UUID(bytes=raw))
    assert evaluate("UUID", b"short") is None


@pytest.mark.parametrize(
    ("text", "digest"),
    [("r1", "7c92cf1eee8d99cc85f8355a3d6e4b86"), ("", "d41d8cd98f00b204e9800998ecf8427e"),
     (" ", "7215ee9c7d9dc229d2921a40e899ec5f")],
)
def test_md5(text: str, digest: str) -> None:
    assert call("MD5", text) == digest


# --------------------------------------------------------------------------- encodings


@pytest.mark.parametrize(
    ("hex_text", "ascii", "utf8", "base64"),
    [("4578616d706C6521", "Example!", "Example!", "RXhhbXBsZSE="),
     ("ce95cebbcebbceacceb4ceb1", "\ufffd" * 12, "Ελλάδα", "zpXOu867zqzOtM6x"),
     ("0x4578616d706C6521", "Example!", "Example!", "RXhhbXBsZSE="),
     ("X'4578616d706C6521'", "Example!", "Example!", "RXhhbXBsZSE="),
     ("x''", "", "", ""), ("0x", "", "", ""),
     ("578616d706C6521", "\x05xample!", "\x05xample!", "BXhhbXBsZSE="),
     ("0x0x", None, None, None), ("X'", None, None, None), ("x'4578616d706C6521", None, None, None),
     ("x'578616d706C6521'", None, None, None), ("0x578616d706C6521", None, None, None)],
)
def test_encode_from_hex(hex_text: str, ascii: str | None, utf8: str | None, base64: str | None) -> None:
    assert evaluate("ENCODE", hex_text, "hex", "ascii") == ascii
    assert evaluate("ENCODE", hex_text, "hex", "utf8") == utf8
    assert evaluate("ENCODE", hex_text, "hex", "base64") == base64


def test_encode_from_ascii_replaces_non_ascii_with_question_marks() -> None:
    assert call("ENCODE", "Example!", "ascii", "hex") == "4578616d706c6521"
    assert call("ENCODE", "Ελλάδα", "ascii", "hex") == "3f3f3f3f3f3f"
    assert call("ENCODE", "Ελλάδα", "ascii", "base64") == "Pz8/Pz8/"
    assert call("ENCODE", "RXhhbXBsZSE", "base64", "utf8") == "Example!"  # padding is optional


def test_encode_rejects_unknown_encodings() -> None:
    with pytest.raises(ValueError, match="Supported encodings"):
        call("ENCODE", "RXhhbXBsZSE=", "base64", "null")
    assert call("ENCODE", None, "hex", "utf8", types=[STRING] * 3) is None


def test_to_bytes_and_from_bytes_round_trip() -> None:
    assert call("TO_BYTES", "1aB2", "hex") == b"\x1a\xb2"
    assert call("FROM_BYTES", b"\x1a\xb2", "hex") == "1AB2"
    assert call("FROM_BYTES", b"!", "ascii") == "!"
    assert call("FROM_BYTES", b"\xc3\x9c", "utf8") == "Ü"
    assert call("FROM_BYTES", b"\xff", "utf8") == "\ufffd"
    assert call("TO_BYTES", "IQ==", "base64") == b"!"
    assert call("FROM_BYTES", b"!", "base64") == "IQ=="
    assert call("TO_BYTES", "$$", "utf8") == b"$$"
    assert evaluate("TO_BYTES", "abc", "hex") is None
    assert evaluate("TO_BYTES", "!!", "base64") is None
    assert evaluate("FROM_BYTES", b"!", "ebcdic") is None


# --------------------------------------------------------------------------- regular expressions


def test_regexp_extract() -> None:
    assert call("REGEXP_EXTRACT", "test.", "some_test_string") == "test_"
    assert call("REGEXP_EXTRACT", "test.", "anothertest") is None
    assert call("REGEXP_EXTRACT", "(.*) (.*)", "hello there", 2) == "there"
    assert call("REGEXP_EXTRACT", "(a)|(b)", "b", 1) is None
    assert evaluate("REGEXP_EXTRACT", "(a)", "a", 2) is None
    assert evaluate("REGEXP_EXTRACT", "(unclosed", "a") is None


def test_regexp_extract_all() -> None:
    pattern = r"(\w+) (\w*)"
    assert call("REGEXP_EXTRACT_ALL", pattern, "steven zhang andy coates", 2) == ["zhang", "coates"]
    assert call("REGEXP_EXTRACT_ALL", pattern, "apurva mehta agavra ", 2) == ["mehta", ""]
    assert call("REGEXP_EXTRACT_ALL", pattern, "agavra", 2) == []
    assert call("REGEXP_EXTRACT_ALL", r"\d+", "a1b22c333") == ["1", "22", "333"]


def test_regexp_replace_uses_java_replacement_syntax() -> None:
    assert call("REGEXP_REPLACE", "baababaa", "(ab)+", "cat") == "bacataa"
    assert call("REGEXP_REPLACE", "baabbabaa", "(ab)+", "cat") == "bacatbcataa"
    assert call("REGEXP_REPLACE", "john smith", r"(\w+) (\w+)", "$2, $1") == "smith, john"
    assert call("REGEXP_REPLACE", "john smith", r"(?<first>\w+) (\w+)", "${first}!") == "john!"
    assert call("REGEXP_REPLACE", "ab", "(a)", "$10") == "a0b"  # $1 then a literal 0: group 10 doesn't exist
    assert call("REGEXP_REPLACE", "ab", "a", "\\$") == "$b"
    assert evaluate("REGEXP_REPLACE", "ab", "a", "$2") is None
    assert call("REGEXP_REPLACE", "abc", "x*", "-") == "-a-b-c-"
    assert call("REGEXP_REPLACE", "abc", None, "-", types=[STRING] * 3) is None


def test_java_regex_constructs_are_translated() -> None:
    assert call("REGEXP_EXTRACT", r"\p{Upper}+", "abCDe") == "CD"
    assert call("REGEXP_EXTRACT", r"[\p{Digit}x]+", "ab1x2c") == "1x2"
    assert call("REGEXP_EXTRACT", r"\Q.*\E", "a.*b") == ".*"
    assert call("REGEXP_EXTRACT", r"(?<d>\d)\k<d>", "1223") == "22"
    assert call("REGEXP_EXTRACT", r"\d+", "١٢٣ 42") == "42"  # \d is ASCII-only in Java
    assert call("REGEXP_EXTRACT", r"b\z", "ab") == "b"
    assert evaluate("REGEXP_EXTRACT", r"\p{IsNoSuchThing}", "a") is None


@pytest.mark.parametrize(
    ("text", "pattern", "expected"),
    [("aabcda", "(ab|cd)", ["a", "", "a"]), ("aabdcda", "(ab|cd)", ["a", "d", "a"]), ("zxy", "(ab|cd)", ["zxy"]),
     ("abc", "", ["a", "b", "c"]), ("-a-", "-", ["", "a", ""]), ("", "x", [""]), ("ab", "x*", ["a", "b", ""])],
)
def test_regexp_split_to_array(text: str, pattern: str, expected: list[str]) -> None:
    assert call("REGEXP_SPLIT_TO_ARRAY", text, pattern) == expected


# --------------------------------------------------------------------------- JSON


def test_extract_json_field() -> None:
    document = '{"name": "cdc", "version": "1", "@type": "UDF", "n": 1.50, "o": {"a": [1, {"b": null}]}}'
    assert call("EXTRACTJSONFIELD", document, "$.name") == "cdc"
    assert call("EXTRACTJSONFIELD", document, "$.@type") == "UDF"
    assert call("EXTRACTJSONFIELD", document, "$.n") == "1.50"
    assert call("EXTRACTJSONFIELD", document, "$.o") == '{"a":[1,{"b":null}]}'
    assert call("EXTRACTJSONFIELD", document, "$.o.a[1].b") == "null"
    assert call("EXTRACTJSONFIELD", document, "$['o']['a'][0]") == "1"
    assert call("EXTRACTJSONFIELD", document, "$.missing") is None
    assert call("EXTRACTJSONFIELD", document, "$.o.a[5]") is None
    assert call("EXTRACTJSONFIELD", document, "$.name.deeper") is None
    # trailing content after the first JSON value is ignored, as Jackson does
    assert call("EXTRACTJSONFIELD", '{"name": "cdd"}}', "$.name") == "cdd"
    assert evaluate("EXTRACTJSONFIELD", "not json", "$.a") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("[1, 2, 3]", True), ("{}", True), ("1", True), ('"abc"', True), ("null", True), ("", False),
     ("abc", False), (None, False), ("NaN", False)],
)
def test_is_json_string(text: str | None, expected: bool) -> None:
    assert call("IS_JSON_STRING", text, types=[STRING]) is expected


def test_json_array_contains() -> None:
    assert call("JSON_ARRAY_CONTAINS", '["Pink", "Yellow"]', "Pink") is True
    assert call("JSON_ARRAY_CONTAINS", '["Red", "Green"]', "Pink") is False
    assert call("JSON_ARRAY_CONTAINS", "[1, 2, 3]", 3) is True
    assert call("JSON_ARRAY_CONTAINS", "[1, true]", True) is True
    assert call("JSON_ARRAY_CONTAINS", "[1]", True) is False
    assert call("JSON_ARRAY_CONTAINS", "[1.5]", 1.5) is True
    assert call("JSON_ARRAY_CONTAINS", "[[3]]", 3) is False
    assert call("JSON_ARRAY_CONTAINS", '["a", null]', None, types=[STRING, STRING]) is True
    assert call("JSON_ARRAY_CONTAINS", '{"a": 1}', 1) is False
    assert call("JSON_ARRAY_CONTAINS", "oops", 1) is False
    assert call("JSON_ARRAY_CONTAINS", None, 1, types=[STRING, INTEGER]) is False


def test_json_array_length_keys_items_and_records() -> None:
    assert call("JSON_ARRAY_LENGTH", "[1, [1, [2]], 3]") == 3
    assert call("JSON_ARRAY_LENGTH", "[]") == 0
    assert call("JSON_ARRAY_LENGTH", "{}") is None
    assert evaluate("JSON_ARRAY_LENGTH", "abc") is None
    assert call("JSON_KEYS", '{"a": "abc", "b": { "c": "a" }, "d": 1}') == ["a", "b", "d"]
    assert call("JSON_KEYS", "[]") is None
    assert evaluate("JSON_KEYS", "") is None
    assert call("JSON_ITEMS", '[1, "a", {"b": 2}]') == ["1", '"a"', '{"b":2}']
    assert call("JSON_RECORDS", '{"a": "abc", "b": { "c": "a" }, "d": 1, "e": null}') == {
        "a": "abc", "b": '{"c":"a"}', "d": "1", "e": "null"}
    assert call("JSON_RECORDS", "{}") == {}
    assert call("JSON_RECORDS", "123") is None


@pytest.mark.parametrize(
    ("texts", "expected"),
    [(('{"a": 1}', '{"b": 2}', '{"c": 3}'), '{"a":1,"b":2,"c":3}'),
     (('{"a": {"5": 6}}', '{"a": {"3": 4}}'), '{"a":{"3":4}}'), (("{}", "{}"), "{}"),
     (("[1, 2]", "[3, 4]"), "[1,2,3,4]"), (("null", "null", "null"), "[null,null,null]"),
     (("[1, 2]", '{"a": 1}', "4"), '[1,2,{"a":1},4]'), (("1", "2"), "[1,2]"), (("[]", "[]"), "[]"),
     (('["é\\n"]', "[1e2]"), '["é\\n",100]'), (("1", "", "2"), None), (("abc", "[1]"), None)],
)
def test_json_concat(texts: tuple[str, ...], expected: str | None) -> None:
    assert call("JSON_CONCAT", *texts) == expected


def test_json_concat_of_null_is_null() -> None:
    assert call("JSON_CONCAT", None, "[1]", types=[STRING, STRING]) is None


def _to_json(value: Any, sql_type: SqlType) -> str:
    rendered: str = call("TO_JSON_STRING", value, types=[sql_type])
    return rendered


def test_to_json_string_of_primitives() -> None:
    assert _to_json(1, INTEGER) == "1"
    assert _to_json(123, BIGINT) == "123"
    assert _to_json("abc", STRING) == '"abc"'
    assert _to_json('say "hi"\n', STRING) == '"say \\"hi\\"\\n"'
    assert _to_json(True, BOOLEAN) == "true"
    assert _to_json(Decimal("123.456"), DecimalType(6, 3)) == "123.456"
    assert _to_json(Decimal("1.50"), DecimalType(3, 2)) == "1.50"
    assert _to_json(b"abc", BYTES) == '"YWJj"'
    assert _to_json(None, INTEGER) == "null"
    assert _to_json(None, NULL) == "null"


def test_to_json_string_of_compound_values_sorts_field_names_and_keys() -> None:
    assert _to_json([1, 2, None], ArrayType(INTEGER)) == "[1,2,null]"
    struct_type = StructType((("NAME", STRING), ("ID", INTEGER)))
    assert _to_json({"NAME": "Alice", "ID": 1}, struct_type) == '{"ID":1,"NAME":"Alice"}'
    assert _to_json({"id": 1, "c": None}, MapType(STRING, INTEGER)) == '{"c":null,"id":1}'
    nested = ArrayType(StructType((("JSON_KEY", INTEGER), ("JSON_VALUE", MapType(STRING, INTEGER)))))
    assert _to_json([{"JSON_KEY": 1, "JSON_VALUE": {"d": 3, "c": 2}}], nested) == (
        '[{"JSON_KEY":1,"JSON_VALUE":{"c":2,"d":3}}]')


def test_to_json_string_renders_doubles_and_temporal_values_like_ksqldb() -> None:
    assert _to_json(15.3, DOUBLE) == "15.3"
    assert _to_json(1.0e7, DOUBLE) == "1.0E7"
    assert _to_json(float("nan"), DOUBLE) == '"NaN"'
    assert _to_json(60220000, TIME) == '"16:43:40"'
    assert _to_json(60220000000, TIMESTAMP) == '"1971-11-28T23:46:40.000"'
    assert _to_json(18911, DATE) == '"2021-10-11"'


# --------------------------------------------------------------------------- URLs


def test_url_encode_and_decode_param() -> None:
    assert call("URL_ENCODE_PARAM", "url encoded") == "url+encoded"
    assert call("URL_ENCODE_PARAM", "a&b=c~d*é") == "a%26b%3Dc%7Ed*%C3%A9"
    assert call("URL_DECODE_PARAM", "%3Ffoo+%24bar") == "?foo $bar"
    assert call("URL_DECODE_PARAM", "hello%26world") == "hello&world"
    assert call("URL_DECODE_PARAM", "url%20encoded") == "url encoded"
    assert call("URL_DECODE_PARAM", "%C3%A9") == "é"
    assert evaluate("URL_DECODE_PARAM", "100%") is None


@pytest.mark.parametrize(
    ("url", "protocol", "host", "port", "path", "query", "fragment"),
    [("http://www.test.com/?query#fragment", "http", "www.test.com", None, "/", "query", "fragment"),
     ("http://www.nofragment.com", "http", "www.nofragment.com", None, "", None, None),
     ("http://www.test.com?query#fragment", "http", "www.test.com", None, "", "query", "fragment"),
     ("https://test@confluent.io:8080/nested/path?query&jobs", "https", "confluent.io", 8080, "/nested/path",
      "query&jobs", None),
     ("http://test.com#frag%20space", "http", "test.com", None, "", None, "frag space"),
     ("http://test.com?a=foo%20bar&b=baz", "http", "test.com", None, "", "a=foo bar&b=baz", None),
     ("www.confluent.io", None, None, None, "www.confluent.io", None, None),
     ("http://[::1]:9000/x", "http", "[::1]", 9000, "/x", None, None),
     ("http://my_host:80/x", "http", None, None, "/x", None, None),
     ("mailto:someone@example.com", "mailto", None, None, None, None, None)],
)
def test_url_extraction(url: str, protocol: str | None, host: str | None, port: int | None, path: str | None,
                        query: str | None, fragment: str | None) -> None:
    assert call("URL_EXTRACT_PROTOCOL", url) == protocol
    assert call("URL_EXTRACT_HOST", url) == host
    assert call("URL_EXTRACT_PORT", url) == port
    assert call("URL_EXTRACT_PATH", url) == path
    assert call("URL_EXTRACT_QUERY", url) == query
    assert call("URL_EXTRACT_FRAGMENT", url) == fragment


@pytest.mark.parametrize("url", ["http://a b.com", "http://x.com/%zz", "1http://x.com", "http:", "http://x/#a#b"])
def test_invalid_urls_give_errors(url: str) -> None:
    with pytest.raises(ValueError, match="invalid syntax"):
        call("URL_EXTRACT_HOST", url)


def test_url_extract_parameter() -> None:
    assert call("URL_EXTRACT_PARAMETER", "http://test.com?a%20b=c%20d", "a b") == "c d"
    assert call("URL_EXTRACT_PARAMETER", "http://test.com?a=foo&b=bar", "b") == "bar"
    assert call("URL_EXTRACT_PARAMETER", "http://www.test.com/?one=a&two=url%20encoded", "two") == "url encoded"
    assert call("URL_EXTRACT_PARAMETER", "http://test.com?flag&b=1", "flag") == ""
    assert call("URL_EXTRACT_PARAMETER", "http://test.com?a=1=2", "a") == "1=2"
    assert call("URL_EXTRACT_PARAMETER", "http://test.com?a=1", "c") is None
    assert call("URL_EXTRACT_PARAMETER", "http://test.com", "a") is None


# --------------------------------------------------------------------------- NULL handling


def test_coalesce() -> None:
    assert call("COALESCE", None, 2, 3, types=[INTEGER, INTEGER, INTEGER]) == 2
    assert call("COALESCE", None, None, types=[STRING, STRING]) is None
    assert call("COALESCE", None, [10, 20], types=[ArrayType(INTEGER)] * 2) == [10, 20]
    assert call("COALESCE", "only") == "only"
    with pytest.raises(Exception, match="does not accept parameters"):
        REGISTRY.resolve("COALESCE", [])


def test_ifnull_and_nullif() -> None:
    assert call("IFNULL", None, -1, types=[INTEGER, INTEGER]) == -1
    assert call("IFNULL", 10, -1) == 10
    assert call("NULLIF", "x", "x") is None
    assert call("NULLIF", "X", "x") == "X"
    assert call("NULLIF", None, "x", types=[STRING, STRING]) is None
    assert call("NULLIF", "x", None, types=[STRING, STRING]) == "x"
    assert call("NULLIF", [1, 2, 3], [1, 2, 3], types=[ArrayType(INTEGER)] * 2) is None


# --------------------------------------------------------------------------- conversions


def test_numbers_from_bytes() -> None:
    assert call("INT_FROM_BYTES", bytes.fromhex("000007E5")) == 2021
    assert call("INT_FROM_BYTES", bytes.fromhex("E5070000"), "LITTLE_ENDIAN") == 2021
    assert call("BIGINT_FROM_BYTES", bytes.fromhex("000000012A05F200"), "BIG_ENDIAN") == 5000000000
    assert call("DOUBLE_FROM_BYTES", bytes.fromhex("4080A6FD9BC9F582")) == pytest.approx(532.8738323)
    assert call("INT_FROM_BYTES", b"\x00\x01") is None
    assert call("INT_FROM_BYTES", bytes(4), "MIDDLE_ENDIAN") is None


def test_as_value_returns_its_argument() -> None:
    assert call("AS_VALUE", "key") == "key"
    assert call("AS_VALUE", None, types=[STRING]) is None

