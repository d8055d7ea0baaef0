"""Built-in functions converting between STRING and BYTES in the hex, utf8, ascii and base64 encodings."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from typing import TypeVar

from ksqlpy.functions.registry import scalar_function
from ksqlpy.types import BYTES, STRING

_CATEGORY = "STRING"

# ENCODE accepts hex written as 0x..., X'...' or x'...' as well as bare digits.
_HEX_LITERAL = re.compile(r"0x(?P<a>.*)|[xX]'(?P<b>.*)'", re.DOTALL)
_HEX_DIGITS = re.compile(r"(?:[0-9a-fA-F]{2})*")


def _hex_to_bytes(text: str) -> bytes:
    if not _HEX_DIGITS.fullmatch(text):
        raise ValueError(f"'{text}' is not valid hex")
    return bytes.fromhex(text)


def _lenient_hex_to_bytes(text: str) -> bytes:
    literal = _HEX_LITERAL.fullmatch(text)
    if literal is not None:
        return _hex_to_bytes(literal.group("a") if literal.group("a") is not None else literal.group("b"))
    # bare digits of odd length read as if a leading zero had been written
    return _hex_to_bytes("0" + text if len(text) % 2 else text)


def _base64_to_bytes(text: str) -> bytes:
    # Java's decoder accepts missing '=' padding; Python's insists on it
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.b64decode(padded, validate=True)
    except binascii.Error as error:
        raise ValueError(f"'{text}' is not valid base64: {error}") from None


def _ascii_to_bytes(text: str) -> bytes:
    # Java replaces characters outside US-ASCII with '?'
    return text.encode("ascii", "replace")


def _utf8_to_bytes(text: str) -> bytes:
    return text.encode("utf-8", "replace")


def _bytes_to_utf8(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _bytes_to_ascii(data: bytes) -> str:
    return data.decode("ascii", "replace")


def _bytes_to_base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


Codec = TypeVar("Codec")
_Parser = Callable[[str], bytes]
_Renderer = Callable[[bytes], str]

# TO_BYTES / FROM_BYTES: strict hex in, upper-case hex out.
_PARSERS: dict[str, _Parser] = {
    "hex": _hex_to_bytes, "utf8": _utf8_to_bytes, "ascii": _ascii_to_bytes, "base64": _base64_to_bytes,
}
_RENDERERS: dict[str, _Renderer] = {
    "hex": lambda data: data.hex().upper(), "utf8": _bytes_to_utf8, "ascii": _bytes_to_ascii,
    "base64": _bytes_to_base64,
}
# ENCODE: lenient hex in (prefixes, odd length), lower-case hex out.
_ENCODE_PARSERS: dict[str, _Parser] = {**_PARSERS, "hex": _lenient_hex_to_bytes}
_ENCODE_RENDERERS: dict[str, _Renderer] = {**_RENDERERS, "hex": bytes.hex}


def _lookup(table: dict[str, Codec], encoding: str) -> Codec:
    codec = table.get(encoding.lower())
    if codec is None:
        raise ValueError(f"Supported encodings are: hex, utf8, ascii and base64; got '{encoding}'")
    return codec


@scalar_function(
    "ENCODE", params=[STRING, STRING, STRING], returns=STRING, category=_CATEGORY,
    description="Re-encodes a string from one encoding (hex, utf8, ascii, base64) to another.",
)
def encode(text: str, input_encoding: str, output_encoding: str) -> str:
    return _lookup(_ENCODE_RENDERERS, output_encoding)(_lookup(_ENCODE_PARSERS, input_encoding)(text))


@scalar_function(
    "TO_BYTES", params=[STRING, STRING], returns=BYTES, category=_CATEGORY,
    description="Converts a string written in an encoding (hex, utf8, ascii, base64) to BYTES.",
)
def to_bytes(text: str, encoding: str) -> bytes:
    return _lookup(_PARSERS, encoding)(text)


@scalar_function(
    "FROM_BYTES", params=[BYTES, STRING], returns=STRING, category=_CATEGORY,
    description="Converts BYTES to a string in an encoding (hex, utf8, ascii, base64).",
)
def from_bytes(data: bytes, encoding: str) -> str:
    return _lookup(_RENDERERS, encoding)(data)
