"""Stream-table and table-table joins: the operators on their own, and hand-built join plans run through the
in-memory driver (records of several topics fed in write order)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from stateful_driving import driver, encoded, outputs

from ksqlpy.driver import InMemoryDriver
from ksqlpy.engine import PersistentQuery
from ksqlpy.errors import StatementError
from ksqlpy.execution.fk_join import ForeignKeyJoin
from ksqlpy.execution.join_tree import join_operator
from ksqlpy.execution.joins import LEFT, RIGHT, JoinOperator
from ksqlpy.execution.pipeline import Pipeline
from ksqlpy.execution.rows import KEY_BYTES, META_COLUMNS, ORIGIN, PARTITION, ROWTIME, TIMESTAMP, TOMBSTONE
from ksqlpy.execution.stream_joins import StreamStreamJoin
from ksqlpy.execution.table_joins import StreamTableJoin, TableTableJoin
from ksqlpy.planning.catalog import DataSource
from ksqlpy.planning.expressions import InputRef
from ksqlpy.planning.plan import JoinStep, ProjectStep, QueryPlan, SourceStep, Step
from ksqlpy.planning.planner import source_columns
from ksqlpy.schema import Column, Namespace
from ksqlpy.state.memory import InMemoryStoreProvider
from ksqlpy.state.operator_stores import OperatorStores
from ksqlpy.syntax.ast import WithinSpec

SOURCES = (
    "CREATE STREAM s (id INT KEY, name STRING, rid INT) WITH (kafka_topic='s', format='JSON');",
    "CREATE TABLE l (id INT PRIMARY KEY, name STRING) WITH (kafka_topic='l', format='JSON');",
    "CREATE TABLE r (id INT PRIMARY KEY, f1 STRING) WITH (kafka_topic='r', format='JSON');",
    "CREATE TABLE r2 (id INT PRIMARY KEY, f2 STRING) WITH (kafka_topic='r2', format='JSON');",
)


def joined(left: Step, right: Step, join_type: str, left_key: str, right_key: str,
           left_alias: str, right_alias: str, within: WithinSpec | None = None) -> JoinStep:
    """A join on one column per side, as the planner builds it: the key takes the left key column's name."""

    def ref(step: Step, name: str) -> InputRef:
        index = [c.name for c in step.columns].index(name)
        return InputRef(step.columns[index].type, index, name)

    left_ref = ref(left, left_key)
    prefixed = [Column(f"{left_alias}_{c.name}", c.type) for c in left.columns] + \
        [Column(f"{right_alias}_{c.name}", c.type) for c in right.columns]
    columns = (Column(f"{left_alias}_{left_key}", left_ref.type, Namespace.KEY), *prefixed)
    return JoinStep(left, right, join_type, (left_ref,), (ref(right, right_key),), columns, within)


def source(made: InMemoryDriver, name: str) -> SourceStep:
    found = made.engine.catalog.get(name)
    return SourceStep(found, source_columns(found))


def selecting(join: JoinStep, *names: str) -> ProjectStep:
    """The join's key column and the named columns."""
    picked = [join.columns[0], *(c for c in join.columns if c.name in names)]
    indexes = [join.columns.index(c) for c in picked]
    return ProjectStep(join, tuple(InputRef(c.type, i, c.name) for c, i in zip(picked, indexes, strict=True)),
                       tuple(picked))


def started(made: InMemoryDriver, root: Step, sink_statement: str, sink: str) -> Pipeline:
    """Runs a hand-built plan as a persistent query writing to the sink the statement creates."""
    made.execute(sink_statement)
    target: DataSource = made.engine.catalog.get(sink)
    plan = QueryPlan(root, target, query_id=f"CSAS_{sink}_0")
    pipeline = Pipeline(plan, made.processing_logger(f"CSAS_{sink}_0", target.topic), target, default_cache_bytes=0)
    made.start_query(PersistentQuery(f"CSAS_{sink}_0", plan, pipeline, target, ""))
    return pipeline


def produce(made: InMemoryDriver, records: list[tuple[str, Any, Any, int]]) -> None:
    """(topic, key, value, timestamp) records, written in this order before the queries run once."""
    for topic, key, value, timestamp in records:
        made.produce(topic, encoded(key), encoded(value), timestamp)
    made.process()


