"""The plan of a query is a tree of typed steps, after ksqlDB's execution steps, and EXPLAIN prints it."""

from __future__ import annotations

from ksqlpy.driver import InMemoryDriver
from ksqlpy.planning.plan import AggregateStep, FilterStep, GroupByStep, ProjectStep, SourceStep, SuppressStep
from ksqlpy.syntax import ast
from ksqlpy.syntax.parser import parse

STREAM = "CREATE STREAM s (id INT KEY, v INT, g STRING) WITH (kafka_topic='s', value_format='JSON');"
WINDOWED_FINAL = (
    "SELECT g, COUNT(*) AS c FROM s WINDOW TUMBLING (SIZE 1 MINUTE) WHERE v > 0 GROUP BY g HAVING COUNT(*) > 1 "
    "EMIT FINAL;"
)


def _plan(driver: InMemoryDriver, text: str) -> object:
    (statement,) = parse(text)
    assert isinstance(statement, ast.SelectStatement)
    return driver.engine.plan_transient(statement)


def test_a_windowed_aggregation_plans_as_ksqldb_steps_from_source_to_projection() -> None:
    driver = InMemoryDriver()
    driver.execute(STREAM)
    plan = _plan(driver, WINDOWED_FINAL)
    kinds = [type(step) for step in plan.steps]  # type: ignore[attr-defined]
    assert kinds == [FilterStep, ProjectStep, GroupByStep, AggregateStep, SuppressStep, FilterStep, ProjectStep]
    assert isinstance(plan.source, SourceStep)  # type: ignore[attr-defined]
    group_by = plan.steps[2]  # type: ignore[attr-defined]
    assert group_by.rekeyed and group_by.key_width == 1
    assert plan.steps[-2].is_table  # type: ignore[attr-defined]  # HAVING filters a table
    assert plan.steps[0].is_table is False  # type: ignore[attr-defined]
    assert plan.root.window is not None and plan.root.window.kind == "TUMBLING"  # type: ignore[attr-defined]


def test_grouping_by_the_source_key_does_not_rekey() -> None:
    driver = InMemoryDriver()
    driver.execute(STREAM)
    plan = _plan(driver, "SELECT id, SUM(v) AS total FROM s GROUP BY id EMIT CHANGES;")
    (group_by,) = [step for step in plan.steps if isinstance(step, GroupByStep)]  # type: ignore[attr-defined]
    assert not group_by.rekeyed and group_by.name == "GROUP_BY_KEY"


def test_explain_prints_each_step_above_its_input() -> None:
    driver = InMemoryDriver()
    driver.execute(STREAM)
    (result,) = driver.execute("EXPLAIN CREATE TABLE t AS " + WINDOWED_FINAL)
    names = [line.strip().split("]")[0].lstrip("> [").strip() for line in result.message.splitlines()]
    assert names == ["TABLE_SELECT", "TABLE_FILTER", "SUPPRESS", "TIME_WINDOWED_AGGREGATE", "GROUP_BY", "PROJECT",
                     "FILTER", "STREAM_SOURCE"]
    depths = [len(line) - len(line.lstrip("\t")) for line in result.message.splitlines()]
    assert depths == list(range(len(names)))
    assert "Aggregates: COUNT(ROWTIME)" in result.message


def test_explain_of_a_running_query_names_the_repartition_topic_of_a_rekeying_group_by() -> None:
    driver = InMemoryDriver()
    driver.execute(STREAM)
    driver.execute("CREATE TABLE by_g AS SELECT g, COUNT(*) AS n FROM s GROUP BY g;")
    driver.execute("CREATE TABLE by_id AS SELECT id, COUNT(*) AS n FROM s GROUP BY id;")
    (by_g,) = [line for line in driver.execute("EXPLAIN CTAS_BY_G_0;")[0].message.splitlines() if "GROUP_BY" in line]
    assert by_g.endswith("| Repartition topic: CTAS_BY_G_0-Aggregate-GroupBy-repartition")
    assert "Repartition" not in driver.execute("EXPLAIN CTAS_BY_ID_1;")[0].message
