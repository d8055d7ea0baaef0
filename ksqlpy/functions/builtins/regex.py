"""Built-in REGEXP_* functions, with Java regular-expression syntax translated onto Python's re module."""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Callable

from ksqlpy.functions.registry import scalar_function
from ksqlpy.types import INTEGER, STRING, ArrayType

_CATEGORY = "REGULAR EXPRESSION"

# Java's POSIX character classes (\p{Name}), as the members of a Python character class.
_POSIX_CLASSES = {
    "Lower": "a-z",
    "Upper": "A-Z",
    "ASCII": "\\x00-\\x7F",
    "Alpha": "a-zA-Z",
    "Digit": "0-9",
    "Alnum": "a-zA-Z0-9",
    "Punct": "!-/:-@\\[-`{-~",
    "Graph": "!-~",
    "Print": " -~",
    "Blank": " \\t",
    "Cntrl": "\\x00-\\x1F\\x7F",
    "XDigit": "0-9a-fA-F",
    "Space": " \\t\\n\\x0B\\f\\r",
}
_HORIZONTAL_SPACE = " \\t\\xA0\\u1680\\u180E\\u2000-\\u200A\\u202F\\u205F\\u3000"


class _JavaRegexTranslator:
    """Rewrites the Java-only constructs of one pattern into their Python spelling."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.pos = 0
        self.in_class = False
        self.out: list[str] = []

    def translate(self) -> str:
        pattern = self.pattern
        while self.pos < len(pattern):
            ch = pattern[self.pos]
            if ch == "\\" and self.pos + 1 < len(pattern):
                self._escape(pattern[self.pos + 1])
            elif self.in_class:
                self._class_member(ch)
            elif ch == "[":
                self.in_class = True
                self._emit(ch, 1)
            elif pattern.startswith("(?<", self.pos) and not pattern.startswith(("(?<=", "(?<!"), self.pos):
                self._emit("(?P<", 3)  # named group
            else:
                self._emit(ch, 1)
        return "".join(self.out)

    def _emit(self, text: str, consumed: int) -> None:
        self.out.append(text)
        self.pos += consumed

    def _class_member(self, ch: str) -> None:
        following = self.pattern[self.pos + 1:self.pos + 2]
        if ch == "[" or (ch == "&" and following == "&"):
            raise ValueError("nested character classes and class intersections are not supported")
        if ch == "]":
            self.in_class = False
        # Java reads doubled '-', '|' and '~' literally; Python reserves them for future set operations
        self._emit("\\" + ch if ch in "-|~" and following == ch else ch, 1)

    def _escape(self, code: str) -> None:
        pattern = self.pattern
        if code == "Q":
            end = pattern.find("\\E", self.pos + 2)
            literal = pattern[self.pos + 2:] if end < 0 else pattern[self.pos + 2:end]
            self.out.append(re.escape(literal))
            self.pos = len(pattern) if end < 0 else end + 2
        elif code in "pP" and pattern.startswith("{", self.pos + 2):
            close = pattern.find("}", self.pos + 3)
            name = pattern[self.pos + 3:close] if close > 0 else ""
            members = _POSIX_CLASSES.get(name.removeprefix("Is"))
            if members is None:
                raise ValueError(f"unsupported character class \\{code}{{{name}}}")
            self._emit_class(members, negated=code == "P", consumed=close + 1 - self.pos)
        elif code == "h":
            self._emit_class(_HORIZONTAL_SPACE, negated=False, consumed=2)
        elif code == "z":
            self._emit("\\Z", 2)
        elif code == "Z":
            self._emit("(?=\\n?\\Z)", 2)  # Java's \Z also matches before a final line terminator
        elif code == "k" and pattern.startswith("<", self.pos + 2):
            close = pattern.index(">", self.pos + 3)
            self._emit(f"(?P={pattern[self.pos + 3:close]})", close + 1 - self.pos)
        else:
            self._emit(pattern[self.pos:self.pos + 2], 2)

    def _emit_class(self, members: str, negated: bool, consumed: int) -> None:
        if self.in_class:
            if negated:
                raise ValueError("negated classes inside a character class are not supported")
            self._emit(members, consumed)
        else:
            self._emit(f"[{'^' if negated else ''}{members}]", consumed)


@functools.lru_cache(maxsize=512)
def compile_java_regex(pattern: str) -> re.Pattern[str]:
    """Compiles a Java regular expression; ValueError when it is invalid or uses unsupported syntax."""
    try:
        translated = _JavaRegexTranslator(pattern).translate()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            # Java's \w, \d, \s, \b and case-insensitive matching are ASCII-only by default
            return re.compile(translated, re.ASCII)
    except (re.error, ValueError) as error:
        raise ValueError(f"Invalid regular expression '{pattern}': {error}") from None


def _parse_replacement(template: str, pattern: re.Pattern[str]) -> list[str | int]:
    """Splits a Java replacement string into literal text and group references ($n, ${name}, \\x escapes)."""
    parts: list[str | int] = []
    literal: list[str] = []
    pos = 0
    while pos < len(template):
        ch = template[pos]
        if ch == "\\":
            if pos + 1 >= len(template):
                raise ValueError("character to be escaped is missing")
            literal.append(template[pos + 1])
            pos += 2
            continue
        if ch != "$":
            literal.append(ch)
            pos += 1
            continue
        if template.startswith("{", pos + 1):
            close = template.find("}", pos + 2)
            name = template[pos + 2:close] if close > 0 else ""
            if name not in pattern.groupindex:
                raise ValueError(f"No group with name {{{name}}}")
            group = pattern.groupindex[name]
            pos = close + 1
        else:
            if pos + 1 >= len(template) or not template[pos + 1].isdigit():
                raise ValueError("Illegal group reference")
            group = int(template[pos + 1])
            if group > pattern.groups:
                raise ValueError(f"No group {group}")
            pos += 2
            # further digits extend the reference only while the group exists, as in Java
            while pos < len(template) and template[pos].isdigit() and group * 10 + int(template[pos]) <= pattern.groups:
                group = group * 10 + int(template[pos])
                pos += 1
        if literal:
            parts.append("".join(literal))
            literal = []
        parts.append(group)
    if literal:
        parts.append("".join(literal))
    return parts


@functools.lru_cache(maxsize=512)
def _java_replacer(template: str, pattern: re.Pattern[str]) -> Callable[[re.Match[str]], str]:
    parts = _parse_replacement(template, pattern)

    def expand(match: re.Match[str]) -> str:
        return "".join(part if isinstance(part, str) else (match.group(part) or "") for part in parts)

    return expand


def _group_of(match: re.Match[str], group: int) -> str | None:
    if group < 0 or group > match.re.groups:
        raise ValueError(f"No group {group}")
    return match.group(group)


@scalar_function(
    "REGEXP_EXTRACT", params=[STRING, STRING], returns=STRING, category=_CATEGORY,
    description="Returns the first substring matching a regular expression, or NULL.",
)
@scalar_function(
    "REGEXP_EXTRACT", params=[STRING, STRING, INTEGER], returns=STRING, category=_CATEGORY,
    description="Returns the given capturing group of the first match of a regular expression, or NULL.",
)
def regexp_extract(pattern: str, text: str, group: int = 0) -> str | None:
    match = compile_java_regex(pattern).search(text)
    return None if match is None else _group_of(match, group)


@scalar_function(
    "REGEXP_EXTRACT_ALL", params=[STRING, STRING], returns=ArrayType(STRING), category=_CATEGORY,
    description="Returns every substring matching a regular expression.",
)
@scalar_function(
    "REGEXP_EXTRACT_ALL", params=[STRING, STRING, INTEGER], returns=ArrayType(STRING), category=_CATEGORY,
    description="Returns the given capturing group of every match of a regular expression.",
)
def regexp_extract_all(pattern: str, text: str, group: int = 0) -> list[str | None]:
    return [_group_of(match, group) for match in compile_java_regex(pattern).finditer(text)]


@scalar_function(
    "REGEXP_REPLACE", params=[STRING, STRING, STRING], returns=STRING, category=_CATEGORY,
    description="Replaces every match of a regular expression; the replacement may use $n and ${name}.",
)
def regexp_replace(text: str, pattern: str, replacement: str) -> str:
    compiled = compile_java_regex(pattern)
    return compiled.sub(_java_replacer(replacement, compiled), text)


@scalar_function(
    "REGEXP_SPLIT_TO_ARRAY", params=[STRING, STRING], returns=ArrayType(STRING), category=_CATEGORY,
    description="Splits a string around matches of a regular expression, keeping empty pieces.",
)
def regexp_split_to_array(text: str, pattern: str) -> list[str]:
    if not pattern:
        return list(text) or [text]
    pieces: list[str] = []
    piece_start = 0
    for match in compile_java_regex(pattern).finditer(text):
        if match.end() == 0:  # as in Java, an empty match at the start yields no leading empty piece
            continue
        pieces.append(text[piece_start:match.start()])
        piece_start = match.end()
    pieces.append(text[piece_start:])
    return pieces
