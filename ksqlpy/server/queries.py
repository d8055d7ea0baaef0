"""ksqlDB's query endpoints: `POST /query` (the chunked JSON array of the original REST API; PRINT's text lines),
`POST /query-stream` (newline-delimited or one JSON array, over HTTP/1.1 and HTTP/2) and `POST /close-query`.

A pull query is answered from its rows at once. A push query runs its blocking Kafka iterator on a thread of its
own, which hands rows to the event loop through a bounded queue; it stops at its LIMIT, on /close-query, or when
the client goes away (starlette cancels the response, which sets the query's cancel event, and the iterator then
closes its consumer). The response starts only once the query reads every partition from "now", so a client
that sees the header also sees every record produced after it. At most `ksql.max.push.queries` run at once.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from ksqlpy.errors import KsqlError
from ksqlpy.planning.catalog import WINDOW_BOUND_COLUMNS
from ksqlpy.runtime.push import DELETED
from ksqlpy.schema import Column
from ksqlpy.server.app import KSQL_JSON, PLAIN_JSON, ServerState, as_server_error, read_json
from ksqlpy.server.errors import BAD_REQUEST, BAD_STATEMENT, TOO_MANY_PUSH_QUERIES, ServerError
from ksqlpy.server.routing import answer_of_owner
from ksqlpy.server.service import TransientQuery
from ksqlpy.server.statements import parse_request_statements, request_properties
from ksqlpy.syntax import ast
from ksqlpy.text import value_to_text
from ksqlpy.types import BYTES, DATE, TIME, TIMESTAMP, ArrayType, DecimalType, MapType, SqlType, StructType

DELIMITED = "application/vnd.ksqlapi.delimited.v1"
KEEP_ALIVE_SECONDS = 1.0  # /query sends a bare newline when no row came for this long
BUFFERED_ROWS = 1000  # rows a push query may run ahead of a slow client
READY_TIMEOUT_SECONDS = 30.0
LIMIT_REACHED = "Limit Reached"
QUERY_COMPLETED = "Query Completed"

Row = list[Any]
Encoder = Callable[[Any], Any]


# ---- what a query's rows look like on the wire -----------------------------------------------------------


def _encoder(sql_type: SqlType) -> Encoder | None:
    """How a value of `sql_type` is written in ksqlDB's REST JSON; None when it is written as it is."""
    if sql_type in (TIMESTAMP, DATE, TIME):
        return lambda value: value_to_text(value, sql_type)
    if sql_type == BYTES:
        return lambda value: base64.b64encode(value).decode("ascii")
    if isinstance(sql_type, DecimalType):
        # a JSON number with the decimal's exact digits, as Jackson writes a BigDecimal
        return lambda value: orjson.Fragment(str(value) if isinstance(value, Decimal) else repr(value))
    if isinstance(sql_type, ArrayType):
        element = _encoder(sql_type.element)
        return None if element is None else lambda value: [_nullable(element, item) for item in value]
    if isinstance(sql_type, MapType):
        item_encoder = _encoder(sql_type.value)
        return lambda value: {str(key): _nullable(item_encoder, item) for key, item in value.items()}
    if isinstance(sql_type, StructType):
        fields = [(name, _encoder(field_type)) for name, field_type in sql_type.fields]
        return lambda value: {name: _nullable(encode, value.get(name)) for name, encode in fields}
    return None


def _nullable(encode: Encoder | None, value: Any) -> Any:
    return value if value is None or encode is None else encode(value)


