"""`ksqlpy run` end to end on the shared broker: a CSAS file run to idleness, crash recovery through the
command log and committed offsets (exactly-once and at-least-once), re-runs that do not duplicate queries,
and the command log itself."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from app_process import KsqlpyRun, write_sql

from ksqlpy.runtime.app import ProgressLine
from ksqlpy.runtime.clients import KafkaClients
from ksqlpy.runtime.command_log import Command, CommandLog, command_topic, is_recorded
from ksqlpy.syntax.parser import parse

RECORDS = 1000


@pytest.fixture
def service_id() -> str:
    return f"app_{uuid.uuid4().hex[:10]}_"


def doubling_query(source_topic: str, sink_topic: str, *settings: str) -> str:
    """Statements of a CSAS doubling AMOUNT, reading its input from the beginning."""
    sets = "".join(f"SET '{name}'='{value}';\n" for name, value in (s.split("=", 1) for s in settings))
    return (
        f"{sets}SET 'auto.offset.reset'='earliest';\n"
        f"CREATE STREAM orders (k STRING KEY, id INT, amount INT) "
        f"WITH (kafka_topic='{source_topic}', value_format='JSON');\n"
        f"CREATE STREAM doubled WITH (kafka_topic='{sink_topic}') AS\n"
        f"  SELECT k, id, amount * 2 AS twice FROM orders WHERE amount >= 0;\n"
    )


def orders(ids: range) -> list[tuple[str, dict[str, int]]]:
    return [(f"k{i}", {"ID": i, "AMOUNT": i}) for i in ids]


def test_run_file_until_idle_writes_the_query_output(
    broker: str, tmp_path: Path, service_id: str, unique_topic: Callable[..., str],
    produce_json: Callable[..., None], consume_all: Callable[..., Any],
) -> None:
    source, sink = unique_topic("orders"), unique_topic("doubled")
    produce_json(broker, source, [*orders(range(5)), ("neg", {"ID": 99, "AMOUNT": -1})])
    run = KsqlpyRun(write_sql(tmp_path, "csas", doubling_query(source, sink)), broker, service_id,
                    "--until-idle", "5")
    assert run.wait(40) == 0, run.describe()
    assert "Created query with ID CSAS_DOUBLED_0" in run.stdout
    records = consume_all(broker, sink, expected_count=5, timeout=10)
    assert sorted((r.key_text, r.json_value["ID"], r.json_value["TWICE"]) for r in records) == [
        (f"k{i}", i, 2 * i) for i in range(5)
    ]
    assert run.totals()["CSAS_DOUBLED_0"].records_in == 6


@pytest.mark.parametrize("guarantee", ["exactly_once", "at_least_once"])
def test_restart_after_kill_resumes_from_committed_offsets(
    broker: str, tmp_path: Path, service_id: str, guarantee: str, unique_topic: Callable[..., str],
    produce_json: Callable[..., None], consume_all: Callable[..., Any],
) -> None:
    source, sink = unique_topic("orders"), unique_topic("doubled")
    sql = write_sql(tmp_path, "recover", doubling_query(source, sink, f"processing.guarantee={guarantee}"))
    produce_json(broker, source, orders(range(RECORDS // 2)))
    first = KsqlpyRun(sql, broker, service_id)
    try:
        assert consume_all(broker, sink, expected_count=1, timeout=25), first.describe()
        produce_json(broker, source, orders(range(RECORDS // 2, RECORDS)))
    finally:
        first.kill()
    second = KsqlpyRun(sql, broker, service_id)
    try:
        # A killed transaction blocks read_committed readers until it times out, so allow a long pause.
        assert len(consume_all(broker, sink, expected_count=RECORDS, timeout=30)) == RECORDS, second.describe()
        assert second.stop() == 0, second.describe()
    finally:
        second.ensure_stopped()
    assert "Already running as query CSAS_DOUBLED_0" in second.stdout
    ids = [r.json_value["ID"] for r in consume_all(broker, sink, idle=1.5)]
    if guarantee == "exactly_once":
        assert sorted(ids) == list(range(RECORDS))
    else:
        assert set(ids) == set(range(RECORDS)) and len(ids) >= RECORDS


def test_until_idle_after_a_kill_waits_for_the_group_and_drains_the_backlog(
    broker: str, tmp_path: Path, service_id: str, unique_topic: Callable[..., str],
    produce_json: Callable[..., None], consume_all: Callable[..., Any],
) -> None:
    source, sink = unique_topic("orders"), unique_topic("doubled")
    sql = write_sql(tmp_path, "idle", doubling_query(source, sink))
    produce_json(broker, source, orders(range(10)))
    crashed = KsqlpyRun(sql, broker, service_id)
    try:
        assert len(consume_all(broker, sink, expected_count=10, timeout=30)) == 10, crashed.describe()
    finally:
        crashed.kill()
    backlog = range(10, 10 + 5 * RECORDS)
    produce_json(broker, source, orders(backlog))
    # The dead member holds the group until its session (6 s) expires: far longer than the idle time.
    rerun = KsqlpyRun(sql, broker, service_id, "--until-idle", "1")
    assert rerun.wait(60) == 0, rerun.describe()
    assert rerun.totals()["CSAS_DOUBLED_0"].records_in >= len(backlog), rerun.describe()
    ids = {r.json_value["ID"] for r in consume_all(broker, sink, idle=1.5)}
    assert ids == set(range(10 + len(backlog)))


def test_running_the_same_file_again_does_not_duplicate_queries(
    broker: str, tmp_path: Path, service_id: str, unique_topic: Callable[..., str],
    produce_json: Callable[..., None], consume_all: Callable[..., Any],
) -> None:
    source, sink = unique_topic("orders"), unique_topic("doubled")
    sql = write_sql(tmp_path, "again", doubling_query(source, sink) + "SHOW QUERIES;\n")
    produce_json(broker, source, orders(range(10)))
    runs = []
    for _ in range(2):
        run = KsqlpyRun(sql, broker, service_id, "--until-idle", "5")
        assert run.wait(40) == 0, run.describe()
        runs.append(run)
    first, second = runs
    assert "Created query with ID CSAS_DOUBLED_0" in first.stdout
    assert "Already running as query CSAS_DOUBLED_0" in second.stdout
    assert "Stream created" not in second.stdout
    query_rows = [line for line in second.stdout.splitlines() if line.startswith("| CSAS_")]
    assert len(query_rows) == 1, second.stdout
    # The second run resumed from the first's committed offsets: nothing new to read, nothing re-written.
    assert second.totals()["CSAS_DOUBLED_0"].records_in == 0
    assert len(consume_all(broker, sink, idle=1.0)) == 10


def test_a_failing_statement_stops_the_file_with_a_plain_error(
    broker: str, tmp_path: Path, service_id: str, unique_topic: Callable[..., str],
) -> None:
    source = unique_topic("orders")
    sql = write_sql(tmp_path, "failing", (
        f"CREATE STREAM first_one (id INT) WITH (kafka_topic='{source}', value_format='JSON', partitions=1);\n"
        "CREATE STREAM broken AS SELECT nope FROM first_one;\n"
        f"CREATE STREAM never (id INT) WITH (kafka_topic='{source}', value_format='JSON');\n"
    ))
    run = KsqlpyRun(sql, broker, service_id)
    assert run.wait(30) == 1, run.describe()
    assert "Error: " in run.stderr and "NOPE" in run.stderr.upper()
    assert "Traceback" not in run.stderr
    assert run.stdout.count("Stream created") == 1


def test_command_log_replays_appended_commands_in_order(clients: KafkaClients, service_id: str) -> None:
    writer = CommandLog(clients, service_id)
    assert writer.replay() == []
    writer.append("CREATE TYPE money AS DECIMAL(10, 2)", {"auto.offset.reset": "earliest"})
    writer.append("DROP TYPE money", {})
    writer.close()
    reader = CommandLog(clients, service_id)
    assert reader.topic == command_topic(service_id) == f"_ksqlpy_{service_id}_command_topic"
    assert reader.replay() == [
        Command("CREATE TYPE money AS DECIMAL(10, 2)", {"auto.offset.reset": "earliest"}),
        Command("DROP TYPE money", {}),
    ]


@pytest.mark.parametrize(
    ("statement", "recorded"),
    [
        ("CREATE STREAM s (id INT) WITH (kafka_topic='t', value_format='JSON')", True),
        ("CREATE STREAM s2 AS SELECT * FROM s", True),
        ("INSERT INTO s2 SELECT * FROM s", True),
        ("DROP STREAM s", True),
        ("TERMINATE ALL", True),
        ("CREATE TYPE money AS DECIMAL(10, 2)", True),
        ("DROP TYPE money", True),
        ("INSERT INTO s (id) VALUES (1)", False),
        ("SET 'auto.offset.reset'='earliest'", False),
        ("SHOW QUERIES", False),
        ("DESCRIBE s", False),
        ("SELECT * FROM s EMIT CHANGES", False),
        ("PRINT 't'", False),
        ("RUN SCRIPT 'other.sql'", False),
    ],
)
def test_which_statements_are_recorded(statement: str, recorded: bool) -> None:
    assert is_recorded(parse(statement + ";")[0]) is recorded


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_rewrites_itself_on_a_terminal_only() -> None:
    terminal, pipe = _Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        line = ProgressLine(stream)
        line.show("Q in=1 out=1 lag=0")
        line.show("Q in=2 out=2 lag=0")
        line.clear()
    assert terminal.getvalue() == "\r\x1b[2KQ in=1 out=1 lag=0\r\x1b[2KQ in=2 out=2 lag=0\r\x1b[2K"
    assert pipe.getvalue() == ""
