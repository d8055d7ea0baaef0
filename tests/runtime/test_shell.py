"""`ksqlpy shell`: statement splitting, table rendering, the prompt loop, and scripted use over stdin."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator

import pytest
from prompt_toolkit import PromptSession
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from ksqlpy.runtime.app import KsqlpyApp
from ksqlpy.runtime.config import RuntimeConfig
from ksqlpy.shell.render import StreamingTable, format_table
from ksqlpy.shell.repl import chunk_statements, interactive, statement_complete
from ksqlpy.types import DOUBLE, STRING


@pytest.mark.parametrize(
    ("text", "complete"),
    [
        ("SHOW STREAMS;", True),
        ("SHOW STREAMS", False),
        ("SELECT 'a;' FROM s", False),
        ("SELECT 'it''s;'", False),
        ("SELECT 'it''s';  ", True),
        ("SHOW TOPICS; -- done", True),
        ("SHOW TOPICS -- no end;", False),
        ("SELECT `odd;name` FROM s;", True),
    ],
)
def test_statement_complete_ignores_semicolons_in_quotes_and_comments(text: str, complete: bool) -> None:
    assert statement_complete(text) is complete


def test_chunk_statements_joins_lines_until_a_semicolon_and_stops_at_exit() -> None:
    lines = ["SELECT a,\n", "  b FROM s\n", "  EMIT CHANGES;\n", "SHOW TOPICS; \n", "exit\n", "SHOW STREAMS;\n"]
    assert list(chunk_statements(lines)) == ["SELECT a,\n  b FROM s\n  EMIT CHANGES;", "SHOW TOPICS; "]


def test_format_table_aligns_columns_to_the_widest_cell() -> None:
    assert format_table(["Name", "N"], [["a", 10], ["long name", None]]) == (
        "+-----------+------+\n"
        "| Name      | N    |\n"
        "+-----------+------+\n"
        "| a         | 10   |\n"
        "| long name | null |\n"
        "+-----------+------+"
    )


def test_streaming_table_renders_values_as_ksqldb_text() -> None:
    out = io.StringIO()
    table = StreamingTable(out)
    table.header(["K", "PRICE"], [STRING, DOUBLE])
    table.row(["a", 1e21])
    table.line("raw line")
    lines = out.getvalue().splitlines()
    assert lines[1] == "| K            | PRICE        |"
    assert lines[3] == "| a            | 1.0E21       |"
    assert lines[4] == "raw line"


@pytest.fixture
def app(broker: str) -> Iterator[KsqlpyApp]:
    config = RuntimeConfig(bootstrap_servers=broker, service_id=f"shell_{uuid.uuid4().hex[:10]}_")
    with KsqlpyApp(config, status=io.StringIO()) as started:
        yield started


def test_interactive_prompt_runs_multi_line_statements_until_exit(
    app: KsqlpyApp, unique_topic: Callable[..., str]
) -> None:
    topic = unique_topic("prompt")
    out = io.StringIO()
    with create_pipe_input() as keys:
        keys.send_text(
            f"CREATE STREAM typed (id INT)\r  WITH (kafka_topic='{topic}', value_format='JSON', partitions=1);\r"
            "SHOW STREAMS;\rquit\r"
        )
        session: PromptSession[str] = PromptSession(input=keys, output=DummyOutput(), history=InMemoryHistory())
        assert interactive(app, out, session) == 0
    text = out.getvalue()
    assert "Stream created" in text
    assert f"| TYPED       | {topic} | KAFKA      | JSON         |" in text


def test_shell_reads_statements_from_stdin_and_keeps_going_after_an_error(
    broker: str, unique_topic: Callable[..., str]
) -> None:
    topic = unique_topic("piped")
    script = (
        "SET 'auto.offset.reset'='earliest';\n"
        f"CREATE STREAM s (k STRING KEY, v INT) WITH (kafka_topic='{topic}', value_format='JSON', partitions=1);\n"
        "INSERT INTO s (k, v) VALUES ('a', 1);\n"
        "INSERT INTO s (k, v) VALUES ('b', 2);\n"
        "SELECT k, v * 10 AS tenfold FROM s\n  EMIT CHANGES LIMIT 2;\n"
        "SELECT nope FROM s EMIT CHANGES;\n"
        "SHOW TOPICS;\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "ksqlpy.cli", "shell", "--bootstrap-servers", broker,
         "--service-id", f"shell_{uuid.uuid4().hex[:10]}_"],
        input=script, capture_output=True, text=True, timeout=40, check=False,
    )
    assert done.returncode == 1, done.stderr  # one statement failed
    assert "| a            | 10           |" in done.stdout
    assert "| b            | 20           |" in done.stdout
    assert "Limit Reached" in done.stdout
    assert "Error: " in done.stderr and "Traceback" not in done.stderr
    assert re.search(rf"\| {topic} +\| 1 +\|", done.stdout)  # SHOW TOPICS still ran after the failing statement
