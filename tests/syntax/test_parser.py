"""Tests for the statement parser: every statement kind, expressions, types, literals, errors, corpus smoke."""

from __future__ import annotations

import decimal
import json
import random
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ksqlpy import types
from ksqlpy.errors import ParseError
from ksqlpy.syntax import ast
from ksqlpy.syntax.parser import MAX_NESTING, parse, parse_expression, parse_type

CONFORMANCE_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "conformance"


def col(name: str, source: str | None = None) -> ast.ColumnRef:
    return ast.ColumnRef(name, source)


def chain(first: ast.Expr, *rest: str | ast.Expr) -> ast.Chain:
    """`chain(a, "+", b, "-", c)` is the run a + b - c."""
    operands = (first, *(item for item in rest[1::2] if isinstance(item, ast.Expr)))
    return ast.Chain(operands, tuple(str(item) for item in rest[::2]))


def lit(value: Any) -> ast.Literal:
    if isinstance(value, bool):
        return ast.Literal(value, types.BOOLEAN)
    if isinstance(value, int):
        return ast.Literal(value, types.INTEGER)
    return ast.Literal(value, types.STRING)


def one(text: str) -> ast.Statement:
    statements = parse(text)
    assert len(statements) == 1
    return statements[0]


def query_of(text: str) -> ast.Query:
    statement = one(text)
    assert isinstance(statement, ast.SelectStatement)
    return statement.query


def parse_error(text: str) -> ParseError:
    with pytest.raises(ParseError) as caught:
        parse(text)
    return caught.value


# --------------------------------------------------------------------------- statements


def test_create_stream_with_columns_and_properties() -> None:
    statement = one("CREATE STREAM pageviews (id BIGINT KEY, `Page Id` VARCHAR, tags ARRAY<STRING>) "
                    "WITH (kafka_topic='views', value_format='JSON', partitions=4, wrap_single_value=false, "
                    "'quoted'=1.5, neg=-2);")
    assert statement == ast.CreateSource(
        kind="STREAM", name="PAGEVIEWS",
        columns=(ast.ColumnDef("ID", types.BIGINT, key=True),
                 ast.ColumnDef("Page Id", types.STRING),
                 ast.ColumnDef("TAGS", types.ArrayType(types.STRING))),
        properties={"KAFKA_TOPIC": "views", "VALUE_FORMAT": "JSON", "PARTITIONS": 4,
                    "WRAP_SINGLE_VALUE": False, "QUOTED": 1.5, "NEG": -2},
    )
    assert statement.pos == ast.Position(1, 1)


def test_create_source_table_modifiers_and_column_constraints() -> None:
    statement = one("CREATE OR REPLACE SOURCE TABLE IF NOT EXISTS t (k INT PRIMARY KEY, h BYTES HEADER('abc'), "
                    "hs ARRAY<STRUCT<key STRING, value BYTES>> HEADERS) WITH (kafka_topic='t')")
    assert isinstance(statement, ast.CreateSource)
    assert (statement.kind, statement.or_replace, statement.is_source, statement.if_not_exists) == (
        "TABLE", True, True, True)
    key, header, headers = statement.columns
    assert key == ast.ColumnDef("K", types.INTEGER, key=True, primary_key=True)
    assert header == ast.ColumnDef("H", types.BYTES, headers=True, header_key="abc")
    assert headers.headers and headers.header_key is None
    assert headers.type == types.ArrayType(types.StructType((("KEY", types.STRING), ("VALUE", types.BYTES))))


def test_create_source_without_columns_gets_empty_tuple() -> None:
    statement = one("CREATE STREAM s WITH (kafka_topic='t', value_format='AVRO')")
    assert isinstance(statement, ast.CreateSource)
    assert statement.columns == ()


def test_create_as_select() -> None:
    statement = one("CREATE TABLE IF NOT EXISTS agg WITH (partitions=1) AS "
                    "SELECT id, COUNT(*) AS cnt FROM s GROUP BY id EMIT CHANGES;")
    assert statement == ast.CreateAsSelect(
        kind="TABLE", name="AGG", properties={"PARTITIONS": 1}, if_not_exists=True,
        query=ast.Query(
            select=(ast.SelectItem(col("ID")), ast.SelectItem(ast.FunctionCall("COUNT", star=True), "CNT")),
            from_=ast.SourceRef("S"), group_by=(col("ID"),), emit="CHANGES"),
    )


def test_create_or_replace_stream_as_select_without_properties() -> None:
    statement = one("CREATE OR REPLACE STREAM out AS SELECT * FROM s")
    assert isinstance(statement, ast.CreateAsSelect)
    assert statement.or_replace and statement.properties == {}


