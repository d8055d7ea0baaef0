"""Queries over REST against a real server: /query's chunked JSON array (pull, push with LIMIT, tombstones,
keep-alives), /query-stream delimited and as one JSON array over HTTP/1.1 and HTTP/2, /close-query,
cancellation by disconnect, the push-query limit, and /inserts-stream over HTTP/2 (refused over HTTP/1.1)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import h2.config
import h2.connection
import h2.events
import httpx
import pytest
from running_server import RunningServer
from test_server_basics import ksql

DELIMITED = "application/vnd.ksqlapi.delimited.v1"


def create(server: RunningServer, statement: str) -> None:
    answer = ksql(server, statement)
    assert answer.status_code == 200, answer.text


def post_query(server: RunningServer, sql: str, **properties: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/query", json={"ksql": sql, "streamsProperties": properties}, timeout=30)


def query_objects(answer: httpx.Response) -> list[dict[str, Any]]:
    """The objects /query streamed (keep-alive newlines are whitespace in the array)."""
    assert answer.status_code == 200, answer.text
    objects: list[dict[str, Any]] = json.loads(answer.text)
    return objects


def wait_for_rows(server: RunningServer, sql: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 15
    while True:
        objects = query_objects(post_query(server, sql))
        if len([o for o in objects if "row" in o]) >= count or time.monotonic() > deadline:
            return objects
        time.sleep(0.2)


@pytest.fixture
def users(server: RunningServer, unique_topic: Callable[..., str], produce_json: Callable[..., None],
          broker: str) -> str:
    """A table USERS (ID STRING PRIMARY KEY, AGE INT) holding alice 30 and bob 40; its topic's name."""
    topic = unique_topic("users")
    produce_json(broker, topic, [("alice", {"AGE": 30}), ("bob", {"AGE": 40})])
    create(server, f"CREATE TABLE users (id STRING PRIMARY KEY, age INT) WITH (kafka_topic='{topic}', "
                   "value_format='JSON');")
    return topic


@pytest.fixture
def clicks(server: RunningServer, unique_topic: Callable[..., str]) -> str:
    """An empty stream CLICKS (USER STRING KEY, PAGE STRING, N INT); its topic's name."""
    topic = unique_topic("clicks")
    create(server, f"CREATE STREAM clicks (user STRING KEY, page STRING, n INT) WITH (kafka_topic='{topic}', "
                   "value_format='JSON', partitions=1);")
    return topic


