"""DDL and INSERT VALUES rules enforced by the engine: ALTER, read-only source streams, name hints."""

from __future__ import annotations

import json

import pytest

from ksqlpy.driver import InMemoryDriver
from ksqlpy.errors import StatementError

INPUT = "CREATE STREAM input (k STRING KEY, a INT) WITH (kafka_topic='in', format='JSON');"


def error_of(driver: InMemoryDriver, statement: str) -> str:
    with pytest.raises(StatementError) as raised:
        driver.execute(statement)
    return str(raised.value)


def test_alter_adds_value_columns_that_later_queries_see() -> None:
    driver = InMemoryDriver()
    driver.execute(INPUT + "ALTER STREAM input ADD COLUMN b STRING, ADD c BIGINT;")
    driver.execute("CREATE STREAM output AS SELECT k, a, b, c FROM input;")
    driver.produce("in", b'"x"', b'{"A": 1, "B": "two", "C": 3}', 0)
    driver.process()
    assert [json.loads(r.value or b"") for r in driver.records("OUTPUT")] == [{"A": 1, "B": "two", "C": 3}]


def test_alter_rejects_existing_columns_unknown_sources_and_wrong_kinds() -> None:
    driver = InMemoryDriver()
    driver.execute(INPUT)
    assert "A column with the same name already exists" in error_of(driver, "ALTER STREAM input ADD COLUMN a INT;")
    assert error_of(driver, "ALTER STREAM nope ADD COLUMN b INT;") == "Source NOPE does not exist."
    assert "statement was ALTER TABLE" in error_of(driver, "ALTER TABLE input ADD COLUMN b INT;")


def test_alter_is_not_allowed_on_source_streams_or_query_sinks() -> None:
    driver = InMemoryDriver()
    driver.execute("CREATE SOURCE STREAM input (k STRING KEY, a INT) WITH (kafka_topic='in', format='JSON');")
    assert error_of(driver, "ALTER STREAM input ADD COLUMN b INT;") == (
        "Cannot alter stream 'INPUT': ALTER operations are not supported on source streams."
    )
    driver = InMemoryDriver()
    driver.execute(INPUT + "CREATE STREAM output AS SELECT * FROM input;")
    assert error_of(driver, "ALTER STREAM output ADD COLUMN b INT;") == (
        "ALTER command is not supported for CREATE ... AS statements."
    )


def test_topic_of_a_source_stream_cannot_be_deleted() -> None:
    driver = InMemoryDriver()
    driver.execute("CREATE SOURCE STREAM input (k STRING KEY, a INT) WITH (kafka_topic='in', format='JSON');")
    assert error_of(driver, "DROP STREAM input DELETE TOPIC;") == "Cannot delete topic for read-only source: INPUT"
    driver.execute("DROP STREAM input;")


def test_insert_into_unknown_source_hints_at_a_name_that_differs_in_case() -> None:
    driver = InMemoryDriver()
    driver.execute("CREATE STREAM \"input\" (id INT KEY, val STRING) WITH (kafka_topic='t', value_format='JSON');")
    assert error_of(driver, "INSERT INTO input (id, val) VALUES (1, 'hello');") == (
        "Cannot insert values into an unknown stream/table: `INPUT`\nDid you mean \"input\"? Hint: wrap the "
        "source name in double quotes to make it case-sensitive."
    )
    assert error_of(driver, "INSERT INTO other (id) VALUES (1);") == (
        "Cannot insert values into an unknown stream/table: `OTHER`"
    )


@pytest.mark.parametrize(("properties", "message"), [
    ("PARTITIONS='x'", "Invalid value for PARTITIONS: x: a topic has 1 to 2147483647 partitions"),
    ("PARTITIONS=NULL", "Invalid value for PARTITIONS: None"),
    ("PARTITIONS=0", "Invalid value for PARTITIONS: 0"),
    ("PARTITIONS=-3", "Invalid value for PARTITIONS: -3"),
    ("PARTITIONS=1.5", "Invalid value for PARTITIONS: 1.5"),
    ("PARTITIONS=99999999999", "Invalid value for PARTITIONS: 99999999999"),
    ("KAFKA_TOPIC=NULL", "Invalid topic name 'None'"),
    ("KAFKA_TOPIC=''", "Invalid topic name ''"),
    ("KAFKA_TOPIC='a b'", "Invalid topic name 'a b': a Kafka topic name has 1 to 249 characters"),
    ("KAFKA_TOPIC='..'", "Invalid topic name '..'"),
    (f"KAFKA_TOPIC='{'t' * 250}'", "Invalid topic name 'tttt"),
])
def test_topic_names_and_partition_counts_kafka_would_refuse_are_statement_errors(properties: str, message: str
                                                                                   ) -> None:
    for statement in (f"CREATE STREAM s (a INT) WITH (value_format='JSON', kafka_topic='t', {properties});",
                      f"CREATE STREAM s WITH ({properties}) AS SELECT * FROM input;"):
        driver = InMemoryDriver()
        driver.execute(INPUT)
        assert message in error_of(driver, statement)
        assert "S" not in driver.engine.catalog.sources


def test_a_quoted_partition_count_and_a_topic_name_at_the_limit_are_fine() -> None:
    driver = InMemoryDriver()
    driver.execute(f"CREATE STREAM s (a INT) WITH (value_format='JSON', kafka_topic='{'t' * 249}', partitions='3');")
    assert driver.list_topics()["t" * 249] == 3


def test_a_query_sink_named_what_kafka_cannot_name_a_topic_is_a_statement_error() -> None:
    driver = InMemoryDriver()
    driver.execute(INPUT)
    assert "Invalid topic name 'my sink'" in error_of(driver, 'CREATE STREAM "my sink" AS SELECT * FROM input;')


@pytest.mark.parametrize(("timestamp_format", "message"), [
    ("'bogus'", "Invalid TIMESTAMP_FORMAT 'bogus': Unknown pattern letter: b"),
    ("'yyyy-MM-dd''T'", "Invalid TIMESTAMP_FORMAT \"yyyy-MM-dd'T\": Pattern ends with an incomplete string literal"),
    ("''", "Invalid TIMESTAMP_FORMAT '': expected a date-time pattern"),
    ("1", "Invalid TIMESTAMP_FORMAT 1: expected a date-time pattern"),
])
def test_a_bad_timestamp_format_is_the_statements_error_not_every_records(timestamp_format: str, message: str
                                                                           ) -> None:
    driver = InMemoryDriver()
    driver.execute("CREATE STREAM texts (k STRING KEY, t STRING) WITH (kafka_topic='texts', format='JSON');")
    for statement in (
        f"CREATE STREAM s (t STRING) WITH (kafka_topic='s', format='JSON', timestamp='t', "
        f"timestamp_format={timestamp_format});",
        f"CREATE STREAM s WITH (timestamp='t', timestamp_format={timestamp_format}) AS SELECT * FROM texts;",
    ):
        assert message in error_of(driver, statement)
        assert "S" not in driver.engine.catalog.sources
