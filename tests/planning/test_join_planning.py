"""Planning joins: the JoinStep tree (kind, key expressions, column layout), key column naming, the clauses
above a join, and the joins ksqlDB refuses, with its messages."""

from __future__ import annotations

import pytest

from ksqlpy.driver import InMemoryDriver
from ksqlpy.errors import StatementError
from ksqlpy.planning.expressions import InputRef
from ksqlpy.planning.plan import AggregateStep, FilterStep, JoinStep, ProjectStep, QueryPlan, SourceStep
from ksqlpy.planning.planner import QueryPlanner
from ksqlpy.schema import Namespace
from ksqlpy.syntax import ast
from ksqlpy.syntax.parser import parse

SOURCES = """
CREATE STREAM s (id BIGINT KEY, name STRING, v BIGINT) WITH (kafka_topic='s', format='JSON');
CREATE STREAM s2 (id BIGINT KEY, f1 STRING, v STRING) WITH (kafka_topic='s2', format='JSON');
CREATE TABLE t (id BIGINT PRIMARY KEY, f1 STRING, f2 BIGINT) WITH (kafka_topic='t', format='JSON');
CREATE TABLE t2 (id BIGINT PRIMARY KEY, f3 STRING) WITH (kafka_topic='t2', format='JSON');
CREATE TABLE orders (oid BIGINT PRIMARY KEY, customer BIGINT, amount INT) WITH (kafka_topic='o', format='JSON');
CREATE TABLE wide (id BIGINT PRIMARY KEY, region STRING PRIMARY KEY, f STRING) WITH (kafka_topic='w', format='JSON');
CREATE STREAM k (id BIGINT KEY, name STRING) WITH (kafka_topic='k', key_format='KAFKA', value_format='KAFKA');
CREATE STREAM p4 (id BIGINT KEY, name STRING) WITH (kafka_topic='p4', format='JSON', partitions=4);
CREATE STREAM ws (id BIGINT KEY, name STRING) WITH (kafka_topic='ws', format='JSON', window_type='SESSION');
CREATE STREAM ws2 (id BIGINT KEY, f STRING) WITH (kafka_topic='ws2', format='JSON', window_type='SESSION');
CREATE STREAM wt (id BIGINT KEY, f STRING) WITH (kafka_topic='wt', format='JSON', window_type='TUMBLING',
  window_size='1 SECOND');
"""


def plan(query: str, sink: str | None = "OUTPUT") -> QueryPlan:
    """The plan of `query`, as the body of CREATE <kind> OUTPUT AS (or a transient query when `sink` is None)."""
    driver = InMemoryDriver()
    driver.execute(SOURCES)
    statement = parse(f"CREATE STREAM output AS {query};" if sink else f"{query} EMIT CHANGES;")[0]
    planner = QueryPlanner(driver.engine.catalog, driver.engine.registry, {})
    if isinstance(statement, ast.CreateAsSelect):
        return planner.plan(statement.query, statement.name, statement.properties, statement.kind)
    assert isinstance(statement, ast.SelectStatement)
    return planner.plan(statement.query)


def schema(query: str) -> str:
    return str(plan(query).output).replace("`", "")


def join_of(result: QueryPlan) -> JoinStep:
    return next(step for step in result.walk() if isinstance(step, JoinStep))


def error(query: str) -> str:
    with pytest.raises(StatementError) as raised:
        plan(query)
    return str(raised.value)


def test_stream_table_join_lays_out_the_key_then_both_sources_prefixed() -> None:
    result = plan("SELECT s.id, name, f1 FROM s JOIN t ON s.id = t.id")
    join = join_of(result)
    assert join.kind == "STREAM_TABLE" and join.join_type == "INNER" and not join.is_table
    assert isinstance(join.left, SourceStep) and isinstance(join.right, SourceStep)
    assert [c.name for c in join.columns] == [
        "S_ID", "S_ID", "S_NAME", "S_V", "S_ROWTIME", "S_ROWPARTITION", "S_ROWOFFSET",
        "T_ID", "T_F1", "T_F2", "T_ROWTIME", "T_ROWPARTITION", "T_ROWOFFSET",
    ]
    assert [c.namespace for c in join.columns].count(Namespace.KEY) == join.key_width == 1
    assert join.left_key == (InputRef(join.columns[0].type, 0, "ID"),)
    assert join.right_key == (InputRef(join.columns[0].type, 0, "ID"),)
    assert isinstance(result.root, ProjectStep) and result.root.input is join
    assert str(result.output).replace("`", "") == "S_ID BIGINT KEY, NAME STRING, F1 STRING"


