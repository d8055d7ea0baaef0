"""Built-in STRING functions (and their BYTES twins): concatenation, case, padding, slicing, masking, hashing."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable
from typing import TypeVar

from ksqlpy.functions.registry import scalar_function
from ksqlpy.types import BYTES, INTEGER, STRING, ArrayType, MapType

_CATEGORY = "STRING"

# Operations written once for both STRING (str) and BYTES (bytes) values.
Text = TypeVar("Text", str, bytes)

# Java's String.trim() strips every character up to and including the space, not Unicode whitespace.
_JAVA_TRIMMED = "".join(chr(code) for code in range(0x21))


def _java_length(text: str) -> int:
    """String length in UTF-16 code units, as Java counts it (astral characters count twice)."""
    if text.isascii():
        return len(text)
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


# --------------------------------------------------------------------------- concatenation


@scalar_function(
    "CONCAT", params=[STRING], returns=STRING, variadic=True, null_on_null=False, category=_CATEGORY,
    description="Concatenates strings; NULL inputs are treated as empty strings.",
)
def concat_strings(*parts: str | None) -> str:
    return "".join(part for part in parts if part is not None)


@scalar_function(
    "CONCAT", params=[BYTES], returns=BYTES, variadic=True, null_on_null=False, category=_CATEGORY,
    description="Concatenates byte arrays; NULL inputs are treated as empty.",
)
def concat_bytes(*parts: bytes | None) -> bytes:
    return b"".join(part for part in parts if part is not None)


@scalar_function(
    "CONCAT_WS", params=[STRING, STRING], returns=STRING, variadic=True, null_on_null=False,
    category=_CATEGORY,
    description="Concatenates strings with a separator between them, skipping NULLs; NULL separator gives NULL.",
)
def concat_ws_strings(separator: str | None, *parts: str | None) -> str | None:
    if separator is None:
        return None
    return separator.join(part for part in parts if part is not None)


@scalar_function(
    "CONCAT_WS", params=[BYTES, BYTES], returns=BYTES, variadic=True, null_on_null=False,
    category=_CATEGORY,
    description="Concatenates byte arrays with a separator between them, skipping NULLs; NULL separator gives NULL.",
)
def concat_ws_bytes(separator: bytes | None, *parts: bytes | None) -> bytes | None:
    if separator is None:
        return None
    return separator.join(part for part in parts if part is not None)


# --------------------------------------------------------------------------- picking from lists


@scalar_function(
    "ELT", params=[INTEGER, STRING], returns=STRING, variadic=True, null_on_null=False, category=_CATEGORY,
    description="Returns the n-th (1-based) of the following strings, or NULL when n is out of range.",
)
def elt(position: int | None, *choices: str | None) -> str | None:
    if position is None or position < 1 or position > len(choices):
        return None
    return choices[position - 1]


@scalar_function(
    "FIELD", params=[STRING, STRING], returns=INTEGER, variadic=True, null_on_null=False, category=_CATEGORY,
    description="Returns the 1-based position of a string among the following strings, or 0 if absent or NULL.",
)
def field(needle: str | None, *candidates: str | None) -> int:
    if needle is None:
        return 0
    for index, candidate in enumerate(candidates, start=1):
        if candidate == needle:
            return index
    return 0


# --------------------------------------------------------------------------- characters and case


@scalar_function(
    "CHR", params=[INTEGER], returns=STRING, category=_CATEGORY,
    description="Returns the single-character string of a Unicode code point, or NULL if it is not valid.",
)
def chr_from_code_point(code_point: int) -> str | None:
    if 0 <= code_point <= 0x10FFFF and not 0xD800 <= code_point <= 0xDFFF:
        return chr(code_point)
    return None


_UNICODE_ESCAPES = re.compile(r"(?:\\u[0-9a-fA-F]{4})+")


@scalar_function(
    "CHR", params=[STRING], returns=STRING, category=_CATEGORY,
    description="Returns the character written as '\\uXXXX' escapes (a surrogate pair allowed), or NULL.",
)
def chr_from_escape(escaped: str) -> str | None:
    if not _UNICODE_ESCAPES.fullmatch(escaped):
        return None
    units = b"".join(int(escaped[i + 2:i + 6], 16).to_bytes(2, "big") for i in range(0, len(escaped), 6))
    try:
        decoded = units.decode("utf-16-be")
    except UnicodeDecodeError:  # a lone surrogate is not a character
        return None
    return decoded if len(decoded) == 1 else None


@scalar_function("LCASE", params=[STRING], returns=STRING, category=_CATEGORY,
                 description="Converts a string to lower case.")
def lcase(text: str) -> str:
    return text.lower()


@scalar_function("UCASE", params=[STRING], returns=STRING, category=_CATEGORY,
                 description="Converts a string to upper case.")
def ucase(text: str) -> str:
    return text.upper()


@scalar_function(
    "INITCAP", params=[STRING], returns=STRING, category=_CATEGORY,
    description="Capitalizes the first letter of each whitespace-delimited word and lower-cases the rest.",
)
def initcap(text: str) -> str:
    out: list[str] = []
    at_word_start = True
    for ch in text:
        if ch.isspace():
            at_word_start = True
            out.append(ch)
        else:
            out.append(ch.upper() if at_word_start else ch.lower())
            at_word_start = False
    return "".join(out)


@scalar_function("TRIM", params=[STRING], returns=STRING, category=_CATEGORY,
                 description="Removes leading and trailing spaces (and control characters) from a string.")
def trim(text: str) -> str:
    return text.strip(_JAVA_TRIMMED)


@scalar_function("LTRIM", params=[STRING], returns=STRING, category=_CATEGORY,
                 description="Removes leading spaces (and control characters) from a string.")
def ltrim(text: str) -> str:
    return text.lstrip(_JAVA_TRIMMED)


@scalar_function("RTRIM", params=[STRING], returns=STRING, category=_CATEGORY,
                 description="Removes trailing spaces (and control characters) from a string.")
def rtrim(text: str) -> str:
    return text.rstrip(_JAVA_TRIMMED)


# --------------------------------------------------------------------------- length, search, replace


@scalar_function("LEN", params=[STRING], returns=INTEGER, category=_CATEGORY,
                 description="Returns the length of a string (in UTF-16 code units, as Java counts).")
def len_string(text: str) -> int:
    return _java_length(text)


@scalar_function("LEN", params=[BYTES], returns=INTEGER, category=_CATEGORY,
                 description="Returns the number of bytes in a BYTES value.")
def len_bytes(data: bytes) -> int:
    return len(data)


def _instr(text: str, needle: str, position: int = 1, occurrence: int = 1) -> int:
    if position == 0 or occurrence < 1:
        return 0
    found = -1
    if position > 0:
        start = position - 1
        for _ in range(occurrence):
            found = text.find(needle, start)
            if found < 0:
                return 0
            start = found + 1
    else:
        # a negative position searches backwards, starting that many characters from the end
        last_start = len(text) + position
        for _ in range(occurrence):
            if last_start < 0:
                return 0
            found = text.rfind(needle, 0, last_start + len(needle))
            if found < 0:
                return 0
            last_start = found - 1
    return found + 1


_INSTR_DESCRIPTION = (
    "Returns the 1-based position of a substring (optionally searching from a position, backwards when "
    "negative, and for the n-th occurrence), or 0 if not found."
)
for _instr_params in ([STRING, STRING], [STRING, STRING, INTEGER], [STRING, STRING, INTEGER, INTEGER]):
    scalar_function("INSTR", params=_instr_params, returns=INTEGER, category=_CATEGORY,
                    description=_INSTR_DESCRIPTION)(_instr)


@scalar_function("REPLACE", params=[STRING, STRING, STRING], returns=STRING, category=_CATEGORY,
                 description="Replaces every occurrence of a substring with another string.")
def replace(text: str, old: str, new: str) -> str:
    return text.replace(old, new)


# --------------------------------------------------------------------------- slicing and padding


def _substring(value: Text, position: int, length: int | None = None) -> Text:
    size = len(value)
    # a negative position counts from the end; 0 reads like 1
    start = max(size + position, 0) if position < 0 else max(min(position - 1, size), 0)
    end = size if length is None else max(min(start + length, size), start)
    return value[start:end]


_SUBSTRING_DESCRIPTION = (
    "Returns the part of a {what} starting at a 1-based position (negative counts from the end), "
    "optionally limited to a length."
)
for _kind, _what in ((STRING, "string"), (BYTES, "byte array")):
    for _sub_params in ([_kind, INTEGER], [_kind, INTEGER, INTEGER]):
        scalar_function("SUBSTRING", params=_sub_params, returns=_kind, category=_CATEGORY,
                        description=_SUBSTRING_DESCRIPTION.format(what=_what))(_substring)


def _pad(value: Text, length: int, padding: Text, on_left: bool) -> Text | None:
    if length < 0 or not padding:
        return None
    if len(value) >= length:
        return value[:length]
    missing = length - len(value)
    fill = (padding * (missing // len(padding) + 1))[:missing]
    return fill + value if on_left else value + fill


def lpad(value: Text, length: int, padding: Text) -> Text | None:
    return _pad(value, length, padding, on_left=True)


def rpad(value: Text, length: int, padding: Text) -> Text | None:
    return _pad(value, length, padding, on_left=False)


_PAD_DESCRIPTION = (
    "Pads the input {side} with the padding to the target length, truncating longer input; "
    "NULL for empty padding or negative length."
)
for _kind in (STRING, BYTES):
    scalar_function("LPAD", params=[_kind, INTEGER, _kind], returns=_kind, category=_CATEGORY,
                    description=_PAD_DESCRIPTION.format(side="on the left"))(lpad)
    scalar_function("RPAD", params=[_kind, INTEGER, _kind], returns=_kind, category=_CATEGORY,
                    description=_PAD_DESCRIPTION.format(side="on the right"))(rpad)


# --------------------------------------------------------------------------- splitting


def _split(value: Text, delimiter: Text) -> list[Text]:
    if not delimiter:
        return [value[i:i + 1] for i in range(len(value))] or [value]
    return value.split(delimiter)


@scalar_function(
    "SPLIT", params=[STRING, STRING], returns=ArrayType(STRING), category=_CATEGORY,
    description="Splits a string on a delimiter (every character when the delimiter is empty).",
)
def split_string(text: str, delimiter: str) -> list[str]:
    return _split(text, delimiter)


@scalar_function(
    "SPLIT", params=[BYTES, BYTES], returns=ArrayType(BYTES), category=_CATEGORY,
    description="Splits a byte array on a delimiter (every byte when the delimiter is empty).",
)
def split_bytes(data: bytes, delimiter: bytes) -> list[bytes]:
    return _split(data, delimiter)


@scalar_function(
    "SPLIT_TO_MAP", params=[STRING, STRING, STRING], returns=MapType(STRING, STRING), null_on_null=False,
    category=_CATEGORY,
    description="Splits a string into entries and each entry into key and value; later keys win.",
)
def split_to_map(text: str | None, entry_delimiter: str | None, kv_delimiter: str | None) -> dict[str, str] | None:
    if text is None or not entry_delimiter or not kv_delimiter:
        return None
    entries: dict[str, str] = {}
    for entry in text.split(entry_delimiter):
        key, found, value = entry.partition(kv_delimiter)
        if found:
            entries[key] = value
    return entries


# --------------------------------------------------------------------------- masking

# Mask characters as ksqlDB defaults them: upper, lower, digit, other.
_DEFAULT_MASK = ("X", "x", "n", "-")


def _mask(text: str, upper: str | None, lower: str | None, digit: str | None, other: str | None) -> str:
    """Replaces each character by its class's mask character; a NULL (or empty) mask leaves that class alone."""

    def replacement(ch: str) -> str:
        if ch.isupper():
            mask = upper
        elif ch.islower():
            mask = lower
        elif ch.isdecimal():
            mask = digit
        else:
            mask = other
        return mask[0] if mask else ch

    return "".join(replacement(ch) for ch in text)