@dataclass
class Shape:
    """A query's columns, how its rows are written, and how its header names them."""

    query: TransientQuery
    columns: tuple[Column, ...]
    encoders: list[Encoder | None]

    @classmethod
    def of(cls, query: TransientQuery) -> Shape:
        columns = query.plan.output.columns
        return cls(query, columns, [_encoder(column.type) for column in columns])

    def values(self, row: Row) -> tuple[list[Any], bool]:
        """The row's JSON values, and whether it is a tombstone (its value cells then null)."""
        tombstone = any(cell is DELETED for cell in row)
        return [None if cell is DELETED else _nullable(encode, cell)
                for encode, cell in zip(self.encoders, row, strict=True)], tombstone

    def schema(self) -> str:
        """ksqlDB's header schema: a pull query over a table marks its key columns KEY (a windowed table's window
        bounds are part of its key) and its header columns HEADERS; other queries' columns are plain."""
        return ", ".join(map(self._column_text, self.columns))

    def _column_text(self, column: Column) -> str:
        source = self.query.plan.source.source
        if not self.query.is_pull or source.kind != "TABLE":
            return f"`{column.name}` {column.type}"
        if source.window is not None and column.name in WINDOW_BOUND_COLUMNS:
            return f"`{column.name}` {column.type} KEY"
        return str(column)

    def metadata(self) -> dict[str, Any]:
        return {"queryId": self.query.query_id, "columnNames": [c.name for c in self.columns],
                "columnTypes": [str(c.type) for c in self.columns]}


def _json(content: Any) -> bytes:
    return orjson.dumps(content)


# ---- planning -----------------------------------------------------------------------------------------------


async def _read_request(state: ServerState, request: Request, sql_field: str,
                        kinds: tuple[type[ast.Statement], ...]) -> tuple[ast.Statement, dict[str, Any]]:
    """The request's one statement, of one of `kinds`, and its property overrides."""
    body = await read_json(request, state.config.max_request_bytes)
    if not isinstance(body, dict):
        raise ServerError(BAD_REQUEST, "The request body must be a JSON object")
    text = body.get(sql_field)
    statements = parse_request_statements(text)
    if len(statements) != 1:
        raise ServerError(BAD_STATEMENT, f"Expected exactly one statement, got {len(statements)}", text)
    (statement,) = statements
    if not isinstance(statement, kinds):
        kind = type(statement).__name__
        raise ServerError(BAD_STATEMENT, f"Statement type `{kind}' not supported for this resource: "
                          "statements other than queries should be issued to the '/ksql' endpoint", text)
    return statement, request_properties(body)


async def _plan(state: ServerState, statement: ast.SelectStatement, properties: Mapping[str, Any]) -> TransientQuery:
    try:
        return await run_in_threadpool(state.service.plan_query, statement, properties)
    except KsqlError as error:
        raise ServerError(BAD_STATEMENT, str(error), statement.text) from error


# ---- push queries on threads of their own ------------------------------------------------------------------


class _End:
    """The push query's iterator is done."""


END = _End()
QueueItem = Row | str | ServerError | _End  # a SELECT's rows, PRINT's lines
OpenStream = Callable[[threading.Event, threading.Event], Iterator[Row | str]]  # (cancel, ready) -> rows


