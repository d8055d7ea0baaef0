"""The query and insert endpoints as real PyPI clients use them, unmodified: ksql-python-ng (`ksql`: /query over
HTTP/1.1, /query-stream and /inserts-stream over HTTP/2 cleartext, /close-query) and `ksqldb` (/query-stream
and /inserts-stream over HTTP/2 cleartext, /close-query)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from ksql import KSQLAPI
from ksqldb import KSQLdbClient
from running_server import RunningServer

Rows = list[list[Any]]


@pytest.fixture
def orders(server: RunningServer, unique_topic: Callable[..., str]) -> str:
    """A stream ORDERS (ID STRING KEY, ITEM STRING, QTY INT) holding two rows, written through /inserts-stream
    by ksql-python-ng; the stream's name."""
    KSQLAPI(server.url).ksql(f"CREATE STREAM orders (id STRING KEY, item STRING, qty INT) WITH "
                             f"(kafka_topic='{unique_topic()}', value_format='JSON', partitions=1);")
    acks = KSQLAPI(server.url).inserts_stream("ORDERS", [{"ID": "o1", "ITEM": "pen", "QTY": 2},
                                                         {"ID": "o2", "ITEM": "ink", "QTY": 5}])
    assert acks == [{"status": "ok", "seq": 0}, {"status": "ok", "seq": 1}]
    return "ORDERS"


def rows_of_query(chunks: list[str]) -> Rows:
    """The rows in what ksql-python-ng's query() yielded from /query (chunks of ksqlDB's JSON array)."""
    return [item["row"]["columns"] for item in json.loads("".join(chunks)) if "row" in item]


def lines_of(text: str) -> list[Any]:
    return [json.loads(line) for line in text.splitlines()]


def eventually(read: Callable[[], Rows], count: int, timeout: float = 15) -> Rows:
    deadline = time.monotonic() + timeout
    while len(rows := read()) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    return rows


def test_ksql_python_ng_queries_over_http1(server: RunningServer, orders: str) -> None:
    client = KSQLAPI(server.url)
    pulled = eventually(lambda: rows_of_query(list(client.query(f"SELECT * FROM {orders};"))), 2)
    assert pulled == [["o1", "pen", 2], ["o2", "ink", 5]]
    pushed = list(client.query(f"SELECT item, qty FROM {orders} EMIT CHANGES LIMIT 2;",
                               stream_properties={"auto.offset.reset": "earliest"}))
    array = json.loads("".join(pushed))
    assert array[1:] == [{"row": {"columns": ["pen", 2]}}, {"row": {"columns": ["ink", 5]}},
                         {"finalMessage": "Limit Reached"}]


def test_ksql_python_ng_queries_over_http2_and_closes_a_query(server: RunningServer, orders: str) -> None:
    client = KSQLAPI(server.url)
    # The delimited lines, however the HTTP/2 frames cut them (so not with parse=True, which takes each
    # chunk for one line).
    pulled = eventually(lambda: lines_of("".join(client.query(f"SELECT * FROM {orders};", use_http2=True)))[1:], 2)
    assert pulled == [["o1", "pen", 2], ["o2", "ink", 5]]
    stream = client.query(f"SELECT * FROM {orders} EMIT CHANGES;", use_http2=True)
    query_id = lines_of(next(stream))[0]["queryId"]
    assert client.close_query(query_id) is True
    assert list(stream) == []  # the server ended the stream
    assert client.close_query(query_id) is False


def test_ksqldb_client_pull_and_push_over_http2(server: RunningServer, orders: str) -> None:
    client = KSQLdbClient(server.url)
    pulled = eventually(lambda: client.query_sync(f"SELECT * FROM {orders};")[1:], 2)
    assert pulled == [["o1", "pen", 2], ["o2", "ink", 5]]

    async def push() -> list[Any]:
        return [line async for line in client.query_async(
            f"SELECT id, qty FROM {orders} EMIT CHANGES LIMIT 2;", {"auto.offset.reset": "earliest"})]

    header, *rows = asyncio.run(push())
    assert header["columnNames"] == ["ID", "QTY"] and header["columnTypes"] == ["STRING", "INTEGER"]
    assert rows == [["o1", 2], ["o2", 5]]


def test_ksqldb_client_inserts_and_closes_a_push_query(server: RunningServer, orders: str) -> None:
    client = KSQLdbClient(server.url)

    async def follow() -> list[Any]:
        seen: list[Any] = []
        async for line in client.query_async(f"SELECT item FROM {orders} EMIT CHANGES;", timeout=30):
            seen.append(line)
            if len(seen) == 1:  # reading from now on: rows inserted now are seen
                acks = await asyncio.to_thread(client.inserts_stream, orders, [{"ID": "o3", "ITEM": "pad", "QTY": 1}])
                assert acks == [{"status": "ok", "seq": 0}]
            elif len(seen) == 2:
                assert await asyncio.to_thread(client.close_query, seen[0]["queryId"])
        return seen

    seen = asyncio.run(asyncio.wait_for(follow(), 30))
    assert seen[1:] == [["pad"]]
