"""User-facing errors: every failure a user can cause is one of these, never a bare traceback."""

from __future__ import annotations


class KsqlError(Exception):
    """Base of every error caused by user input (SQL, records, files, configuration)."""


class ParseError(KsqlError):
    """The statement text does not follow the grammar; carries a 1-based line and column."""

    def __init__(self, message: str, line: int, column: int, expected: list[str] | None = None) -> None:
        self.line = line
        self.column = column
        self.expected = expected or []
        super().__init__(f"line {line}:{column}: {message}")


class StatementError(KsqlError):
    """A well-formed statement that cannot be executed: unknown names, type mismatches, bad properties."""


class SerdeError(KsqlError):
    """A record payload that does not match its declared format or schema."""


class EvaluationError(KsqlError):
    """An expression or function failed on a record's values at run time."""


class UdfError(EvaluationError):
    """A user-defined function raised: names the function and keeps the traceback for the processing log."""

    def __init__(self, function: str, cause: BaseException, trace: str) -> None:
        super().__init__(f"UDF {function} failed: {type(cause).__name__}: {cause}")
        self.function = function
        self.cause = cause
        self.trace = trace