class PushReader:
    """A push query read line by line from a streaming response on a thread, so the test can act meanwhile."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines: list[str] = []
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for line in self.response.iter_lines():
                self.lines.append(line)
        except httpx.HTTPError:
            pass
        finally:
            self.done.set()


@contextmanager
def stream_query(server: RunningServer, path: str, body: dict[str, Any], http2: bool = False) -> Iterator[httpx.Response]:
    with client_for(http2) as client, client.stream("POST", f"{server.url}{path}", json=body, timeout=30) as response:
        yield response


def client_for(http2: bool) -> httpx.Client:
    return httpx.Client(http2=True, http1=False) if http2 else httpx.Client()


# ---- /query ---------------------------------------------------------------------------------------------------


def test_a_pull_query_answers_the_header_with_key_columns_and_the_rows(server: RunningServer, users: str) -> None:
    objects = wait_for_rows(server, "SELECT * FROM users;", 2)
    header = objects[0]["header"]
    assert header["schema"] == "`ID` STRING KEY, `AGE` INTEGER"
    assert isinstance(header["queryId"], str) and header["queryId"]
    assert sorted(o["row"]["columns"] for o in objects[1:]) == [["alice", 30], ["bob", 40]]
    assert objects == [objects[0], *[{"row": o["row"]} for o in objects[1:]]]  # a table's pull ends with its rows


def test_a_pull_query_over_a_stream_says_it_completed(server: RunningServer, clicks: str,
                                                      produce_json: Callable[..., None], broker: str) -> None:
    produce_json(broker, clicks, [("u1", {"PAGE": "home", "N": 1})])
    objects = wait_for_rows(server, "SELECT * FROM clicks;", 1)
    assert objects[1:] == [{"row": {"columns": ["u1", "home", 1]}}, {"finalMessage": "Query Completed"}]
    assert objects[0]["header"]["schema"] == "`USER` STRING, `PAGE` STRING, `N` INTEGER"  # KEY marks tables' only


def test_a_push_query_streams_records_produced_after_it_started_until_its_limit(
        server: RunningServer, clicks: str, produce_json: Callable[..., None], broker: str) -> None:
    body = {"ksql": "SELECT user, page FROM clicks EMIT CHANGES LIMIT 2;", "streamsProperties": {}}
    with stream_query(server, "/query", body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/vnd.ksql.v1+json"
        reader = PushReader(response)
        # the header comes once the query reads from "now": what is produced after it is seen
        assert wait_for(lambda: reader.lines)
        produce_json(broker, clicks, [("u1", {"PAGE": "home", "N": 1}), ("u2", {"PAGE": "cart", "N": 2}),
                                      ("u3", {"PAGE": "never", "N": 3})])
        assert reader.done.wait(20)
    objects = json.loads("\n".join(reader.lines))
    assert objects[0]["header"]["schema"] == "`USER` STRING, `PAGE` STRING"  # no KEY for a push query
    assert objects[1:] == [{"row": {"columns": ["u1", "home"]}}, {"row": {"columns": ["u2", "cart"]}},
                           {"finalMessage": "Limit Reached"}]


def test_a_push_query_over_a_table_marks_deletions_as_tombstones(server: RunningServer, users: str,
                                                                 produce_json: Callable[..., None],
                                                                 broker: str) -> None:
    produce_json(broker, users, [("alice", None)])
    objects = query_objects(post_query(server, "SELECT * FROM users EMIT CHANGES LIMIT 3;",
                                       **{"auto.offset.reset": "earliest"}))
    assert objects[1:] == [{"row": {"columns": ["alice", 30]}}, {"row": {"columns": ["bob", 40]}},
                           {"row": {"columns": ["alice", None], "tombstone": True}},
                           {"finalMessage": "Limit Reached"}]


def test_a_quiet_push_query_sends_keep_alive_newlines(server: RunningServer, clicks: str) -> None:
    body = {"ksql": "SELECT * FROM clicks EMIT CHANGES;", "streamsProperties": {}}
    chunks: list[bytes] = []
    with stream_query(server, "/query", body) as response:
        started = time.monotonic()
        for chunk in response.iter_raw():
            chunks.append(chunk)
            if chunks.count(b"\n") >= 2 or time.monotonic() - started > 10:
                break
    assert chunks[0].startswith(b'[{"header":')
    assert chunks.count(b"\n") >= 2


@pytest.mark.parametrize(("sql", "words"), [
    ("SELECT * FROM nowhere EMIT CHANGES;", "NOWHERE"),
    ("SELEKT * FROM clicks;", "line 1"),
    ("CREATE STREAM s2 AS SELECT * FROM clicks;", "/ksql"),
])
def test_a_query_that_cannot_run_is_a_bad_statement_error(server: RunningServer, clicks: str, sql: str,
                                                          words: str) -> None:
    answer = post_query(server, sql)
    assert answer.status_code == 400
    error = answer.json()
    assert error["error_code"] == 40001
    assert words.lower() in error["message"].lower()
    assert error["stackTrace"] == []


def test_print_streams_a_topics_records_as_text_lines(server: RunningServer, clicks: str,
                                                      produce_json: Callable[..., None], broker: str) -> None:
    produce_json(broker, clicks, [("u1", {"PAGE": "home", "N": 1}), ("u2", {"PAGE": "cart", "N": 2})])
    answer = post_query(server, f"PRINT '{clicks}' FROM BEGINNING LIMIT 1;")
    assert answer.status_code == 200
    lines = [line for line in answer.text.splitlines() if line]
    assert lines[:2] == ["Key format: KAFKA_STRING", "Value format: JSON or KAFKA_STRING"]
    assert len(lines) == 3 and "key: u1" in lines[2] and '"PAGE": "home"' in lines[2]
    missing = post_query(server, "PRINT 'no_such_topic';")
    assert missing.status_code == 400 and "no_such_topic" in missing.json()["message"]


def test_a_disconnected_push_query_stops_and_frees_its_place_under_the_limit(
        server_factory: Callable[..., RunningServer], unique_topic: Callable[..., str]) -> None:
    server = server_factory(max_push_queries=1)
    create(server, f"CREATE STREAM s (k STRING KEY, v INT) WITH (kafka_topic='{unique_topic()}', "
                   "value_format='JSON', partitions=1);")
    body = {"ksql": "SELECT * FROM s EMIT CHANGES;", "streamsProperties": {}}
    with stream_query(server, "/query", body) as response:
        chunks = response.iter_raw()  # held: a dropped iterator would close the connection
        assert next(chunks).startswith(b'[{"header"')
        refused = post_query(server, "SELECT * FROM s EMIT CHANGES LIMIT 1;")
        assert refused.status_code == 400 and refused.json()["error_code"] == 40003
        assert "ksql.max.push.queries" in refused.json()["message"]
    # the first query went with its connection: a new one may run
    assert wait_for(lambda: _starts_streaming(server, body))


def _starts_streaming(server: RunningServer, body: dict[str, Any]) -> bool:
    with stream_query(server, "/query", body) as response:
        return response.status_code == 200


def wait_for(condition: Callable[[], Any], timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := condition()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return result


# ---- /query-stream and /close-query -------------------------------------------------------------------------


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "http2"])
def test_query_stream_answers_delimited_lines_by_default_and_one_array_on_request(server: RunningServer,
                                                                                   users: str, http2: bool) -> None:
    wait_for_rows(server, "SELECT * FROM users;", 2)
    body = {"sql": "SELECT * FROM users WHERE id = 'bob';", "properties": {}}
    with client_for(http2) as client:
        delimited = client.post(f"{server.url}/query-stream", json=body, timeout=30)
        as_json = client.post(f"{server.url}/query-stream", json=body, headers={"accept": "application/json"},
                              timeout=30)
    assert delimited.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
    assert delimited.headers["content-type"] == DELIMITED
    metadata, row = (json.loads(line) for line in delimited.text.splitlines())
    assert metadata["columnNames"] == ["ID", "AGE"] and metadata["columnTypes"] == ["STRING", "INTEGER"]
    assert isinstance(metadata["queryId"], str)
    assert row == ["bob", 40]
    assert as_json.headers["content-type"] == "application/json"
    assert as_json.json()[1:] == [["bob", 40]]
    assert as_json.json()[0]["columnNames"] == ["ID", "AGE"]


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "http2"])
def test_close_query_ends_a_streaming_push_query(server: RunningServer, clicks: str, http2: bool) -> None:
    body = {"sql": "SELECT * FROM clicks EMIT CHANGES;", "properties": {}}
    with stream_query(server, "/query-stream", body, http2) as response:
        reader = PushReader(response)
        assert wait_for(lambda: reader.lines)
        query_id = json.loads(reader.lines[0])["queryId"]
        closed = httpx.post(f"{server.url}/close-query", json={"queryId": query_id}, timeout=10)
        assert closed.status_code == 200
        assert reader.done.wait(10), "the query went on streaming after /close-query"
    unknown = httpx.post(f"{server.url}/close-query", json={"queryId": query_id}, timeout=10)
    assert unknown.status_code == 400
    assert query_id in unknown.json()["message"]


def test_query_stream_push_rows_come_as_arrays_until_the_limit(server: RunningServer, clicks: str,
                                                               produce_json: Callable[..., None],
                                                               broker: str) -> None:
    produce_json(broker, clicks, [("u1", {"PAGE": "home", "N": 1}), ("u2", {"PAGE": "cart", "N": 2})])
    body = {"sql": "SELECT user, n FROM clicks EMIT CHANGES LIMIT 2;",
            "properties": {"auto.offset.reset": "earliest"}}
    with client_for(True) as client:
        answer = client.post(f"{server.url}/query-stream", json=body, timeout=30)
    lines = [json.loads(line) for line in answer.text.splitlines()]
    assert lines[0]["columnNames"] == ["USER", "N"]
    assert lines[1:] == [["u1", 1], ["u2", 2]]


# ---- /inserts-stream ----------------------------------------------------------------------------------------


def test_inserts_stream_over_http2_acknowledges_each_row_and_writes_it(server: RunningServer, clicks: str) -> None:
    rows = [{"user": "u1", "page": "home", "n": 1}, {"USER": "u2", "PAGE": "cart", "N": "2"}, {"n": "not a number"}]
    body = "\n".join(json.dumps(item) for item in [{"target": "clicks"}, *rows]) + "\n"
    with client_for(http2=True) as client:
        answer = client.post(f"{server.url}/inserts-stream", content=body, timeout=30)
    assert answer.status_code == 200, answer.text
    acks = [json.loads(line) for line in answer.text.splitlines()]
    assert acks[:2] == [{"status": "ok", "seq": 0}, {"status": "ok", "seq": 1}]
    assert acks[2]["status"] == "error" and acks[2]["seq"] == 2 and acks[2]["error_code"] == 40000
    assert "N" in acks[2]["message"]
    objects = wait_for_rows(server, "SELECT * FROM clicks;", 2)
    assert [o["row"]["columns"] for o in objects if "row" in o] == [["u1", "home", 1], ["u2", "cart", 2]]


class RawH2Stream:
    """One POST over HTTP/2 cleartext with the request body sent piece by piece while the answer is read: full
    duplex, which httpx does not do (it sends the whole body first)."""

    def __init__(self, server: RunningServer, path: str) -> None:
        url = httpx.URL(server.url)
        self.socket = socket.create_connection((url.host, url.port), timeout=10)
        self.connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.connection.initiate_connection()
        self.stream_id = self.connection.get_next_available_stream_id()
        self.connection.send_headers(self.stream_id, [(":method", "POST"), (":path", path), (":scheme", "http"),
                                                      (":authority", f"{url.host}:{url.port}")])
        self.received = b""
        self._flush()

    def send(self, data: bytes, end: bool = False) -> None:
        self.connection.send_data(self.stream_id, data, end_stream=end)
        self._flush()

    def read_line(self) -> bytes:
        while b"\n" not in self.received:
            for event in self.connection.receive_data(self.socket.recv(65536)):
                if isinstance(event, h2.events.DataReceived):
                    self.received += event.data
                    self.connection.acknowledge_received_data(event.flow_controlled_length, self.stream_id)
            self._flush()
        line, self.received = self.received.split(b"\n", 1)
        return line

    def _flush(self) -> None:
        self.socket.sendall(self.connection.data_to_send())


def test_inserts_stream_acknowledges_each_row_while_the_request_is_still_open(server: RunningServer,
                                                                             clicks: str) -> None:
    stream = RawH2Stream(server, "/inserts-stream")
    try:
        stream.send(b'{"target": "CLICKS"}\n{"USER": "u1", "N": 1}\n')
        assert json.loads(stream.read_line()) == {"status": "ok", "seq": 0}
        stream.send(b'{"USER": "u2", "N": 2}', end=True)  # ksql-python-ng ends the last row without a newline
        assert json.loads(stream.read_line()) == {"status": "ok", "seq": 1}
    finally:
        stream.socket.close()


def test_inserts_stream_needs_http2_and_a_known_target(server: RunningServer, clicks: str) -> None:
    over_http1 = httpx.post(f"{server.url}/inserts-stream", content=b'{"target": "CLICKS"}\n', timeout=10)
    assert over_http1.status_code == 400 and over_http1.json()["error_code"] == 40004
    with client_for(http2=True) as client:
        unknown = client.post(f"{server.url}/inserts-stream", content=b'{"target": "NOPE"}\n{"N": 1}\n', timeout=10)
    assert unknown.status_code == 400 and unknown.json()["error_code"] == 40001
    assert "NOPE" in unknown.json()["message"]
