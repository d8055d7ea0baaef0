"""Pull queries (SELECT without EMIT CHANGES over a table) on the in-memory driver: key lookups, IN, scans,
window bounds, other predicates, LIMIT, deleted keys, and ksqlDB's refusals."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ksqlpy.driver import InMemoryDriver
from ksqlpy.errors import StatementError
from ksqlpy.syntax import ast
from ksqlpy.syntax.parser import parse

MINUTE = 60_000
USERS = ("CREATE TABLE users (id STRING PRIMARY KEY, name STRING, age INT) "
         "WITH (kafka_topic='users', value_format='JSON', partitions=1);")
CLICKS = ("CREATE STREAM clicks (user_id STRING KEY, page STRING) "
          "WITH (kafka_topic='clicks', value_format='JSON', partitions=1);")


def pull(driver: InMemoryDriver, text: str) -> list[list[Any]]:
    (statement,) = parse(text)
    assert isinstance(statement, ast.SelectStatement)
    return driver.engine.pull_rows(driver.engine.plan_transient(statement), "pull_test")


def user(driver: InMemoryDriver, key: str, value: dict[str, Any] | None, timestamp: int = 0) -> None:
    driver.produce("users", key.encode(), None if value is None else json.dumps(value).encode(), timestamp)


@pytest.fixture
def users() -> InMemoryDriver:
    driver = InMemoryDriver()
    driver.execute(USERS)
    user(driver, "a", {"NAME": "Ann", "AGE": 30}, 1)
    user(driver, "b", {"NAME": "Bob", "AGE": 40}, 2)
    user(driver, "c", {"NAME": "Cid", "AGE": 50}, 3)
    user(driver, "a", {"NAME": "Ann", "AGE": 31}, 4)  # the latest record of a key is its row
    user(driver, "c", None, 5)  # deleted
    return driver


def test_a_scan_answers_each_current_row_once_and_leaves_deleted_keys_out(users: InMemoryDriver) -> None:
    assert pull(users, "SELECT * FROM users;") == [["b", "Bob", 40], ["a", "Ann", 31]]


def test_a_key_lookup_answers_its_row_and_an_absent_or_deleted_key_nothing(users: InMemoryDriver) -> None:
    assert pull(users, "SELECT id, name FROM users WHERE id = 'a';") == [["a", "Ann"]]
    assert pull(users, "SELECT * FROM users WHERE id = 'c';") == []
    assert pull(users, "SELECT * FROM users WHERE id = 'zz';") == []


def test_key_in_a_list_and_other_predicates(users: InMemoryDriver) -> None:
    assert pull(users, "SELECT id FROM users WHERE id IN ('a', 'c', 'b');") == [["b"], ["a"]]
    assert pull(users, "SELECT id, age * 2 AS twice FROM users WHERE age > 35;") == [["b", 80]]
    assert pull(users, "SELECT id FROM users WHERE id = 'a' AND name LIKE 'B%';") == []


def test_rowtime_is_the_timestamp_of_the_rows_record(users: InMemoryDriver) -> None:
    assert pull(users, "SELECT id, ROWTIME AS ts FROM users WHERE id = 'a';") == [["a", 4]]


def test_limit_caps_the_rows(users: InMemoryDriver) -> None:
    assert pull(users, "SELECT id FROM users LIMIT 1;") == [["b"]]


def test_a_table_created_by_a_query_is_pulled_from_its_output() -> None:
    driver = InMemoryDriver()
    driver.execute(CLICKS + "CREATE TABLE counts AS SELECT user_id, COUNT(*) AS n FROM clicks GROUP BY user_id;")
    for key, page in [("u1", "x"), ("u2", "y"), ("u1", "z")]:
        driver.produce("clicks", key.encode(), json.dumps({"PAGE": page}).encode(), 0)
    driver.process()
    assert pull(driver, "SELECT * FROM counts WHERE user_id = 'u1';") == [["u1", 2]]
    assert sorted(pull(driver, "SELECT * FROM counts;")) == [["u1", 2], ["u2", 1]]


def test_windowed_tables_answer_per_window_and_filter_on_window_bounds() -> None:
    driver = InMemoryDriver()
    driver.execute(CLICKS + "CREATE TABLE per_minute AS SELECT user_id, COUNT(*) AS n FROM clicks "
                   "WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY user_id;")
    for key, timestamp in [("u1", 0), ("u1", 10), ("u1", MINUTE + 5), ("u2", 2 * MINUTE)]:
        driver.produce("clicks", key.encode(), json.dumps({"PAGE": "p"}).encode(), timestamp)
    driver.process()
    assert pull(driver, "SELECT * FROM per_minute WHERE user_id = 'u1';") == [
        ["u1", 0, MINUTE, 2], ["u1", MINUTE, 2 * MINUTE, 1],
    ]
    assert pull(driver, f"SELECT user_id, n FROM per_minute WHERE user_id = 'u1' AND WINDOWSTART >= {MINUTE};") == [
        ["u1", 1],
    ]
    assert pull(driver, f"SELECT user_id, WINDOWEND FROM per_minute WHERE WINDOWEND > {MINUTE} "
                        f"AND WINDOWSTART < {3 * MINUTE};") == [["u1", 2 * MINUTE], ["u2", 3 * MINUTE]]


@pytest.mark.parametrize(("query", "clause"), [
    ("SELECT name, COUNT(*) FROM users GROUP BY name;", "GROUP BY"),
    ("SELECT * FROM users PARTITION BY name;", "PARTITION BY"),
    ("SELECT * FROM users u JOIN users v ON u.id = v.id;", "JOIN"),
    ("SELECT id, COUNT(*) FROM users WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY id;", "WINDOW"),
    ("SELECT * FROM users HAVING age > 1;", "HAVING"),
])
def test_clauses_a_pull_query_may_not_contain_are_refused_as_ksqldb_does(
    users: InMemoryDriver, query: str, clause: str
) -> None:
    with pytest.raises(StatementError) as refused:
        pull(users, query)
    assert str(refused.value) == (f"Pull queries don't support {clause} clauses. See https://cnfl.io/queries for "
                                  "more info.\nAdd EMIT CHANGES if you intended to issue a push query.")


def test_a_pull_query_over_a_stream_is_told_to_add_emit_changes() -> None:
    driver = InMemoryDriver()
    driver.execute(CLICKS)
    with pytest.raises(StatementError, match="Pull queries are not supported: add EMIT CHANGES to run a push query"):
        pull(driver, "SELECT * FROM clicks WHERE user_id = 'u1';")