def test_insert_into_select() -> None:
    statement = one("INSERT INTO out WITH (query_id='q1') SELECT a FROM s;")
    assert statement == ast.InsertInto(
        target="OUT", properties={"QUERY_ID": "q1"},
        query=ast.Query(select=(ast.SelectItem(col("A")),), from_=ast.SourceRef("S")))


@pytest.mark.parametrize(("text", "columns", "values"), [
    ("INSERT INTO s (id, name) VALUES (1, 'x')", ("ID", "NAME"), (lit(1), lit("x"))),
    ("INSERT INTO s VALUES (NULL, TRUE)", None, (ast.Literal(None, types.NULL), lit(True))),
    ("INSERT INTO s VALUES ()", None, ()),
])
def test_insert_values(text: str, columns: tuple[str, ...] | None, values: tuple[ast.Expr, ...]) -> None:
    assert one(text) == ast.InsertValues("S", columns, values)


@pytest.mark.parametrize(("text", "expected"), [
    ("SHOW STREAMS", ast.Show("STREAMS")),
    ("list tables extended", ast.Show("TABLES", extended=True)),
    ("SHOW TOPICS", ast.Show("TOPICS")),
    ("SHOW ALL TOPICS EXTENDED", ast.Show("TOPICS", extended=True)),
    ("SHOW QUERIES", ast.Show("QUERIES")),
    ("SHOW FUNCTIONS", ast.Show("FUNCTIONS")),
    ("SHOW PROPERTIES", ast.Show("PROPERTIES")),
    ("SHOW TYPES", ast.Show("TYPES")),
    ("DESCRIBE s", ast.Describe("S")),
    ("DESCRIBE `Mixed` EXTENDED", ast.Describe("Mixed", extended=True)),
    ("DESCRIBE EXTENDED s", ast.Describe("S", extended=True)),
    ("DESCRIBE STREAMS EXTENDED", ast.Describe("STREAMS", extended=True, all_sources=True)),
    ("DESCRIBE TABLES", ast.Describe("TABLES", all_sources=True)),
    ("DESCRIBE FUNCTION substring", ast.DescribeFunction("SUBSTRING")),
    ("EXPLAIN csas_output_0", ast.Explain(query_id="CSAS_OUTPUT_0")),
    ("DROP STREAM IF EXISTS s DELETE TOPIC", ast.DropSource("STREAM", "S", if_exists=True, delete_topic=True)),
    ("DROP TABLE t", ast.DropSource("TABLE", "T")),
    ("TERMINATE ctas_agg_3", ast.Terminate("CTAS_AGG_3")),
    ("TERMINATE ALL", ast.Terminate(None)),
    ("PRINT 'My-Topic' FROM BEGINNING INTERVAL 2 LIMIT 10",
     ast.Print("My-Topic", from_beginning=True, limit=10, interval=2)),
    ("PRINT myTopic", ast.Print("myTopic")),
    ("SET 'auto.offset.reset' = 'earliest'", ast.SetProperty("auto.offset.reset", "earliest")),
    ("UNSET 'auto.offset.reset'", ast.UnsetProperty("auto.offset.reset")),
    ("RUN SCRIPT '/tmp/setup.sql'", ast.RunScript("/tmp/setup.sql")),
    ("CREATE TYPE IF NOT EXISTS address AS STRUCT<street STRING, `Zip` INT>",
     ast.CreateType("ADDRESS", types.StructType((("STREET", types.STRING), ("Zip", types.INTEGER))),
                    if_not_exists=True)),
    ("DROP TYPE IF EXISTS address", ast.DropType("ADDRESS", if_exists=True)),
])
def test_simple_statements(text: str, expected: ast.Statement) -> None:
    assert one(text) == expected


def test_explain_statement_keeps_nested_statement_and_text() -> None:
    statement = one("EXPLAIN SELECT * FROM s;")
    assert isinstance(statement, ast.Explain)
    assert isinstance(statement.statement, ast.SelectStatement)
    assert statement.text == "EXPLAIN SELECT * FROM s"
    assert statement.statement.text == "SELECT * FROM s"


# --------------------------------------------------------------------------- scripts, text and positions


