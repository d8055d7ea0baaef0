"""The `ksqlpy conformance` and `ksqlpy test` commands end to end, over the fake driver."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ksqlpy.testing import conformance, test_runner


def _case(case_id: str, statements: list[str], expected_value: object, **extra: object) -> dict[str, object]:
    return {"id": case_id, "suite": "qtt", "group": case_id.split("#")[0], "statements": statements,
            "inputs": [{"topic": "in", "key": "k", "value": {"a": 1}, "timestamp": 3}],
            "outputs": [{"topic": "OUT", "key": "k", "value": expected_value, "timestamp": 3}],
            "expected_error": None, "properties": {}, "features": ["json", "stream"], "functions": [],
            "tier": 1, **extra}


@pytest.fixture
def cases_file(tmp_path: Path, fake_driver: object) -> Path:
    path = tmp_path / "cases.jsonl"
    cases = [
        _case("good", ["COPY in TO OUT"], {"A": 1}),
        _case("bad#1", ["COPY in TO OUT"], {"A": 2}),
        _case("crash", ["CRASH"], {"A": 1}),
        _case("err", ["FAIL Unknown source"], None,
              expected_error={"type": "X", "message": "Unknown source", "category": "statement"}, outputs=[]),
    ]
    path.write_text("".join(json.dumps(c) + "\n" for c in cases))
    return path


def test_conformance_prints_results_tables_and_json(cases_file: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    report_path = tmp_path / "report.json"
    assert conformance.main([str(cases_file), "--json", str(report_path)]) == 1
    out = capsys.readouterr().out
    assert "PASS  good\n" in out
    assert "FAIL  bad#1  -- topic 'OUT': 1 record(s) expected, 1 produced; record #1 differs" in out
    assert "ERROR crash  -- internal error: ZeroDivisionError: division by zero" in out
    tables = [" ".join(line.split()) for line in out.splitlines()]
    assert "stream 2/4 50.0%" in tables
    assert "tier 1 2/4 50.0%" in tables
    assert "expected-error cases: 1; strict (message contains the expected text): 1; lenient" in out
    assert "TOTAL passed 2/4 50.0% (fail 1, error 1, skip 0)" in tables
    report = json.loads(report_path.read_text())
    assert report["total"] == 4 and report["passed"] == 2
    assert [c["status"] for c in report["cases"]] == ["pass", "fail", "error", "pass"]
    assert report["cases"][0]["outputs"][0]["value"] == '{"A": 1}'
    assert report["cases"][3]["error"] == "Unknown source"


def test_a_rest_case_runs_through_a_server_and_its_answers_are_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    statements = ["CREATE TABLE t (id STRING PRIMARY KEY, v INT) WITH (kafka_topic='t', value_format='JSON');",
                  "INSERT INTO t (id, v) VALUES ('a', 1);", "SELECT * FROM t WHERE id = 'a';"]
    header = {"header": {"schema": "`ID` STRING KEY, `V` INTEGER"}}
    case = {"id": "rest pull", "suite": "rqtt", "statements": statements, "inputs": [],
            "outputs": [{"topic": "t", "key": "a", "value": {"V": 1}}],
            "responses": [{"admin": {"@type": "currentStatus"}}, {"admin": {}},
                          {"query": [header, {"row": {"columns": ["a", 1]}}]}]}
    wrong = {**case, "id": "rest wrong row",
             "responses": [*case["responses"][:2], {"query": [header, {"row": {"columns": ["a", 2]}}]}]}
    path, report_path = tmp_path / "rest.jsonl", tmp_path / "rest.json"
    path.write_text("".join(json.dumps(c) + "\n" for c in (case, wrong)))
    assert conformance.main([str(path), "--json", str(report_path)]) == 1
    out = capsys.readouterr().out
    assert "PASS  rest pull\n" in out
    assert "FAIL  rest wrong row  -- statement 3: expected rows" in out
    passed = json.loads(report_path.read_text())["cases"][0]
    answers = passed["responses"]
    assert answers[0][0]["@type"] == "currentStatus" and answers[1] == []
    assert answers[2][0]["header"]["schema"] == "`ID` STRING KEY, `V` INTEGER"
    assert answers[2][1] == {"row": {"columns": ["a", 1]}}


def test_conformance_filter_and_verbose(cases_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert conformance.main([str(cases_file), "--filter", "BAD", "--verbose"]) == 1
    out = capsys.readouterr().out
    assert "good" not in out and "bad#1" in out
    assert '    1. key="k" value={"A": 2} timestamp=3' in out


def test_write_passing_adds_and_only_prunes_when_asked(cases_file: Path, tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("bad#1\nzzz-not-run\n")
    conformance.main([str(cases_file), "--write-passing", str(ids)])
    assert ids.read_text() == "bad#1\nerr\ngood\nzzz-not-run\n"
    conformance.main([str(cases_file), "--write-passing", str(ids), "--prune"])
    assert ids.read_text() == "err\ngood\nzzz-not-run\n"


def test_user_errors_exit_2_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert conformance.main([str(tmp_path / "missing.jsonl")]) == 2
    assert "ksqlpy conformance: cannot read" in capsys.readouterr().err
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{oops\n")
    assert conformance.main([str(broken)]) == 2
    assert "broken.jsonl:1: invalid JSON" in capsys.readouterr().err
    assert test_runner.main(["-s", str(tmp_path / "none.sql"), "-o", str(broken)]) == 2
    assert "ksqlpy test: cannot read" in capsys.readouterr().err


def test_test_command_pass_and_fail(tmp_path: Path, fake_driver: object,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "s.sql").write_text("COPY in TO OUT;")
    (tmp_path / "in.json").write_text('{"inputs": [{"topic": "in", "key": "k", "value": {"a": 1}, "timestamp": 7}]}')
    (tmp_path / "out.json").write_text('{"outputs": [{"topic": "OUT", "key": "k", "value": {"A": 1}}]}')
    files = ["--statements", str(tmp_path / "s.sql"), "--input", str(tmp_path / "in.json"),
             "--output", str(tmp_path / "out.json")]
    assert test_runner.main(files) == 0
    assert "Test passed: 1 output record(s) matched." in capsys.readouterr().out
    (tmp_path / "out.json").write_text('{"outputs": [{"topic": "OUT", "key": "k", "value": {"A": 1}, "timestamp": 8}]}')
    assert test_runner.main(files) == 1
    out = capsys.readouterr().out
    assert "Test failed: topic 'OUT': 1 record(s) expected, 1 produced; record #1 differs: timestamp: expected 8" in out
    assert "    1. key=\"k\" value={\"A\": 1} timestamp=7" in out
