"""Property-based fuzzing of statements: the example queries mutated token by token, character by character and
by nesting, then parsed, planned and run on the in-memory driver. Whatever the text, the only exceptions that
may come out are the project's own (KsqlError and its subclasses), never a bare Python error.

KSQLPY_FUZZ_EXAMPLES=5000 explores further (with fresh random examples) than the default CI run.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ksqlpy import udf
from ksqlpy.driver import InMemoryDriver
from ksqlpy.errors import KsqlError
from ksqlpy.functions.registry import FunctionRegistry
from ksqlpy.functions.udf import declarations_of
from ksqlpy.syntax import ast
from ksqlpy.syntax.parser import MAX_NESTING, parse

QUERIES = Path(__file__).resolve().parent.parent / "queries"
EXAMPLES = int(os.environ.get("KSQLPY_FUZZ_EXAMPLES", "500"))

# Statement kinds queries/ does not show, so mutations reach their code too.
EXTRA_SEEDS = [
    "CREATE STREAM s (id INT KEY, t VARCHAR, a ARRAY<INT>, m MAP<STRING, DOUBLE>, st STRUCT<f INT, g STRING>, "
    "d DECIMAL(4, 2), ts TIMESTAMP) WITH (kafka_topic='s', value_format='JSON', timestamp='ts', partitions=2);\n"
    "CREATE STREAM o WITH (TIMESTAMP='t', TIMESTAMP_FORMAT='yyyy-MM-dd') AS SELECT id, t, st->f AS f, a[1] AS a1, "
    "TRANSFORM(a, x => x * 2) AS doubled, CASE WHEN d > 1.5 THEN 'big' ELSE 'small' END AS size, "
    "CAST(m['k'] AS BIGINT) AS mk, EXPLODE(a) AS item FROM s WHERE t LIKE 'a%' AND id BETWEEN 1 AND 10 "
    "PARTITION BY t EMIT CHANGES;\n"
    "INSERT INTO s (id, t, a, d) VALUES (1, '2020-01-01', ARRAY[1, 2], 1.25);\n"
    "DESCRIBE EXTENDED o; DESCRIBE s EXTENDED; SHOW QUERIES; EXPLAIN SELECT * FROM s EMIT CHANGES;\n"
    "SET 'auto.offset.reset'='earliest'; CREATE TYPE pair AS STRUCT<a INT, b INT>; DROP STREAM IF EXISTS x;",
]


def _scripts() -> list[str]:
    return sorted(path.read_text(encoding="utf-8") for path in QUERIES.rglob("*.sql")) + EXTRA_SEEDS


def _input_values() -> list[Any]:
    values: list[Any] = []
    for path in sorted(QUERIES.rglob("input.json")):
        values += [record.get("value") for record in json.loads(path.read_text(encoding="utf-8"))["inputs"]]
    return values


# Stand-ins for the model UDFs of udfs/anomaly.py that the demo queries call, with the same signatures, so
# those queries plan without loading the model.
@udf(name="ANOMALY")
def _anomaly(sensorinput: str) -> float:
    return float(len(sensorinput))


@udf(name="ANOMALY_SCORE")
def _anomaly_score(*readings: float) -> float:
    return sum(readings)


@udf(name="IS_ANOMALY")
def _is_anomaly(*readings: float) -> bool:
    return sum(readings) > 1


def _registry() -> FunctionRegistry:
    registry = FunctionRegistry.with_builtins()
    for function in (_anomaly, _anomaly_score, _is_anomaly):
        for overload in declarations_of(function):
            registry.add(overload)
    return registry


SCRIPTS = _scripts()
INPUT_VALUES = _input_values()
REGISTRY = _registry()

# One token: a quoted string or name, a number, a word, a two-character operator, a comment, blanks, or any
# other single character. Joining the tokens gives back the text.
TOKEN = re.compile(r"""'(?:[^']|'')*'|`[^`]*`|"[^"]*"|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\w+|->|<>|!=|<=|>=|:=|=>|\|\||"""
                   r"""--[^\n]*|\s+|.""", re.DOTALL)

OPERAND = re.compile(r"\w+|'(?:[^']|'')*'")
CLAUSE_WORDS = {"CREATE", "STREAM", "TABLE", "AS", "SELECT", "FROM", "WHERE", "WITH", "KEY", "EMIT", "CHANGES",
                "INSERT", "INTO", "VALUES", "PARTITION", "GROUP", "BY", "SET", "LIMIT", "AND", "OR", "NOT", "IS",
                "NULL", "DESCRIBE", "EXTENDED", "SHOW", "EXPLAIN", "DROP", "IF", "EXISTS", "TYPE", "QUERIES"}

