"""`POST /inserts-stream` (HTTP/2 only, as in ksqlDB): the request's first line names the target stream
(`{"target": "..."}`), each further line is a JSON object to insert; each row is acknowledged as soon as it is
written (`{"status":"ok","seq":n}`) or refused (`{"status":"error","seq":n,"error_code":...,"message":...}`).

It is a plain ASGI app rather than a starlette request handler: it reads request lines and writes
acknowledgements on the one stream at once. A row's JSON is read as the JSON value format reads a record (names
matched ignoring case, values coerced to the columns' types) and written as INSERT VALUES writes one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from ksqlpy.errors import KsqlError
from ksqlpy.planning.catalog import DataSource
from ksqlpy.schema import Namespace
from ksqlpy.serialization.base import FormatOptions
from ksqlpy.serialization.json_format import JsonSerde
from ksqlpy.server.app import ServerState, as_server_error, error_response
from ksqlpy.server.errors import BAD_REQUEST, BAD_STATEMENT, HTTP2_ONLY, PAYLOAD_TOO_LARGE, ServerError
from ksqlpy.server.queries import DELIMITED


async def _request_lines(receive: Receive, limit: int) -> AsyncIterator[bytes]:
    """The request body's lines as they arrive (the last one may lack its newline); each at most `limit` bytes."""
    pending = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        pending += message.get("body", b"")
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line
        if len(pending) > limit:
            raise ServerError(PAYLOAD_TOO_LARGE, f"A row is larger than the limit of {limit} bytes")
        if not message.get("more_body", False):
            if pending:
                yield pending
            return


def _target_name(line: bytes | None) -> str:
    try:
        document = orjson.loads(line) if line is not None else None
    except orjson.JSONDecodeError as error:
        raise ServerError(BAD_REQUEST, f"The first line is not valid JSON: {error}") from error
    target = document.get("target") if isinstance(document, dict) else None
    if not isinstance(target, str) or not target:
        raise ServerError(BAD_REQUEST, 'The first line must name the target: {"target": "STREAM_NAME"}')
    return target


class InsertsStream:
    """The /inserts-stream endpoint over the server's state."""

    def __init__(self, state: ServerState) -> None:
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            if scope.get("http_version") != "2":
                raise ServerError(HTTP2_ONLY, "This endpoint is only available when using HTTP2")
            lines = _request_lines(receive, self.state.config.max_request_bytes)
            target = await self._target(_target_name(await anext(lines, None)))
        except Exception as error:
            await error_response(request, as_server_error(request, error))(scope, receive, send)
            return
        row_reader = JsonSerde([c for c in target.schema.columns if c.namespace is not Namespace.HEADERS],
                               FormatOptions())
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", DELIMITED.encode())]})
        seq = 0
        try:
            async for line in lines:
                if not line.strip():
                    continue
                ack = await run_in_threadpool(self._insert, request, target, row_reader, line, seq)
                await send({"type": "http.response.body", "body": orjson.dumps(ack) + b"\n", "more_body": True})
                seq += 1
        except ServerError as error:  # a line over the size limit: said, and the stream ends
            ack = {"status": "error", "seq": seq, "error_code": error.error_code, "message": error.message}
            await send({"type": "http.response.body", "body": orjson.dumps(ack) + b"\n", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _target(self, name: str) -> DataSource:
        service = self.state.service
        try:
            return await run_in_threadpool(service.insert_target, name)
        except KsqlError as error:
            if name != name.upper():  # as in SQL, an unquoted name is its upper-case form
                return await self._target(name.upper())
            raise ServerError(BAD_STATEMENT, str(error)) from error

    def _insert(self, request: Request, target: DataSource, row_reader: JsonSerde, line: bytes,
                seq: int) -> dict[str, Any]:
        try:
            values = row_reader.deserialize(line)
            if values is None:
                raise ServerError(BAD_REQUEST, "A row must be a JSON object")
            names = [column.name for column in row_reader.columns]
            self.state.service.insert_row(target, dict(zip(names, values, strict=True)))
        except Exception as error:
            failure = ServerError(BAD_REQUEST, str(error)) if isinstance(error, KsqlError) \
                else as_server_error(request, error)
            return {"status": "error", "seq": seq, "error_code": failure.error_code, "message": failure.message}
        return {"status": "ok", "seq": seq}


def routes(state: ServerState) -> list[BaseRoute]:
    return [Route("/inserts-stream", InsertsStream(state), methods=["POST"])]
