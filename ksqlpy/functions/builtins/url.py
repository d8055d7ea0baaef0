"""Built-in URL functions: form-encoding of parameters and extracting parts of a URI the way java.net.URI does."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from ksqlpy.functions.registry import scalar_function
from ksqlpy.types import INTEGER, STRING

_CATEGORY = "URL"

# --------------------------------------------------------------------------- form encoding

# application/x-www-form-urlencoded leaves only these bytes alone (and turns space into '+').
_FORM_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.*")
_PERCENT_RUN = re.compile(r"(?:%[0-9a-fA-F]{2})+")


def _percent_decode(text: str) -> str:
    """Decodes runs of %XX as UTF-8 (malformed bytes become U+FFFD); a stray '%' is an error, as in Java."""
    if "%" in _PERCENT_RUN.sub("", text):
        raise ValueError(f"Illegal escape sequence in '{text}'")
    return unquote(text, errors="replace")


@scalar_function(
    "URL_ENCODE_PARAM", params=[STRING], returns=STRING, category=_CATEGORY,
    description="Encodes a value for use as a URL query parameter (application/x-www-form-urlencoded).",
)
def url_encode_param(text: str) -> str:
    return "".join(
        chr(byte) if byte in _FORM_SAFE else "+" if byte == 0x20 else f"%{byte:02X}"
        for byte in text.encode("utf-8", "surrogatepass")
    )


@scalar_function(
    "URL_DECODE_PARAM", params=[STRING], returns=STRING, category=_CATEGORY,
    description="Decodes an application/x-www-form-urlencoded value ('+' is a space, %XX escapes are UTF-8).",
)
def url_decode_param(text: str) -> str:
    return _percent_decode(text.replace("+", " "))


# --------------------------------------------------------------------------- URI parsing

# Characters java.net.URI accepts literally anywhere (RFC 2396 unreserved + reserved, plus '%' escapes);
# other non-ASCII characters are accepted too unless they are controls or spaces.
_URI_ASCII = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!~*'();/?:@&=+$,%[]#"
)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_IPV6 = re.compile(r"\[[0-9A-Fa-f:.]+(?:%[^\]]+)?\]")


@dataclass(frozen=True)
class _Uri:
    """The parts of a URI that java.net.URI exposes; raw (still %-encoded) except scheme, host and port."""

    scheme: str | None
    host: str | None
    port: int | None
    raw_path: str | None
    raw_query: str | None
    raw_fragment: str | None


def _invalid(url: str, why: str) -> ValueError:
    return ValueError(f"URL input has invalid syntax: {url} ({why})")


def _check_characters(url: str) -> None:
    for ch in url:
        if ch not in _URI_ASCII and (ch.isascii() or not ch.isprintable() or ch.isspace()):
            raise _invalid(url, f"illegal character {ch!r}")
    if "%" in _PERCENT_RUN.sub("", url):
        raise _invalid(url, "malformed escape")


def _server_authority(authority: str) -> tuple[str | None, int | None]:
    """Host and port of a server-based authority; (None, None) when it is only registry-based, as in Java."""
    host_port = authority.rpartition("@")[2]
    if host_port.startswith("["):
        host, _, port_text = host_port.partition("]")
        host += "]"
        if port_text and not port_text.startswith(":"):
            return None, None
        port_text = port_text[1:]
        valid_host = _IPV6.fullmatch(host) is not None
    else:
        host, _, port_text = host_port.partition(":")
        valid_host = _HOSTNAME.fullmatch(host) is not None
    if not valid_host or (port_text and not port_text.isdigit()):
        return None, None
    return host, int(port_text) if port_text else None


def _parse_uri(url: str) -> _Uri:
    _check_characters(url)
    before_fragment, hash_mark, fragment = url.partition("#")
    if "#" in fragment:
        raise _invalid(url, "second '#'")
    scheme: str | None = None
    rest = before_fragment
    colon = re.search(r"[:/?]", before_fragment)
    if colon is not None and colon.group() == ":":
        scheme = before_fragment[:colon.start()]
        if not _SCHEME.fullmatch(scheme):
            raise _invalid(url, "illegal scheme name")
        rest = before_fragment[colon.end():]
        if not rest:
            raise _invalid(url, "expected scheme-specific part")
        if not rest.startswith("/"):  # opaque, like mailto:someone
            return _Uri(scheme, None, None, None, None, fragment if hash_mark else None)
    host: str | None = None
    port: int | None = None
    if rest.startswith("//"):
        authority_end = re.search(r"[/?]", rest[2:])
        split_at = len(rest) if authority_end is None else authority_end.start() + 2
        authority, rest = rest[2:split_at], rest[split_at:]
        host, port = _server_authority(authority)
    path, question_mark, query = rest.partition("?")
    if "[" in path + query + fragment or "]" in path + query + fragment:
        raise _invalid(url, "brackets outside the host")
    return _Uri(scheme, host, port, path, query if question_mark else None, fragment if hash_mark else None)


def _decoded(raw: str | None) -> str | None:
    return None if raw is None else unquote(raw, errors="replace")


# --------------------------------------------------------------------------- URL_EXTRACT_*

_INVALID_NOTE = "NULL if the URL is not a valid URI"


@scalar_function("URL_EXTRACT_PROTOCOL", params=[STRING], returns=STRING, category=_CATEGORY,
                 description=f"Extracts the protocol (scheme) of a URL; NULL if it has none or {_INVALID_NOTE}.")
def url_extract_protocol(url: str) -> str | None:
    return _parse_uri(url).scheme


@scalar_function("URL_EXTRACT_HOST", params=[STRING], returns=STRING, category=_CATEGORY,
                 description=f"Extracts the host name of a URL; {_INVALID_NOTE}.")
def url_extract_host(url: str) -> str | None:
    return _parse_uri(url).host


@scalar_function("URL_EXTRACT_PORT", params=[STRING], returns=INTEGER, category=_CATEGORY,
                 description=f"Extracts the explicit port of a URL; NULL if it has none or {_INVALID_NOTE}.")
def url_extract_port(url: str) -> int | None:
    return _parse_uri(url).port


@scalar_function("URL_EXTRACT_PATH", params=[STRING], returns=STRING, category=_CATEGORY,
                 description=f"Extracts the decoded path of a URL ('' when empty); {_INVALID_NOTE}.")
def url_extract_path(url: str) -> str | None:
    return _decoded(_parse_uri(url).raw_path)


@scalar_function("URL_EXTRACT_QUERY", params=[STRING], returns=STRING, category=_CATEGORY,
                 description=f"Extracts the decoded query string of a URL; NULL if absent or {_INVALID_NOTE}.")
def url_extract_query(url: str) -> str | None:
    return _decoded(_parse_uri(url).raw_query)


@scalar_function("URL_EXTRACT_FRAGMENT", params=[STRING], returns=STRING, category=_CATEGORY,
                 description=f"Extracts the decoded fragment of a URL; NULL if absent or {_INVALID_NOTE}.")
def url_extract_fragment(url: str) -> str | None:
    return _decoded(_parse_uri(url).raw_fragment)


@scalar_function(
    "URL_EXTRACT_PARAMETER", params=[STRING, STRING], returns=STRING, category=_CATEGORY,
    description=f"Extracts the value of a query parameter of a URL ('' if it has no value); NULL if absent or "
                f"{_INVALID_NOTE}.",
)
def url_extract_parameter(url: str, name: str) -> str | None:
    query = _decoded(_parse_uri(url).raw_query)
    if query is None:
        return None
    for parameter in query.split("&"):
        key, _, value = parameter.partition("=")
        if key == name:
            return value
    return None