@scalar_function("MASK", params=[STRING], returns=STRING, category=_CATEGORY,
                 description="Masks a string: upper-case to 'X', lower-case to 'x', digits to 'n', others to '-'.")
def mask(text: str) -> str:
    return _mask(text, *_DEFAULT_MASK)


@scalar_function(
    "MASK", params=[STRING, STRING, STRING, STRING, STRING], returns=STRING, null_on_null=False,
    category=_CATEGORY,
    description="Masks a string with the given upper, lower, digit and other mask characters (NULL: keep).",
)
def mask_with(text: str | None, upper: str | None, lower: str | None, digit: str | None,
              other: str | None) -> str | None:
    return None if text is None else _mask(text, upper, lower, digit, other)


# Each partial mask names the [start, end) span it masks, given the string length and numChars.
_Span = Callable[[int, int], tuple[int, int]]
_PARTIAL_MASKS: list[tuple[str, _Span, str]] = [
    ("MASK_LEFT", lambda size, n: (0, min(n, size)), "masks only the first n characters"),
    ("MASK_RIGHT", lambda size, n: (max(size - n, 0), size), "masks only the last n characters"),
    ("MASK_KEEP_LEFT", lambda size, n: (min(n, size), size), "masks all but the first n characters"),
    ("MASK_KEEP_RIGHT", lambda size, n: (0, max(size - n, 0)), "masks all but the last n characters"),
]


