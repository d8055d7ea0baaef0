"""ksqlDB's status routes: `GET /status` (every command this server ran, by command id), `GET /status/{commandId}`
(one command's status, 40400 when unknown) and `GET /clusterStatus` (this server's liveness and the source
partitions each of its persistent queries reads)."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ksqlpy.server.app import ServerState, json_response
from ksqlpy.server.errors import NOT_FOUND, ServerError


def command_statuses(state: ServerState) -> dict[str, Any]:
    with state.lock:
        return {"commandStatuses": {command: status["status"] for command, status in state.command_statuses.items()}}


def command_status(state: ServerState, command_id: str) -> dict[str, Any]:
    """One command's status; its id may also be given without the backticks around the name, as ksqlDB's
    documentation writes it (`stream/PAGEVIEWS/create`)."""
    with state.lock:
        status = state.command_statuses.get(command_id) or next(
            (status for known, status in state.command_statuses.items() if known.replace("`", "") == command_id),
            None)
    if status is None:
        raise ServerError(NOT_FOUND, f"Command not found: {command_id}")
    return status


def host_status(state: ServerState) -> dict[str, Any]:
    """This server as /clusterStatus reports a host: alive, and the partitions its queries hold as active."""
    service = state.service
    statuses = service.query_status()
    per_query = {}
    for query_id, query in list(service.engine.queries.items()):
        status = statuses.get(query_id)
        partitions = [] if status is None else [
            {"topic": step.source.topic, "partition": partition}
            for step in query.plan.sources for partition in sorted(status.partitions)]
        per_query[query_id] = {"activeStores": [], "activePartitions": partitions, "standByStores": [],
                               "standByPartitions": []}
    return {"hostAlive": True, "lastStatusUpdateMs": int(time.time() * 1000), "activeStandbyPerQuery": per_query,
            "hostStoreLags": {"stateStoreLags": {}, "updateTimeMs": 0}}


def cluster_status(state: ServerState) -> dict[str, Any]:
    """Every server of the service id this one knows of (itself alone when it shares the id with none)."""
    members = state.cluster.members() if state.cluster is not None else {state.config.url: host_status(state)}
    return {"clusterStatus": {urlsplit(url).netloc: status for url, status in members.items()}}


def routes(state: ServerState) -> list[BaseRoute]:
    async def all_statuses(request: Request) -> Response:
        return json_response(request, command_statuses(state))

    async def one_status(request: Request) -> Response:
        return json_response(request, command_status(state, request.path_params["command_id"]))

    async def cluster(request: Request) -> Response:
        return json_response(request, await run_in_threadpool(cluster_status, state))

    return [Route("/status", all_statuses, methods=["GET"]),
            Route("/status/{command_id:path}", one_status, methods=["GET"]),
            Route("/clusterStatus", cluster, methods=["GET"])]