def test_script_splits_statements_with_their_own_text_and_positions() -> None:
    script = ("-- setup\n"
              "CREATE STREAM s (a INT) WITH (kafka_topic='t');\n"
              "/* a block\n   comment */ SELECT a\n  FROM s ;;\n"
              "  DROP STREAM s")
    statements = parse(script)
    assert [type(s).__name__ for s in statements] == ["CreateSource", "SelectStatement", "DropSource"]
    assert [s.text for s in statements] == [  # type: ignore[attr-defined]
        "CREATE STREAM s (a INT) WITH (kafka_topic='t')", "SELECT a\n  FROM s", "DROP STREAM s"]
    assert [s.pos for s in statements] == [  # type: ignore[attr-defined]
        ast.Position(2, 1), ast.Position(4, 15), ast.Position(6, 3)]


@pytest.mark.parametrize("text", ["", "   ", ";", ";;", "-- only a comment\n", "/* nothing */"])
def test_empty_scripts(text: str) -> None:
    assert parse(text) == []


def test_expression_positions() -> None:
    where = query_of("SELECT a\nFROM s\nWHERE  x  >  1").where
    assert isinstance(where, ast.BinaryOp)
    assert where.pos == ast.Position(3, 8)
    assert where.right.pos == ast.Position(3, 14)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- queries


def test_query_clauses() -> None:
    query = query_of("SELECT s.*, a AS b, c d, e->f->* FROM src s WINDOW TUMBLING (SIZE 30 SECONDS) WHERE a > 1 "
                     "GROUP BY a, c HAVING COUNT(*) > 2 EMIT FINAL LIMIT 5")
    assert query.select == (
        ast.SelectItem(None, star_source="S"),
        ast.SelectItem(col("A"), "B"),
        ast.SelectItem(col("C"), "D"),
        ast.SelectItem(ast.Dereference(ast.Dereference(col("E"), "F"), "*")),
    )
    assert query.from_ == ast.SourceRef("SRC", "S")
    assert query.window == ast.WindowSpec("TUMBLING", 30_000)
    assert query.where == ast.BinaryOp(">", col("A"), lit(1))
    assert query.group_by == (col("A"), col("C"))
    assert query.having == ast.BinaryOp(">", ast.FunctionCall("COUNT", star=True), lit(2))
    assert (query.emit, query.limit) == ("FINAL", 5)


def test_partition_by_and_pull_query_without_emit() -> None:
    query = query_of("SELECT * FROM s WHERE a = 1 PARTITION BY a, b")
    assert query.partition_by == (col("A"), col("B"))
    assert query.emit is None and query.select == (ast.SelectItem(None),)


def test_parenthesised_group_by_list_and_single_expression() -> None:
    assert query_of("SELECT * FROM s GROUP BY (a, b)").group_by == (col("A"), col("B"))
    assert query_of("SELECT * FROM s GROUP BY (a IS NULL)").group_by == (ast.IsNull(col("A")),)


def test_empty_partition_by_is_rejected() -> None:
    assert "PARTITION BY requires at least one expression" in str(parse_error("SELECT * FROM s PARTITION BY ()"))


@pytest.mark.parametrize(("window", "expected"), [
    ("TUMBLING (SIZE 1 MINUTE, RETENTION 2 DAYS, GRACE PERIOD 0 MILLISECONDS)",
     ast.WindowSpec("TUMBLING", 60_000, grace_ms=0, retention_ms=172_800_000)),
    ("HOPPING (SIZE 10 SECONDS, ADVANCE BY 5 SECOND)", ast.WindowSpec("HOPPING", 10_000, advance_ms=5_000)),
    ("SESSION (5 MINUTES, GRACE PERIOD 1 HOUR)", ast.WindowSpec("SESSION", 300_000, grace_ms=3_600_000)),
    ("w SESSION (2 MILLISECOND)", ast.WindowSpec("SESSION", 2)),
])
def test_windows(window: str, expected: ast.WindowSpec) -> None:
    assert query_of(f"SELECT a, COUNT(*) FROM s WINDOW {window} GROUP BY a").window == expected


def test_n_way_join_with_types_and_within() -> None:
    relation = query_of("SELECT * FROM a LEFT OUTER JOIN b bb WITHIN (1 SECOND, 2 HOURS) GRACE PERIOD 1 MINUTE "
                        "ON a.id = bb.id FULL JOIN c AS cc ON a.id = cc.id JOIN d WITHIN 3 DAYS ON d.id = a.id "
                        "RIGHT JOIN e ON e.id = a.id INNER JOIN f ON f.id = a.id").from_
    kinds = []
    while isinstance(relation, ast.Join):
        kinds.append((relation.join_type, relation.right.name, relation.within))
        relation = relation.left
    assert relation == ast.SourceRef("A")
    assert kinds[::-1] == [
        ("LEFT", "B", ast.WithinSpec(1_000, 7_200_000, 60_000)),
        ("FULL", "C", None),
        ("INNER", "D", ast.WithinSpec(259_200_000, 259_200_000)),
        ("RIGHT", "E", None),
        ("INNER", "F", None),
    ]