WORDS = [
    "SELECT", "FROM", "WHERE", "CASE", "WHEN", "THEN", "ELSE", "END", "AND", "OR", "NOT", "NULL", "TRUE", "CAST",
    "AS", "ARRAY", "MAP", "STRUCT", "EMIT", "CHANGES", "FINAL", "PARTITION BY", "GROUP BY", "WINDOW", "WITH",
    "INSERT INTO", "VALUES", "CREATE STREAM", "CREATE TABLE", "DESCRIBE", "EXTENDED", "DROP", "TERMINATE",
    "LIMIT", "BETWEEN", "IN", "LIKE", "IS", "DISTINCT", "KEY", "PRIMARY KEY", "HEADERS", "TIMESTAMP", "JOIN",
    "ON", "WITHIN", "ROWTIME", "ROWOFFSET", "DECIMAL(0, 1)", "DECIMAL(2, 5)", "STRING", "BIGINT", "BYTES",
    "ABS", "TRANSFORM", "REDUCE", "FILTER", "EXPLODE", "COUNT", "SUBSTRING", "CONCAT", "LEN", "COALESCE",
    "STRINGTOTIMESTAMP", "TIMESTAMP_FORMAT", "VALUE_FORMAT", "KAFKA_TOPIC", "PARTITIONS", "WRAP_SINGLE_VALUE",
    "'DELIMITED'", "'KAFKA'", "'NONE'", "'JSON'",
]
PUNCTUATION = ["(", ")", "[", "]", ",", ";", "->", ".", "*", "+", "-", "/", "%", "||", "=", "<>", "<", ">",
               ":=", "=>", "'", "`", '"', "--", "/*"]
LITERALS = ["0", "-1", "2147483648", "-9223372036854775808", "9223372036854775808", "1e308", "1e309", "0.0",
            "9" * 5000, "1." + "5" * 500, "''", "'x'", "'\x00'", "'" + "y" * 3000 + "'", "NULL", "TRUE"]
# (opening, closing) of a construct nested around an operand or a type, a few levels deep, around the
# nesting limit, or far beyond it. The first few fit any operand's type, so they reach code generation.
NESTING_DEPTHS = st.integers(1, 3) | st.integers(MAX_NESTING - 3, MAX_NESTING + 3) | st.integers(100, 600)
EXPRESSION_NESTINGS = [("CASE WHEN TRUE THEN ", " END"), ("ARRAY[", "]"), ("", " || 'a'"), ("CAST(", " AS STRING)"),
                       ("ABS(", ")"), ("(", ")"), ("- ", ""), ("NOT ", ""), ("", "->F"), ("", "[1]"), ("", " + 1"),
                       ("TRANSFORM(A, X => ", ")")]
TYPE_NESTINGS = [("STRUCT<F ", ">"), ("ARRAY<", ">"), ("MAP<STRING, ", ">")]
TYPE_WORDS = {"INT", "INTEGER", "BIGINT", "DOUBLE", "BOOLEAN", "STRING", "VARCHAR", "BYTES", "TIMESTAMP", "DATE",
              "TIME"}
CHARACTERS = st.characters(codec="utf-8") | st.sampled_from("();,'\"`-*/[]<>=:\n\x00é\u2028")

Mutation = Callable[[st.DrawFn, list[str]], list[str]]


def _index(draw: st.DrawFn, tokens: list[str]) -> int:
    return draw(st.integers(0, max(len(tokens) - 1, 0)))


def _delete(draw: st.DrawFn, tokens: list[str]) -> list[str]:
    i = _index(draw, tokens)
    return tokens[:i] + tokens[i + 1:]


def _duplicate(draw: st.DrawFn, tokens: list[str]) -> list[str]:
    i = _index(draw, tokens)
    return tokens[:i + 1] + tokens[i:]


def _swap(draw: st.DrawFn, tokens: list[str]) -> list[str]:
    i, j = _index(draw, tokens), _index(draw, tokens)
    swapped = list(tokens)
    if swapped:
        swapped[i], swapped[j] = swapped[j], swapped[i]
    return swapped


def _repeat(draw: st.DrawFn, tokens: list[str]) -> list[str]:
    """A run of up to 8 tokens repeated up to 600 times: long lists, many WHENs, chains, huge texts."""
    i = _index(draw, tokens)
    run = tokens[i:i + draw(st.integers(1, 8))]
    return [*tokens[:i], *run * draw(st.integers(2, 600)), *tokens[i + len(run):]]


def _insert(draw: st.DrawFn, tokens: list[str]) -> list[str]:
    word = draw(st.sampled_from(WORDS) | st.sampled_from(PUNCTUATION) | st.sampled_from(LITERALS))
    i = _index(draw, tokens)
    return [*tokens[:i], " ", word, " ", *tokens[i:]]


