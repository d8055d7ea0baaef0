"""Query planning through the engine: projections (struct `->*`, qualified stars), PARTITION BY keys and the
checks of a sink's WITH clause against the projection."""

from __future__ import annotations

import json

import pytest

from ksqlpy.driver import InMemoryDriver
from ksqlpy.errors import StatementError

INPUT = "CREATE STREAM input (id INT KEY, name STRING, v STRUCT<a INT, `b c` INT>) WITH (kafka_topic='in', format='JSON');"


def run(statement: str, *values: tuple[object, object, int]) -> list[tuple[object, object, int]]:
    driver = InMemoryDriver()
    driver.execute(INPUT + statement)
    for key, value, timestamp in values:
        driver.produce("in", json.dumps(key).encode(), None if value is None else json.dumps(value).encode(),
                       timestamp)
    driver.process()
    return [
        (json.loads(r.key) if r.key else None, json.loads(r.value) if r.value else None, r.timestamp)
        for r in driver.records("OUTPUT")
    ]


def statement_error(statement: str) -> str:
    driver = InMemoryDriver()
    driver.execute(INPUT)
    with pytest.raises(StatementError) as raised:
        driver.execute(statement)
    return str(raised.value)


def test_struct_star_expands_every_field_under_its_own_name() -> None:
    rows = run("CREATE STREAM output AS SELECT id, v->a AS first, v->* FROM input;", (1, {"v": {"a": 1, "b c": 2}}, 0))
    assert rows == [(1, {"FIRST": 1, "A": 1, "b c": 2}, 0)]


def test_struct_star_needs_a_struct() -> None:
    assert "Expected STRUCT type" in statement_error("CREATE STREAM output AS SELECT id, name->* FROM input;")


def test_qualified_star_checks_its_qualifier() -> None:
    assert run("CREATE STREAM output AS SELECT i.* FROM input i;", (1, {"name": "x"}, 0)) == [
        (1, {"NAME": "x", "V": None}, 0)
    ]
    assert statement_error("CREATE STREAM output AS SELECT id, unknown.* FROM input i;") == (
        "'UNKNOWN' is not a valid stream/table name or alias."
    )


def test_partition_by_resolves_against_the_source_not_the_projection() -> None:
    message = statement_error("CREATE STREAM output AS SELECT name AS new_name, id FROM input PARTITION BY new_name;")
    assert message == "PARTITION BY column 'NEW_NAME' cannot be resolved."


def test_partition_by_expression_must_be_projected_unless_select_star() -> None:
    message = statement_error("CREATE STREAM output AS SELECT name AS id, name FROM input PARTITION BY id;")
    assert message == (
        "The query used to build `OUTPUT` must include the partitioning expression INPUT.ID in its projection "
        "(eg, SELECT INPUT.ID...)."
    )
    assert run("CREATE STREAM output AS SELECT * FROM input PARTITION BY name;", (1, {"name": "x"}, 5)) == [
        ("x", {"V": None, "ID": 1}, 5)
    ]


def test_partition_by_key_projected_twice_is_rejected() -> None:
    message = statement_error("CREATE STREAM output AS SELECT name, name AS name2, id FROM input PARTITION BY name;")
    assert message == "The projection contains a key column (`NAME`) more than once, aliased as: NAME and NAME2."


def test_partition_by_matches_struct_fields_by_field_name() -> None:
    rows = run("CREATE STREAM output AS SELECT v->a AS a, v->`b c` AS b, id FROM input PARTITION BY v->`b c`;",
               (1, {"v": {"a": 1, "b c": 2}}, 0))
    assert rows == [(2, {"A": 1, "ID": 1}, 0)]


def test_partition_by_null_cannot_be_combined() -> None:
    message = statement_error("CREATE STREAM output AS SELECT id, name FROM input PARTITION BY NULL, name;")
    assert message == "Cannot PARTITION BY multiple columns including NULL"


