"""Routing a pull query for one key to the server that holds the key's partition, as ksqlDB routes pull queries
to the active host: the key's partition is the one the producer's partitioner puts its serialized key in, and
the owner is the live server of the service whose query writing the table holds that partition (see
ksqlpy.server.cluster). The owner's answer is streamed back as it comes, marked with the server that gave it;
a forwarded request is never forwarded again."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ksqlpy.execution.partitioning import partition_for
from ksqlpy.execution.pull import key_lookup
from ksqlpy.server.app import ServerState
from ksqlpy.server.service import TransientQuery

logger = logging.getLogger(__name__)

FORWARDED_HEADER = "x-ksqlpy-forwarded"  # set on a request one server passes to another
SERVED_BY_HEADER = "x-ksqlpy-served-by"  # the URL of the server whose state answered a pull query
PASSED_ON_HEADERS = ("authorization", "accept", "content-type")


def pull_owner(state: ServerState, query: TransientQuery) -> str | None:
    """The URL of the other server that holds the one key this pull query asks for, if another does."""
    cluster = state.cluster
    if cluster is None or not query.is_pull:
        return None
    lookup = key_lookup(query.plan)
    table = query.plan.source.source
    if lookup is None or len(lookup.keys) != 1 or table.window is not None or len(table.writers) != 1:
        return None
    (writer,) = table.writers
    writing = state.service.engine.queries.get(writer)
    if writing is None:
        return None
    partition = partition_for(lookup.keys[0], max(1, table.partitions))
    # The writer holds the key's partition of its input when it keeps its table keyed as its input is.
    return cluster.owner_of(writer, writing.plan.input_topics[0], partition)


async def answer_of_owner(state: ServerState, request: Request, query: TransientQuery, body: Any) -> Response | None:
    """The answer of the server holding the key a pull query asks for, when that is another live server
    (None: answer here, also when the owner cannot be reached)."""
    if request.headers.get(FORWARDED_HEADER):
        return None
    owner = await run_in_threadpool(pull_owner, state, query)
    if owner is None:
        return None
    try:
        return await forward(owner, request.url.path, body, dict(request.headers))
    except httpx.HTTPError as error:
        logger.warning("pull query not forwarded to %s, which holds its key (%s): answered here", owner, error)
        return None


async def forward(owner: str, path: str, body: Any, headers: dict[str, str]) -> StreamingResponse:
    """The owner's answer to the same request, streamed through."""
    client = httpx.AsyncClient(base_url=owner, timeout=httpx.Timeout(30.0, read=None))
    passed_on = {name: value for name, value in headers.items() if name in PASSED_ON_HEADERS}
    request = client.build_request("POST", path, json=body, headers={**passed_on, FORWARDED_HEADER: "1"})
    response = await client.send(request, stream=True)

    async def relayed() -> AsyncIterator[bytes]:
        async for chunk in response.aiter_raw():
            yield chunk

    async def close() -> None:
        await response.aclose()
        await client.aclose()

    media_type = response.headers.get("content-type")
    return StreamingResponse(relayed(), response.status_code, headers={SERVED_BY_HEADER: owner},
                             media_type=media_type, background=BackgroundTask(close))
