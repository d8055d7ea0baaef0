"""Running single cases through a (fake) driver: outcomes, errors, time-outs and the JSON report form."""

from __future__ import annotations

from decimal import Decimal

from ksqlpy.errors import StatementError
from ksqlpy.testing.cases import Case, ExpectedError, RecordSpec, Window
from ksqlpy.testing.runner import ERROR, FAIL, PASS, SKIP, Driver, DriverFactory, result_to_json, run_case


def _case(statements: tuple[str, ...], outputs: tuple[RecordSpec, ...] = (),
          expected_error: ExpectedError | None = None, suite: str = "qtt",
          properties: dict[str, object] | None = None) -> Case:
    inputs = (RecordSpec("in", "k1", {"a": 1}, 5, headers=(("h", b"!"),)),
              RecordSpec("nobody_reads", "k", {"a": 1}, 0),
              RecordSpec("in", "k2", None, 6))
    return Case("c", statements, inputs, outputs, expected_error, properties or {}, suite)


OUT = (RecordSpec("OUT", "k1", {"A": 1}, 5, headers=(("h", b"!"),)), RecordSpec("OUT", "k2", None, None))


def test_matching_outputs_pass(fake_driver: DriverFactory) -> None:
    result = run_case(_case(("COPY in TO OUT",), OUT), fake_driver)
    assert result.status == PASS, result.details
    assert [r.value for r in result.outputs] == [{"A": 1}, None]


def test_wrong_outputs_fail_with_a_diff(fake_driver: DriverFactory) -> None:
    wrong = (RecordSpec("OUT", "k1", {"A": 2}, 5), OUT[1])
    result = run_case(_case(("COPY in TO OUT",), wrong), fake_driver)
    assert result.status == FAIL
    assert result.reason == ("topic 'OUT': 2 record(s) expected, 2 produced; record #1 differs: "
                             "value.A: expected 2 (integer), got 1 (integer)")


def test_expected_statement_error(fake_driver: DriverFactory) -> None:
    expected = ExpectedError("no such column", "statement")
    passing = run_case(_case(("COPY in TO OUT", "FAIL line 1: no such column X"), (), expected), fake_driver)
    assert passing.status == PASS and passing.error == "line 1: no such column X"
    wrong_text = run_case(_case(("FAIL other",), (), expected), fake_driver)
    assert wrong_text.status == FAIL and wrong_text.error_raised
    silent = run_case(_case(("COPY in TO OUT",), (), expected), fake_driver)
    assert silent.status == FAIL and not silent.error_raised
    assert silent.reason == "expected an error containing 'no such column' (statement), but the run succeeded"


def test_unexpected_error_fails(fake_driver: DriverFactory) -> None:
    result = run_case(_case(("FAIL bad statement",), OUT), fake_driver)
    assert result.status == FAIL
    assert result.reason == "unexpected error: bad statement"


def test_runtime_error_found_in_processing_log(fake_driver: DriverFactory) -> None:
    expected = ExpectedError("overflow", "runtime")
    assert run_case(_case(("LOG Numeric overflow",), (), expected), fake_driver).status == PASS


def test_engine_crash_and_hang_become_errors(fake_driver: DriverFactory) -> None:
    crash = run_case(_case(("CRASH",), OUT), fake_driver)
    assert crash.status == ERROR and crash.error == "ZeroDivisionError: division by zero"
    hang = run_case(_case(("HANG",), OUT), fake_driver, time_limit_s=0.2)
    assert hang.status == ERROR and hang.reason == "timed out after 0.2 s"


def test_rest_cases_with_queries_are_skipped_others_run(fake_driver: DriverFactory) -> None:
    assert run_case(_case(("COPY in TO OUT", "SELECT * FROM X;"), OUT, suite="rqtt"), fake_driver).status == SKIP
    assert run_case(_case(("COPY in TO OUT",), OUT, suite="rqtt"), fake_driver).status == PASS


def test_json_outputs_keep_exact_text_unless_told_otherwise(fake_driver: DriverFactory) -> None:
    exact = run_case(_case(("RAW 1.50",), (RecordSpec("RAW", None, Decimal("1.5"), 0),)), fake_driver)
    assert exact.status == FAIL and "different scale" in str(exact.reason)
    loose = run_case(_case(("RAW 1.50",), (RecordSpec("RAW", None, Decimal("1.5"), 0),),
                           properties={"use.exact.numeric.comparison": "false"}), fake_driver)
    assert loose.status == PASS


def test_report_form_carries_written_text_and_logical_kafka_values(fake_driver: DriverFactory) -> None:
    report = result_to_json(run_case(_case(("COPY in TO OUT",), OUT), fake_driver))
    assert report["id"] == "c" and report["status"] == "pass" and report["error"] is None
    first = report["outputs"][0]
    assert first == {"topic": "OUT", "key": "k1", "value": '{"A": 1}', "timestamp": 5, "window": None,
                     "headers": [{"key": "h", "value": "IQ=="}], "key_format": "KAFKA", "value_format": "JSON"}
    assert report["outputs"][1]["value"] is None


def test_windowed_inputs_carry_their_window(fake_driver: DriverFactory) -> None:
    window = Window(10, 20, "session")
    case = Case("w", ("COPY in TO OUT",), (RecordSpec("in", "k", {"a": 1}, 15, window),),
                (RecordSpec("OUT", "k", {"A": 1}, 15, window),))
    result = run_case(case, fake_driver)
    assert result.status == PASS, result.details
    assert result_to_json(result)["outputs"][0]["window"] == {"start": 10, "end": 20, "type": "session"}


def test_rejected_properties_count_as_the_run_failing() -> None:
    def refusing_driver(properties: dict[str, object]) -> Driver:
        raise StatementError(f"Invalid property {next(iter(properties))}")

    expected = ExpectedError("Invalid property", "statement")
    case = _case(("COPY in TO OUT",), (), expected, properties={"bogus": 1})
    result = run_case(case, refusing_driver)
    assert result.status == PASS and result.error == "Invalid property bogus"
