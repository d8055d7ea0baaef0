"""`ksqlpy shell`: statement splitting, table rendering, the prompt loop, and scripted use over stdin."""

from __future__ import annotations

import _thread
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


def test_format_table_wraps_long_cells_to_fit_the_width() -> None:
    query = "CREATE STREAM alerts AS SELECT * FROM readings WHERE score > 3;"
    rows: list[list[str | None]] = [["CSAS_ALERTS_0", query], ["X", None]]
    assert format_table(["Query ID", "Query"], rows, total_width=40) == (
        "+---------------+----------------------+\n"
        "| Query ID      | Query                |\n"
        "+---------------+----------------------+\n"
        "| CSAS_ALERTS_0 | CREATE STREAM alerts |\n"
        "|               | AS SELECT * FROM     |\n"
        "|               | readings WHERE score |\n"
        "|               | > 3;                 |\n"
        "| X             | null                 |\n"
        "+---------------+----------------------+"
    )


def test_format_table_keeps_multi_line_cells_inside_their_column() -> None:
    assert format_table(["Name", "Text"], [["a", "first\n  second"]]) == (
        "+------+----------+\n"
        "| Name | Text     |\n"
        "+------+----------+\n"
        "| a    | first    |\n"
        "|      |   second |\n"
        "+------+----------+"
    )


def test_streaming_table_shares_the_terminal_width_and_wraps_long_values_but_not_in_a_pipe() -> None:
    value = "a reading too long for its column"
    on_terminal = io.StringIO()
    table = StreamingTable(on_terminal, total_width=41)
    table.header(["ID", "READING"], [STRING, STRING])
    table.row(["1", value])
    assert on_terminal.getvalue().splitlines()[2:] == [
        "+-------------------+-------------------+",
        "| 1                 | a reading too     |",
        "|                   | long for its      |",
        "|                   | column            |",
    ]
    piped = io.StringIO()
    table = StreamingTable(piped)
    table.header(["ID", "READING"], [STRING, STRING])
    table.row(["1", value])
    assert piped.getvalue().splitlines()[3] == f"| 1            | {value} |"


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


class CtrlCAfter(io.StringIO):
    """Shell output that presses Ctrl-C (SIGINT to the main thread) right after `trigger` is first written."""

    def __init__(self, trigger: str) -> None:
        super().__init__()
        self.trigger = trigger
        self.pressed = False

    def write(self, text: str) -> int:
        written = super().write(text)
        if not self.pressed and self.trigger in text:
            self.pressed = True
            _thread.interrupt_main()
        return written


@pytest.mark.parametrize(
    ("statement", "last_output"),
    [
        ("PRINT '{topic}' FROM BEGINNING;", "value: {{\"V\":7}}, partition: 0\n"),
        ("SELECT v FROM s EMIT CHANGES;", "| 7            |\n"),
    ],
    ids=["print", "push-query"],
)
def test_ctrl_c_ends_a_stream_with_query_terminated_on_its_own_line_and_the_shell_goes_on(
    app: KsqlpyApp, unique_topic: Callable[..., str], statement: str, last_output: str
) -> None:
    topic = unique_topic("cancelled")
    app.execute(
        "SET 'auto.offset.reset'='earliest';"
        f"CREATE STREAM s (v INT) WITH (kafka_topic='{topic}', value_format='JSON', partitions=1);"
        "INSERT INTO s (v) VALUES (7);"
    )
    out = CtrlCAfter(last_output.format(topic=topic))
    with create_pipe_input() as keys:
        keys.send_text(f"{statement.format(topic=topic)}\rSHOW STREAMS;\rquit\r")
        session: PromptSession[str] = PromptSession(input=keys, output=DummyOutput(), history=InMemoryHistory())
        assert interactive(app, out, session) == 0
    assert out.pressed
    text = out.getvalue()
    assert f"{last_output.format(topic=topic)}\nQuery terminated\n" in text
    assert f"| S           | {topic} |" in text  # the next statement ran