# --------------------------------------------------------------------------- expressions and precedence


@pytest.mark.parametrize(("text", "expected"), [
    ("a OR b AND c", chain(col("A"), "OR", chain(col("B"), "AND", col("C")))),
    ("NOT a = 1 AND b", chain(ast.UnaryOp("NOT", ast.BinaryOp("=", col("A"), lit(1))), "AND", col("B"))),
    ("1 + 2 * 3", chain(lit(1), "+", chain(lit(2), "*", lit(3)))),
    ("1 - 2 - 3", chain(lit(1), "-", lit(2), "-", lit(3))),
    ("a / b % c", chain(col("A"), "/", col("B"), "%", col("C"))),
    ("a - b + c * d", chain(col("A"), "-", col("B"), "+", chain(col("C"), "*", col("D")))),
    ("a OR b OR c AND d AND e",
     chain(col("A"), "OR", col("B"), "OR", chain(col("C"), "AND", col("D"), "AND", col("E")))),
    ("'x' || a + 1", chain(lit("x"), "||", chain(col("A"), "+", lit(1)))),
    ("-a * b", chain(ast.UnaryOp("-", col("A")), "*", col("B"))),
    ("-a[1]->f", ast.UnaryOp("-", ast.Dereference(ast.Subscript(col("A"), lit(1)), "F"))),
    ("a + 1 > b", ast.BinaryOp(">", chain(col("A"), "+", lit(1)), col("B"))),
    ("(a OR b) AND c", chain(chain(col("A"), "OR", col("B")), "AND", col("C"))),
    ("a != b", ast.BinaryOp("<>", col("A"), col("B"))),
    ("a <= b", ast.BinaryOp("<=", col("A"), col("B"))),
    ("a IS NOT NULL", ast.IsNull(col("A"), negated=True)),
    ("a IS DISTINCT FROM b", ast.BinaryOp("IS DISTINCT FROM", col("A"), col("B"))),
    ("a IS NOT DISTINCT FROM 1", ast.BinaryOp("IS NOT DISTINCT FROM", col("A"), lit(1))),
    ("a NOT BETWEEN 1 AND 2 AND b",
     chain(ast.Between(col("A"), lit(1), lit(2), negated=True), "AND", col("B"))),
    ("a IN (1, b)", ast.InList(col("A"), (lit(1), col("B")))),
    ("a NOT IN ('x')", ast.InList(col("A"), (lit("x"),), negated=True)),
    ("a LIKE 'x!%' ESCAPE '!'", ast.Like(col("A"), lit("x!%"), escape="!")),
    ("a NOT LIKE b", ast.Like(col("A"), col("B"), negated=True)),
    ("CASE WHEN a THEN 1 WHEN b THEN 2 ELSE 3 END",
     ast.Case(None, ((col("A"), lit(1)), (col("B"), lit(2))), lit(3))),
    ("CASE x WHEN 1 THEN 'one' END", ast.Case(col("X"), ((lit(1), lit("one")),))),
    ("CAST(a AS DECIMAL(10, 2))", ast.Cast(col("A"), types.DecimalType(10, 2))),
    ("count(DISTINCT x)", ast.FunctionCall("COUNT", (col("X"),), distinct=True)),
    ("COUNT()", ast.FunctionCall("COUNT")),
    ("ARRAY[]", ast.ArrayConstructor(())),
    ("ARRAY[1, a]", ast.ArrayConstructor((lit(1), col("A")))),
    ("MAP('a' := 1)", ast.MapConstructor(((lit("a"), lit(1)),))),
    ("STRUCT(f := 1, `G` := 'x')", ast.StructConstructor((("F", lit(1)), ("G", lit("x"))))),
    ("TIMESTAMPADD(SECONDS, 5, ts)",
     ast.FunctionCall("TIMESTAMPADD", (ast.IntervalUnitExpr("SECONDS"), lit(5), col("TS")))),
    ("dateadd(day, 1, date)", ast.FunctionCall("DATEADD", (ast.IntervalUnitExpr("DAYS"), lit(1), col("DATE")))),
    ("m['k']", ast.Subscript(col("M"), lit("k"))),
    ("s.a->b", ast.Dereference(col("A", "S"), "B")),
    ("`Src`.`Col`", col("Col", "Src")),
    ('"Quoted"', col("Quoted")),
])
def test_expressions(text: str, expected: ast.Expr) -> None:
    assert parse_expression(text) == expected