def stream_table(join_type: str) -> InMemoryDriver:
    made = driver(*SOURCES)
    join = joined(source(made, "S"), source(made, "R"), join_type, "RID", "ID", "S", "R")
    started(made, selecting(join, "S_NAME", "R_F1"),
            "CREATE STREAM o (S_RID INT KEY, S_NAME STRING, R_F1 STRING) WITH (kafka_topic='o', format='JSON');", "O")
    produce(made, [
        ("s", 1, {"NAME": "before", "RID": 7}, 1),  # the table has no row 7 yet
        ("r", 7, {"F1": "seven"}, 2),
        ("s", 2, {"NAME": "a", "RID": 7}, 3),
        ("s", 3, {"NAME": "b", "RID": 7}, 1),  # older than the table row: still joins, at its own time
        ("r", 7, None, 5),  # deletes, emits nothing
        ("s", 4, {"NAME": "after", "RID": 7}, 6),
        ("s", 5, {"NAME": "no key", "RID": None}, 7),
        ("s", 6, None, 8),  # no value: skipped
    ])
    return made


def test_an_inner_stream_table_join_emits_a_stream_record_that_finds_its_key_in_the_table_at_its_time() -> None:
    assert outputs(stream_table("INNER"), "o") == [
        (7, {"S_NAME": "a", "R_F1": "seven"}, 3),
        (7, {"S_NAME": "b", "R_F1": "seven"}, 1),
    ]


def test_a_left_stream_table_join_emits_every_stream_record_with_a_key() -> None:
    assert outputs(stream_table("LEFT"), "o") == [
        (7, {"S_NAME": "before", "R_F1": None}, 1),
        (7, {"S_NAME": "a", "R_F1": "seven"}, 3),
        (7, {"S_NAME": "b", "R_F1": "seven"}, 1),
        (7, {"S_NAME": "after", "R_F1": None}, 6),
    ]


def table_table(join_type: str, records: list[tuple[str, Any, Any, int]]) -> list[tuple[Any, Any, int]]:
    made = driver(*SOURCES)
    join = joined(source(made, "L"), source(made, "R"), join_type, "ID", "ID", "L", "R")
    started(made, selecting(join, "L_NAME", "R_F1"),
            "CREATE TABLE o (L_ID INT PRIMARY KEY, L_NAME STRING, R_F1 STRING) WITH (kafka_topic='o', format='JSON');",
            "O")
    produce(made, records)
    return outputs(made, "o")


CHANGES = [
    ("l", 1, {"NAME": "one"}, 10),       # left alone
    ("r", 1, {"F1": "uno"}, 5),          # both: at the later time
    ("r", 2, {"F1": "dos"}, 20),         # right alone
    ("l", 1, None, 30),                  # left deleted while the right has the key
    ("r", 2, None, 40),                  # right deleted, no left
    ("l", 3, None, 50),                  # deleting a key never seen
]


@pytest.mark.parametrize(("join_type", "expected"), [
    ("INNER", [(1, {"L_NAME": "one", "R_F1": "uno"}, 10), (1, None, 30)]),
    ("LEFT", [
        (1, {"L_NAME": "one", "R_F1": None}, 10),
        (1, {"L_NAME": "one", "R_F1": "uno"}, 10),
        (1, None, 30),
    ]),
    ("RIGHT", [
        (1, {"L_NAME": "one", "R_F1": "uno"}, 10),
        (2, {"L_NAME": None, "R_F1": "dos"}, 20),
        (1, {"L_NAME": None, "R_F1": "uno"}, 30),
        (2, None, 40),
    ]),
    ("FULL", [
        (1, {"L_NAME": "one", "R_F1": None}, 10),
        (1, {"L_NAME": "one", "R_F1": "uno"}, 10),
        (2, {"L_NAME": None, "R_F1": "dos"}, 20),
        (1, {"L_NAME": None, "R_F1": "uno"}, 30),
        (2, None, 40),
    ]),
])
def test_a_table_table_join_emits_on_changes_of_either_side_as_ksqldb_does(
        join_type: str, expected: list[tuple[Any, Any, int]]) -> None:
    assert table_table(join_type, CHANGES) == expected


def test_joined_tables_feed_a_third_table_joined_on_the_same_key() -> None:
    made = driver(*SOURCES)
    inner = joined(source(made, "L"), source(made, "R"), "INNER", "ID", "ID", "L", "R")
    outer = joined(inner, source(made, "R2"), "LEFT", "L_ID", "ID", "J", "R2")
    started(made, selecting(outer, "J_L_NAME", "J_R_F1", "R2_F2"),
            "CREATE TABLE o (J_L_ID INT PRIMARY KEY, J_L_NAME STRING, J_R_F1 STRING, R2_F2 STRING) "
            "WITH (kafka_topic='o', format='JSON');", "O")
    produce(made, [("r2", 1, {"F2": "ein"}, 1), ("l", 1, {"NAME": "one"}, 2), ("r", 1, {"F1": "uno"}, 3),
                   ("r2", 1, {"F2": "eins"}, 4), ("r", 1, None, 5)])
    assert outputs(made, "o") == [
        (1, {"J_L_NAME": "one", "J_R_F1": "uno", "R2_F2": "ein"}, 3),
        (1, {"J_L_NAME": "one", "J_R_F1": "uno", "R2_F2": "eins"}, 4),
        (1, None, 5),
    ]


