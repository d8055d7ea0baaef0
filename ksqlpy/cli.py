"""The `ksqlpy` command line: one entry point dispatching to each tool's own argument parser."""

from __future__ import annotations

import sys
from collections.abc import Callable

USAGE = """usage: ksqlpy <command> [options]

commands:
  test          run statements over input records in memory and compare with expected output
  conformance   run ksqlDB's query-validation cases (JSON Lines) and report the pass rate
  version       print the version

Run 'ksqlpy <command> --help' for a command's options."""


def _test(argv: list[str]) -> int:
    from ksqlpy.testing import test_runner

    return test_runner.main(argv)


def _conformance(argv: list[str]) -> int:
    from ksqlpy.testing import conformance

    return conformance.main(argv)


def _version(argv: list[str]) -> int:
    from ksqlpy import __version__

    print(f"ksqlpy {__version__}")
    return 0


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "test": _test,
    "conformance": _conformance,
    "version": _version,
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if args else 2
    command = COMMANDS.get(args[0])
    if command is None:
        print(f"ksqlpy: unknown command '{args[0]}'\n\n{USAGE}", file=sys.stderr)
        return 2
    return command(args[1:])


if __name__ == "__main__":
    sys.exit(main())
