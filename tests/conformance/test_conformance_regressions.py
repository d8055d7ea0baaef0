"""Regression guard: every conformance case listed in passing_ids.txt must still pass.

Refresh the list with `ksqlpy conformance ../shared/conformance/public.jsonl --write-passing
tests/conformance/passing_ids.txt` (adds ids; `--prune` also drops ids that no longer pass).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ksqlpy.testing.cases import load_cases
from ksqlpy.testing.runner import DEFAULT_TIME_LIMIT_S, in_memory_driver, run_case

REPO_ROOT = Path(__file__).resolve().parents[2]
PUBLIC_CASES = REPO_ROOT.parent / "shared" / "conformance" / "public.jsonl"
PASSING_IDS = Path(__file__).with_name("passing_ids.txt")


def test_listed_cases_still_pass() -> None:
    if not PUBLIC_CASES.exists():
        pytest.skip(f"conformance cases not found at {PUBLIC_CASES}")
    listed = [line for line in PASSING_IDS.read_text(encoding="utf-8").splitlines() if line]
    cases = {case.id: case for case in load_cases(PUBLIC_CASES)}
    problems = [f"{case_id}: not in {PUBLIC_CASES.name}" for case_id in listed if case_id not in cases]
    for case_id in listed:
        if case_id in cases:
            result = run_case(cases[case_id], in_memory_driver, DEFAULT_TIME_LIMIT_S)
            if not result.passed:
                problems.append(f"{case_id}: {result.status.upper()} {result.reason}")
    assert not problems, f"{len(problems)} listed case(s) no longer pass:\n" + "\n".join(problems)


def test_passing_ids_file_is_sorted_and_unique() -> None:
    listed = PASSING_IDS.read_text(encoding="utf-8").splitlines()
    assert listed == sorted(set(listed)), "passing_ids.txt must be sorted, one unique id per line"