def test_a_selected_column_keeps_its_name_unless_another_source_has_one_alike() -> None:
    assert schema("SELECT s.id, s.name, t.f1, s2.f1 FROM s JOIN s2 WITHIN 1 SECOND ON s.id = s2.id "
                  "JOIN t ON s.id = t.id") == "S_ID BIGINT KEY, NAME STRING, T_F1 STRING, S2_F1 STRING"


def test_the_key_is_named_after_the_viable_column_the_projection_selects() -> None:
    # ABS(s.id) is no column: the right side's column is the only viable name
    assert schema("SELECT * FROM s JOIN s2 WITHIN 1 SECOND ON ABS(s.id) = s2.id").startswith("S2_ID BIGINT KEY, S_ID")
    # both sides are columns: the one selected names the key
    assert schema("SELECT s.name, s2.* FROM s JOIN s2 WITHIN 1 SECOND ON s.id = s2.id").startswith("S2_ID BIGINT KEY")
    # no column on either side, or a FULL OUTER join: the synthetic ROWKEY, which `*` selects
    assert schema("SELECT * FROM s FULL JOIN s2 WITHIN 1 SECOND ON s.id = s2.id").startswith("ROWKEY BIGINT KEY, S_ID")
    assert schema("SELECT ROWKEY AS k, s.name FROM s JOIN s2 WITHIN 1 SECOND ON ABS(s.id) = ABS(s2.id)") == (
        "K BIGINT KEY, NAME STRING")


def test_star_selects_each_sources_columns_without_pseudo_columns() -> None:
    assert schema("SELECT * FROM s JOIN t ON s.id = t.id") == (
        "S_ID BIGINT KEY, S_NAME STRING, S_V BIGINT, T_ID BIGINT, T_F1 STRING, T_F2 BIGINT")
    assert schema("SELECT t.*, s.v FROM s JOIN t ON s.id = t.id") == "T_ID BIGINT KEY, T_F1 STRING, T_F2 BIGINT, V BIGINT"


def test_star_over_windowed_sources_selects_their_window_bounds_after_their_keys() -> None:
    assert schema("SELECT * FROM ws JOIN ws2 WITHIN 1 MINUTE ON ws.id = ws2.id") == (
        "WS_ID BIGINT KEY, WS_WINDOWSTART BIGINT, WS_WINDOWEND BIGINT, WS_NAME STRING, WS2_ID BIGINT, "
        "WS2_WINDOWSTART BIGINT, WS2_WINDOWEND BIGINT, WS2_F STRING")


def test_stream_stream_join_carries_its_window() -> None:
    join = join_of(plan("SELECT s.id, f1 FROM s LEFT JOIN s2 WITHIN (1 SECOND, 2 SECONDS) GRACE PERIOD 3 SECONDS "
                        "ON s.id = s2.id"))
    assert join.kind == "STREAM_STREAM" and join.join_type == "LEFT"
    assert join.within == ast.WithinSpec(1000, 2000, 3000)


def test_table_table_join_on_the_left_key_is_a_primary_key_join_else_a_foreign_key_join() -> None:
    primary = join_of(plan("SELECT ROWKEY AS id, f3 FROM t FULL JOIN t2 ON t.id = t2.id"))
    assert primary.kind == "TABLE_TABLE" and primary.is_table
    result = plan("SELECT oid, f1 FROM orders LEFT JOIN t ON customer = t.id")
    foreign = join_of(result)
    assert foreign.kind == "FOREIGN_KEY" and foreign.foreign_key
    assert [c.name for c in foreign.columns if c.namespace is Namespace.KEY] == ["ORDERS_OID"]
    assert isinstance(foreign.left_key[0], InputRef) and foreign.left_key[0].name == "CUSTOMER"
    assert str(result.output).replace("`", "") == "OID BIGINT KEY, F1 STRING"


