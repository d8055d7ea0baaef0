"""`GET /metrics`: the process's Prometheus metrics (ksqlpy.runtime.metrics) in Prometheus' text format."""

from __future__ import annotations

from prometheus_client import generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ksqlpy.runtime.metrics import app_registry
from ksqlpy.server.service import AppService, KsqlService

# Prometheus' text exposition format, the one every scraper reads
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def routes(service: KsqlService) -> list[BaseRoute]:
    """The metrics route over the service's app (none for a service without a KsqlpyApp behind it)."""
    if not isinstance(service, AppService):
        return []
    registry = app_registry(service.app)

    async def metrics(request: Request) -> Response:
        # Reading the queries' figures takes their locks and walks the state directories: off the event loop.
        body = await run_in_threadpool(generate_latest, registry)
        return Response(body, media_type=PROMETHEUS_TEXT)

    return [Route("/metrics", metrics, methods=["GET"])]
