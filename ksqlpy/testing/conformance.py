"""The `ksqlpy conformance` command: grade the engine against ksqlDB's own test cases (JSONL files)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from ksqlpy.testing import runner
from ksqlpy.testing.cases import Case, CaseFileError, load_cases
from ksqlpy.testing.runner import ERROR, FAIL, PASS, SKIP, CaseResult, result_to_json
from ksqlpy.testing.test_functions import in_memory_driver_with_test_functions

_REASON_WIDTH = 240


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ksqlpy conformance",
        description="Run ksqlDB conformance cases (one JSON case per line) through the in-memory engine.")
    parser.add_argument("file", type=Path, help="conformance JSONL file, e.g. ../shared/conformance/public.jsonl")
    parser.add_argument("--json", type=Path, metavar="OUT.json", help="write per-case results as JSON")
    parser.add_argument("--filter", metavar="TEXT",
                        help="only cases whose id contains TEXT (case-insensitive) or that carry the feature "
                             "tag or function name TEXT")
    parser.add_argument("--verbose", action="store_true", help="print the full diff of every failing case")
    parser.add_argument("--time-limit", type=float, default=runner.DEFAULT_TIME_LIMIT_S, metavar="SECONDS",
                        help="per-case time limit (default %(default)s; 0 for none)")
    parser.add_argument("--write-passing", type=Path, metavar="IDS.txt",
                        help="add the ids of passing cases to this file (one per line, sorted)")
    parser.add_argument("--prune", action="store_true",
                        help="with --write-passing: also remove listed ids that ran and did not pass")
    return parser


def matches_filter(case: Case, text: str | None) -> bool:
    if not text:
        return True
    needle = text.lower()
    return (needle in case.id.lower() or needle in (f.lower() for f in case.features)
            or needle in (f.lower() for f in case.functions))


def run_cases(cases: Iterable[Case], time_limit_s: float | None,
              on_result: Callable[[CaseResult], None] = lambda result: None) -> list[CaseResult]:
    """Each case in a fresh driver with ksqlDB's test-only functions; `on_result` sees every result as soon as it
    is known."""
    results = []
    for case in cases:
        result = run_one(case, time_limit_s)
        on_result(result)
        results.append(result)
    return results


def run_one(case: Case, time_limit_s: float | None) -> CaseResult:
    """A topic-in/topic-out case through the in-memory engine; a REST-flavour one through a real server."""
    if case.suite != "rqtt":
        return runner.run_case(case, in_memory_driver_with_test_functions, time_limit_s)
    from ksqlpy.testing.rest_runner import run_rest_case

    return runner.guarded(case, time_limit_s, lambda: run_rest_case(case, in_memory_driver_with_test_functions))


def result_line(result: CaseResult) -> str:
    line = f"{result.status.upper():5} {result.case.id}"
    if result.reason and result.status != PASS:
        reason = " ".join(result.reason.split())
        if len(reason) > _REASON_WIDTH:
            reason = reason[:_REASON_WIDTH] + "..."
        line += f"  -- {reason}"
    return line


def _rate(passed: int, total: int) -> str:
    return f"{passed:>5}/{total:<5} {100.0 * passed / total if total else 0.0:5.1f}%"


def _table(title: str, rows: dict[str, tuple[int, int]]) -> list[str]:
    width = max([len(title), *(len(name) for name in rows)])
    return [f"{title:<{width}}  passed/total", *(f"{name:<{width}}  {_rate(*counts)}" for name, counts in rows.items())]


def _tally(results: Sequence[CaseResult], labels: Callable[[CaseResult], Iterable[str]]) -> dict[str, tuple[int, int]]:
    counts: dict[str, list[int]] = {}
    for result in results:
        for label in labels(result):
            entry = counts.setdefault(label, [0, 0])
            entry[0] += result.passed
            entry[1] += 1
    return {label: (passed, total) for label, (passed, total) in sorted(counts.items())}


def summary_lines(results: Sequence[CaseResult]) -> list[str]:
    """Per-feature and per-tier tables, expected-error counts, groups and the total pass rate."""
    lines = ["", *_table("feature", _tally(results, lambda r: r.case.features)), ""]
    lines += _table("tier", _tally(results, lambda r: [] if r.case.tier is None else [f"tier {r.case.tier}"]))
    error_cases = [r for r in results if r.case.expected_error is not None and r.status != SKIP]
    strict = sum(r.passed for r in error_cases)
    # Lenient: the run failed somehow, whatever the wording (many expected messages are ksqlDB-specific).
    lenient = sum(r.error_raised and r.status in (PASS, FAIL) for r in error_cases)
    lines += ["", f"expected-error cases: {len(error_cases)}; strict (message contains the expected text): "
              f"{strict}; lenient (some error raised): {lenient}"]
    groups: dict[str, bool] = {}
    for result in results:
        groups[result.case.group] = groups.get(result.case.group, True) and result.passed
    lines.append(f"groups (variants differing only in properties counted once): "
                 f"{sum(groups.values())}/{len(groups)} fully passing")
    by_status = {status: sum(r.status == status for r in results) for status in (PASS, FAIL, ERROR, SKIP)}
    lines.append(f"TOTAL passed {_rate(by_status[PASS], len(results))}  "
                 f"(fail {by_status[FAIL]}, error {by_status[ERROR]}, skip {by_status[SKIP]})")
    return lines


def write_report(path: Path, results: Sequence[CaseResult]) -> None:
    report = {"total": len(results), "passed": sum(r.passed for r in results),
              "cases": [result_to_json(r) for r in results]}
    path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def update_passing_ids(path: Path, results: Sequence[CaseResult], prune: bool) -> tuple[int, int]:
    """Add passing ids to the list file; with `prune`, drop listed ids that ran here and did not pass.

    Returns (added, removed).
    """
    listed = set(path.read_text(encoding="utf-8").splitlines()) if path.exists() else set()
    listed.discard("")
    passing = {r.case.id for r in results if r.passed}
    failing = {r.case.id for r in results if not r.passed} if prune else set()
    updated = (listed | passing) - failing
    path.write_text("".join(f"{case_id}\n" for case_id in sorted(updated)), encoding="utf-8")
    return len(updated - listed), len(listed - updated)


def main(argv: list[str]) -> int:
    """Exit status: 0 when every case that ran passed, 1 otherwise, 2 for unusable arguments or files."""
    arguments = build_parser().parse_args(argv)
    if arguments.prune and not arguments.write_passing:
        print("ksqlpy conformance: --prune needs --write-passing", file=sys.stderr)
        return 2
    try:
        cases = [c for c in load_cases(arguments.file) if matches_filter(c, arguments.filter)]
    except CaseFileError as error:
        print(f"ksqlpy conformance: {error}", file=sys.stderr)
        return 2

    def report(result: CaseResult) -> None:
        print(result_line(result), flush=True)
        if arguments.verbose and result.status != PASS:
            for detail in result.details:
                print(f"      {detail}")

    results = run_cases(cases, arguments.time_limit or None, report)
    print("\n".join(summary_lines(results)))
    try:
        if arguments.json:
            write_report(arguments.json, results)
        if arguments.write_passing:
            added, removed = update_passing_ids(arguments.write_passing, results, arguments.prune)
            print(f"{arguments.write_passing}: {added} id(s) added, {removed} removed")
    except OSError as error:
        print(f"ksqlpy conformance: cannot write {error.filename}: {error.strerror}", file=sys.stderr)
        return 2
    return 0 if all(r.status in (PASS, SKIP) for r in results) else 1
