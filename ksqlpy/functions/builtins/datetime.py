"""Built-in DATE_TIME functions, with a cached interpreter of Java DateTimeFormatter patterns and Java zone IDs."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ksqlpy.functions.registry import scalar_function
from ksqlpy.types import BIGINT, DATE, INTEGER, STRING, TIME, TIMESTAMP

CATEGORY = "DATE_TIME"

MILLIS_PER_DAY = 86_400_000
_NANOS_PER_MILLI = 1_000_000
_NANOS_PER_DAY = MILLIS_PER_DAY * _NANOS_PER_MILLI
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DAY = date(1970, 1, 1)


# --------------------------------------------------------------------------- time zones


@dataclass(frozen=True)
class Zone:
    """A Java ZoneId: its ID text (as Java prints it for pattern 'VV') and the rules behind it."""

    zone_id: str
    rules: tzinfo
    fixed: bool  # a bare offset such as +02:00, which Java names by its ID rather than an abbreviation


UTC_ZONE = Zone("UTC", ZoneInfo("UTC"), fixed=False)

# ZoneId.SHORT_IDS plus the daylight-saving abbreviations ksqlDB's documentation uses as examples
_SHORT_IDS = {
    "ACT": "Australia/Darwin", "AET": "Australia/Sydney", "AGT": "America/Argentina/Buenos_Aires",
    "ART": "Africa/Cairo", "AST": "America/Anchorage", "BET": "America/Sao_Paulo", "BST": "Asia/Dhaka",
    "CAT": "Africa/Harare", "CNT": "America/St_Johns", "CST": "America/Chicago", "CTT": "Asia/Shanghai",
    "EAT": "Africa/Addis_Ababa", "ECT": "Europe/Paris", "IET": "America/Indiana/Indianapolis",
    "IST": "Asia/Kolkata", "JST": "Asia/Tokyo", "MIT": "Pacific/Apia", "NET": "Asia/Yerevan",
    "NST": "Pacific/Auckland", "PLT": "Asia/Karachi", "PNT": "America/Phoenix", "PRT": "America/Puerto_Rico",
    "PST": "America/Los_Angeles", "SST": "Pacific/Guadalcanal", "VST": "Asia/Ho_Chi_Minh",
    "PDT": "America/Los_Angeles", "MDT": "America/Denver", "CDT": "America/Chicago", "EDT": "America/New_York",
}

# Zone abbreviations as parsed by pattern letter 'z' (English names, like Java's default locale)
_ZONE_NAMES = {
    "PST": "America/Los_Angeles", "PDT": "America/Los_Angeles", "PT": "America/Los_Angeles",
    "MST": "America/Denver", "MDT": "America/Denver", "MT": "America/Denver",
    "CST": "America/Chicago", "CDT": "America/Chicago", "CT": "America/Chicago",
    "EST": "America/New_York", "EDT": "America/New_York", "ET": "America/New_York",
    "AKST": "America/Anchorage", "AKDT": "America/Anchorage", "HST": "Pacific/Honolulu",
    "GMT": "GMT", "UTC": "UTC", "UT": "UTC", "Z": "UTC",
    "BST": "Europe/London", "IST": "Asia/Kolkata", "CET": "CET", "CEST": "CET", "EET": "EET", "EEST": "EET",
    "WET": "WET", "WEST": "WET", "JST": "Asia/Tokyo", "AEST": "Australia/Sydney", "AEDT": "Australia/Sydney",
}

_OFFSET = re.compile(r"([+-])(\d{1,2})(?::?(\d{2}))?(?::?(\d{2}))?")


def _offset_seconds(text: str) -> int:
    """Parses a Java ZoneOffset ID: Z, +h, +hh, +hh:mm, +hhmm, +hh:mm:ss or +hhmmss."""
    if text.upper() == "Z":
        return 0
    match = _OFFSET.fullmatch(text)
    if match is None:
        raise ValueError(f"Invalid ID for ZoneOffset, invalid format: {text}")
    sign, hours, minutes, seconds = match.groups()
    total = int(hours) * 3600 + int(minutes or 0) * 60 + int(seconds or 0)
    if int(hours) > 18 or int(minutes or 0) > 59 or int(seconds or 0) > 59 or total > 18 * 3600:
        raise ValueError(f"Zone offset out of range: {text}")
    return -total if sign == "-" else total


def offset_id(seconds: int) -> str:
    """Java's ZoneOffset ID: Z, +02:00, -05:30, +01:02:03."""
    if seconds == 0:
        return "Z"
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours:02d}:{minutes:02d}" + (f":{secs:02d}" if secs else "")