class PushQuery:
    """A running push query (or PRINT): its rows arrive on the event loop's queue from the thread iterating
    what `open_stream` returns, which must stop soon after its cancel event is set."""

    def __init__(self, state: ServerState, request: Request, query_id: str, limit: int | None,
                 open_stream: OpenStream) -> None:
        self.state = state
        self.request = request
        self.query_id = query_id
        self.limit = limit
        self.open_stream = open_stream
        self.cancel = threading.Event()
        self.ready = threading.Event()
        self.delivered = 0
        self.failure: ServerError | None = None
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[QueueItem] = asyncio.Queue()
        self._room = threading.Semaphore(BUFFERED_ROWS)
        self._registered = False

    def start(self) -> None:
        """Register the query (refused beyond ksql.max.push.queries) and start iterating it."""
        state = self.state
        with state.lock:
            limit = state.config.max_push_queries
            if len(state.push_queries) >= limit:
                raise ServerError(TOO_MANY_PUSH_QUERIES, f"Not executing query(s) as it would cause the number of "
                                  f"active, push queries to exceed the limit of {limit}. Terminate existing PUSH "
                                  "queries, or increase the 'ksql.max.push.queries' setting.")
            state.push_queries[self.query_id] = self.cancel
            self._registered = True
        threading.Thread(target=self._iterate, name=f"push-{self.query_id}", daemon=True).start()

    def stop(self) -> None:
        """Cancel the query and forget it (the thread closes the consumer as it notices); said once or more."""
        self.cancel.set()
        if self._registered:
            with self.state.lock:
                self.state.push_queries.pop(self.query_id, None)
            self._registered = False

    def _iterate(self) -> None:
        rows = self.open_stream(self.cancel, self.ready)
        try:
            for row in rows:
                while not self._room.acquire(timeout=0.5):
                    if self.cancel.is_set():
                        return
                self._post(row)
        except Exception as error:  # reported to the client, never left to kill the thread silently
            self.failure = as_server_error(self.request, error)
            self._post(self.failure)
        finally:
            rows.close()  # type: ignore[attr-defined]  # a generator: closing it closes the consumer
            self._post(END)

    def _post(self, item: QueueItem) -> None:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the event loop has closed: nobody is listening any more
            self.cancel.set()

    async def wait_until_reading(self) -> None:
        """Until the query reads every partition from "now"; a failure before that is raised (no header sent)."""
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while not self.ready.is_set() and self._queue.empty() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if self.failure is not None and not self.ready.is_set():
            raise self.failure

    async def next(self, timeout: float | None = None) -> QueueItem | None:
        """The next row, failure or END; None when `timeout` passed first."""
        try:
            item = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None
        if isinstance(item, list | str):
            self._room.release()
            self.delivered += 1
        return item

    @property
    def limit_reached(self) -> bool:
        return self.limit is not None and self.delivered >= self.limit


async def _start_push(state: ServerState, request: Request, query_id: str, limit: int | None,
                      open_stream: OpenStream) -> PushQuery:
    push = PushQuery(state, request, query_id, limit, open_stream)
    push.start()
    try:
        await push.wait_until_reading()
    except BaseException:
        push.stop()
        raise
    return push


# ---- POST /query --------------------------------------------------------------------------------------------


async def _query_frames(shape: Shape, rows: list[Row] | None, push: PushQuery | None) -> AsyncIterator[bytes]:
    """ksqlDB's /query body: `[`, the header, `,\\n` before each further object, keep-alive newlines, `]`."""
    yield b"[" + _json({"header": {"queryId": shape.query.query_id, "schema": shape.schema()}})
    final: str | None = None
    if rows is not None:
        for row in rows:
            yield b",\n" + _row_frame(shape, row)
        if shape.query.plan.source.source.kind != "TABLE":
            final = QUERY_COMPLETED  # a table's pull query ends with its rows; a stream's says so
    elif push is not None:
        while True:
            item = await push.next(KEEP_ALIVE_SECONDS)
            if item is None:
                yield b"\n"
            elif isinstance(item, ServerError):
                yield b",\n" + _json({"errorMessage": item.payload()})
                break
            elif isinstance(item, _End):
                final = LIMIT_REACHED if push.limit_reached else QUERY_COMPLETED
                break
            elif isinstance(item, list):
                yield b",\n" + _row_frame(shape, item)
                if push.limit_reached:
                    final = LIMIT_REACHED
                    break
    if final is not None:
        yield b",\n" + _json({"finalMessage": final})
    yield b"]\n"


def _row_frame(shape: Shape, row: Row) -> bytes:
    values, tombstone = shape.values(row)
    return _json({"row": {"columns": values, "tombstone": True}} if tombstone else {"row": {"columns": values}})


# ---- POST /query-stream -------------------------------------------------------------------------------------


async def _stream_items(shape: Shape, rows: list[Row] | None, push: PushQuery | None) -> AsyncIterator[Any]:
    """The metadata, then each row's values, then (when the query failed) its error."""
    yield shape.metadata()
    if rows is not None:
        for row in rows:
            yield shape.values(row)[0]
        return
    assert push is not None
    while not push.limit_reached:
        item = await push.next()
        if isinstance(item, ServerError):
            yield item.payload()
            return
        if isinstance(item, list):
            yield shape.values(item)[0]
        else:
            return


