"""`ksqlpy run --server` and `ksqlpy shell --server`: clients of a running server over its REST API. A submitted
file's persistent query keeps running in the server after the command exits; the remote shell prints listings,
errors and a push query's rows as the embedded shell does, and sends the properties SET in it with each request."""

from __future__ import annotations

import io
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import trustme
from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from running_server import RunningServer

from ksqlpy.shell.remote import KsqlClient, RemoteCompleter, run_remote_statements
from ksqlpy.shell.render import StreamingTable, print_result
from ksqlpy.shell.repl import prompt_loop


def ksqlpy(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ksqlpy.cli", *args], input=stdin, capture_output=True, text=True,
                          timeout=60, check=False)


def ksql(server: RunningServer, statements: str) -> list[dict[str, Any]]:
    answer = httpx.post(f"{server.url}/ksql", json={"ksql": statements, "streamsProperties": {}}, timeout=30)
    assert answer.status_code == 200, answer.text
    entities: list[dict[str, Any]] = answer.json()
    return entities


def test_run_submits_a_file_whose_persistent_query_keeps_running_in_the_server(
    server: RunningServer, tmp_path: Path, unique_topic: Callable[..., str], broker: str,
    consume_all: Callable[..., list[Any]],
) -> None:
    source, sink = unique_topic("remote_in"), unique_topic("remote_out")
    sources = tmp_path / "sources.sql"
    sources.write_text(f"CREATE STREAM readings (id STRING KEY, v INT) WITH (kafka_topic='{source}', "
                       "value_format='JSON', partitions=1);\n")
    script = tmp_path / "pipeline.sql"
    script.write_text(
        "SET 'auto.offset.reset'='earliest';\n"  # kept by the client and sent with the statements after it
        f"RUN SCRIPT '{sources}';\n"  # read by the client: the server never sees the file
        f"CREATE STREAM doubled WITH (kafka_topic='{sink}') AS SELECT id, v * 2 AS twice FROM readings;\n"
    )
    done = ksqlpy("run", str(script), "--server", server.url)
    assert done.returncode == 0, done.stderr
    assert "Stream created" in done.stdout
    assert "Traceback" not in done.stderr
    (listing,) = ksql(server, "SHOW QUERIES;")
    (query,) = [q for q in listing["queries"] if q["sinks"] == ["DOUBLED"]]
    assert query["state"] == "RUNNING"
    ksql(server, "INSERT INTO readings (id, v) VALUES ('a', 21);")
    (record,) = consume_all(broker, sink, expected_count=1)
    assert record.value == b'{"TWICE":42}'


def test_the_remote_shell_prints_listings_errors_and_a_push_querys_rows(
    server: RunningServer, unique_topic: Callable[..., str]
) -> None:
    topic = unique_topic("remote_shell")
    script = (
        "SET 'auto.offset.reset'='earliest';\n"
        f"CREATE STREAM s (k STRING KEY, v INT) WITH (kafka_topic='{topic}', value_format='JSON', partitions=1);\n"
        "INSERT INTO s (k, v) VALUES ('a', 1);\n"
        "INSERT INTO s (k, v) VALUES ('b', 2);\n"
        "SHOW STREAMS; DESCRIBE s;\n"
        "CREATE STREAM oops WITH;\n"
        "SELECT k, v * 10 AS tenfold FROM s\n  EMIT CHANGES LIMIT 2;\n"
    )
    done = ksqlpy("shell", "--server", server.url, stdin=script)
    assert done.returncode == 1, done.stderr  # the bad statement failed, the shell carried on
    assert re.search(rf"\| S +\| {topic} +\| KAFKA +\| JSON +\| false +\|", done.stdout)
    assert re.search(r"\| S +\| K +\| STRING \(key\) +\|", done.stdout)
    assert re.search(r"^Error: .*line 1", done.stderr, re.MULTILINE) and "Traceback" not in done.stderr
    assert "| a            | 10           |" in done.stdout
    assert "| b            | 20           |" in done.stdout
    assert "Limit Reached" in done.stdout