def _fixed_zone(seconds: int) -> Zone:
    return Zone(offset_id(seconds), timezone(timedelta(seconds=seconds)), fixed=True)


@lru_cache(maxsize=1024)
def resolve_zone(zone_id: str) -> Zone:
    """The zone named by a Java ZoneId / TimeZone ID: an offset, UTC/GMT[+offset], a region or a short ID."""
    if zone_id.upper() == "Z" or zone_id[:1] in "+-":
        return _fixed_zone(_offset_seconds(zone_id))
    for prefix in ("UTC", "GMT", "UT"):
        rest = zone_id[len(prefix):]
        if zone_id.startswith(prefix) and rest[:1] in ("+", "-"):
            seconds = _offset_seconds(rest)
            return Zone(prefix + offset_id(seconds).replace("Z", ""), timezone(timedelta(seconds=seconds)), False)
    try:
        return Zone(zone_id, ZoneInfo(zone_id), fixed=False)
    except (ZoneInfoNotFoundError, ValueError):
        pass
    region = _SHORT_IDS.get(zone_id)
    if region is None:
        raise ValueError(f"Unknown time-zone ID: {zone_id}")
    return Zone(region, ZoneInfo(region), fixed=False)


def _zone_from_name(name: str) -> Zone:
    region = _ZONE_NAMES.get(name.upper())
    return resolve_zone(region) if region is not None else resolve_zone(name)


# --------------------------------------------------------------------------- what patterns format from / parse to


@dataclass(frozen=True)
class _Temporal:
    """A value being formatted: a date, a time of day and a zone, any of which may be absent."""

    day: date | None = None
    millis_of_day: int | None = None
    zone: Zone | None = None
    offset_seconds: int | None = None
    zone_abbreviation: str | None = None


def _timestamp_temporal(epoch_millis: int, zone: Zone) -> _Temporal:
    local = (_EPOCH + timedelta(milliseconds=epoch_millis)).astimezone(zone.rules)
    offset = local.utcoffset()
    return _Temporal(
        day=local.date(),
        millis_of_day=((local.hour * 60 + local.minute) * 60 + local.second) * 1000 + local.microsecond // 1000,
        zone=zone,
        offset_seconds=int(offset.total_seconds()) if offset is not None else 0,
        zone_abbreviation=zone.zone_id if zone.fixed else local.tzname(),
    )


