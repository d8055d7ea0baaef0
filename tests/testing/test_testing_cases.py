"""Loading conformance JSONL cases, ksql-test-runner files and properties files."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from ksqlpy.testing.cases import (
    CaseFileError,
    Window,
    load_cases,
    load_properties,
    load_test_runner_case,
)

CASE = {
    "id": "demo - one", "suite": "qtt", "group": "g", "statements": ["CREATE STREAM A;"],
    "inputs": [{"topic": "in", "key": "k", "value": {"X": 1}}],
    "outputs": [{"topic": "OUT", "key": "k", "value": {"X": 1.50}, "timestamp": None,
                 "window": {"start": 0, "end": 10, "type": "time"}, "headers": [{"key": "h", "value": "AQI="}]}],
    "expected_error": None, "properties": {"use.exact.numeric.comparison": False},
    "features": ["json"], "functions": [], "tier": 2,
}


def test_load_cases_keeps_decimal_scale_and_defaults(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_text(json.dumps(CASE).replace("1.5", "1.50") + "\n\n")
    [case] = load_cases(path)
    assert case.id == "demo - one"
    assert case.inputs[0].timestamp == 0
    output = case.outputs[0]
    assert output.timestamp is None
    value = output.value["X"]
    assert isinstance(value, Decimal) and str(value) == "1.50"
    assert output.window == Window(0, 10, "time")
    assert output.headers == (("h", b"\x01\x02"),)
    assert case.exact_numeric_comparison is False
    assert case.tier == 2 and case.features == ("json",)


def test_expected_error_without_message_matches_any_text(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_text(json.dumps({**CASE, "expected_error": {"type": "P", "message": None, "category": "parse"}}))
    [case] = load_cases(path)
    assert case.expected_error is not None
    assert case.expected_error.message == "" and case.expected_error.category == "parse"


def test_bad_lines_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_text(json.dumps(CASE) + "\n{not json\n")
    with pytest.raises(CaseFileError, match=r"cases.jsonl:2: invalid JSON"):
        load_cases(path)
    path.write_text(json.dumps({**CASE, "inputs": [{"key": 1}]}))
    with pytest.raises(CaseFileError, match="needs a 'topic'"):
        load_cases(path)
    with pytest.raises(CaseFileError, match="cannot read"):
        load_cases(tmp_path / "missing.jsonl")


def test_test_runner_files(tmp_path: Path) -> None:
    (tmp_path / "statements.sql").write_text("CREATE STREAM A (X INT) WITH (kafka_topic='a');\n")
    (tmp_path / "input.json").write_text('{"inputs": [{"topic": "a", "key": null, "value": {"X": 1}}]}')
    (tmp_path / "output.json").write_text('{"outputs": [{"topic": "B", "key": null, "value": {"X": 2.0}}]}')
    case = load_test_runner_case(tmp_path / "statements.sql", tmp_path / "input.json", tmp_path / "output.json",
                                 {"p": "1"})
    assert case.id == tmp_path.name
    assert case.statements == ("CREATE STREAM A (X INT) WITH (kafka_topic='a');\n",)
    assert case.inputs[0].timestamp == 0 and case.outputs[0].timestamp is None
    assert str(case.outputs[0].value["X"]) == "2.0"
    assert case.properties == {"p": "1"}
    (tmp_path / "output.json").write_text('{"records": []}')
    with pytest.raises(CaseFileError, match="'outputs' list"):
        load_test_runner_case(tmp_path / "statements.sql", None, tmp_path / "output.json")


def test_properties_files(tmp_path: Path) -> None:
    java = tmp_path / "p.properties"
    java.write_text("# comment\nksql.a = 1\nksql.b:true\n\n")
    assert load_properties(java) == {"ksql.a": "1", "ksql.b": "true"}
    as_json = tmp_path / "p.json"
    as_json.write_text('{"ksql.a": 1}')
    assert load_properties(as_json) == {"ksql.a": 1}
    java.write_text("no separator here\n")
    with pytest.raises(CaseFileError, match=r"p\.properties:1"):
        load_properties(java)