def test_lambdas_as_function_arguments() -> None:
    expression = parse_expression("TRANSFORM(m, (k, v) => k, v => v + 1, (x) => x)")
    assert expression == ast.FunctionCall("TRANSFORM", (
        col("M"),
        ast.Lambda(("K", "V"), col("K")),
        ast.Lambda(("V",), chain(col("V"), "+", lit(1))),
        ast.Lambda(("X",), col("X")),
    ))


def test_lambda_parameter_must_be_a_name() -> None:
    with pytest.raises(ParseError, match="lambda parameter"):
        parse_expression("TRANSFORM(m, a + 1 => a)")


# --------------------------------------------------------------------------- identifiers and keywords


def test_identifier_case_rules() -> None:
    statement = one("CREATE STREAM `My Stream` (lower INT, `Mixed Case` INT, \"Dq\" INT, 1r INT) "
                    "WITH (kafka_topic='t')")
    assert isinstance(statement, ast.CreateSource)
    assert statement.name == "My Stream"
    assert [c.name for c in statement.columns] == ["LOWER", "Mixed Case", "Dq", "1R"]
    assert parse_expression("`a``b`") == col("a`b")


def test_non_reserved_keywords_work_as_column_names() -> None:
    statement = one("CREATE STREAM s (key INT KEY, value STRING, size INT, timestamp BIGINT, date DATE, time TIME, "
                    "second INT, windowstart BIGINT, map MAP<STRING, INT>, emit INT) WITH (kafka_topic='t')")
    assert isinstance(statement, ast.CreateSource)
    assert [c.name for c in statement.columns] == [
        "KEY", "VALUE", "SIZE", "TIMESTAMP", "DATE", "TIME", "SECOND", "WINDOWSTART", "MAP", "EMIT"]
    query = query_of("SELECT key, value AS count, size, timestamp, map['a'], REDUCE(map, 0, (s, k, v) => s) "
                     "FROM s WHERE date > 1")
    assert [item.expr for item in query.select][:4] == [col("KEY"), col("VALUE"), col("SIZE"), col("TIMESTAMP")]
    assert query.select[1].alias == "COUNT"
    assert query.where == ast.BinaryOp(">", col("DATE"), lit(1))


def test_keywords_are_case_insensitive() -> None:
    assert one("select A from S emit changes") == one("SELECT a FROM s EMIT CHANGES")


def test_reserved_word_as_name_is_a_syntax_error() -> None:
    error = parse_error("SELECT a, FROM s")
    assert (error.line, error.column) == (1, 11)
    assert "mismatched input 'FROM'" in str(error)
    assert parse_expression("`from`") == col("from")


# --------------------------------------------------------------------------- literals


@pytest.mark.parametrize(("text", "value", "sql_type"), [
    ("0", 0, types.INTEGER),
    ("2147483647", 2147483647, types.INTEGER),
    ("2147483648", 2147483648, types.BIGINT),
    ("-2147483648", -2147483648, types.INTEGER),
    ("-2147483649", -2147483649, types.BIGINT),
    ("9223372036854775807", 9223372036854775807, types.BIGINT),
    ("-9223372036854775808", -9223372036854775808, types.BIGINT),
    ("1.50", Decimal("1.50"), types.DecimalType(3, 2)),
    ("0.5", Decimal("0.5"), types.DecimalType(1, 1)),
    ("0.05", Decimal("0.05"), types.DecimalType(2, 2)),
    ("-12.345", Decimal("-12.345"), types.DecimalType(5, 3)),
    (".5", Decimal("0.5"), types.DecimalType(1, 1)),
    ("1.5E3", 1500.0, types.DOUBLE),
    ("-4.9E-324", -4.9e-324, types.DOUBLE),
    ("1e2", 100.0, types.DOUBLE),
    ("'it''s'", "it's", types.STRING),
    ("''", "", types.STRING),
    ("true", True, types.BOOLEAN),
    ("FALSE", False, types.BOOLEAN),
    ("NULL", None, types.NULL),
])
def test_literals(text: str, value: Any, sql_type: types.SqlType) -> None:
    literal = parse_expression(text)
    assert isinstance(literal, ast.Literal)
    assert literal.type == sql_type
    assert literal.value == value and type(literal.value) is type(value)
    if isinstance(value, Decimal):
        assert str(literal.value) == str(value)  # same scale, not just the same number