def _nest(draw: st.DrawFn, tokens: list[str]) -> list[str]:
    """Nest a construct around a type name, or around a word or literal that may be an operand."""
    words = [(i, token.upper()) for i, token in enumerate(tokens) if OPERAND.fullmatch(token)]
    types = [i for i, word in words if word in TYPE_WORDS]
    operands = [i for i, word in words if word not in CLAUSE_WORDS | TYPE_WORDS]
    is_type = bool(types) and (not operands or draw(st.booleans()))
    opening, closing = draw(st.sampled_from(TYPE_NESTINGS if is_type else EXPRESSION_NESTINGS))
    depth = draw(NESTING_DEPTHS)
    i = draw(st.sampled_from((types if is_type else operands) or [0]))
    return [*tokens[:i], opening * depth, *tokens[i:i + 1], closing * depth, *tokens[i + 1:]]


def _character(draw: st.DrawFn, tokens: list[str]) -> list[str]:
    """A character-level edit: delete, duplicate, swap with the next, or insert a random character."""
    text = "".join(tokens)
    i = draw(st.integers(0, max(len(text) - 1, 0)))
    edit = draw(st.sampled_from(["delete", "duplicate", "swap", "insert"]))
    if edit == "delete":
        text = text[:i] + text[i + 1:]
    elif edit == "duplicate":
        text = text[:i + 1] + text[i:]
    elif edit == "swap":
        text = text[:i] + text[i + 1:i + 2] + text[i:i + 1] + text[i + 2:]
    else:
        text = text[:i] + draw(CHARACTERS) + text[i:]
    return TOKEN.findall(text)


MUTATIONS: list[Mutation] = [_delete, _duplicate, _swap, _repeat, _insert, _nest, _character]


@st.composite
def mutated_scripts(draw: st.DrawFn) -> str:
    """A seed script with one of its statements mutated: the statements before it still create what it uses."""
    statements = _statements(draw(st.sampled_from(SCRIPTS)))
    chosen = draw(st.sampled_from([i for i, statement in enumerate(statements) if statement.strip()]))
    tokens = TOKEN.findall(statements[chosen])
    if draw(st.booleans()):  # nesting alone, so the statement mostly stays valid and reaches every stage
        tokens = _nest(draw, tokens)
    for _ in range(draw(st.integers(0, 3))):
        tokens = draw(st.sampled_from(MUTATIONS))(draw, tokens)
    return "".join([*statements[:chosen], *tokens, *statements[chosen + 1:]])


def _statements(script: str) -> list[str]:
    """The script cut at each ';' outside quotes, so a broken statement does not hide the ones after it."""
    statements, current = [], []
    for token in TOKEN.findall(script):
        current.append(token)
        if token == ";":
            statements.append("".join(current))
            current = []
    return [*statements, "".join(current)]


def _execute(driver: InMemoryDriver, text: str) -> None:
    """Execute the statements of `text`; a push query is planned and compiled, as the Kafka runtime would."""
    for statement in parse(text):
        if isinstance(statement, ast.SelectStatement):
            driver.engine.transient_pipeline(driver.engine.plan_transient(statement), "fuzz")
        else:
            driver.engine.execute_statement(statement)


def _run(script: str, payloads: list[tuple[bytes | None, bytes | None]]) -> None:
    driver = InMemoryDriver(registry=REGISTRY)
    for statement in _statements(script):
        with suppress(KsqlError):  # the project's own error: what bad SQL should give
            _execute(driver, statement)
    for source in list(driver.engine.catalog.sources.values()):
        for key, value in payloads:
            driver.produce(source.topic, key, value, 1_600_000_000_000)
    with suppress(KsqlError):  # a query set to fail on a bad record (ksql.fail.on.*) fails with the project's error
        driver.process()


payload_strategy = st.lists(
    st.tuples(st.none() | st.binary(max_size=8),
              st.sampled_from([json.dumps(value).encode() for value in INPUT_VALUES]) | st.binary(max_size=40)),
    max_size=4,
)


@settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize="KSQLPY_FUZZ_EXAMPLES" not in os.environ,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(script=mutated_scripts(), payloads=payload_strategy)
def test_mutated_statements_raise_only_ksql_errors(script: str, payloads: list[tuple[bytes | None, bytes | None]]
                                                   ) -> None:
    _run(script, payloads)


def test_every_seed_statement_runs_unmutated() -> None:
    """The fuzzing starts from working statements, so mutations reach planning and execution: every seed
    statement runs on the in-memory driver."""
    for script in SCRIPTS:
        driver = InMemoryDriver(registry=REGISTRY)
        for statement in _statements(script):
            _execute(driver, statement)
        assert driver.engine.queries