def test_a_join_keeps_its_state_in_the_pipelines_stores_and_a_rollback_undoes_it() -> None:
    made = driver(*SOURCES)
    join = joined(source(made, "S"), source(made, "R"), "INNER", "RID", "ID", "S", "R")
    pipeline = started(made, selecting(join, "S_NAME", "R_F1"),
                       "CREATE STREAM o (S_RID INT KEY, S_NAME STRING, R_F1 STRING) "
                       "WITH (kafka_topic='o', format='JSON');", "O")
    assert [stores.operator for stores in pipeline.state] == ["KafkaTopic_Right-Reduce"]
    assert not pipeline.repartitions
    pipeline.commits_state = False
    produce(made, [("r", 7, {"F1": "seven"}, 1)])
    assert [changes.store for changes in pipeline.pending_state()] == ["KafkaTopic_Right-Reduce"]
    pipeline.rollback_state()
    produce(made, [("s", 1, {"NAME": "a", "RID": 7}, 2)])
    assert outputs(made, "o") == []


def operator(kind: str, join_type: str, foreign_key: bool = False) -> JoinOperator:
    made = driver(*SOURCES)
    left, right = {"STREAM_TABLE": ("S", "R"), "TABLE_TABLE": ("L", "R"), "STREAM_STREAM": ("S", "S"),
                   "TABLE_STREAM": ("L", "S")}[kind]
    within = WithinSpec(1000, 1000, None) if kind == "STREAM_STREAM" else None
    step = replace(joined(source(made, left), source(made, right), join_type, "ID", "ID", "A", "B", within),
                   foreign_key=foreign_key)
    provider = InMemoryStoreProvider()
    return join_operator(step, lambda name: OperatorStores(provider, "q", name), lambda *_: None)


def rows(width: int, keys: list[Any], times: list[int], tombstones: list[bool]) -> tuple[list[list[Any]], list[list[Any]]]:
    """A side's columns (the key, then `width - 1` values) and metadata for rows of one partition."""
    size = len(keys)
    columns = [list(keys), *([[f"v{k}" for k in keys]] * (width - 1))]
    meta: list[list[Any]] = [[None] * size for _ in range(META_COLUMNS)]
    meta[ROWTIME] = meta[TIMESTAMP] = list(times)
    meta[ORIGIN] = list(range(size))
    meta[TOMBSTONE] = list(tombstones)
    meta[PARTITION] = [0] * size
    meta[KEY_BYTES] = [str(k).encode() for k in keys]
    return columns, meta


def test_the_operator_factory_picks_by_kind_and_refuses_what_it_has_no_operator_for() -> None:
    assert isinstance(operator("STREAM_TABLE", "LEFT"), StreamTableJoin)
    assert isinstance(operator("TABLE_TABLE", "FULL"), TableTableJoin)
    assert isinstance(operator("STREAM_STREAM", "FULL"), StreamStreamJoin)
    assert isinstance(operator("TABLE_TABLE", "LEFT", foreign_key=True), ForeignKeyJoin)
    with pytest.raises(StatementError, match="table-stream joins are not supported"):
        operator("TABLE_STREAM", "INNER")


def test_a_stream_batch_repeating_a_key_joins_each_record_and_its_output_rows_carry_the_join_metadata() -> None:
    join = operator("STREAM_TABLE", "INNER")
    table_columns, table_meta = rows(join.right_width, [5], [1], [False])
    assert join.process(RIGHT, [5], table_columns, table_meta)[0] == []
    stream_columns, stream_meta = rows(join.left_width, [5, 6, 5], [7, 8, 9], [False] * 3)
    output = join.process(LEFT, [5, 6, 5], stream_columns, stream_meta)
    meta = output[join.width:]
    assert output[0] == [5, 5]
    assert meta[TIMESTAMP] == meta[ROWTIME] == [7, 9]
    assert meta[ORIGIN] == [0, 2]
    assert meta[KEY_BYTES][0] == meta[KEY_BYTES][1] is not None  # the joined rows' table entry
    assert output[1 + join.left_width] == [5, 5]  # the right side's key column, from the table row