def test_n_way_join_nests_the_inner_join_on_the_left_and_inherits_its_viable_keys() -> None:
    result = plan("SELECT t2.id, s.v, f1, f3 FROM s JOIN t ON s.id = t.id JOIN t2 ON s.id = t2.id")
    outer = join_of(result)
    assert isinstance(outer.left, JoinStep) and isinstance(outer.right, SourceStep)
    assert outer.kind == "STREAM_TABLE" and outer.left.kind == "STREAM_TABLE"
    # the outer join's key reads the inner join's S_ID column
    left_key = outer.left_key[0]
    assert isinstance(left_key, InputRef) and outer.left.columns[left_key.index].name == "S_ID"
    assert [c.name for c in outer.columns[: outer.key_width]] == ["T2_ID"]
    assert len(outer.columns) == 1 + len(outer.left.columns) + len(outer.right.columns)
    assert str(result.output).replace("`", "") == "T2_ID BIGINT KEY, V BIGINT, F1 STRING, F3 STRING"


def test_a_stream_joins_itself_under_two_aliases() -> None:
    join = join_of(plan("SELECT a.v, b.name AS other FROM s a JOIN s b WITHIN 1 SECOND ON a.v = b.v"))
    assert join.left.columns == join.right.columns and [c.name for c in join.columns[:2]] == ["A_V", "A_ID"]


def test_composite_join_key_from_equalities_joined_by_and() -> None:
    join = join_of(plan("SELECT s.id, s.name, s2.v FROM s JOIN s2 WITHIN 1 SECOND ON s.id = s2.id AND s.name = s2.f1"))
    assert join.key_width == 2 and len(join.left_key) == len(join.right_key) == 2


def test_where_and_group_by_read_the_joined_columns() -> None:
    result = plan("SELECT s.id, COUNT(*) AS n FROM s JOIN t ON s.id = t.id WHERE t.f2 > 1 GROUP BY s.id")
    steps = list(result.walk())
    aggregate = next(step for step in steps if isinstance(step, AggregateStep))
    assert not aggregate.rekeyed  # grouped by the join key
    filtered = next(step for step in steps if isinstance(step, FilterStep))
    assert isinstance(filtered.input, JoinStep)
    assert "Error in WHERE expression: Cannot compare S_V (BIGINT) to S2_V (STRING) with GREATER_THAN." in error(
        "SELECT s.id, s.v FROM s JOIN s2 WITHIN 1 SECOND ON s.id = s2.id WHERE s.v > s2.v")


def test_transient_join_query_need_not_select_its_key() -> None:
    assert str(plan("SELECT name, f1 FROM s JOIN t ON s.id = t.id", sink=None).output).replace("`", "") == (
        "NAME STRING, F1 STRING")


def test_explain_prints_both_inputs_below_the_join() -> None:
    lines = plan("SELECT s.id, f1 FROM s JOIN t ON s.id = t.id").describe().splitlines()
    assert [line.split("|")[0].strip() for line in lines] == [
        "> [ PROJECT ]", "> [ STREAM_TABLE_JOIN ]", "> [ STREAM_SOURCE ]", "> [ TABLE_SOURCE ]"]