def test_listings_and_descriptions_print_as_embedded_and_the_servers_names_complete(
    server: RunningServer, unique_topic: Callable[..., str]
) -> None:
    topic = unique_topic("remote_same")
    client = KsqlClient(server.url)
    created = io.StringIO()
    assert run_remote_statements(
        client, "CREATE TYPE point AS STRUCT<x DOUBLE, y DOUBLE>;"
        f"CREATE STREAM moves (id STRING KEY, at point, tags ARRAY<STRING>, amount DECIMAL(6, 2)) WITH "
        f"(kafka_topic='{topic}', value_format='JSON', partitions=1);"
        "CREATE TABLE counts AS SELECT id, COUNT(*) AS n FROM moves WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY id;",
        created, sys.stderr)
    (query_id,) = server.app.engine.queries
    for statement in ("SHOW STREAMS;", "SHOW TABLES;", "SHOW TYPES;", "DESCRIBE moves;", "DESCRIBE counts;",
                      "DESCRIBE FUNCTION ABS;", f"EXPLAIN {query_id};"):
        remote, embedded = io.StringIO(), io.StringIO()
        assert run_remote_statements(client, statement, remote, sys.stderr)
        for result in server.app.execute(statement):
            print_result(result, embedded)
        assert remote.getvalue().count("\n") > 3 and remote.getvalue() == embedded.getvalue(), statement
    completer = RemoteCompleter(client)
    for typed, expected in (("SELECT * FROM mo", ("MOVES", "stream")), ("DESCRIBE COU", ("COUNTS", "table")),
                            ("SELECT lca", ("LCASE", "function"))):
        completions = completer.get_completions(Document(typed), CompleteEvent())
        assert expected in [(c.text, c.display_meta_text) for c in completions], typed
    client.close()


def test_query_rows_print_as_the_embedded_shell_prints_them(
    server: RunningServer, unique_topic: Callable[..., str], wait_until: Callable[..., Any]
) -> None:
    topic = unique_topic("remote_rows")
    client = KsqlClient(server.url)
    assert run_remote_statements(
        client, f"CREATE STREAM typed (id STRING KEY, d DOUBLE, amount DECIMAL(6, 2), at TIMESTAMP, day DATE, "
        "clock TIME, raw BYTES, ok BOOLEAN, scores ARRAY<DOUBLE>, prices MAP<STRING, DECIMAL(4, 1)>, "
        f"nested STRUCT<seen TIMESTAMP, n BIGINT>) WITH (kafka_topic='{topic}', value_format='JSON', partitions=1);"
        "INSERT INTO typed VALUES ('a', 0.1, 1.50, FROM_UNIXTIME(1577836800123), FROM_DAYS(18262), "
        "PARSE_TIME('10:11:12', 'HH:mm:ss'), TO_BYTES('AQI=', 'base64'), true, ARRAY[1.0, 2.5E-7], "
        "MAP('x' := 2.5), STRUCT(seen := FROM_UNIXTIME(0), n := CAST(3 AS BIGINT)));", io.StringIO(), sys.stderr)
    query = "SELECT * FROM typed;"
    embedded = io.StringIO()

    def embedded_rows() -> bool:
        embedded.seek(0)
        embedded.truncate()
        for result in server.app.execute(query, StreamingTable(embedded, total_width=None)):
            print_result(result, embedded)
        return "| a " in embedded.getvalue()

    wait_until(embedded_rows, 10, "the inserted row")
    remote = io.StringIO()
    assert run_remote_statements(client, query, remote, sys.stderr)
    client.close()
    assert remote.getvalue() == embedded.getvalue()


def test_properties_set_in_the_remote_shell_travel_with_each_request_until_unset(server: RunningServer) -> None:
    script = (
        "SET 'ksql.remote.test.marker'='it''s here';\n"
        "SHOW PROPERTIES;\n"
        "UNSET 'ksql.remote.test.marker';\n"
        "SHOW PROPERTIES;\n"
    )
    done = ksqlpy("shell", "--server", server.url, stdin=script)
    assert done.returncode == 0, done.stderr
    assert "Successfully changed local property 'ksql.remote.test.marker'." in done.stdout
    assert "Successfully unset local property 'ksql.remote.test.marker'." in done.stdout
    shown, unset = done.stdout.split("Successfully unset local property 'ksql.remote.test.marker'.")
    assert re.search(r"\| ksql\.remote\.test\.marker +\| it's here +\|", shown)
    assert "| ksql.streams.state.dir" in unset and "ksql.remote.test.marker" not in unset
    assert "ksql.remote.test.marker" not in server.app.engine.properties  # never the server's own setting