def test_negating_a_non_numeric_literal_stays_an_operation() -> None:
    assert parse_expression("-'a'") == ast.UnaryOp("-", lit("a"))


@pytest.mark.parametrize(("text", "message", "column"), [
    ("SELECT 9223372036854775808 FROM s", "Invalid numeric literal: 9223372036854775808", 8),
    ("SELECT a, -9223372036854775809 FROM s", "Invalid numeric literal: -9223372036854775809", 11),
    ("SELECT -1.7976931348623160E308 FROM s", "Number overflows DOUBLE: -1.7976931348623160E308", 8),
    # beyond Python's int() limit of 4300 digits, and shown cut short
    ("SELECT " + "9" * 4301 + " FROM s", "Invalid numeric literal: 999999999999999999999999... (4301 characters)",
     8),
    ("SELECT x, -" + "1" * 5000 + " FROM s", "Invalid numeric literal: -11111111111111111111111... (5001 characters)",
     11),
    ("SELECT 00000000000000000000000000001 FROM s", None, 0),
    ("SELECT 1" + "0" * 400 + "e0 FROM s", "Number overflows DOUBLE: 100000000000000000000000... (403 characters)",
     8),
])
def test_out_of_range_numbers(text: str, message: str | None, column: int) -> None:
    if message is None:
        parse(text)
        return
    error = parse_error(text)
    assert message in str(error)
    assert (error.line, error.column) == (1, column)
    assert len(str(error)) < 100


def test_huge_decimal_literals_keep_every_digit() -> None:
    digits = "9" * 5000 + ".5"
    assert parse_expression(digits) == ast.Literal(Decimal(digits), types.DecimalType(5001, 1))


@pytest.mark.parametrize(("text", "message", "column"), [
    ("SELECT x FROM s EMIT CHANGES LIMIT 2147483648", "LIMIT must be at most 2147483647, got 2147483648", 36),
    ("SELECT x FROM s EMIT CHANGES LIMIT " + "9" * 5000, "LIMIT must be at most 2147483647, got 99999", 36),
    ("PRINT t INTERVAL 99999999999", "The PRINT interval must be at most 2147483647", 18),
    ("SELECT x FROM s WINDOW TUMBLING (SIZE 106751991167301 DAYS)", "A duration in DAYS must be at most", 39),
    ("CREATE STREAM s (d DECIMAL(" + "9" * 5000 + ", 2)) WITH (kafka_topic='t')", "DECIMAL precision must be at",
     28),
    ("CREATE STREAM s (d DECIMAL(0, 0)) WITH (kafka_topic='t')", "DECIMAL precision must be >= 1: DECIMAL(0,0)", 28),
    ("SELECT CAST(x AS DECIMAL(2, 5)) FROM s", "DECIMAL precision must be >= scale: DECIMAL(2,5)", 26),
])
def test_numbers_beyond_their_limits(text: str, message: str, column: int) -> None:
    error = parse_error(text)
    assert message in str(error)
    assert (error.line, error.column) == (1, column)


# --------------------------------------------------------------------------- nesting limit

