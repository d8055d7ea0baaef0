"""Statements end to end through the in-memory driver: DDL, persistent queries, listings, errors."""

from __future__ import annotations

import json

import pytest

from ksqlpy.driver import InMemoryDriver
from ksqlpy.errors import ParseError, StatementError

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
