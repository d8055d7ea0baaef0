"""INSERT VALUES' coercion of struct values and its refusals, persistent queries' refusal of LIMIT, and
transient queries' selection of pseudo columns and their column order, through the in-memory driver."""

from __future__ import annotations

import json

import pytest

from ksqlpy.driver import InMemoryDriver
from ksqlpy.errors import StatementError
from ksqlpy.execution.pipeline import RecordBatch
from ksqlpy.runtime.push import push_rows
from ksqlpy.syntax import ast
from ksqlpy.syntax.parser import parse

NESTED = ("CREATE STREAM nested (k STRING KEY, val STRUCT<foo BIGINT, bar ARRAY<BIGINT>, baz DOUBLE>) "
          "WITH (kafka_topic='nested', value_format='JSON');")
PLAIN = "CREATE STREAM plain (k STRING KEY, id INT) WITH (kafka_topic='plain', value_format='JSON');"


def written(driver: InMemoryDriver, topic: str) -> list[object]:
    return [json.loads(record.value) for record in driver.records(topic) if record.value]


def test_a_struct_value_is_widened_field_by_field_and_missing_fields_are_null() -> None:
    driver = InMemoryDriver()
    driver.execute(NESTED)
    driver.execute("INSERT INTO nested (val) VALUES (STRUCT(FOO := 2, BAR := ARRAY[2], BAZ := 2));")
    driver.execute("INSERT INTO nested (val) VALUES (STRUCT());")
    assert written(driver, "nested") == [{"VAL": {"FOO": 2, "BAR": [2], "BAZ": 2.0}},
                                         {"VAL": {"FOO": None, "BAR": None, "BAZ": None}}]


def test_a_struct_field_the_column_lacks_is_refused() -> None:
    driver = InMemoryDriver()
    driver.execute(NESTED)
    with pytest.raises(StatementError, match="Expected type STRUCT<`FOO` BIGINT"):
        driver.execute("INSERT INTO nested (val) VALUES (STRUCT(QUX := 1));")


@pytest.mark.parametrize(("statement", "message"), [
    ("INSERT INTO plain (k, id) VALUES ('10');",
     "Failed to prepare statement: Expected number columns and values to match: 2, 1"),
    ("INSERT INTO plain (k, id, ROWPARTITION) VALUES ('a', 1, 5);", "Inserting into column `ROWPARTITION` is not allowed."),
    ("INSERT INTO plain (k, id, ROWOFFSET) VALUES ('a', 1, 5);", "Inserting into column `ROWOFFSET` is not allowed."),
    ("CREATE STREAM copy AS SELECT * FROM plain LIMIT 5;", "CREATE STREAM AS SELECT statements don't support LIMIT "
                                                         "clause."),
    ("CREATE TABLE counts AS SELECT k, COUNT(*) FROM plain GROUP BY k LIMIT 5;",
     "CREATE TABLE AS SELECT statements don't support LIMIT clause."),
    ("CREATE TABLE counts AS SELECT k, COUNT(*) FROM plain WINDOW TUMBLING (SIZE 1 SECOND) GROUP BY k "
     "HAVING MIN(WINDOWSTART) > 1;",
     "Window bounds column WINDOWSTART can only be used in the SELECT clause of windowed aggregations"),
])
def test_statements_refused_with_ksqldbs_messages(statement: str, message: str) -> None:
    driver = InMemoryDriver()
    driver.execute(PLAIN)
    with pytest.raises(StatementError) as refused:
        driver.execute(statement)
    assert str(refused.value) == message


def test_a_push_query_may_select_pseudo_columns_a_persistent_query_may_not() -> None:
    driver = InMemoryDriver()
    driver.execute(PLAIN)
    (push,) = parse("SELECT ROWTIME, ROWPARTITION, id FROM plain EMIT CHANGES;")
    assert isinstance(push, ast.SelectStatement)
    assert [c.name for c in driver.engine.plan_transient(push).output] == ["ROWTIME", "ROWPARTITION", "ID"]
    with pytest.raises(StatementError, match="Reserved column name in select: `ROWTIME`"):
        driver.execute("CREATE STREAM copy AS SELECT k, ROWTIME FROM plain;")


def test_a_transient_query_answers_its_columns_in_the_order_selected_keys_marked() -> None:
    driver = InMemoryDriver()
    driver.execute(PLAIN)
    (push,) = parse("SELECT id, ROWTIME, k FROM plain EMIT CHANGES;")
    assert isinstance(push, ast.SelectStatement)
    output = driver.engine.plan_transient(push).output
    assert [(c.name, c.namespace.value) for c in output] == [("ID", "VALUE"), ("ROWTIME", "VALUE"), ("K", "KEY")]
    (grouped,) = parse("SELECT COUNT(*) AS n, k FROM plain GROUP BY k EMIT CHANGES;")
    assert isinstance(grouped, ast.SelectStatement)
    output = driver.engine.plan_transient(grouped).output
    assert [(c.name, c.namespace.value) for c in output] == [("N", "VALUE"), ("K", "KEY")]
    driver.execute("CREATE STREAM copy AS SELECT id, k FROM plain;")
    driver.execute("CREATE TABLE counts AS SELECT COUNT(*) AS n, k FROM plain GROUP BY k;")
    assert [c.name for c in driver.engine.catalog.get("COPY").schema] == ["K", "ID"]
    assert [c.name for c in driver.engine.catalog.get("COUNTS").schema] == ["K", "N"]


def test_a_push_query_aggregating_without_group_by_aggregates_its_whole_input() -> None:
    driver = InMemoryDriver()
    driver.execute(PLAIN)
    driver.execute("INSERT INTO plain (k, id) VALUES ('a', 2);")
    driver.execute("INSERT INTO plain (k, id) VALUES ('b', 5);")
    (push,) = parse("SELECT COUNT(*) AS n, SUM(id) AS total FROM plain EMIT CHANGES;")
    assert isinstance(push, ast.SelectStatement)
    plan = driver.engine.plan_transient(push)
    assert [c.name for c in plan.output] == ["N", "TOTAL"]
    pipeline = driver.engine.transient_pipeline(plan, "aggregate_test")
    rows = [push_rows(plan)(*pipeline.rows(RecordBatch.of([record])))[0] for record in driver.records("plain")]
    assert rows == [[1, 2], [2, 7]]
    with pytest.raises(StatementError, match="does not support aggregate function"):
        driver.execute("CREATE TABLE counted AS SELECT COUNT(*) FROM plain;")
