"""The `ksqlpy test` command: ksql-test-runner's statements/input/output files, judged like conformance cases."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ksqlpy.testing import runner
from ksqlpy.testing.cases import CaseFileError, load_properties, load_test_runner_case
from ksqlpy.testing.runner import FAIL, PASS

# Longer than the conformance limit: a user's own test may be bigger than a ksqlDB unit case.
DEFAULT_TIME_LIMIT_S = 60.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ksqlpy test",
        description="Run SQL statements over input records and check the output records, without Kafka "
                    "(the file formats of ksqlDB's ksql-test-runner).")
    parser.add_argument("--statements", "--sql-file", "-s", type=Path, required=True, metavar="S.sql",
                        help="SQL script: CREATE STREAM/TABLE [AS SELECT], INSERT INTO ...")
    parser.add_argument("--input", "--input-file", "-i", type=Path, metavar="IN.json",
                        help='input records: {"inputs": [{"topic", "key", "value", "timestamp"?, "headers"?}]}')
    parser.add_argument("--output", "--output-file", "-o", type=Path, required=True, metavar="OUT.json",
                        help='expected records: {"outputs": [{"topic", "key", "value", "timestamp"?, '
                             '"window"?, "headers"?}]}')
    parser.add_argument("--properties", "-p", type=Path, metavar="P",
                        help="session properties: a JSON object or name=value lines")
    parser.add_argument("--time-limit", type=float, default=DEFAULT_TIME_LIMIT_S, metavar="SECONDS",
                        help="give up after this long (default %(default)s; 0 for none)")
    return parser


def main(argv: list[str]) -> int:
    """Exit status: 0 when the outputs match, 1 when they do not, 2 for unusable arguments or files."""
    arguments = build_parser().parse_args(argv)
    try:
        properties = load_properties(arguments.properties) if arguments.properties else {}
        case = load_test_runner_case(arguments.statements, arguments.input, arguments.output, properties)
    except CaseFileError as error:
        print(f"ksqlpy test: {error}", file=sys.stderr)
        return 2
    result = runner.run_case(case, runner.in_memory_driver, arguments.time_limit or None)
    if result.status == PASS:
        print(f"Test passed: {len(case.outputs)} output record(s) matched.")
        return 0
    outcome = "failed" if result.status == FAIL else "did not complete"
    print(f"Test {outcome}: {result.reason}")
    for detail in result.details[1:]:
        print(detail)
    return 1
