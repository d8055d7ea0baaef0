"""Statements end to end through the in-memory driver: DDL, persistent queries, listings, errors."""

from __future__ import annotations

import inspect
import itertools
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ksqlpy.driver import InMemoryDriver
from ksqlpy.engine import MAX_SCRIPT_NESTING
from ksqlpy.errors import ParseError, StatementError
from ksqlpy.syntax import ast
from ksqlpy.syntax.parser import MAX_NESTING, parse

PAGEVIEWS = (
    "CREATE STREAM pageviews (user_id STRING KEY, page STRING, ms INT) "
    "WITH (kafka_topic='pageviews', value_format='JSON');"
)


def produce_json(driver: InMemoryDriver, topic: str, key: str | None, value: object, timestamp: int = 0) -> None:
    driver.produce(topic, key.encode() if key is not None else None, json.dumps(value).encode(), timestamp)


def values(driver: InMemoryDriver, topic: str) -> list[tuple[str | None, object, int]]:
    return [
        (r.key.decode() if r.key else None, json.loads(r.value) if r.value else None, r.timestamp)
        for r in driver.records(topic)
    ]


def test_csas_filters_projects_and_keeps_key_and_timestamp() -> None:
    driver = InMemoryDriver()
    driver.execute(PAGEVIEWS + "CREATE STREAM long AS SELECT user_id, UCASE(page) AS page FROM pageviews WHERE ms > 100;")
    produce_json(driver, "pageviews", "alice", {"page": "home", "ms": 500}, 10)
    produce_json(driver, "pageviews", "bob", {"page": "cart", "ms": 50}, 20)
    driver.process()
    assert values(driver, "LONG") == [("alice", {"PAGE": "HOME"}, 10)]


def test_chained_queries_and_insert_into_merge_streams() -> None:
    driver = InMemoryDriver()
    driver.execute(
        PAGEVIEWS
        + "CREATE STREAM a AS SELECT user_id, page FROM pageviews WHERE ms > 100;"
        + "CREATE STREAM b AS SELECT user_id, page FROM a;"
        + "INSERT INTO b SELECT user_id, page FROM pageviews WHERE ms <= 100;"
    )
    produce_json(driver, "pageviews", "u1", {"page": "x", "ms": 500})
    produce_json(driver, "pageviews", "u2", {"page": "y", "ms": 5})
    driver.process()
    assert sorted(k for k, _, _ in values(driver, "B")) == ["u1", "u2"]


def test_malformed_records_go_to_processing_log_and_processing_continues() -> None:
    driver = InMemoryDriver()
    driver.execute(PAGEVIEWS + "CREATE STREAM out AS SELECT user_id, ms FROM pageviews;")
    driver.produce("pageviews", b"k1", b"{not json", 0)
    produce_json(driver, "pageviews", "k2", {"ms": "not a number"})
    produce_json(driver, "pageviews", "k3", {"ms": 7})
    driver.process()
    assert values(driver, "OUT") == [("k3", {"MS": 7}, 0)]
    assert [entry["offset"] for entry in driver.processing_log] == [0, 1]
    assert all(entry["query_id"] == "CSAS_OUT_0" for entry in driver.processing_log)


def test_failing_expression_yields_null_and_a_log_entry() -> None:
    driver = InMemoryDriver()
    driver.execute(PAGEVIEWS + "CREATE STREAM out AS SELECT user_id, 100 / ms AS ratio FROM pageviews;")
    produce_json(driver, "pageviews", "k", {"ms": 0})
    produce_json(driver, "pageviews", "k", {"ms": 50})
    driver.process()
    assert [v for _, v, _ in values(driver, "OUT")] == [{"RATIO": None}, {"RATIO": 2}]
    assert len(driver.processing_log) == 1 and "Error computing expression" in driver.processing_log[0]["reason"]


def test_insert_values_writes_a_record() -> None:
    driver = InMemoryDriver()
    driver.execute(PAGEVIEWS + "INSERT INTO pageviews (user_id, page, ms, ROWTIME) VALUES ('zed', 'home', 3, 42);")
    assert values(driver, "pageviews") == [("zed", {"PAGE": "home", "MS": 3}, 42)]


