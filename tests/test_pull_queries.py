"""Pull queries (SELECT without EMIT CHANGES) on the in-memory driver: key lookups, IN, scans, window bounds,
other predicates, LIMIT, deleted keys, streams, and ksqlDB's refusals."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ksqlpy.driver import InMemoryDriver
from ksqlpy.errors import StatementError
from ksqlpy.execution.pull import KeyLookup, key_lookup
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
    assert pull(users, "SELECT * FROM users;") == [["a", "Ann", 31], ["b", "Bob", 40]]  # in key order


def test_a_key_lookup_answers_its_row_and_an_absent_or_deleted_key_nothing(users: InMemoryDriver) -> None:
    assert pull(users, "SELECT id, name FROM users WHERE id = 'a';") == [["a", "Ann"]]
    assert pull(users, "SELECT * FROM users WHERE id = 'c';") == []
    assert pull(users, "SELECT * FROM users WHERE id = 'zz';") == []


def test_key_in_a_list_and_other_predicates(users: InMemoryDriver) -> None:
    assert pull(users, "SELECT id FROM users WHERE id IN ('b', 'c', 'a');") == [["b"], ["a"]]  # in the IN's order
    assert pull(users, "SELECT id, age * 2 AS twice FROM users WHERE age > 35;") == [["b", 80]]
    assert pull(users, "SELECT id FROM users WHERE id = 'a' AND name LIKE 'B%';") == []


def test_rowtime_is_the_timestamp_of_the_rows_record(users: InMemoryDriver) -> None:
    assert pull(users, "SELECT id, ROWTIME AS ts FROM users WHERE id = 'a';") == [["a", 4]]


def test_limit_caps_the_rows(users: InMemoryDriver) -> None:
    assert pull(users, "SELECT id FROM users LIMIT 1;") == [["a"]]


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


def test_a_pull_query_over_a_stream_answers_every_record_it_holds_now() -> None:
    driver = InMemoryDriver()
    driver.execute(CLICKS)
    for key, page in [("u1", "x"), ("u2", "y"), ("u1", "z")]:
        driver.produce("clicks", key.encode(), json.dumps({"PAGE": page}).encode(), 0)
    assert pull(driver, "SELECT * FROM clicks WHERE user_id = 'u1';") == [["u1", "x"], ["u1", "z"]]
    assert pull(driver, "SELECT page FROM clicks LIMIT 2;") == [["x"], ["y"]]


def lookup_of(driver: InMemoryDriver, text: str) -> KeyLookup | None:
    (statement,) = parse(text)
    assert isinstance(statement, ast.SelectStatement)
    return key_lookup(driver.engine.plan_transient(statement))


@pytest.mark.parametrize(("where", "keys"), [
    ("id = 'a'", (b"a",)),
    ("'a' = id AND age > 3", (b"a",)),
    ("id IN ('b', 'a', 'b')", (b"b", b"a")),
    ("id IN ('a', 'b') AND id = 'b'", (b"b",)),
    ("id = 'a' OR id = 'b'", None),
    ("age = 3", None),
    ("id > 'a'", None),
    ("id = name", None),
    ("NOT id = 'a'", None),
])
def test_the_keys_a_where_pins_are_looked_up_and_anything_else_scans(
    users: InMemoryDriver, where: str, keys: tuple[bytes, ...] | None
) -> None:
    found = lookup_of(users, f"SELECT * FROM users WHERE {where};")
    assert (found.keys if found is not None else None) == keys


def test_lookup_keys_are_serialized_by_the_tables_key_format() -> None:
    driver = InMemoryDriver()
    driver.execute("CREATE TABLE t (k BIGINT PRIMARY KEY, v INT) WITH (kafka_topic='t', value_format='JSON', "
                   "key_format='JSON', partitions=1);")
    assert lookup_of(driver, "SELECT * FROM t WHERE k = 5;") == KeyLookup((b"5",), 0)


def test_a_later_pull_query_sees_later_records(users: InMemoryDriver) -> None:
    assert pull(users, "SELECT id FROM users WHERE id = 'd';") == []
    user(users, "d", {"NAME": "Dan", "AGE": 20}, 6)
    user(users, "a", None, 7)
    assert pull(users, "SELECT id FROM users;") == [["b"], ["d"]]


def test_a_dropped_and_recreated_table_is_materialized_afresh(users: InMemoryDriver) -> None:
    assert pull(users, "SELECT id FROM users;") == [["a"], ["b"]]
    users.execute("DROP TABLE users DELETE TOPIC;")
    users.execute(USERS)
    user(users, "z", {"NAME": "Zed", "AGE": 1}, 1)
    assert pull(users, "SELECT id FROM users;") == [["z"]]


SESSIONS = ("CREATE TABLE sessions AS SELECT user_id, COUNT(*) AS n FROM clicks "
            "WINDOW SESSION (5 MINUTES) GROUP BY user_id;")


def test_session_windowed_tables_answer_key_lookups_with_session_bounds() -> None:
    driver = InMemoryDriver()
    driver.execute(CLICKS + SESSIONS)
    for key, timestamp in [("u1", 0), ("u1", MINUTE), ("u1", 20 * MINUTE), ("u2", 0)]:
        driver.produce("clicks", key.encode(), json.dumps({"PAGE": "p"}).encode(), timestamp)
    driver.process()
    assert pull(driver, "SELECT WINDOWSTART, WINDOWEND, n FROM sessions WHERE user_id = 'u1';") == [
        [0, MINUTE, 2], [20 * MINUTE, 20 * MINUTE, 1],
    ]
    assert pull(driver, f"SELECT n FROM sessions WHERE user_id = 'u1' AND WINDOWEND = {MINUTE};") == [[2]]
    with pytest.raises(StatementError, match=r"^Table scan unsupported on session tables$"):
        pull(driver, "SELECT * FROM sessions;")


def test_hopping_window_bounds_with_between_and_strict_comparisons() -> None:
    driver = InMemoryDriver()
    driver.execute(CLICKS + "CREATE TABLE hops AS SELECT user_id, COUNT(*) AS n FROM clicks "
                   "WINDOW HOPPING (SIZE 2 MINUTES, ADVANCE BY 1 MINUTE) GROUP BY user_id;")
    driver.produce("clicks", b"u1", json.dumps({"PAGE": "p"}).encode(), MINUTE + 5)
    driver.process()
    assert pull(driver, "SELECT WINDOWSTART, WINDOWEND FROM hops WHERE user_id = 'u1';") == [
        [0, 2 * MINUTE], [MINUTE, 3 * MINUTE],
    ]
    assert pull(driver, f"SELECT WINDOWSTART FROM hops WHERE user_id = 'u1' AND WINDOWSTART BETWEEN 1 AND {MINUTE};") \
        == [[MINUTE]]
    assert pull(driver, f"SELECT WINDOWSTART FROM hops WHERE user_id = 'u1' AND WINDOWEND < {3 * MINUTE};") == [[0]]
    assert pull(driver, f"SELECT WINDOWSTART FROM hops WHERE user_id = 'u1' AND WINDOWEND <= {3 * MINUTE} "
                        "AND WINDOWSTART > 0;") == [[MINUTE]]


def test_with_table_scans_disabled_only_key_lookups_are_answered(users: InMemoryDriver) -> None:
    users.execute("SET 'ksql.query.pull.table.scan.enabled'='false';")
    assert pull(users, "SELECT id FROM users WHERE id = 'a';") == [["a"]]
    with pytest.raises(StatementError) as refused:
        pull(users, "SELECT id FROM users;")
    assert str(refused.value) == ("Query requires table scan to be enabled. Table scans can be enabled by setting "
                                  "ksql.query.pull.table.scan.enabled=true")


def test_with_table_scans_disabled_a_range_on_the_key_is_a_range_scan(users: InMemoryDriver) -> None:
    users.execute("SET 'ksql.query.pull.table.scan.enabled'='false';")
    assert pull(users, "SELECT id FROM users WHERE id < 'b';") == [["a"]]
    assert pull(users, "SELECT id FROM users WHERE 'a' < id AND age > 1;") == [["b"]]
    assert pull(users, "SELECT id FROM users WHERE id = 'a' OR id = 'b' AND (age = 40 OR age = 0);") == [["a"], ["b"]]
    users.execute("SET 'ksql.query.pull.range.scan.enabled'='false';")
    with pytest.raises(StatementError, match="Query requires table scan to be enabled"):
        pull(users, "SELECT id FROM users WHERE id < 'b';")


@pytest.mark.parametrize(("where", "message"), [
    ("age > 1", "WHERE clause missing key column for disjunct: (AGE > 1)"),
    ("id = 'a' OR age > 1", "WHERE clause missing key column for disjunct: (AGE > 1)"),
    ("'a' < id AND id < 'c'", "A comparison condition on the key column cannot be combined with other comparisons "
                              "such as an IN predicate"),
    ("id = 'a' AND id IN ('a', 'b')", "A comparison condition on the key column cannot be combined"),
    ("id = name", "A comparison must be between a key column and a resolvable expression."),
    ("id IN ('a', name)", "A comparison must be between a key column and a resolvable expression."),
    ("id <> 'a'", "Bound on key columns '[`ID` STRING KEY]' must currently be '='. "),
    ("'x' LIKE 'x'", "Like condition must be between strings"),
    ("id < 'b' OR id > 'c'", "Query requires table scan to be enabled"),
    ("(id = 'a' OR id = 'b') AND id IN ('a', 'c')", "A comparison condition on the key column cannot be combined"),
    ("id = 'a' AND (age > 1 OR name = 'x') OR age = 2", "WHERE clause missing key column for disjunct: (AGE = 2)"),
])
def test_with_table_scans_disabled_the_where_clause_is_refused_as_ksqldb_does(
    users: InMemoryDriver, where: str, message: str
) -> None:
    users.execute("SET 'ksql.query.pull.table.scan.enabled'='false';")
    with pytest.raises(StatementError) as refused:
        pull(users, f"SELECT id FROM users WHERE {where};")
    assert str(refused.value).startswith(message)


def test_with_table_scans_disabled_a_multi_column_key_must_be_pinned_whole() -> None:
    driver = InMemoryDriver()
    driver.execute("CREATE TABLE pairs (a STRING PRIMARY KEY, b INT PRIMARY KEY, n INT) "
                   "WITH (kafka_topic='pairs', format='JSON', partitions=1);")
    driver.execute("SET 'ksql.query.pull.table.scan.enabled'='false';")
    assert pull(driver, "SELECT * FROM pairs WHERE a = 'x' AND b = 1;") == []
    for where in ("a = 'x'", "a <= 'x' OR b >= 1"):
        with pytest.raises(StatementError, match="Multi-column sources must specify every key in the WHERE clause"):
            pull(driver, f"SELECT * FROM pairs WHERE {where};")
    with pytest.raises(StatementError, match="Query requires table scan to be enabled"):
        pull(driver, "SELECT * FROM pairs WHERE a <= 'x' AND b >= 1;")


def test_key_values_and_like_operands_are_checked_against_the_column_types() -> None:
    driver = InMemoryDriver()
    driver.execute("CREATE TABLE counts (id INT PRIMARY KEY, n INT) "
                   "WITH (kafka_topic='counts', format='JSON', partitions=1);")
    with pytest.raises(StatementError) as refused:
        pull(driver, "SELECT * FROM counts WHERE id IN ('10', 8);")
    assert str(refused.value) == "'10' can not be converted to the type of the key column: ID INTEGER KEY"
    with pytest.raises(StatementError) as refused:
        pull(driver, "SELECT * FROM counts WHERE id LIKE 12;")
    assert str(refused.value) == "The column type for Like condition must be VARCHAR. The column type is INTEGER"


@pytest.mark.parametrize(("where", "message"), [
    ("id = 10", "Error in WHERE expression: Cannot compare ID (STRING) to 10 (INTEGER) with EQUAL.\n"
                "Statement: (ID = 10)"),
    ("id = NULL", "Error in WHERE expression: Comparison with NULL not supported: STRING = NULL\n"
                  "Use 'IS NULL' or 'IS NOT NULL' instead.\nStatement: (ID = null)"),
])
def test_a_where_clause_type_error_names_the_where_clause(users: InMemoryDriver, where: str, message: str) -> None:
    with pytest.raises(StatementError) as refused:
        pull(users, f"SELECT * FROM users WHERE {where};")
    assert str(refused.value).endswith(message)


def test_a_pull_query_selects_rowtime_and_limit_can_be_disabled(users: InMemoryDriver) -> None:
    assert pull(users, "SELECT id, ROWTIME FROM users WHERE id = 'a';") == [["a", 4]]
    users.execute("SET 'ksql.query.pull.limit.clause.enabled'='false';")
    with pytest.raises(StatementError) as refused:
        pull(users, "SELECT * FROM users LIMIT 1;")
    assert str(refused.value) == (
        "LIMIT clause in pull queries is currently disabled. You can enable them by setting "
        "ksql.query.pull.limit.clause.enabled=true. See https://cnfl.io/queries for more info.\n"
        "Add EMIT CHANGES if you intended to issue a push query.")


@pytest.mark.parametrize(("query", "clause", "columns"), [
    ("SELECT id, ROWOFFSET FROM users;", "SELECT", "`ROWOFFSET`"),
    ("SELECT ROWPARTITION, ROWOFFSET + 1 FROM users;", "SELECT", "`ROWPARTITION`, `ROWOFFSET`"),
    ("SELECT id FROM users WHERE ROWPARTITION = 0;", "WHERE", "`ROWPARTITION`"),
])
def test_where_a_row_sits_in_the_topic_is_refused_in_pull_queries(
    users: InMemoryDriver, query: str, clause: str, columns: str
) -> None:
    with pytest.raises(StatementError) as refused:
        pull(users, query)
    assert str(refused.value) == (f"Pull queries don't support the following columns in {clause} clauses: "
                                  f"{columns}\n See https://cnfl.io/queries for more info.\n"
                                  "Add EMIT CHANGES if you intended to issue a push query.")


WHERE_HELP = (
    "See https://cnfl.io/queries for more info.\nAdd EMIT CHANGES if you intended to issue a push query.\n"
    "Pull queries require a WHERE clause that:\n"
    " - includes a key equality expression, e.g. `SELECT * FROM X WHERE <key-column> = Y;`.\n"
    " - in the case of a multi-column key, is a conjunction of equality expressions that cover all key columns.\n"
    " - to support range expressions, e.g.,  SELECT * FROM X WHERE <key-column> < Y;`, range scans need to be "
    "enabled by setting ksql.query.pull.range.scan.enabled=true\n"
    " - (optionally) limits the time bounds of the windowed table.\n"
    "\t Bounds on [WINDOWSTART, WINDOWEND] are supported\n"
    "\t Supported operators are [EQUAL, GREATER_THAN, GREATER_THAN_OR_EQUAL, LESS_THAN, LESS_THAN_OR_EQUAL]\n"
    "If more flexible queries are needed, , table scans can be enabled by setting "
    "ksql.query.pull.table.scan.enabled=true."
)


@pytest.mark.parametrize(("where", "refusal"), [
    ("user_id = 'u1' AND WINDOWSTART <> 0", "Unsupported WINDOWSTART bounds: NOT_EQUAL"),
    ("n > 0 AND 0 IS DISTINCT FROM WINDOWEND", "Unsupported WINDOWEND bounds: IS_DISTINCT_FROM"),
    ("user_id = 'u1' AND WINDOWSTART > 0 AND WINDOWSTART >= 1", "Duplicate WINDOWSTART bounds on: GREATER_THAN"),
    ("user_id = 'u1' AND 5 > WINDOWEND AND WINDOWEND <= 9", "Duplicate WINDOWEND bounds on: LESS_THAN"),
    ("user_id = 'u1' AND WINDOWSTART < 9 AND WINDOWSTART = 2",
     "`(WINDOWSTART = 2)` cannot be combined with other WINDOWSTART bounds"),
    ("user_id = 'u1' AND WINDOWEND = 2 AND WINDOWEND BETWEEN 1 AND 3",
     "`(WINDOWEND >= 1)` cannot be combined with other WINDOWEND bounds"),
])
def test_window_bounds_ksqldb_cannot_use_are_refused_with_its_messages(where: str, refusal: str) -> None:
    driver = InMemoryDriver()
    driver.execute(CLICKS + "CREATE TABLE per_minute AS SELECT user_id, COUNT(*) AS n FROM clicks "
                   "WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY user_id;")
    with pytest.raises(StatementError) as refused:
        pull(driver, f"SELECT * FROM per_minute WHERE {where};")
    assert str(refused.value) == f"{refusal}.  {WHERE_HELP}"


def test_duplicate_window_bounds_are_answered_in_a_scan_as_ksqldb_does() -> None:
    driver = InMemoryDriver()
    driver.execute(CLICKS + "CREATE TABLE per_minute AS SELECT user_id, COUNT(*) AS n FROM clicks "
                   "WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY user_id;")
    driver.produce("clicks", b"u1", json.dumps({"PAGE": "p"}).encode(), MINUTE)
    driver.process()
    assert pull(driver, "SELECT n FROM per_minute WHERE WINDOWSTART > 0 AND WINDOWSTART >= 1;") == [[1]]