def press_ctrl_c_when_shown(out: io.StringIO, text: str) -> threading.Thread:
    """A real SIGINT to the main thread (blocked reading the server's response) once `text` is in `out`."""

    def watch() -> None:
        deadline = time.monotonic() + 30
        while text not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.05)
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return watcher


def test_ctrl_c_closes_a_push_query_in_the_server_and_the_prompt_goes_on(
    server_factory: Callable[..., RunningServer], unique_topic: Callable[..., str],
    wait_until: Callable[..., Any],
) -> None:
    server = server_factory(max_push_queries=1)
    topic = unique_topic("remote_cancel")
    client = KsqlClient(server.url)
    out = io.StringIO()
    assert run_remote_statements(client, "SET 'auto.offset.reset'='earliest';"
                                 f"CREATE STREAM s (v INT) WITH (kafka_topic='{topic}', value_format='JSON', "
                                 "partitions=1); INSERT INTO s (v) VALUES (7);", out, sys.stderr)
    watcher = press_ctrl_c_when_shown(out, "| 7            |\n")
    with create_pipe_input() as keys:
        keys.send_text("SELECT v FROM s EMIT CHANGES;\rSHOW STREAMS;\rquit\r")
        session: PromptSession[str] = PromptSession(input=keys, output=DummyOutput(), history=InMemoryHistory())
        assert prompt_loop(session, out, lambda text: run_remote_statements(client, text, out, sys.stderr)) == 0
    watcher.join()
    client.close()
    assert "| 7            |\n\nQuery terminated\n" in out.getvalue()
    assert f"| S           | {topic} |" in out.getvalue()  # the next statement ran
    # The server let go of the query: its only push-query slot takes another one.
    wait_until(lambda: httpx.post(f"{server.url}/query", timeout=30, json={
        "ksql": "SELECT v FROM s EMIT CHANGES LIMIT 1;", "streamsProperties": {"auto.offset.reset": "earliest"}},
    ).status_code == 200, 10, "the cancelled push query's slot to be free")


def test_tls_and_basic_authentication(server_factory: Callable[..., RunningServer], tmp_path: Path) -> None:
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    cert_file, key_file, ca_file = tmp_path / "server.pem", tmp_path / "server.key", tmp_path / "ca.pem"
    certificate.private_key_pem.write_to_path(str(key_file))
    certificate.cert_chain_pems[0].write_to_path(str(cert_file))
    authority.cert_pem.write_to_path(str(ca_file))
    users = tmp_path / "users.properties"
    users.write_text("alice: s3cret\n", encoding="utf-8")
    server = server_factory(tls_certificate=str(cert_file), tls_key=str(key_file), credentials_file=str(users))
    trusted = ksqlpy("shell", "--server", server.url, "--user", "alice:s3cret", "--ca-file", str(ca_file),
                     stdin="SHOW STREAMS;\n")
    assert trusted.returncode == 0, trusted.stderr
    assert "| Stream Name |" in trusted.stdout
    untrusted = ksqlpy("shell", "--server", server.url, "--user", "alice:s3cret", stdin="SHOW STREAMS;\n")
    assert untrusted.returncode == 1
    assert "certificate verify failed" in untrusted.stderr.lower() and "Traceback" not in untrusted.stderr
    wrong = ksqlpy("shell", "--server", server.url, "--user", "alice:guess", "--insecure", stdin="SHOW STREAMS;\n")
    assert wrong.returncode == 1
    assert wrong.stderr.startswith("Error: ") and "Traceback" not in wrong.stderr and "guess" not in wrong.stderr


def test_a_script_that_runs_itself_is_an_error_not_endless(tmp_path: Path) -> None:
    looping = tmp_path / "loop.sql"
    looping.write_text(f"RUN SCRIPT '{looping}';\n")
    err = io.StringIO()
    assert not run_remote_statements(KsqlClient("http://127.0.0.1:9"), f"RUN SCRIPT '{looping}';", io.StringIO(), err)
    assert err.getvalue().startswith("Error: RUN SCRIPT") and "at most 16 deep" in err.getvalue()


def test_an_unreachable_server_is_one_error_line() -> None:
    done = ksqlpy("shell", "--server", "http://127.0.0.1:9", stdin="SHOW STREAMS;\n")
    assert done.returncode == 1
    assert done.stderr.startswith("Error: cannot reach http://127.0.0.1:9") and "Traceback" not in done.stderr
