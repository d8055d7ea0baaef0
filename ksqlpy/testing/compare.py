"""The comparator: produced records and errors against a case's expectations, with a readable diff."""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ksqlpy.testing.cases import ExpectedError, Headers, RecordSpec, Window

DOUBLE_TOLERANCE = 1e-6
# Enough records of each side to see the context of a difference without flooding the terminal.
_LISTED_RECORDS = 12


@dataclass(frozen=True)
class ActualRecord:
    """A record the engine wrote, decoded to the logical form test files use."""

    topic: str
    key: Any
    value: Any
    timestamp: int
    window: Window | None
    headers: Headers
    key_format: str | None = None
    value_format: str | None = None
    # What `--json` reports: the serialized text for JSON/DELIMITED, the logical value otherwise.
    key_written: Any = None
    value_written: Any = None


def render(value: Any) -> str:
    """Compact JSON-like text that keeps a Decimal's scale (1.50 stays 1.50) and shows bytes as base64."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal | int | float):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bytes):
        return f"b64:{base64.b64encode(value).decode('ascii')}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{render(str(k))}: {render(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(render(v) for v in value) + "]"
    return repr(value)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "double"
    if isinstance(value, Decimal):
        return "decimal"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes):
        return "bytes"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def _differs(path: str, expected: Any, actual: Any, why: str = "") -> str:
    where = path or "value"
    text = f"{where}: expected {render(expected)} ({_kind(expected)}), got {render(actual)} ({_kind(actual)})"
    return f"{text}: {why}" if why else text


def _same_decimal(expected: Decimal, actual: Decimal) -> bool:
    # Value *and* scale, like Java's BigDecimal.equals: 1.50 is not 1.5.
    return expected == actual and expected.as_tuple().exponent == actual.as_tuple().exponent


def _numbers_close(expected: Any, actual: Any) -> bool:
    expected_float, actual_float = float(expected), float(actual)
    if math.isnan(expected_float) or math.isnan(actual_float):
        return math.isnan(expected_float) and math.isnan(actual_float)
    return expected_float == actual_float or abs(expected_float - actual_float) < DOUBLE_TOLERANCE


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _number_mismatch(path: str, expected: Any, actual: Any, exact: bool) -> str | None:
    if not _is_number(actual):
        return _differs(path, expected, actual)
    if not exact or isinstance(actual, float):
        # A DOUBLE result (or any number once a case asks for plain double comparison) has a tolerance.
        return None if _numbers_close(expected, actual) else _differs(path, expected, actual)
    if isinstance(actual, Decimal):
        if isinstance(expected, int):
            fractional = actual.as_tuple().exponent
            if isinstance(fractional, int) and fractional >= 0 and actual == expected:
                return None
            return _differs(path, expected, actual, "a decimal matches an integer only without fractional digits")
        if isinstance(expected, Decimal):
            if _same_decimal(expected, actual):
                return None
            why = "same value, different scale" if expected == actual else ""
            return _differs(path, expected, actual, why)
        return None if _numbers_close(expected, actual) else _differs(path, expected, actual)
    # An integer result must equal an integer literal exactly.
    if isinstance(expected, int) and actual == expected:
        return None
    return _differs(path, expected, actual)


def _string_mismatch(path: str, expected: str, actual: Any) -> str | None:
    if isinstance(actual, str):
        return None if actual == expected else _differs(path, expected, actual)
    if isinstance(actual, Decimal):
        try:
            as_decimal = Decimal(expected)
        except ArithmeticError:
            return _differs(path, expected, actual)
        return None if _same_decimal(as_decimal, actual) else _differs(path, expected, actual)
    if isinstance(actual, bytes):
        encoded = base64.b64encode(actual).decode("ascii")
        return None if encoded == expected else _differs(path, expected, actual, "base64 differs")
    return _differs(path, expected, actual)


def _object_mismatch(path: str, expected: dict[Any, Any], actual: Any, exact: bool) -> str | None:
    if not isinstance(actual, dict):
        return _differs(path, expected, actual)
    if len(expected) != len(actual):
        return _differs(path, expected, actual, f"{len(expected)} fields expected, {len(actual)} produced")
    for name, expected_field in expected.items():
        field_name = name if name in actual else str(name).upper()
        if field_name not in actual:
            return f"{path or 'value'}: field {name!r} missing; produced fields {sorted(map(str, actual))}"
        problem = value_mismatch(expected_field, actual[field_name], exact, f"{path}.{field_name}" if path
                                 else str(field_name))
        if problem:
            return problem
    return None


def _array_mismatch(path: str, expected: list[Any], actual: Any, exact: bool) -> str | None:
    if not isinstance(actual, list | tuple):
        return _differs(path, expected, actual)
    if len(expected) != len(actual):
        return _differs(path, expected, actual, f"{len(expected)} elements expected, {len(actual)} produced")
    for index, (expected_item, actual_item) in enumerate(zip(expected, actual, strict=True)):
        problem = value_mismatch(expected_item, actual_item, exact, f"{path}[{index}]")
        if problem:
            return problem
    return None


def value_mismatch(expected: Any, actual: Any, exact: bool = True, path: str = "") -> str | None:
    """Why `actual` does not match `expected` under the conformance README's value rules; None when it does.

    `exact` false is the case property use.exact.numeric.comparison=false: numbers compare as doubles.
    """
    if expected is None or isinstance(expected, bool):
        same = actual is None if expected is None else (isinstance(actual, bool) and actual == expected)
        return None if same else _differs(path, expected, actual)
    if isinstance(expected, dict):
        return _object_mismatch(path, expected, actual, exact)
    if isinstance(expected, list):
        return _array_mismatch(path, expected, actual, exact)
    if isinstance(expected, str):
        return _string_mismatch(path, expected, actual)
    if _is_number(expected):
        return _number_mismatch(path, expected, actual, exact)
    return None if expected == actual else _differs(path, expected, actual)


def _window_text(window: Window | None) -> str:
    return "none" if window is None else f"{window.type}[{window.start}, {window.end}]"


def _headers_text(headers: Headers) -> str:
    return render([{"key": key, "value": value} for key, value in headers])


def record_mismatch(expected: RecordSpec, actual: ActualRecord, exact: bool = True) -> str | None:
    """The first way a produced record differs from the expected one, or None."""
    problem = value_mismatch(expected.key, actual.key, exact, "key")
    if problem:
        return problem
    problem = value_mismatch(expected.value, actual.value, exact, "value")
    if problem:
        return problem
    if expected.timestamp is not None and expected.timestamp != actual.timestamp:
        return f"timestamp: expected {expected.timestamp}, got {actual.timestamp}"
    if expected.window != actual.window:
        return f"window: expected {_window_text(expected.window)}, got {_window_text(actual.window)}"
    if tuple(expected.headers) != tuple(actual.headers):
        return f"headers: expected {_headers_text(expected.headers)}, got {_headers_text(actual.headers)}"
    return None


def describe_expected(record: RecordSpec) -> str:
    parts = [f"key={render(record.key)}", f"value={render(record.value)}"]
    if record.timestamp is not None:
        parts.append(f"timestamp={record.timestamp}")
    if record.window is not None:
        parts.append(f"window={_window_text(record.window)}")
    if record.headers:
        parts.append(f"headers={_headers_text(record.headers)}")
    return " ".join(parts)


def describe_actual(record: ActualRecord) -> str:
    parts = [f"key={render(record.key)}", f"value={render(record.value)}", f"timestamp={record.timestamp}"]
    if record.window is not None:
        parts.append(f"window={_window_text(record.window)}")
    if record.headers:
        parts.append(f"headers={_headers_text(record.headers)}")
    return " ".join(parts)


def _listing(title: str, lines: Sequence[str]) -> list[str]:
    listed = [f"  {title}:"] + [f"    {i}. {line}" for i, line in enumerate(lines[:_LISTED_RECORDS], start=1)]
    if len(lines) > _LISTED_RECORDS:
        listed.append(f"    ... {len(lines) - _LISTED_RECORDS} more")
    if not lines:
        listed.append("    (none)")
    return listed


def compare_topic(topic: str, expected: Sequence[RecordSpec], actual: Sequence[ActualRecord],
                  exact: bool = True) -> list[str]:
    """Diff lines for one topic (count, order and content must match); empty when it matches."""
    headline = ""
    for index, (want, got) in enumerate(zip(expected, actual, strict=False), start=1):
        problem = record_mismatch(want, got, exact)
        if problem:
            headline = f"record #{index} differs: {problem}"
            break
    if not headline and len(expected) != len(actual):
        index = min(len(expected), len(actual)) + 1
        headline = (f"record #{index} missing" if len(expected) > len(actual)
                    else f"record #{index} is unexpected")
    if not headline:
        return []
    return [f"topic {topic!r}: {len(expected)} record(s) expected, {len(actual)} produced; {headline}",
            *_listing("expected", [describe_expected(r) for r in expected]),
            *_listing("produced", [describe_actual(r) for r in actual])]


def topics_checked(expected: Iterable[RecordSpec]) -> list[str]:
    """The topics a case checks, in order of first appearance."""
    return list(dict.fromkeys(record.topic for record in expected))


def compare_outputs(expected: Sequence[RecordSpec], actual: Sequence[ActualRecord], exact: bool = True) -> list[str]:
    """Diff lines over every checked topic; records on other topics are ignored, as is order across topics."""
    lines: list[str] = []
    for topic in topics_checked(expected):
        lines += compare_topic(topic, [r for r in expected if r.topic == topic],
                               [r for r in actual if r.topic == topic], exact)
    return lines


def error_mismatch(expected: ExpectedError, failure: str | None, processing_log: Sequence[str] = ()) -> str | None:
    """Why the run's failure does not satisfy the expected error; None when it does.

    A runtime error in ksqlDB stops the Kafka Streams query; an engine that follows ksqlDB's per-record
    error handling instead logs the record to the processing log and carries on. Either way the same
    failure happened, so for the runtime category a processing-log entry containing the message counts.
    """
    if failure is not None and expected.message in failure:
        return None
    if expected.category == "runtime" and any(expected.message in entry for entry in processing_log):
        return None
    wanted = f"an error containing {expected.message!r}" if expected.message else "an error"
    if failure is None:
        return f"expected {wanted} ({expected.category}), but the run succeeded"
    return f"expected {wanted} ({expected.category}), got: {failure}"
