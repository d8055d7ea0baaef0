"""The comparator's value rules, record checks, diffs and expected-error matching."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ksqlpy.testing.cases import ExpectedError, RecordSpec, Window
from ksqlpy.testing.compare import (
    ActualRecord,
    compare_outputs,
    compare_topic,
    error_mismatch,
    record_mismatch,
    value_mismatch,
)


@pytest.mark.parametrize(("expected", "actual"), [
    (1, 1),
    (Decimal("1.50"), Decimal("1.50")),
    ("1.50", Decimal("1.50")),
    (2, Decimal("2")),
    (Decimal("0.3"), 0.30000000000000004),
    (1, 1.0000001),
    (Decimal("1.0E7"), Decimal("1.0E7")),
    ("abc", "abc"),
    ("AQI=", b"\x01\x02"),
    (True, True),
    (None, None),
    ([1, None], [1, None]),
    ({"a": 1}, {"A": 1}),
    ({"a": 1}, {"a": 1}),
    ({"S": {"x": [Decimal("1.0")]}}, {"S": {"X": [Decimal("1.0")]}}),
])
def test_values_that_match(expected: object, actual: object) -> None:
    assert value_mismatch(expected, actual) is None


@pytest.mark.parametrize(("expected", "actual", "why"), [
    (Decimal("1.50"), Decimal("1.5"), "different scale"),
    ("1.50", Decimal("1.5"), "expected \"1.50\""),
    (2, Decimal("2.0"), "without fractional digits"),
    (Decimal("2.0"), 2, "expected 2.0 (decimal), got 2 (integer)"),
    (Decimal("2.0"), Decimal("2.00"), "different scale"),
    (Decimal("0.3"), 0.31, "got 0.31 (double)"),
    (1, True, "got true (boolean)"),
    (True, 1, "expected true (boolean)"),
    (None, 0, "expected null"),
    (0, None, "got null"),
    ("1", 1, "expected \"1\" (string)"),
    ("AQI=", b"\x01", "base64 differs"),
    ([1, 2], [1], "2 elements expected, 1 produced"),
    ({"a": 1}, {"A": 1, "B": 2}, "1 fields expected, 2 produced"),
    ({"a": 1}, {"B": 1}, "field 'a' missing"),
    ({"a": {"b": 1}}, {"A": {"B": 2}}, "A.B: expected 1"),
])
def test_values_that_differ_say_why(expected: object, actual: object, why: str) -> None:
    problem = value_mismatch(expected, actual)
    assert problem is not None
    assert why in problem


def test_plain_double_comparison_when_exact_numbers_are_off() -> None:
    assert value_mismatch(Decimal("2.0"), 2, exact=False) is None
    assert value_mismatch(Decimal("2.00"), Decimal("2.0"), exact=True) is not None
    assert value_mismatch(Decimal("2.5"), 2, exact=False) is not None


def _actual(key: object = "k", value: object = None, timestamp: int = 0, topic: str = "OUT",
            window: Window | None = None, headers: tuple[tuple[str, bytes | None], ...] = ()) -> ActualRecord:
    return ActualRecord(topic, key, value, timestamp, window, headers)


def _expected(key: object = "k", value: object = None, timestamp: int | None = 0, topic: str = "OUT",
              window: Window | None = None, headers: tuple[tuple[str, bytes | None], ...] = ()) -> RecordSpec:
    return RecordSpec(topic, key, value, timestamp, window, headers)


def test_record_checks_key_value_timestamp_window_and_headers() -> None:
    assert record_mismatch(_expected(value={"A": 1}), _actual(value={"A": 1})) is None
    assert record_mismatch(_expected(timestamp=None), _actual(timestamp=99)) is None
    assert "timestamp: expected 5, got 6" in str(record_mismatch(_expected(timestamp=5), _actual(timestamp=6)))
    assert str(record_mismatch(_expected(key="a"), _actual(key="b"))).startswith("key:")
    assert str(record_mismatch(_expected(value={"A": 1}), _actual(value={"A": 2}))).startswith("value.A:")
    window = Window(0, 10, "time")
    assert "window: expected time[0, 10], got none" in str(record_mismatch(_expected(window=window), _actual()))
    assert record_mismatch(_expected(window=window), _actual(window=Window(0, 10, "time"))) is None
    assert "headers" in str(record_mismatch(_expected(headers=(("h", b"1"),)), _actual()))
    assert record_mismatch(_expected(headers=(("h", None),)), _actual(headers=(("h", None),))) is None


def test_topic_diff_names_the_first_difference_and_lists_both_sides() -> None:
    expected = [_expected(key="a"), _expected(key="b"), _expected(key="c")]
    lines = compare_topic("OUT", expected, [_actual(key="a"), _actual(key="c")])
    assert lines[0] == ('topic \'OUT\': 3 record(s) expected, 2 produced; record #2 differs: '
                        'key: expected "b" (string), got "c" (string)')
    assert '    2. key="b" value=null timestamp=0' in lines
    assert compare_topic("OUT", expected, [_actual(key=k) for k in "abc"]) == []
    assert "record #3 missing" in compare_topic("OUT", expected, [_actual(key="a"), _actual(key="b")])[0]
    assert "record #2 is unexpected" in compare_topic("OUT", expected[:1], [_actual(key="a"), _actual(key="x")])[0]


def test_outputs_ignore_unchecked_topics_and_order_across_topics() -> None:
    expected = [_expected(topic="X", key=1), _expected(topic="Y", key=2)]
    actual = [_actual(topic="Y", key=2), _actual(topic="OTHER", key=9), _actual(topic="X", key=1)]
    assert compare_outputs(expected, actual) == []
    assert compare_outputs(expected, actual[:2])[0].startswith("topic 'X': 1 record(s) expected, 0 produced")


def test_expected_error_message_must_be_contained() -> None:
    expected = ExpectedError("Unknown column", "statement")
    assert error_mismatch(expected, "line 1:8: Unknown column X") is None
    assert "got: something else" in str(error_mismatch(expected, "something else"))
    assert "but the run succeeded" in str(error_mismatch(expected, None))
    assert error_mismatch(ExpectedError("", "parse"), "anything") is None


def test_runtime_error_may_be_found_in_the_processing_log() -> None:
    runtime = ExpectedError("Numeric field overflow", "runtime")
    assert error_mismatch(runtime, None, ["Numeric field overflow in X"]) is None
    statement = ExpectedError("Numeric field overflow", "statement")
    assert error_mismatch(statement, None, ["Numeric field overflow in X"]) is not None
