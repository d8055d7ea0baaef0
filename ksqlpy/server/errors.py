"""ksqlDB's error responses: `@type`, `error_code` (the HTTP status × 100 + a detail number), `message`,
an empty stack trace under both names clients read (`stackTrace`, and the old `stack_trace`), and for a
statement that failed its text and the entities of the statements before it that succeeded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

BAD_REQUEST = 40000
BAD_STATEMENT = 40001
QUERY_ENDPOINT = 40002  # a SELECT or PRINT sent to /ksql
TOO_MANY_PUSH_QUERIES = 40003
HTTP2_ONLY = 40004
UNAUTHORIZED = 40100
FORBIDDEN = 40300
NOT_FOUND = 40400
NOT_ACCEPTABLE = 40600
PAYLOAD_TOO_LARGE = 41300
SERVER_ERROR = 50000
NOT_READY = 50303


class ServerError(Exception):
    """A request the server answers with a ksqlDB error payload."""

    def __init__(self, error_code: int, message: str, statement_text: str | None = None,
                 entities: Sequence[dict[str, Any]] = ()) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message
        self.statement_text = statement_text
        self.entities = list(entities)

    @property
    def status(self) -> int:
        return self.error_code // 100

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "@type": "generic_error" if self.statement_text is None else "statement_error",
            "error_code": self.error_code,
            "message": self.message,
            "stackTrace": [],
            "stack_trace": [],
        }
        if self.statement_text is not None:
            body["statementText"] = self.statement_text
            body["entities"] = self.entities
        return body