@pytest.mark.parametrize(("query", "message"), [
    ("SELECT s.id FROM s JOIN s2 ON s.id = s2.id", "Stream-Stream joins must have a WITHIN clause specified."),
    ("SELECT s.id FROM s JOIN t WITHIN 1 SECOND ON s.id = t.id",
     "A window definition was provided for a Stream-Table join."),
    ("SELECT s.id FROM s FULL JOIN t ON s.id = t.id",
     "Invalid join type: full-outer join not supported for stream-table join. Got S [OUTER] JOIN T."),
    ("SELECT t.id FROM t JOIN s ON t.id = s.id",
     "Invalid join order: table-stream joins are not supported; only stream-table joins. Got T [INNER] JOIN S."),
    ("SELECT s.id FROM s JOIN t ON s.id = t.f2",
     "Invalid join condition: stream-table joins require to join on the table's primary key. Got S.ID = T.F2."),
    ("SELECT t.id FROM t JOIN t2 ON t2.f3 = t.f1", "Invalid join condition: table-table joins require to join on the "
     "primary key of the right input table. Got T2.F3 = T.F1."),
    ("SELECT s.id FROM s JOIN t ON s.name = t.id",
     "Invalid join condition: types don't match. Got S.NAME{STRING} = T.ID{BIGINT}."),
    ("SELECT s.id FROM s JOIN t ON s.id > t.id", "Only equality join criteria is supported."),
    ("SELECT s.id FROM s JOIN t ON s.id = 1", "Invalid comparison expression '1' in join '(S.ID = 1)'. Each side of "
     "the join comparision must contain references from exactly one source."),
    ("SELECT s.name FROM s JOIN t ON s.id = t.id",
     "The query used to build `OUTPUT` must include the join expressions S.ID or T.ID in its projection"),
    ("SELECT s.name FROM s JOIN s2 WITHIN 1 SECOND ON ABS(s.id) = ABS(s2.id)",
     "must include the join expression ROWKEY in its projection (eg, SELECT ROWKEY...).\nROWKEY was added as a "
     "synthetic key column"),
    ("SELECT f1 FROM orders JOIN t ON customer = t.id", "Primary key column missing in projection. For foreign-key "
     "table-table joins, the projection must include all primary key columns from the left input table (`ORDERS`). "
     "Missing column: `OID`."),
    ("SELECT s.id, s.id AS other FROM s JOIN t ON s.id = t.id",
     "The projection contains a key column (`S_ID`) more than once, aliased as: OTHER and S_ID."),
    ("SELECT k.id FROM k JOIN t ON k.id = t.id",
     "Source(s) K are using the 'KAFKA' value format. This format does not yet support JOIN."),
    ("SELECT ws.id FROM ws JOIN s WITHIN 1 SECOND ON ws.id = s.id",
     "Can not join windowed source to non-windowed source.\n`WS` is SESSION windowed\n`S` is not windowed"),
    ("SELECT ws.id FROM ws JOIN wt WITHIN 1 SECOND ON ws.id = wt.id",
     "Incompatible windowed sources.\n`WS` is SESSION windowed\n`WT` is TUMBLING windowed"),
    ("SELECT ws.id FROM ws JOIN ws2 WITHIN 1 SECOND ON ws.name = ws2.f",
     "Implicit repartitioning of windowed sources is not supported."),
    ("SELECT s.id FROM s JOIN p4 WITHIN 1 SECOND ON s.id = p4.id",
     "Can't join `S` with `P4` since the number of partitions don't match. `S` partitions = 1; `P4` partitions = 4."),
    ("SELECT s.id FROM s JOIN s2 WITHIN 1 SECOND ON id = id", "Column 'ID' is ambiguous. Could be S.ID or S2.ID."),
    ("SELECT s.id FROM s JOIN t ON s.id = nope.id", "'NOPE' is not a valid stream/table name or alias."),
    ("SELECT s.id FROM s JOIN t ON s.nope = t.id", "JOIN ON column 'S.NOPE' cannot be resolved."),
    ("SELECT wide.id FROM t JOIN wide ON t.id = wide.id", "table-table joins require to join on the primary key of "
     "the right input table. Got T.ID = WIDE.ID."),
    ("SELECT t.id FROM t JOIN t2 ON t.id = t2.id JOIN orders ON t.f2 = orders.oid",
     "foreign-key table-table joins are not supported as part of n-way joins. Got T.F2 = ORDERS.OID."),
    ("SELECT t.id FROM t JOIN t other ON t.id = other.id", "Can not join 'T' to 'T': self joins are not yet supported."),
    ("SELECT s.id FROM s JOIN t ON s.id = t.id JOIN t other ON s.id = other.id",
     "N-way joins do not support multiple occurrences of the same source. Source: 'T'"),
    ("SELECT s.id, s.ROWTIME AS ROWTIME FROM s JOIN t ON s.id = t.id",
     "Reserved column name in select: `ROWTIME`. Please remove or alias the column."),
])
def test_joins_ksqldb_refuses(query: str, message: str) -> None:
    assert message in error(query)