def test_partition_by_rowtime_of_a_tombstone_is_null() -> None:
    driver = InMemoryDriver()
    driver.execute(
        "CREATE STREAM input (k STRING KEY, id BIGINT) WITH (kafka_topic='in', format='JSON');"
        "CREATE STREAM output AS SELECT * FROM input PARTITION BY id, ROWTIME;"
    )
    driver.produce("in", None, b'{"ID": 22}', 10)
    driver.produce("in", None, None, 12)
    driver.process()
    records = driver.records("OUTPUT")
    assert [(json.loads(r.key or b"null"), r.value, r.timestamp) for r in records] == [
        ({"ID": 22, "ROWTIME": 10}, b'{"K":null}', 10),
        ({"ID": None, "ROWTIME": None}, None, 12),
    ]


def test_sink_timestamp_column_is_checked_before_the_key_columns() -> None:
    message = statement_error("CREATE STREAM output WITH (timestamp='missing') AS SELECT name FROM input;")
    assert message == "The TIMESTAMP column set in the WITH clause does not exist in the schema: 'MISSING'"
    message = statement_error("CREATE STREAM output WITH (timestamp='name') AS SELECT id, name FROM input;")
    assert message == (
        "Timestamp column, `NAME`, should be LONG(INT64), TIMESTAMP, or a String with a timestamp_format specified."
    )


def test_source_timestamp_column_type_is_checked() -> None:
    driver = InMemoryDriver()
    with pytest.raises(StatementError, match="Timestamp column, `TS`, should be LONG"):
        driver.execute("CREATE STREAM s (ts INT) WITH (kafka_topic='t', format='JSON', timestamp='ts');")
    driver.execute("CREATE STREAM s (ts STRING) WITH (kafka_topic='t', format='JSON', timestamp='ts', "
                   "timestamp_format='yyyy');")


def test_wrap_single_value_needs_a_single_value_column() -> None:
    driver = InMemoryDriver()
    with pytest.raises(StatementError, match="'WRAP_SINGLE_VALUE' is only valid for single-field value schemas"):
        driver.execute("CREATE STREAM s (a INT, b INT) WITH (kafka_topic='t', format='JSON', wrap_single_value=true);")
    message = statement_error("CREATE STREAM output WITH (wrap_single_value=false) AS SELECT id, name, v FROM input;")
    assert message == "'WRAP_SINGLE_VALUE' is only valid for single-field value schemas"


def test_schema_name_configs_need_a_schema_registry_format() -> None:
    driver = InMemoryDriver()
    with pytest.raises(StatementError, match=r"JSON does not support the following configs: \[fullSchemaName\]"):
        driver.execute("CREATE STREAM s (a INT) WITH (kafka_topic='t', format='JSON', value_schema_full_name='x.Y');")
    with pytest.raises(StatementError, match=r"KAFKA does not support the following configs: \[fullSchemaName\]"):
        driver.execute("CREATE STREAM s (a INT) WITH (kafka_topic='t', value_format='JSON', key_schema_full_name='K');")


def test_key_kind_errors_name_the_column_position() -> None:
    driver = InMemoryDriver()
    with pytest.raises(StatementError) as raised:
        driver.execute("CREATE STREAM INPUT (ID INT PRIMARY KEY, NAME STRING) WITH (kafka_topic='i', format='JSON');")
    assert str(raised.value) == "Line: 1, Col: 22: Column `ID` is a 'PRIMARY KEY' column: please use 'KEY' for streams."
    with pytest.raises(StatementError, match="Line: 2, Col: 3: Column `ID` is a 'KEY' column"):
        driver.execute("CREATE TABLE t (\n  ID INT KEY) WITH (kafka_topic='i', format='JSON');")


def test_a_projected_null_needs_a_type() -> None:
    assert statement_error("CREATE STREAM output AS SELECT id, null AS nothing FROM input;") == (
        "Can't infer a type of null. Please explicitly cast it to a required type, e.g. CAST(null AS VARCHAR)."
    )
    assert run("CREATE STREAM output AS SELECT id, CAST(null AS STRING) AS nothing FROM input;", (1, {}, 0)) == [
        (1, {"NOTHING": None}, 0)
    ]