def test_parse_errors_name_line_and_column() -> None:
    driver = InMemoryDriver()
    with pytest.raises(ParseError) as caught:
        driver.execute("SHOW STREAMS;\nSELECT * FRM pageviews EMIT CHANGES;")
    assert (caught.value.line, caught.value.column) == (2, 10)


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("CREATE STREAM s AS SELECT nope FROM pageviews;", "SELECT column 'NOPE' cannot be resolved"),
        ("CREATE STREAM s AS SELECT user_id FROM missing;", "MISSING does not exist"),
        ("CREATE STREAM s AS SELECT user_id, page + 1 FROM pageviews;", "Unsupported arithmetic types"),
        ("CREATE STREAM s AS SELECT user_id FROM pageviews WHERE page;", "Should evaluate to boolean"),
        ("CREATE STREAM s AS SELECT user_id, NOSUCHFN(page) FROM pageviews;", "NOSUCHFN"),
    ],
)
def test_semantic_errors_name_the_offending_identifier(statement: str, message: str) -> None:
    driver = InMemoryDriver()
    driver.execute(PAGEVIEWS)
    with pytest.raises(StatementError, match=message):
        driver.execute(statement)


def test_show_describe_terminate_and_drop() -> None:
    driver = InMemoryDriver()
    driver.execute(PAGEVIEWS + "CREATE STREAM out AS SELECT user_id, page FROM pageviews;")
    streams = driver.execute("SHOW STREAMS;")[0]
    assert [row[0] for row in streams.rows] == ["OUT", "PAGEVIEWS"]
    queries = driver.execute("SHOW QUERIES;")[0]
    assert [row[0] for row in queries.rows] == ["CSAS_OUT_0"]
    described = driver.execute("DESCRIBE pageviews;")[0]
    assert described.rows[0][1:] == ["USER_ID", "STRING (key)"]
    with pytest.raises(StatementError, match="terminate them before dropping"):
        driver.execute("DROP STREAM pageviews;")
    driver.execute("TERMINATE CSAS_OUT_0;")
    driver.execute("DROP STREAM out DELETE TOPIC;")
    assert "OUT" not in driver.list_topics()
    assert [row[0] for row in driver.execute("SHOW STREAMS;")[0].rows] == ["PAGEVIEWS"]


def test_functions_are_listed_and_described() -> None:
    driver = InMemoryDriver()
    names = [row[0] for row in driver.execute("SHOW FUNCTIONS;")[0].rows]
    assert len(names) >= 80 and "SUBSTRING" in names
    described = driver.execute("DESCRIBE FUNCTION substring;")[0]
    assert "SUBSTRING" in described.message and len(described.rows) >= 2


def test_set_unset_and_explain() -> None:
    driver = InMemoryDriver()
    driver.execute(PAGEVIEWS + "SET 'auto.offset.reset'='earliest';")
    assert driver.engine.properties["auto.offset.reset"] == "earliest"
    driver.execute("UNSET 'auto.offset.reset';")
    assert "auto.offset.reset" not in driver.engine.properties
    plan = driver.execute("EXPLAIN SELECT page FROM pageviews WHERE ms > 1 EMIT CHANGES;")[0].message
    assert "FILTER" in plan and "SOURCE" in plan


def test_run_script(tmp_path: object) -> None:
    from pathlib import Path

    script = Path(str(tmp_path)) / "setup.sql"
    script.write_text(PAGEVIEWS, encoding="utf-8")
    driver = InMemoryDriver()
    driver.execute(f"RUN SCRIPT '{script}';")
    assert driver.engine.catalog.find("PAGEVIEWS") is not None


# --------------------------------------------------------------------------- hostile statements


def _nested(value: Any, depth: int, wrap: Callable[[Any], Any]) -> Any:
    for _ in range(depth):
        value = wrap(value)
    return value