def _register_partial_mask(name: str, span: _Span, what: str) -> None:
    def masked(text: str | None, count: int | None, upper: str | None, lower: str | None,
               digit: str | None, other: str | None) -> str | None:
        if text is None or count is None:
            return None
        if count < 0:
            raise ValueError(f"function {name.lower()} requires a non-negative number of characters")
        start, end = span(len(text), count)
        return text[:start] + _mask(text[start:end], upper, lower, digit, other) + text[end:]

    def masked_with_defaults(text: str, count: int) -> str | None:
        return masked(text, count, *_DEFAULT_MASK)

    scalar_function(name, params=[STRING, INTEGER], returns=STRING, category=_CATEGORY,
                    description=f"Like MASK, but {what}.")(masked_with_defaults)
    scalar_function(name, params=[STRING, INTEGER, STRING, STRING, STRING, STRING], returns=STRING,
                    null_on_null=False, category=_CATEGORY,
                    description=f"Like MASK with explicit mask characters, but {what}.")(masked)


for _name, _span, _what in _PARTIAL_MASKS:
    _register_partial_mask(_name, _span, _what)


# --------------------------------------------------------------------------- identifiers and hashes


@scalar_function("UUID", params=[], returns=STRING, category=_CATEGORY,
                 description="Returns a random (version 4) UUID string.")
def random_uuid() -> str:
    return str(uuid.uuid4())


@scalar_function("UUID", params=[BYTES], returns=STRING, category=_CATEGORY,
                 description="Renders a 16-byte value as a UUID string.")
def uuid_from_bytes(data: bytes) -> str:
    if len(data) != 16:
        raise ValueError(f"UUID requires exactly 16 bytes, got {len(data)}")
    return str(uuid.UUID(bytes=data))


@scalar_function("MD5", params=[STRING], returns=STRING, category=_CATEGORY,
                 description="Returns the MD5 hash of a string's UTF-8 bytes as 32 lower-case hex digits.")
def md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8", "surrogatepass")).hexdigest()