# Each builds an expression (or type) nested `depth` levels deep around a column.
NESTED_EXPRESSIONS = {
    "function calls": lambda depth: "ABS(" * depth + "x" + ")" * depth,
    "arithmetic": lambda depth: "1 + (" * depth + "x" + ")" * depth,
    "concatenation": lambda depth: "'a' || (" * depth + "x" + ")" * depth,
    "AND": lambda depth: "b AND (" * depth + "b" + ")" * depth,
    "chains in chains": lambda depth: "1 - 2 * (" * (depth // 2) + "x * 2" * (depth % 2) + "x" * (1 - depth % 2)
    + ") + 3" * (depth // 2),
    "NOT": lambda depth: "NOT " * depth + "b",
    "unary minus": lambda depth: "- " * depth + "x",
    "CASE": lambda depth: "CASE WHEN b THEN " * depth + "x" + " END" * depth,
    "CAST": lambda depth: "CAST(" * depth + "x" + " AS STRING)" * depth,
    "array constructors": lambda depth: "ARRAY[" * depth + "x" + "]" * depth,
    "field access": lambda depth: "s" + "->f" * depth,
    "subscripts": lambda depth: "a" + "[1]" * depth,
    "IN": lambda depth: "b IN (" * depth + "b" + ")" * depth,
    "lambdas": lambda depth: "TRANSFORM(a, v => " * (depth // 2) + "v" + ")" * (depth // 2),
}


@pytest.mark.parametrize("nested", NESTED_EXPRESSIONS.values(), ids=NESTED_EXPRESSIONS.keys())
def test_nesting_up_to_the_limit_parses(nested: Any) -> None:
    parse(f"SELECT {nested(MAX_NESTING)} FROM s;")


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 488, 5000])
@pytest.mark.parametrize("nested", NESTED_EXPRESSIONS.values(), ids=NESTED_EXPRESSIONS.keys())
def test_nesting_beyond_the_limit_is_a_parse_error_with_its_place(nested: Any, depth: int) -> None:
    if nested is NESTED_EXPRESSIONS["lambdas"]:
        depth += 2  # each level of TRANSFORM(a, v => ...) is two: the call and the lambda
    error = parse_error(f"SELECT x,\n  {nested(depth)} FROM s;")
    assert f"Nested too deeply: expressions and types may nest at most {MAX_NESTING} levels" in str(error)
    assert error.line == 2
    assert error.column >= 3


def test_the_reported_place_is_where_the_level_too_many_starts() -> None:
    error = parse_error("SELECT " + "ABS(" * (MAX_NESTING + 1) + "x" + ")" * (MAX_NESTING + 1) + " FROM s")
    assert (error.line, error.column) == (1, 8 + len("ABS(") * MAX_NESTING)


def test_nested_types_are_limited_too() -> None:
    parse_type("ARRAY<" * MAX_NESTING + "INT" + ">" * MAX_NESTING)
    with pytest.raises(ParseError, match="Nested too deeply"):
        parse_type("STRUCT<f " * (MAX_NESTING + 1) + "INT" + ">" * (MAX_NESTING + 1))
    with pytest.raises(ParseError, match="Nested too deeply"):
        parse("CREATE STREAM s (m " + "MAP<STRING, " * 600 + "INT" + ">" * 600 + ") WITH (kafka_topic='t');")


CHAINS = {
    "OR": lambda terms: " OR ".join(f"b{i}" for i in range(terms)),
    "AND": lambda terms: " AND ".join(f"b{i}" for i in range(terms)),
    "+ -": lambda terms: "a" + "".join(f" {'+-'[i % 2]} {i}" for i in range(1, terms)),
    "* / %": lambda terms: "a" + "".join(f" {'*/%'[i % 3]} {i}" for i in range(1, terms)),
    "||": lambda terms: " || ".join(f"'{i}'" for i in range(terms)),
}


@pytest.mark.parametrize("terms", [MAX_NESTING + 1, 1_000, 5_000])
@pytest.mark.parametrize("chain_of", CHAINS.values(), ids=CHAINS.keys())
def test_a_chain_of_one_operator_is_one_level_however_long(chain_of: Any, terms: int) -> None:
    expression = parse_expression(chain_of(terms))
    assert isinstance(expression, ast.Chain)
    assert len(expression.operands) == terms
    # within MAX_NESTING - 1 levels of nesting, the whole chain is one level more
    deep = "ABS(" * (MAX_NESTING - 1) + f"({chain_of(terms)})" + ")" * (MAX_NESTING - 1)
    parse(f"SELECT {deep} FROM s;")
    with pytest.raises(ParseError, match="Nested too deeply"):
        parse(f"SELECT ABS({deep}) FROM s;")


def test_parentheses_add_no_nesting() -> None:
    assert parse_expression("(" * 10_000 + "x" + ")" * 10_000) == col("X")


# --------------------------------------------------------------------------- types


@pytest.mark.parametrize(("text", "expected"), [
    ("BOOLEAN", types.BOOLEAN),
    ("int", types.INTEGER),
    ("INTEGER", types.INTEGER),
    ("BIGINT", types.BIGINT),
    ("DOUBLE", types.DOUBLE),
    ("DECIMAL(4, 2)", types.DecimalType(4, 2)),
    ("STRING", types.STRING),
    ("varchar", types.STRING),
    ("BYTES", types.BYTES),
    ("TIMESTAMP", types.TIMESTAMP),
    ("DATE", types.DATE),
    ("TIME", types.TIME),
    ("ARRAY<MAP<STRING, ARRAY<INT>>>",
     types.ArrayType(types.MapType(types.STRING, types.ArrayType(types.INTEGER)))),
    ("STRUCT<a INT, `Bb` STRUCT<c DOUBLE>>",
     types.StructType((("A", types.INTEGER), ("Bb", types.StructType((("C", types.DOUBLE),)))))),
    ("STRUCT<>", types.StructType(())),
    ("address", ast.NamedType("ADDRESS")),
])
def test_types(text: str, expected: types.SqlType) -> None:
    assert parse_type(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("DECIMAL", "DECIMAL needs a precision and a scale"),
    ("STRING(5)", "type STRING takes no parameters"),
    ("NULL", "mismatched input 'NULL'"),
    ("MAP<STRING>", "missing ',' at '>'"),
])
def test_bad_types(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_type(text)


# --------------------------------------------------------------------------- errors


def test_error_reports_line_column_found_and_expected() -> None:
    script = ("CREATE STREAM s (a INT) WITH (kafka_topic='t');\n"
              "\n"
              "SELECT a, b FRM s;")
    error = parse_error(script)
    assert (error.line, error.column) == (3, 17)  # FRM is taken as b's alias; 's' is then unexpected
    assert str(error).startswith("line 3:17: Syntax Error\nmismatched input 's' expecting one of: ")
    assert "FROM" in error.expected and "','" in error.expected


def test_typo_in_keyword_points_at_it() -> None:
    error = parse_error("SELECT *\nFROM s\nWHERE a = 1\nGROUP BYE a")
    assert (error.line, error.column) == (4, 7)
    assert "missing BY at 'BYE'" in str(error)


def test_single_missing_token_is_named_like_antlr() -> None:
    error = parse_error("CREATE TABLE o AS SELECT a FROM s GROUP BY f3, (f2, f1);")
    assert str(error) == "line 1:51: Syntax Error\nmissing ')' at ','"


def test_unexpected_end_of_input() -> None:
    error = parse_error("SELECT a FROM s WHERE  \n")
    assert (error.line, error.column) == (1, 22)
    assert "mismatched input '<EOF>'" in str(error)


@pytest.mark.parametrize(("text", "message", "column"), [
    ("SELECT # FROM s", "unexpected character '#'", 8),
    ("SELECT 'open FROM s", "unterminated quoted text starting with '", 8),
    ("UPSERT INTO s VALUES (1)", "mismatched input 'UPSERT'", 1),
    ("CREATE STREAM s (k STRING (KEY)) WITH (kafka_topic='t')", "missing integer at 'KEY'", 28),
])
def test_lexical_and_statement_errors(text: str, message: str, column: int) -> None:
    error = parse_error(text)
    assert message in str(error)
    assert error.column == column


def test_garbage_never_leaks_a_lark_exception() -> None:
    alphabet = [*"abc ,;()'`\"*+-=<>[]{}.:0123456789\n", "SELECT ", "FROM ", "CREATE ", "=> ", "-> "]
    generator = random.Random(7)
    for _ in range(300):
        text = "".join(generator.choice(alphabet) for _ in range(generator.randint(1, 25)))
        try:
            parse(text)
        except ParseError as error:
            assert error.line >= 1 and error.column >= 1


# --------------------------------------------------------------------------- conformance corpus and speed


def _corpus_statements() -> list[str]:
    path = CONFORMANCE_DIR / "public.jsonl"
    if not path.exists():
        pytest.skip(f"conformance cases not found at {path}")
    statements: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        case = json.loads(line, parse_float=decimal.Decimal)
        if case["expected_error"] is None:
            statements.extend(case["statements"])
    return statements


def test_every_statement_of_passing_conformance_cases_parses() -> None:
    failures = []
    statements = _corpus_statements()
    for statement in statements:
        try:
            parse(statement)
        except ParseError as error:
            failures.append(f"{statement}\n    {error}")
    assert not failures, f"{len(failures)} of {len(statements)} statements fail:\n" + "\n".join(failures[:20])


def test_typical_statement_parses_quickly() -> None:
    text = ("CREATE STREAM enriched AS SELECT o.id, UCASE(u.name) AS name, o.price * 1.5 AS total "
            "FROM orders o JOIN users u WITHIN 1 HOUR ON o.user_id = u.id WHERE o.amount > 100 EMIT CHANGES;")
    parse(text)
    runs = 50
    started = time.perf_counter()
    for _ in range(runs):
        parse(text)
    mean_ms = (time.perf_counter() - started) / runs * 1000
    assert mean_ms < 25, f"parsing a typical CSAS took {mean_ms:.2f} ms"


def test_alter_adds_columns() -> None:
    statement = one("ALTER STREAM s ADD COLUMN c INT, ADD d STRUCT<x STRING>")
    assert statement == ast.AlterSource(
        kind="STREAM", name="S",
        columns=(ast.ColumnDef("C", types.INTEGER), ast.ColumnDef("D", types.StructType((("X", types.STRING),)))),
    )
    assert isinstance(one("alter table t add `x` bigint"), ast.AlterSource)