N = MAX_NESTING
# Per construct: the columns, an expression nested MAX_NESTING levels deep over them, an input value and the
# output value the expression gives for it.
AT_THE_LIMIT = {
    "function calls": ("x INT", "ABS(" * N + "x" + ")" * N, {"X": -3}, 3),
    "arithmetic": ("x INT", "1 + (" * N + "x" + ")" * N, {"X": 1}, 1 + N),
    "arithmetic chains": ("x INT", "1 - 2 * (" * (N // 2) + "x" + ") + 3" * (N // 2), {"X": 1},
                          _nested(1, N // 2, lambda v: 1 - 2 * v + 3)),
    "concatenation": ("t STRING", "'a' || (" * N + "t" + ")" * N, {"T": "z"}, "a" * N + "z"),
    "AND": ("b BOOLEAN", "b AND (" * N + "b" + ")" * N, {"B": True}, True),
    "OR in AND": ("b BOOLEAN", "b AND (b OR (" * (N // 2) + "b" + "))" * (N // 2), {"B": True}, True),
    "NOT": ("b BOOLEAN", "NOT " * N + "b", {"B": True}, N % 2 == 0),
    "unary minus": ("x INT", "- " * N + "x", {"X": 7}, 7 * (-1) ** N),
    "CASE": ("x INT, b BOOLEAN", "CASE WHEN b THEN " * N + "x" + " END" * N, {"X": 1, "B": True}, 1),
    "CAST": ("x INT", "CAST(" * N + "x" + " AS STRING)" * N, {"X": 1}, "1"),
    "IN": ("b BOOLEAN", "b IN (" * N + "b" + ")" * N, {"B": True}, True),
    "array constructors": ("x INT", "ARRAY[" * N + "x" + "]" * N, {"X": 1}, _nested(1, N, lambda v: [v])),
    "map constructors": ("x INT", "MAP('k' := " * N + "x" + ")" * N, {"X": 1}, _nested(1, N, lambda v: {"k": v})),
    "struct constructors": ("x INT", "STRUCT(f := " * N + "x" + ")" * N, {"X": 1},
                            _nested(1, N, lambda v: {"F": v})),
    "field access": ("s " + "STRUCT<f " * N + "INT" + ">" * N, "s" + "->f" * N,
                     {"S": _nested(1, N, lambda v: {"F": v})}, 1),
    "subscripts": ("a " + "ARRAY<" * N + "INT" + ">" * N, "a" + "[1]" * N, {"A": _nested(1, N, lambda v: [v])}, 1),
    "lambdas": ("a ARRAY<INT>", "TRANSFORM(a, v => " * (N // 2) + "v" + ")" * (N // 2), {"A": [1]},
                _nested(1, N // 2, lambda v: [v])),
}
# Measured: a statement at the limit needs at most ~280 frames of Python stack from parsing to output.
STACK_BUDGET = 400


@contextmanager
def stack_budget(frames: int) -> Iterator[None]:
    """Python's recursion limit set `frames` above the current depth, so any deeper recursion fails the test."""
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack(0)) + frames)
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)


@pytest.mark.parametrize(("columns", "expression", "value", "expected"), AT_THE_LIMIT.values(), ids=AT_THE_LIMIT.keys())
def test_statements_at_the_nesting_limit_parse_plan_compile_and_run_in_a_bounded_stack(
    columns: str, expression: str, value: dict[str, Any], expected: Any
) -> None:
    driver = InMemoryDriver()
    driver.execute(f"CREATE STREAM s (id STRING KEY, {columns}) WITH (kafka_topic='s', value_format='JSON');")
    with stack_budget(STACK_BUDGET):
        driver.execute(f"CREATE STREAM o AS SELECT id, {expression} AS y FROM s;")
        produce_json(driver, "s", "k", value)
        driver.process()
    assert values(driver, "O") == [("k", {"Y": expected}, 0)]
    assert driver.processing_log == []


def test_thousand_term_chains_of_one_operator_run_in_a_bounded_stack() -> None:
    """What SQL generators write: long flat runs of OR, AND, + and ||, one nesting level each."""
    terms = 1_000
    driver = InMemoryDriver()
    driver.execute("CREATE STREAM s (id STRING KEY, a INT, t STRING) WITH (kafka_topic='s', value_format='JSON');")
    picked = " OR ".join(f"a = {i * 2}" for i in range(terms))
    excluded = " AND ".join(f"a <> {i * 3}" for i in range(terms))
    total = " + ".join(["a"] * terms)
    text = " || ".join(["t"] * terms)
    query = f"SELECT id, {total} AS total, {text} AS text FROM s WHERE ({picked}) AND ({excluded})"
    with stack_budget(STACK_BUDGET):
        driver.execute(f"CREATE STREAM o AS {query};")
        assert "FILTER" in driver.execute(f"EXPLAIN {query} EMIT CHANGES;")[0].message
        driver.execute("DESCRIBE o EXTENDED;")
        for key, a, t in [("even", 4, "x"), ("odd", 5, "y"), ("third", 6, "z"), ("null", None, "n"), ("t", 8, None)]:
            produce_json(driver, "s", key, {"A": a, "T": t})
        driver.process()
    assert values(driver, "O") == [("even", {"TOTAL": 4 * terms, "TEXT": "x" * terms}, 0),
                                   ("t", {"TOTAL": 8 * terms, "TEXT": None}, 0)]
    assert driver.processing_log == []


@pytest.mark.parametrize("expression", [
    "ABS(" * 488 + "ms" + ")" * 488,
    "1+(" * 488 + "1" + ")" * 488,
    "ms" + "->f" * 488,
    "CASE WHEN true THEN " * 244 + "1" + " END" * 244,
    "9" * 4301,
    "-" + "9" * 4301,
])
def test_the_statements_that_crashed_are_parse_errors_with_line_and_column(expression: str) -> None:
    driver = InMemoryDriver()
    driver.execute(PAGEVIEWS)
    with pytest.raises(ParseError) as caught:
        driver.execute(f"CREATE STREAM out AS\n  SELECT user_id, {expression} AS y FROM pageviews;")
    assert caught.value.line == 2 and caught.value.column >= 19


@pytest.mark.parametrize("expression", [
    # each level's lambda body was typed once per TRANSFORM overload: 2^n
    "TRANSFORM(a, v => " * 20 + "v" + ")" * 20,
    # each level's items were typed again to coerce them to the array's type: 3^n
    "".join("ARRAY[STRUCT(p := 1), STRUCT(q := " for _ in range(16)) + "1" + ")]" * 16,
])
def test_typing_nested_lambdas_and_constructors_takes_linear_time(expression: str) -> None:
    driver = InMemoryDriver()
    driver.execute("CREATE STREAM s (id STRING KEY, a ARRAY<INT>) WITH (kafka_topic='s', value_format='JSON');")
    started = time.perf_counter()
    driver.execute(f"CREATE STREAM o AS SELECT id, {expression} AS y FROM s;")
    assert time.perf_counter() - started < 2


def test_a_string_too_long_for_any_number_is_a_statement_error() -> None:
    driver = InMemoryDriver()
    driver.execute(PAGEVIEWS)
    with pytest.raises(StatementError, match="does not fit"):
        driver.execute(f"CREATE STREAM out AS SELECT user_id FROM pageviews WHERE ms IN ('{'9' * 5000}');")


def test_insert_values_refuses_a_string_for_a_struct() -> None:
    driver = InMemoryDriver()
    driver.execute("CREATE STREAM s (id STRING KEY, st STRUCT<f STRING>) WITH (kafka_topic='s', value_format='JSON');")
    with pytest.raises(StatementError, match="Expected type STRUCT<`F` STRING> for field ST but got STRING"):
        driver.execute("INSERT INTO s (id, st) VALUES ('k', 'home');")


def test_a_script_that_runs_itself_is_an_error(tmp_path: Path) -> None:
    script = tmp_path / "self.sql"
    script.write_text(f"{PAGEVIEWS}\nRUN SCRIPT '{script}';", encoding="utf-8")
    driver = InMemoryDriver()
    with pytest.raises(StatementError, match=f"would run a script inside itself: {script} -> {script}"):
        driver.execute(f"RUN SCRIPT '{script}';")


def test_scripts_that_run_each_other_are_an_error_and_leave_no_trace(tmp_path: Path) -> None:
    first, second = tmp_path / "first.sql", tmp_path / "second.sql"
    first.write_text(f"RUN SCRIPT '{second}';", encoding="utf-8")
    second.write_text(f"RUN SCRIPT '{first}';", encoding="utf-8")
    driver = InMemoryDriver()
    with pytest.raises(StatementError, match=f"{first} -> {second} -> {first}"):
        driver.execute(f"RUN SCRIPT '{first}';")
    second.write_text(PAGEVIEWS, encoding="utf-8")
    driver.execute(f"RUN SCRIPT '{first}';")  # the failed run left nothing on the stack of running scripts
    assert driver.engine.catalog.find("PAGEVIEWS") is not None


def test_scripts_nest_only_so_deep(tmp_path: Path) -> None:
    scripts = [tmp_path / f"level{i}.sql" for i in range(MAX_SCRIPT_NESTING + 1)]
    for outer, inner in itertools.pairwise(scripts):
        outer.write_text(f"RUN SCRIPT '{inner}';", encoding="utf-8")
    scripts[-1].write_text(PAGEVIEWS, encoding="utf-8")
    with pytest.raises(StatementError, match=f"at most {MAX_SCRIPT_NESTING} deep"):
        InMemoryDriver().execute(f"RUN SCRIPT '{scripts[0]}';")
    driver = InMemoryDriver()
    driver.execute(f"RUN SCRIPT '{scripts[1]}';")
    assert driver.engine.catalog.find("PAGEVIEWS") is not None


@pytest.mark.parametrize(("content", "path", "message"), [
    (None, "missing.sql", "Cannot read script .*missing.sql: No such file or directory"),
    (b"\xff\xfe\x00garbage", "binary.sql", "Cannot read script .*binary.sql: 'utf-8' codec can't decode"),
    (None, "nul\x00.sql", "Cannot read script .*: embedded null byte"),
])
def test_unreadable_scripts_are_statement_errors(tmp_path: Path, content: bytes | None, path: str, message: str
                                                 ) -> None:
    if content is not None:
        (tmp_path / path).write_bytes(content)
    with pytest.raises(StatementError, match=message):
        InMemoryDriver().execute(f"RUN SCRIPT '{tmp_path / path}';")


def test_a_sink_timestamp_in_text_is_parsed_with_its_format_and_bad_text_is_logged() -> None:
    driver = InMemoryDriver()
    driver.execute(
        "CREATE STREAM s (id STRING KEY, t VARCHAR) WITH (kafka_topic='s', value_format='JSON');"
        "CREATE STREAM dated WITH (TIMESTAMP='t', TIMESTAMP_FORMAT='yyyy-MM-dd') AS SELECT id, t FROM s;"
        "CREATE STREAM copied AS SELECT id, t FROM dated;"
    )
    produce_json(driver, "s", "a", {"T": "2020-01-02"}, 5)
    produce_json(driver, "s", "b", {"T": "not a date"}, 6)
    produce_json(driver, "s", "c", {"T": "2021-03-04"}, 7)
    driver.process()
    expected = [("a", {"T": "2020-01-02"}, 1_577_923_200_000), ("c", {"T": "2021-03-04"}, 1_614_816_000_000)]
    assert values(driver, "DATED") == expected
    assert values(driver, "COPIED") == expected  # the query reading the sink parses its timestamps alike
    assert [(entry["offset"], entry["reason"]) for entry in driver.processing_log] == [
        (1, "Failed to parse output timestamp 'not a date': Text 'not a date' could not be parsed with pattern "
            "'yyyy-MM-dd'"),
    ]


def _transient(driver: InMemoryDriver, text: str) -> None:
    (statement,) = parse(text)
    assert isinstance(statement, ast.SelectStatement)
    driver.engine.plan_transient(statement)


def test_a_stream_takes_pull_and_push_queries_and_emit_final_only_over_windows() -> None:
    driver = InMemoryDriver()
    driver.execute(PAGEVIEWS)
    _transient(driver, "SELECT * FROM pageviews EMIT CHANGES;")
    _transient(driver, "SELECT * FROM pageviews;")  # a pull query: what the stream's topic holds now (ksqlDB 0.23+)
    with pytest.raises(StatementError, match="EMIT FINAL is only supported for windowed aggregations"):
        _transient(driver, "SELECT * FROM pageviews EMIT FINAL;")


def test_pull_and_push_queries_over_a_table_plan() -> None:
    driver = InMemoryDriver()
    driver.execute("CREATE TABLE users (id STRING PRIMARY KEY, name STRING) WITH (kafka_topic='u', value_format='JSON');")
    _transient(driver, "SELECT * FROM users EMIT CHANGES;")
    _transient(driver, "SELECT * FROM users;")


@pytest.mark.parametrize("text", ["DESCRIBE EXTENDED out;", "DESCRIBE out EXTENDED;"])
def test_describe_extended_in_either_order(text: str) -> None:
    driver = InMemoryDriver()
    driver.execute(PAGEVIEWS + "CREATE STREAM out AS SELECT user_id, page FROM pageviews;")
    assert "Written by: CSAS_OUT_0" in driver.execute(text)[0].message


def test_a_case_of_many_whens_runs_and_one_of_thousands_is_a_statement_error() -> None:
    driver = InMemoryDriver()
    driver.execute(PAGEVIEWS)
    many = "CASE " + " ".join(f"WHEN ms = {i} THEN {i * 10}" for i in range(500)) + " ELSE -1 END"
    driver.execute(f"CREATE STREAM out AS SELECT user_id, {many} AS code FROM pageviews;")
    produce_json(driver, "pageviews", "k", {"ms": 499})
    driver.process()
    assert values(driver, "OUT") == [("k", {"CODE": 4990}, 0)]
    too_many = "CASE " + " ".join(f"WHEN ms = {i} THEN {i}" for i in range(5000)) + " END"
    with pytest.raises(StatementError, match="Expression too complex to compile"):
        driver.execute(f"CREATE STREAM out2 AS SELECT user_id, {too_many} AS code FROM pageviews;")


def test_a_megabyte_string_literal_takes_linear_time() -> None:
    driver = InMemoryDriver()
    driver.execute(PAGEVIEWS)
    started = time.perf_counter()
    driver.execute(f"CREATE STREAM out AS SELECT user_id, '{'a' * 1_000_000}' AS big FROM pageviews;")
    assert time.perf_counter() - started < 5