async def _delimited(items: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    async for item in items:
        yield _json(item) + b"\n"


async def _json_array(items: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    separator = b"["
    async for item in items:
        yield separator + _json(item)
        separator = b","
    yield b"]"


# ---- routes -------------------------------------------------------------------------------------------------


async def _run(state: ServerState, request: Request, query: TransientQuery,
               properties: Mapping[str, Any]) -> tuple[Shape, list[Row] | None, PushQuery | None]:
    """A planned query's answer: a pull query's rows, or a push query started and reading."""
    shape = Shape.of(query)
    if query.is_pull:
        return shape, await run_in_threadpool(state.service.pull, query), None

    def open_stream(cancel: threading.Event, ready: threading.Event) -> Iterator[Row]:
        return state.service.push(query, properties, cancel, ready)

    return shape, None, await _start_push(state, request, query.query_id, query.plan.limit, open_stream)


async def _print_lines(push: PushQuery) -> AsyncIterator[bytes]:
    """PRINT over /query: its text lines as records arrive, keep-alive newlines between."""
    while True:
        item = await push.next(KEEP_ALIVE_SECONDS)
        if item is None:
            yield b"\n"
        elif isinstance(item, str):
            yield item.encode() + b"\n"
        elif isinstance(item, ServerError):
            yield item.message.encode() + b"\n"
            return
        else:
            return


async def _start_print(state: ServerState, request: Request, statement: ast.Print) -> PushQuery:
    def open_stream(cancel: threading.Event, ready: threading.Event) -> Iterator[str]:
        return state.service.print_topic(statement, cancel, ready)

    return await _start_push(state, request, f"print_{uuid.uuid4().hex}", None, open_stream)


def _streaming(body: AsyncIterator[bytes], media_type: str, push: PushQuery | None) -> StreamingResponse:
    async def body_then_stop() -> AsyncIterator[bytes]:
        try:
            async for chunk in body:
                yield chunk
        finally:
            if push is not None:
                push.stop()

    # The background task stops a query whose response never got to run its body (client gone at once).
    stop = BackgroundTask(push.stop) if push is not None else None
    return StreamingResponse(body_then_stop(), media_type=media_type, background=stop)


def routes(state: ServerState) -> list[BaseRoute]:
    async def query(request: Request) -> Response:
        statement, properties = await _read_request(state, request, "ksql", (ast.SelectStatement, ast.Print))
        if isinstance(statement, ast.Print):
            printing = await _start_print(state, request, statement)
            return _streaming(_print_lines(printing), KSQL_JSON, printing)
        assert isinstance(statement, ast.SelectStatement)
        query = await _plan(state, statement, properties)
        owners = await answer_of_owner(state, request, query, {"ksql": statement.text, "streamsProperties": properties})
        if owners is not None:
            return owners
        shape, rows, push = await _run(state, request, query, properties)
        return _streaming(_query_frames(shape, rows, push), KSQL_JSON, push)

    async def query_stream(request: Request) -> Response:
        statement, properties = await _read_request(state, request, "sql", (ast.SelectStatement,))
        assert isinstance(statement, ast.SelectStatement)
        query = await _plan(state, statement, properties)
        owners = await answer_of_owner(state, request, query, {"sql": statement.text, "properties": properties})
        if owners is not None:
            return owners
        shape, rows, push = await _run(state, request, query, properties)
        items = _stream_items(shape, rows, push)
        if PLAIN_JSON in request.headers.get("accept", ""):
            return _streaming(_json_array(items), PLAIN_JSON, push)
        return _streaming(_delimited(items), DELIMITED, push)

    async def close_query(request: Request) -> Response:
        body = await read_json(request, state.config.max_request_bytes)
        query_id = body.get("queryId") if isinstance(body, dict) else None
        with state.lock:
            cancel = state.push_queries.get(query_id) if isinstance(query_id, str) else None
        if cancel is None:
            raise ServerError(BAD_REQUEST, f"No query with id {query_id}")
        cancel.set()
        return Response(status_code=200)

    return [
        Route("/query", query, methods=["POST"]),
        Route("/query-stream", query_stream, methods=["POST"]),
        Route("/close-query", close_query, methods=["POST"]),
    ]