def test_a_stream_batch_repeating_keys_across_partitions_meets_each_partitions_own_table_row() -> None:
    join = operator("STREAM_TABLE", "LEFT")
    for partition, value in ((0, "zero"), (1, "one")):
        table_columns, table_meta = rows(join.right_width, [5], [1], [False])
        table_columns[1] = [value]
        table_meta[PARTITION] = [partition]
        join.process(RIGHT, [5], table_columns, table_meta)
    keys = [5, 5, 6, 5, 5]
    stream_columns, stream_meta = rows(join.left_width, keys, [2] * len(keys), [False] * len(keys))
    stream_meta[PARTITION] = [0, 1, 1, 0, 1]
    output = join.process(LEFT, keys, stream_columns, stream_meta)
    assert output[2 + join.left_width] == ["zero", "one", None, "zero", "one"]
    meta = output[join.width:]
    assert meta[PARTITION] == [0, 1, 1, 0, 1]
    assert meta[ORIGIN] == [0, 1, 2, 3, 4]
    assert meta[TOMBSTONE] == [False] * len(keys)
    assert meta[KEY_BYTES][0] == meta[KEY_BYTES][1] == meta[KEY_BYTES][4] != meta[KEY_BYTES][2]


def test_a_table_batch_changing_one_key_twice_sees_its_own_first_change() -> None:
    join = operator("TABLE_TABLE", "LEFT")
    columns, meta = rows(join.left_width, [5, 5, 5], [1, 2, 3], [False, True, True])
    output = join.process(LEFT, [5, 5, 5], columns, meta)
    # the second delete finds nothing left to delete
    assert output[join.width + TOMBSTONE] == [False, True]


def test_a_self_join_takes_each_record_through_both_sides_before_the_next() -> None:
    made = driver("CREATE STREAM s (id INT KEY, v STRING) WITH (kafka_topic='s', format='JSON');",
                  "CREATE STREAM o AS SELECT a.id, a.v AS av, b.v AS bv FROM s a LEFT JOIN s b WITHIN 1 MINUTE "
                  "ON a.id = b.id;")
    produce(made, [("s", 1, {"V": "x"}, 0), ("s", 1, {"V": "y"}, 1)])
    assert outputs(made, "O") == [
        (1, {"AV": "x", "BV": None}, 0),  # no right record yet: the eager LEFT row
        (1, {"AV": "x", "BV": "x"}, 0),
        (1, {"AV": "y", "BV": "x"}, 1),  # the second record's left side meets the first's right side
        (1, {"AV": "x", "BV": "y"}, 1),
        (1, {"AV": "y", "BV": "y"}, 1),
    ]


def test_a_join_not_on_the_keys_meets_rows_from_different_partitions_in_the_partition_of_their_join_key() -> None:
    made = InMemoryDriver()
    made.execute(
        "CREATE STREAM orders (id STRING KEY, customer STRING) WITH (kafka_topic='orders', value_format='JSON', "
        "partitions=4);"
        "CREATE TABLE customers (id STRING PRIMARY KEY, name STRING) WITH (kafka_topic='customers', "
        "value_format='JSON', partitions=4);"
        "CREATE STREAM named AS SELECT o.customer AS customer, o.id AS order_id, c.name FROM orders o "
        "JOIN customers c ON o.customer = c.id;")
    # the customer row is on partition 3, the order that names it on partition 0 (keyed by the order id)
    made.produce("customers", b"c1", b'{"NAME": "Ann"}', 1, partition=3)
    made.produce("orders", b"o1", b'{"CUSTOMER": "c1"}', 2, partition=0)
    made.process()
    assert [(record.key, record.value) for record in made.records("NAMED")] == [
        (b"c1", b'{"ORDER_ID":"o1","NAME":"Ann"}')]


def test_each_side_of_a_join_reads_its_timestamp_column_in_its_own_format() -> None:
    made = InMemoryDriver()
    made.execute(
        "CREATE STREAM clicks (user STRING KEY, button STRING) WITH (kafka_topic='clicks', value_format='JSON');"
        "CREATE STREAM views (user STRING KEY, page STRING, seen STRING) WITH (kafka_topic='views', "
        "value_format='JSON', timestamp='seen', timestamp_format='yyyy-MM-dd HH:mm:ss');"
        "CREATE STREAM clicked AS SELECT c.user AS user, c.button, v.page FROM clicks c "
        "JOIN views v WITHIN 5 SECONDS ON c.user = v.user;")
    made.produce("views", b"u1", b'{"PAGE": "home", "SEEN": "1970-01-01 00:00:10"}', 0)
    made.produce("clicks", b"u1", b'{"BUTTON": "buy"}', 12_000)
    made.process()
    assert made.processing_log == []
    assert [(record.value, record.timestamp) for record in made.records("CLICKED")] == [
        (b'{"BUTTON":"buy","PAGE":"home"}', 12_000)]
