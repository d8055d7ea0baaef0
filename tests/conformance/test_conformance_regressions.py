"""Regression guard: every conformance case listed in passing_ids.txt must still pass.

Under CI (CI=true, as CI servers set it) missing cases fail the run instead of skipping: CI checks out
../shared beside the clone, so a missing file there means the guard did not run.

Refresh the list with `ksqlpy conformance ../shared/conformance/public.jsonl --write-passing
tests/conformance/passing_ids.txt` (adds ids; `--prune` also drops ids that no longer pass); the REST-flavour
cases of rest_public.jsonl, run through a real server, likewise into rest_passing_ids.txt.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest

from ksqlpy.testing.cases import load_cases
from ksqlpy.testing.conformance import run_one
from ksqlpy.testing.runner import DEFAULT_TIME_LIMIT_S, run_case
from ksqlpy.testing.test_functions import in_memory_driver_with_test_functions

REPO_ROOT = Path(__file__).resolve().parents[2]
PUBLIC_CASES = REPO_ROOT.parent / "shared" / "conformance" / "public.jsonl"
PASSING_IDS = Path(__file__).with_name("passing_ids.txt")
REST_CASES = PUBLIC_CASES.with_name("rest_public.jsonl")
REST_PASSING_IDS = Path(__file__).with_name("rest_passing_ids.txt")


def running_in_ci(environ: Mapping[str, str]) -> bool:
    return environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def require_cases(path: Path, environ: Mapping[str, str]) -> None:
    """Skip when the cases are not there, except under CI, where that fails: the guard must not go quiet."""
    if path.exists():
        return
    reason = f"conformance cases not found at {path}"
    if running_in_ci(environ):
        pytest.fail(f"{reason}; CI (CI={environ['CI']}) must run this regression guard: check out shared beside the clone")
    pytest.skip(reason)


def test_listed_cases_still_pass() -> None:
    require_cases(PUBLIC_CASES, os.environ)
    listed = [line for line in PASSING_IDS.read_text(encoding="utf-8").splitlines() if line]
    cases = {case.id: case for case in load_cases(PUBLIC_CASES)}
    problems = [f"{case_id}: not in {PUBLIC_CASES.name}" for case_id in listed if case_id not in cases]
    for case_id in listed:
        if case_id in cases:
            result = run_case(cases[case_id], in_memory_driver_with_test_functions, DEFAULT_TIME_LIMIT_S)
            if not result.passed:
                problems.append(f"{case_id}: {result.status.upper()} {result.reason}")
    assert not problems, f"{len(problems)} listed case(s) no longer pass:\n" + "\n".join(problems)


def test_listed_rest_cases_still_pass_through_a_server() -> None:
    require_cases(REST_CASES, os.environ)
    listed = [line for line in REST_PASSING_IDS.read_text(encoding="utf-8").splitlines() if line]
    cases = {case.id: case for case in load_cases(REST_CASES)}
    problems = [f"{case_id}: not in {REST_CASES.name}" for case_id in listed if case_id not in cases]
    for case_id in listed:
        if case_id in cases:
            result = run_one(cases[case_id], DEFAULT_TIME_LIMIT_S)
            if not result.passed:
                problems.append(f"{case_id}: {result.status.upper()} {result.reason}")
    assert not problems, f"{len(problems)} listed REST case(s) no longer pass:\n" + "\n".join(problems)


@pytest.mark.parametrize("ids", [PASSING_IDS, REST_PASSING_IDS], ids=["topic cases", "REST cases"])
def test_passing_ids_file_is_sorted_and_unique(ids: Path) -> None:
    listed = ids.read_text(encoding="utf-8").splitlines()
    assert listed == sorted(set(listed)), f"{ids.name} must be sorted, one unique id per line"


@pytest.mark.parametrize("ci", ["true", "TRUE", "1"])
def test_missing_cases_fail_under_ci(tmp_path: Path, ci: str) -> None:
    with pytest.raises(pytest.fail.Exception, match="must run this regression guard"):
        require_cases(tmp_path / "public.jsonl", {"CI": ci})


@pytest.mark.parametrize("environ", [{}, {"CI": ""}, {"CI": "false"}, {"CI": "0"}])
def test_missing_cases_skip_outside_ci(tmp_path: Path, environ: dict[str, str]) -> None:
    with pytest.raises(pytest.skip.Exception, match="conformance cases not found"):
        require_cases(tmp_path / "public.jsonl", environ)


def test_present_cases_run_under_ci_or_not(tmp_path: Path) -> None:
    cases = tmp_path / "public.jsonl"
    cases.write_text("", encoding="utf-8")
    require_cases(cases, {"CI": "true"})
    require_cases(cases, {})
