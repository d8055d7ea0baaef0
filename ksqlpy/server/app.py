"""The ASGI application: ksqlDB's REST routes on one starlette app, sharing the server's state.

Responses are JSON in ksqlDB's content type (`application/vnd.ksql.v1+json`), or `application/json` when the
client asks for it. Whatever a handler raises reaches the client as a ksqlDB error payload, never as a
traceback: a ServerError with its code, a KsqlError as a bad statement, anything else as a server error
(logged here with its traceback).
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ksqlpy import __version__
from ksqlpy.errors import KsqlError
from ksqlpy.server.cluster import Cluster
from ksqlpy.server.errors import BAD_STATEMENT, NOT_FOUND, SERVER_ERROR, ServerError
from ksqlpy.server.security import BasicAuthentication, load_credentials
from ksqlpy.server.service import KsqlService

logger = logging.getLogger(__name__)

KSQL_JSON = "application/vnd.ksql.v1+json"
PLAIN_JSON = "application/json"


@dataclass
class ServerConfig:
    """How the server listens and what it allows."""

    host: str = "127.0.0.1"
    port: int = 8088
    advertised_url: str | None = None  # how other servers reach this one; by default http(s)://host:port
    max_push_queries: int = 100  # ksql.max.push.queries
    max_request_bytes: int = 10 * 1024 * 1024
    credentials_file: str | None = None  # user:password lines for HTTP basic authentication
    tls_certificate: str | None = None
    tls_key: str | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.tls_certificate else "http"
        return self.advertised_url or f"{scheme}://{self.host}:{self.port}"


@dataclass
class ServerState:
    """What every request handler shares: the service, the settings, the command sequence and the running
    push queries (by query id, each with the event that cancels it)."""

    service: KsqlService
    config: ServerConfig
    commands: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    push_queries: dict[str, threading.Event] = field(default_factory=dict)
    command_statuses: dict[str, dict[str, Any]] = field(default_factory=dict)  # by command id, for GET /status
    cluster: Cluster | None = None  # the other servers of the service id, while serving
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_command(self) -> int:
        with self.lock:
            return next(self.commands)


def wants_plain_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return PLAIN_JSON in accept and KSQL_JSON not in accept


def json_response(request: Request, content: Any, status_code: int = 200) -> Response:
    media_type = PLAIN_JSON if wants_plain_json(request) else KSQL_JSON
    return Response(orjson.dumps(content, default=str), status_code, media_type=media_type)


def error_response(request: Request, error: ServerError) -> Response:
    return json_response(request, error.payload(), error.status)


async def read_json(request: Request, limit: int) -> Any:
    """The request's JSON body, refused with 40000 when it is not JSON or is over `limit` bytes."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ServerError(41300, f"The request body is larger than the limit of {limit} bytes")
    try:
        return orjson.loads(body) if body else {}
    except orjson.JSONDecodeError as error:
        raise ServerError(40000, f"The request body is not valid JSON: {error}") from error


def as_server_error(request: Request, error: Exception) -> ServerError:
    """What the client is told of an error a handler raised."""
    if isinstance(error, ServerError):
        return error
    if isinstance(error, KsqlError):
        return ServerError(BAD_STATEMENT, str(error))
    if isinstance(error, HTTPException):
        return ServerError(NOT_FOUND if error.status_code == 404 else error.status_code * 100, str(error.detail))
    logger.error("request %s %s failed", request.method, request.url.path, exc_info=error)
    return ServerError(SERVER_ERROR, f"{type(error).__name__}: {error}")


def server_info(state: ServerState) -> dict[str, Any]:
    service = state.service
    return {"KsqlServerInfo": {"version": __version__, "kafkaClusterId": service.kafka_cluster_id,
                               "ksqlServiceId": service.service_id, "serverStatus": "RUNNING"}}


async def _root(request: Request) -> Response:
    return RedirectResponse("/info", status_code=307)


def _info(state: ServerState) -> Callable[[Request], Any]:
    async def info(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        return json_response(request, await run_in_threadpool(server_info, state))

    return info


def _healthcheck(state: ServerState) -> Callable[[Request], Any]:
    async def healthcheck(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        kafka = await run_in_threadpool(state.service.is_healthy)
        body = {"isHealthy": kafka, "details": {"metastore": {"isHealthy": True}, "kafka": {"isHealthy": kafka}}}
        return json_response(request, body, 200 if kafka else 503)

    return healthcheck


def create_app(service: KsqlService, config: ServerConfig, extra_routes: Iterable[BaseRoute] = ()) -> Starlette:
    """The server's ASGI app over `service`."""
    from ksqlpy.server import inserts, metrics, queries, statements
    from ksqlpy.server import status as status_routes

    state = ServerState(service, config)
    routes: list[BaseRoute] = [
        Route("/", _root, methods=["GET"]),
        Route("/info", _info(state), methods=["GET"]),
        Route("/healthcheck", _healthcheck(state), methods=["GET"]),
        *statements.routes(state),
        *metrics.routes(service),
        *queries.routes(state),
        *inserts.routes(state),
        *status_routes.routes(state),
        *extra_routes,
    ]

    async def on_error(request: Request, error: Exception) -> Response:
        return error_response(request, as_server_error(request, error))

    # ServerError, KsqlError and HTTPException are answered where they are raised; whatever else escapes is
    # answered by starlette's outermost middleware, which then lets it go on to be logged.
    middleware = [] if config.credentials_file is None else \
        [Middleware(BasicAuthentication, users=load_credentials(config.credentials_file))]
    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        from ksqlpy.server.status import host_status

        # Servers of one service id find each other (for /clusterStatus and routing pull queries) while serving.
        state.cluster = await run_in_threadpool(service.join_cluster, config.url, lambda: host_status(state))
        try:
            yield
        finally:
            if state.cluster is not None:
                await run_in_threadpool(state.cluster.stop)

    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan, exception_handlers={
        ServerError: on_error, KsqlError: on_error, HTTPException: on_error, Exception: on_error})
    app.state.ksql = state
    return app