@dataclass
class _Parsed:
    """The fields a pattern recognised in a text, before they are resolved into a value."""

    fields: dict[str, int] = field(default_factory=dict)
    zone: Zone | None = None

    _DATE_FIELDS = frozenset({"year", "year2", "month", "day", "day_of_year", "era", "weekday"})
    _TIME_FIELDS = frozenset(
        {"hour", "hour12", "clock_hour", "clock_hour12", "ampm", "minute", "second", "nano", "milli_of_day",
         "nano_of_day"}
    )

    def has_date_fields(self) -> bool:
        return bool(self._DATE_FIELDS & self.fields.keys())

    def has_time_fields(self) -> bool:
        return bool(self._TIME_FIELDS & self.fields.keys())

    def local_date(self) -> date:
        year = self.fields.get("year", 1970)
        if "year2" in self.fields:
            year = 2000 + self.fields["year2"]  # Java's two-digit years cover 2000-2099
        if self.fields.get("era") == 0:
            year = 1 - year
        if "day_of_year" in self.fields:
            result = date(year, 1, 1) + timedelta(days=self.fields["day_of_year"] - 1)
            if result.year != year:
                raise ValueError(f"Invalid day of year {self.fields['day_of_year']} for {year}")
        else:
            month = self.fields.get("month", 1)
            day = self.fields.get("day", 1)
            if not 1 <= day <= 31:
                raise ValueError(f"Invalid day of month: {day}")
            # a day beyond the month's end is clamped to its last day, as Java's SMART resolver does
            last_day = ((date(year + month // 12, month % 12 + 1, 1)) - timedelta(days=1)).day
            result = date(year, month, min(day, last_day))
        weekday = self.fields.get("weekday")
        if weekday is not None and weekday != result.isoweekday():
            raise ValueError(f"Conflict found: day of week {weekday} differs from {result}")
        return result

    def nanos_of_day(self) -> int:
        f = self.fields
        if "nano_of_day" in f:
            return f["nano_of_day"]
        if "milli_of_day" in f:
            return f["milli_of_day"] * _NANOS_PER_MILLI
        hour = f.get("hour", 0)
        if "clock_hour" in f:
            hour = f["clock_hour"] % 24
        if "hour12" in f or "clock_hour12" in f:
            hour = f.get("hour12", f.get("clock_hour12", 0) % 12) + 12 * f.get("ampm", 0)
        elif "ampm" in f and "hour" not in f and "clock_hour" not in f:
            hour = 12 * f["ampm"]
        minute, second = f.get("minute", 0), f.get("second", 0)
        if hour > 23 or minute > 59 or second > 59:
            raise ValueError(f"Invalid time {hour}:{minute}:{second}")
        return ((hour * 60 + minute) * 60 + second) * 1_000_000_000 + f.get("nano", 0)


# --------------------------------------------------------------------------- the pattern language

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_QUARTER_NAMES = ("1st quarter", "2nd quarter", "3rd quarter", "4th quarter")


def _text_form(name: str, count: int) -> str:
    """Java text styles by letter count: 1-3 short, 4 full, 5 narrow."""
    if count == 4:
        return name
    if count == 5:
        return name[0]
    return name[:3]


def _padded(value: int, width: int) -> str:
    return f"{'-' if value < 0 else ''}{abs(value):0{width}d}"


def _required(value: Any, what: str) -> Any:
    if value is None:
        raise ValueError(f"Unsupported field: {what}")
    return value


def _format_offset(seconds: int, count: int, zero: str | None) -> str:
    """Pattern letters X/x (and Z with 5 letters): +HH[mm], +HHmm, +HH:mm, +HHmm[ss], +HH:mm[:ss]."""
    if seconds == 0 and zero is not None:
        return zero
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    colon = ":" if count in (3, 5) else ""
    text = f"{sign}{hours:02d}"
    if count == 1:
        return text + (f"{minutes:02d}" if minutes else "")
    text += f"{colon}{minutes:02d}"
    if count >= 4 and secs:
        text += f"{colon}{secs:02d}"
    return text


def _format_localized_offset(seconds: int, full: bool) -> str:
    """Pattern letter O (and ZZZZ): GMT, GMT+8, GMT+08:00."""
    if seconds == 0:
        return "GMT"
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if full:
        return f"GMT{sign}{hours:02d}:{minutes:02d}" + (f":{secs:02d}" if secs else "")
    return f"GMT{sign}{hours}" + (f":{minutes:02d}" if minutes or secs else "") + (f":{secs:02d}" if secs else "")


def _week_fields(day: date) -> tuple[int, int]:
    """Week-based year and week of year with Sunday-start weeks where week 1 contains January 1st (US)."""
    week_start = day - timedelta(days=day.isoweekday() % 7)
    week_year = (week_start + timedelta(days=6)).year
    first_of_year = date(week_year, 1, 1)
    first_week_start = first_of_year - timedelta(days=first_of_year.isoweekday() % 7)
    return week_year, (week_start - first_week_start).days // 7 + 1


def _format_field(letter: str, count: int, t: _Temporal) -> str:
    if letter in "GuyYDMLdQqwWEecF":
        day: date = _required(t.day, letter)
        if letter == "G":
            return {4: "Anno Domini", 5: "A"}.get(count, "AD")
        if letter in "uyY":
            year = _week_fields(day)[0] if letter == "Y" else day.year
            return f"{year % 100:02d}" if count == 2 else _padded(year, count)
        if letter == "D":
            return _padded(day.timetuple().tm_yday, count)
        if letter in "ML":
            return _text_form(_MONTHS[day.month - 1], count) if count >= 3 else _padded(day.month, count)
        if letter == "d":
            return _padded(day.day, count)
        if letter in "Qq":
            quarter = (day.month - 1) // 3 + 1
            return {3: f"Q{quarter}", 4: _QUARTER_NAMES[quarter - 1], 5: str(quarter)}.get(
                count, _padded(quarter, count))
        if letter == "w":
            return _padded(_week_fields(day)[1], count)
        if letter == "W":
            return _padded((day.day - 1 + date(day.year, day.month, 1).isoweekday() % 7) // 7 + 1, count)
        if letter in "ec" and count <= 2:
            return _padded(day.isoweekday() % 7 + 1, count)  # Sunday is day 1 in the US locale
        if letter == "F":
            return _padded((day.day - 1) // 7 + 1, count)
        return _text_form(_WEEKDAYS[day.weekday()], count)
    if letter in "aHkKhmsSAnN":
        millis: int = _required(t.millis_of_day, letter)
        hour, minute, second = millis // 3_600_000, millis // 60_000 % 60, millis // 1000 % 60
        nanos = millis % 1000 * _NANOS_PER_MILLI
        values = {
            "H": hour, "k": hour or 24, "K": hour % 12, "h": hour % 12 or 12, "m": minute, "s": second,
            "A": millis, "n": nanos, "N": millis * _NANOS_PER_MILLI,
        }
        if letter == "a":
            return "PM" if hour >= 12 else "AM"
        if letter == "S":
            return f"{nanos:09d}"[:count].ljust(count, "0")
        return _padded(values[letter], count)
    offset: int = _required(t.offset_seconds, letter)
    if letter == "V":
        zone: Zone = _required(t.zone, letter)
        return zone.zone_id
    if letter == "z":
        abbreviation: str = _required(t.zone_abbreviation, letter)
        return abbreviation
    if letter == "X":
        return _format_offset(offset, count, "Z")
    if letter == "x":
        return _format_offset(offset, count, None)
    if letter == "O":
        return _format_localized_offset(offset, full=count == 4)
    # letter Z
    if count == 4:
        return _format_localized_offset(offset, full=True)
    return _format_offset(offset, 5, "Z") if count == 5 else _format_offset(offset, 2, None)


def _names_regex(names: tuple[str, ...]) -> str:
    forms = sorted({n for name in names for n in (name, name[:3])}, key=len, reverse=True)
    return "|".join(re.escape(f) for f in forms)


def _name_index(names: tuple[str, ...], text: str) -> int:
    lowered = text.lower()
    return next(i for i, name in enumerate(names) if lowered in (name.lower(), name[:3].lower()))


_OFFSET_REGEX = r"Z|[+-]\d{2}(?::?\d{2}(?::?\d{2})?)?"
_ZONE_REGEX = r"[A-Za-z][A-Za-z0-9_/+\-]*"


_NUMERIC_FIELDS = {"d": "day", "H": "hour", "k": "clock_hour", "K": "hour12", "h": "clock_hour12", "m": "minute",
                   "s": "second", "D": "day_of_year", "A": "milli_of_day", "n": "nano", "N": "nano_of_day"}


def _numeric_regex(letter: str, count: int) -> str:
    """Digit counts as Java's pattern letters read them: one letter is 'any width', more is a fixed width."""
    if letter in "uyAnN":  # minimum widths
        return rf"\d{{{count},19}}"
    if letter == "D":
        return rf"\d{{{count},3}}"
    if count > 2:
        raise ValueError(f"Too many pattern letters: {letter}")
    return r"\d{1,19}" if count == 1 else r"\d{2}"


_Store = Callable[[_Parsed, str], None]


def _parse_rule(letter: str, count: int) -> tuple[str, _Store]:
    """The regex matching one pattern field and the way its matched text is stored among the parsed fields."""

    def store(name: str, convert: Callable[[str], int] = int) -> _Store:
        def put(parsed: _Parsed, text: str) -> None:
            parsed.fields[name] = convert(text)

        return put

    def store_zone(convert: Callable[[str], Zone]) -> _Store:
        def put(parsed: _Parsed, text: str) -> None:
            parsed.zone = convert(text)

        return put

    if letter in "uy":
        return (r"\d{2}", store("year2")) if count == 2 else (_numeric_regex(letter, count), store("year"))
    if letter in "ML" or letter == "E":
        names, name = (_MONTHS, "month") if letter in "ML" else (_WEEKDAYS, "weekday")
        if letter in "ML" and count < 3:
            return _numeric_regex(letter, count), store(name)
        # month numbers and ISO day-of-week numbers both count from 1
        return _names_regex(names), store(name, lambda text: _name_index(names, text) + 1)
    if letter in _NUMERIC_FIELDS:
        return _numeric_regex(letter, count), store(_NUMERIC_FIELDS[letter])
    if letter == "S":
        return rf"\d{{{count}}}", store("nano", lambda text: int(text.ljust(9, "0")[:9]))
    if letter == "a":
        return "AM|PM", store("ampm", lambda text: int(text.upper() == "PM"))
    if letter == "G":
        return "Anno Domini|Before Christ|AD|BC|A|B", store("era", lambda text: int(text.upper()[0] == "A"))
    if letter in "Xx" or (letter == "Z" and count != 4):
        return _OFFSET_REGEX, store_zone(lambda text: _fixed_zone(_offset_seconds(text)))
    if letter in "OZ":
        return r"GMT(?:[+-]\d{1,2}(?::\d{2}(?::\d{2})?)?)?", store_zone(
            lambda text: _fixed_zone(_offset_seconds(text[3:]) if len(text) > 3 else 0))
    if letter == "V":
        return rf"{_OFFSET_REGEX}|{_ZONE_REGEX}", store_zone(resolve_zone)
    if letter == "z":
        return _ZONE_REGEX, store_zone(_zone_from_name)
    raise ValueError(f"Parsing pattern letter '{letter}' is not supported")


_KNOWN_LETTERS = frozenset("GuyYDMLdQqwWEecFaHkKhmsSAnNVzOXxZ")
_Token = tuple[str, Any, int]  # ('field', letter, count) | ('literal', text, 0) | ('optional', tokens, 0)


def _tokenize(pattern: str) -> list[_Token]:
    stack: list[list[_Token]] = [[]]
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char.isascii() and char.isalpha():
            run = len(pattern[i:]) - len(pattern[i:].lstrip(char))
            if char not in _KNOWN_LETTERS:
                raise ValueError(f"Unknown pattern letter: {char}")
            stack[-1].append(("field", char, run))
            i += run
        elif char == "'":
            if pattern.startswith("''", i):  # two quotes outside a literal stand for one quote
                stack[-1].append(("literal", "'", 0))
                i += 2
                continue
            i += 1
            text = []
            while True:
                if i >= len(pattern):
                    raise ValueError(f"Pattern ends with an incomplete string literal: {pattern}")
                if pattern.startswith("''", i):
                    text.append("'")
                    i += 2
                elif pattern[i] == "'":
                    break
                else:
                    text.append(pattern[i])
                    i += 1
            stack[-1].append(("literal", "".join(text), 0))
            i += 1
        elif char == "[":
            stack.append([])
            i += 1
        elif char == "]":
            if len(stack) == 1:
                raise ValueError(f"Pattern invalid as it contains ] without previous [: {pattern}")
            optional = stack.pop()
            stack[-1].append(("optional", optional, 0))
            i += 1
        elif char in "{}#":
            raise ValueError(f"Pattern includes reserved character: '{char}'")
        else:
            stack[-1].append(("literal", char, 0))
            i += 1
    while len(stack) > 1:  # an unclosed '[' runs to the end of the pattern
        optional = stack.pop()
        stack[-1].append(("optional", optional, 0))
    return stack[0]


class DateTimePattern:
    """A Java DateTimeFormatter pattern, able to format and (case-insensitively) parse date/time values."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._tokens = _tokenize(pattern)
        # built on first parse, in one assignment so that threads sharing a cached pattern never see half of it
        self._parser: tuple[re.Pattern[str], list[_Store]] | None = None

    # formatting

    def _render(self, tokens: list[_Token], temporal: _Temporal) -> str:
        parts = []
        for kind, value, count in tokens:
            if kind == "literal":
                parts.append(value)
            elif kind == "field":
                parts.append(_format_field(value, count, temporal))
            else:
                # an optional section prints only when all its fields are available
                with contextlib.suppress(ValueError):
                    parts.append(self._render(value, temporal))
        return "".join(parts)

    def format_timestamp(self, epoch_millis: int, zone: Zone = UTC_ZONE) -> str:
        return self._render(self._tokens, _timestamp_temporal(epoch_millis, zone))

    def format_date(self, epoch_days: int) -> str:
        return self._render(self._tokens, _Temporal(day=_EPOCH_DAY + timedelta(days=epoch_days)))

    def format_time(self, millis_of_day: int) -> str:
        return self._render(self._tokens, _Temporal(millis_of_day=millis_of_day))

    # parsing

    @staticmethod
    def _compile(tokens: list[_Token], stores: list[_Store]) -> str:
        """The regex for `tokens`, one capturing group per field; each field's store is appended to `stores`."""
        parts = []
        for kind, value, count in tokens:
            if kind == "literal":
                parts.append(re.escape(value))
            elif kind == "field":
                regex, store = _parse_rule(value, count)
                stores.append(store)
                parts.append(f"({regex})")
            else:
                parts.append(f"(?:{DateTimePattern._compile(value, stores)})?")
        return "".join(parts)

    def _parse(self, text: str, allow_trailing_text: bool = False) -> _Parsed:
        if self._parser is None:
            stores: list[_Store] = []
            self._parser = (re.compile(self._compile(self._tokens, stores), re.IGNORECASE), stores)
        regex, stores = self._parser
        match = regex.match(text) if allow_trailing_text else regex.fullmatch(text)
        if match is None:
            raise ValueError(f"Text '{text}' could not be parsed with pattern '{self.pattern}'")
        parsed = _Parsed()
        for store, group in zip(stores, match.groups(), strict=True):
            if group is not None:
                store(parsed, group)
        return parsed

    def parse_timestamp(self, text: str, zone: Zone = UTC_ZONE) -> int:
        """Epoch milliseconds; fields missing from the text default to 1970-01-01T00:00:00 in the zone."""
        parsed = self._parse(text)
        nanos = parsed.nanos_of_day()
        local = datetime.combine(parsed.local_date(), datetime.min.time()) + timedelta(microseconds=nanos // 1000)
        instant = local.replace(tzinfo=(parsed.zone or zone).rules)
        return (instant - _EPOCH) // timedelta(milliseconds=1)

    def parse_date(self, text: str, lenient: bool = False) -> int:
        """Days since the epoch. Lenient parsing is java.text.SimpleDateFormat's, which PARSE_DATE follows:
        text after the pattern is ignored and time fields are accepted as long as they denote midnight."""
        parsed = self._parse(text, allow_trailing_text=lenient)
        has_time = parsed.nanos_of_day() != 0 if lenient else parsed.has_time_fields()
        if has_time:
            raise ValueError("Date format contains time field.")
        return (parsed.local_date() - _EPOCH_DAY).days

    def parse_time(self, text: str) -> int:
        parsed = self._parse(text)
        if parsed.has_date_fields():
            raise ValueError("Time format contains date field.")
        return parsed.nanos_of_day() // _NANOS_PER_MILLI


@lru_cache(maxsize=1000)
def date_time_pattern(pattern: str) -> DateTimePattern:
    """The (cached) interpreter of one Java date/time pattern."""
    return DateTimePattern(pattern)


# --------------------------------------------------------------------------- formatting and parsing functions


@scalar_function(
    "FORMAT_TIMESTAMP", params=[TIMESTAMP, STRING], returns=STRING, category=CATEGORY,
    description="Formats a TIMESTAMP as a string in UTC using a Java DateTimeFormatter pattern.",
)
def format_timestamp(timestamp: int, pattern: str, zone_id: str = "UTC") -> str:
    return date_time_pattern(pattern).format_timestamp(timestamp, resolve_zone(zone_id))


@scalar_function(
    "PARSE_TIMESTAMP", params=[STRING, STRING], returns=TIMESTAMP, category=CATEGORY,
    description="Parses a string into a TIMESTAMP using a Java DateTimeFormatter pattern (UTC unless it has a zone).",
)
def parse_timestamp(text: str, pattern: str, zone_id: str = "UTC") -> int:
    return date_time_pattern(pattern).parse_timestamp(text, resolve_zone(zone_id))


for _name, _params, _returns, _fn, _what in (
    ("FORMAT_TIMESTAMP", [TIMESTAMP, STRING, STRING], STRING, format_timestamp, "Formats a TIMESTAMP as a string"),
    ("TIMESTAMPTOSTRING", [BIGINT, STRING], STRING, format_timestamp,
     "Formats epoch milliseconds (BIGINT) as a string in UTC"),
    ("TIMESTAMPTOSTRING", [BIGINT, STRING, STRING], STRING, format_timestamp,
     "Formats epoch milliseconds (BIGINT) as a string"),
    ("PARSE_TIMESTAMP", [STRING, STRING, STRING], TIMESTAMP, parse_timestamp, "Parses a string into a TIMESTAMP"),
    ("STRINGTOTIMESTAMP", [STRING, STRING], BIGINT, parse_timestamp,
     "Parses a string into epoch milliseconds (BIGINT), in UTC unless the text has a zone"),
    ("STRINGTOTIMESTAMP", [STRING, STRING, STRING], BIGINT, parse_timestamp,
     "Parses a string into epoch milliseconds (BIGINT)"),
):
    _suffix = " in the given time zone." if len(_params) == 3 else "."
    scalar_function(_name, params=_params, returns=_returns, category=CATEGORY,
                    description=f"{_what} using a Java DateTimeFormatter pattern{_suffix}")(_fn)


def _format_date(days: int, pattern: str) -> str:
    return date_time_pattern(pattern).format_date(days)


scalar_function("FORMAT_DATE", params=[DATE, STRING], returns=STRING, category=CATEGORY,
                description="Formats a DATE as a string using a Java DateTimeFormatter pattern.")(_format_date)
scalar_function("DATETOSTRING", params=[INTEGER, STRING], returns=STRING, category=CATEGORY,
                description="Formats days since the epoch (INT) as a string using a Java pattern.")(_format_date)


@scalar_function("PARSE_DATE", params=[STRING, STRING], returns=DATE, category=CATEGORY,
                 description="Parses (the start of) a string into a DATE using a Java date pattern.")
def parse_date(text: str, pattern: str) -> int:
    return date_time_pattern(pattern).parse_date(text, lenient=True)


@scalar_function("STRINGTODATE", params=[STRING, STRING], returns=INTEGER, category=CATEGORY,
                 description="Parses a string into days since the epoch (INT) using a Java DateTimeFormatter pattern.")
def string_to_date(text: str, pattern: str) -> int:
    return date_time_pattern(pattern).parse_date(text)


@scalar_function(
    "FORMAT_TIME", params=[TIME, STRING], returns=STRING, category=CATEGORY,
    description="Formats a TIME as a string using a Java DateTimeFormatter pattern.",
)
def format_time(millis_of_day: int, pattern: str) -> str:
    return date_time_pattern(pattern).format_time(millis_of_day)


@scalar_function(
    "PARSE_TIME", params=[STRING, STRING], returns=TIME, category=CATEGORY,
    description="Parses a string into a TIME using a Java DateTimeFormatter pattern.",
)
def parse_time(text: str, pattern: str) -> int:
    return date_time_pattern(pattern).parse_time(text)


@scalar_function(
    "CONVERT_TZ", params=[TIMESTAMP, STRING, STRING], returns=TIMESTAMP, category=CATEGORY,
    description="Shifts a TIMESTAMP by the difference between two time zones' offsets at that instant.",
)
def convert_tz(timestamp: int, from_zone: str, to_zone: str) -> int:
    instant = _EPOCH + timedelta(milliseconds=timestamp)

    def offset_millis(zone_id: str) -> int:
        offset = instant.astimezone(resolve_zone(zone_id).rules).utcoffset() or timedelta()
        return offset // timedelta(milliseconds=1)

    return timestamp + offset_millis(to_zone) - offset_millis(from_zone)


# --------------------------------------------------------------------------- conversions between representations


@scalar_function("FROM_UNIXTIME", params=[BIGINT], returns=TIMESTAMP, category=CATEGORY,
                 description="Converts epoch milliseconds (BIGINT) into a TIMESTAMP.")
def from_unixtime(epoch_millis: int) -> int:
    return epoch_millis


@scalar_function("UNIX_TIMESTAMP", params=[TIMESTAMP], returns=BIGINT, category=CATEGORY,
                 description="Converts a TIMESTAMP into epoch milliseconds (BIGINT).")
def unix_timestamp(timestamp: int) -> int:
    return timestamp


@scalar_function("UNIX_TIMESTAMP", params=[], returns=BIGINT, category=CATEGORY,
                 description="Returns the current time as epoch milliseconds (BIGINT).")
def current_unix_timestamp() -> int:
    return time.time_ns() // _NANOS_PER_MILLI


@scalar_function("FROM_DAYS", params=[INTEGER], returns=DATE, category=CATEGORY,
                 description="Converts days since the epoch (INT) into a DATE.")
def from_days(days: int) -> int:
    return days


@scalar_function("UNIX_DATE", params=[DATE], returns=INTEGER, category=CATEGORY,
                 description="Converts a DATE into days since the epoch (INT).")
def unix_date(days: int) -> int:
    return days


@scalar_function("UNIX_DATE", params=[], returns=INTEGER, category=CATEGORY,
                 description="Returns the current UTC date as days since the epoch (INT).")
def current_unix_date() -> int:
    return current_unix_timestamp() // MILLIS_PER_DAY


# --------------------------------------------------------------------------- interval arithmetic

# Nanoseconds per java.util.concurrent.TimeUnit, by the plural unit name the planner passes
_UNIT_NANOS = {
    "NANOSECONDS": 1, "MICROSECONDS": 1_000, "MILLISECONDS": _NANOS_PER_MILLI, "SECONDS": 1_000_000_000,
    "MINUTES": 60_000_000_000, "HOURS": 3_600_000_000_000, "DAYS": _NANOS_PER_DAY,
}


def _unit_nanos(unit: str) -> int:
    name = unit.upper()
    nanos = _UNIT_NANOS.get(name) or _UNIT_NANOS.get(name + "S")
    if nanos is None:
        raise ValueError(f"Unknown time unit: {unit}")
    return nanos


def _truncating_div(numerator: int, denominator: int) -> int:
    """Java's integer division, which rounds towards zero."""
    quotient = abs(numerator) // abs(denominator)
    return quotient if (numerator < 0) == (denominator < 0) else -quotient


def _interval_millis(unit: str, interval: int) -> int:
    """TimeUnit.toMillis: sub-millisecond units truncate towards zero."""
    return _truncating_div(_unit_nanos(unit) * interval, _NANOS_PER_MILLI)


def _add_to_timestamp(unit: str, interval: int, timestamp: int) -> int:
    return timestamp + _interval_millis(unit, interval)


def _add_to_date(unit: str, interval: int, days: int) -> int:
    return _truncating_div(days * MILLIS_PER_DAY + _interval_millis(unit, interval), MILLIS_PER_DAY)


def _add_to_time(unit: str, interval: int, millis_of_day: int) -> int:
    # LocalTime arithmetic wraps around midnight
    nanos = (millis_of_day * _NANOS_PER_MILLI + _unit_nanos(unit) * interval) % _NANOS_PER_DAY
    return nanos // _NANOS_PER_MILLI


def _subtracting(add: Callable[[str, int, int], int]) -> Callable[[str, int, int], int]:
    return lambda unit, interval, value: add(unit, -interval, value)


for _sql_type, _noun, _add in (
    (DATE, "DATE", _add_to_date), (TIME, "TIME", _add_to_time), (TIMESTAMP, "TIMESTAMP", _add_to_timestamp)
):
    scalar_function(f"{_noun}ADD", params=[STRING, INTEGER, _sql_type], returns=_sql_type, category=CATEGORY,
                    description=f"Adds an interval of a time unit (e.g. DAYS) to a {_noun}.")(_add)
    scalar_function(f"{_noun}SUB", params=[STRING, INTEGER, _sql_type], returns=_sql_type, category=CATEGORY,
                    description=f"Subtracts an interval of a time unit (e.g. DAYS) from a {_noun}.")(_subtracting(_add))
