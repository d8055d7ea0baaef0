"""Every join type on the embedded broker, each checked against ksqlDB's documented output and against what
the in-memory driver (the engine core) emits for the same statements and input: table-table joins with
tombstones on either side, LEFT stream-table, stream-stream with and without GRACE, late records, foreign-key,
N-way and composite-key joins, a stream-stream join restarted with an unmatched record pending, and a
table-table join killed mid-stream under exactly_once."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from app_process import KsqlpyRun, write_sql

from ksqlpy.driver import InMemoryDriver
from ksqlpy.runtime.app import KsqlpyApp
from ksqlpy.runtime.config import RuntimeConfig
from ksqlpy.runtime.tools import ConsumedRecord, encode_text_or_json

# (source name, key, value, timestamp): value None is a tombstone; a dict key is a JSON key; the timestamp is
# above 0, which would have the producer stamp the current time
Input = tuple[str, Any, Any, int]
# a batch of inputs produced together, then processed before the next batch is produced
Phase = Sequence[Input]
# (key as written, value, timestamp) of an output record
Output = tuple[Any, Any, int]


def service() -> str:
    return f"jointype_{uuid.uuid4().hex[:10]}_"


def make_app(broker: str, tmp_path: Path, service_id: str | None = None) -> KsqlpyApp:
    config = RuntimeConfig(bootstrap_servers=broker, service_id=service_id or service(), properties={
        "auto.offset.reset": "earliest", "ksql.streams.state.dir": str(tmp_path)})
    return KsqlpyApp(config, status=io.StringIO()).start()


def key_of(raw: bytes | None) -> Any:
    """A STRING key as its text, a JSON (composite) key as the document."""
    if raw is None:
        return None
    return orjson.loads(raw) if raw.startswith(b"{") else raw.decode("utf-8")


def value_of(raw: bytes | None) -> Any:
    return None if raw is None else orjson.loads(raw)


def in_memory(sql: str, phases: Sequence[Phase], topics: dict[str, str]) -> list[Output]:
    """The sink's records when the in-memory driver runs the statements over the phases."""
    driver = InMemoryDriver()
    driver.execute(sql)
    for phase in phases:
        for name, key, value, timestamp in phase:
            driver.produce(topics[name], encode_text_or_json(key), None if value is None else orjson.dumps(value),
                           timestamp)
        driver.process()
    return [(key_of(r.key), value_of(r.value), r.timestamp) for r in driver.records(topics["out"])]


def by_key(outputs: Sequence[Output]) -> dict[Any, list[tuple[Any, int]]]:
    """Each key's output records in order: the order a partitioned topic guarantees."""
    grouped: dict[Any, list[tuple[Any, int]]] = {}
    for key, value, timestamp in outputs:
        grouped.setdefault(orjson.dumps(key, option=orjson.OPT_SORT_KEYS), []).append((value, timestamp))
    return grouped


class BrokerJoin:
    """One join query on the broker: its topics (one per source name, plus 'out' for the sink) and the app."""

    def __init__(self, broker: str, app: KsqlpyApp, unique_topic: Callable[..., str], names: Sequence[str],
                 produce_json: Callable[..., None], consume_all: Callable[..., list[ConsumedRecord]],
                 wait_until: Callable[..., Any]) -> None:
        self.broker, self.app = broker, app
        self.topics = {name: unique_topic(name) for name in (*names, "out")}
        self._produce_json, self._consume_all, self._wait_until = produce_json, consume_all, wait_until
        self._produced = 0
        self._partitions = 1

    def run(self, sql_template: str, phases: Sequence[Phase], partitions: int) -> list[Output]:
        """Runs the statements (their sources' topics having `partitions` partitions), produces each phase once
        the query has read the previous one, and returns the sink's records."""
        self._partitions = partitions
        self.app.execute(sql_template.format(partitions=partitions, **self.topics))
        for phase in phases:
            self.produce(phase)
        return self.outputs()

    def produce(self, phase: Phase) -> None:
        # one at a time, in the order given (the in-memory driver's order), even across topics
        for name, key, value, timestamp in phase:
            self._produce_json(self.broker, self.topics[name], [(key, value, timestamp)], partitions=self._partitions)
        self._produced += len(phase)
        self._wait_until(lambda: self.records_in() == self._produced, timeout=30,
                         message=f"the join to read all {self._produced} records produced")

    def records_in(self) -> int:
        return sum(status.records_in for status in self.app.backend.query_status().values())

    def outputs(self) -> list[Output]:
        records = self._consume_all(self.broker, self.topics["out"], idle=1.0)
        return [(key_of(r.key), value_of(r.value), r.timestamp) for r in records]


@pytest.fixture
def broker_join(broker: str, tmp_path: Path, unique_topic: Callable[..., str], produce_json: Callable[..., None],
                consume_all: Callable[..., list[ConsumedRecord]], wait_until: Callable[..., Any],
                ) -> Iterator[Callable[..., BrokerJoin]]:
    apps: list[KsqlpyApp] = []

    def make(*names: str) -> BrokerJoin:
        apps.append(make_app(broker, tmp_path))
        return BrokerJoin(broker, apps[-1], unique_topic, names, produce_json, consume_all, wait_until)

    yield make
    for app in apps:
        app.close()


def check(join: BrokerJoin, sql: str, phases: Sequence[Phase], expected: list[Output], partitions: int = 2) -> None:
    """The broker's output per key is ksqlDB's, and the in-memory driver's for the same input."""
    got = join.run(sql, phases, partitions)
    engine = in_memory(sql.format(partitions=partitions, **join.topics), phases, join.topics)
    assert by_key(engine) == by_key(expected), "the in-memory driver differs from ksqlDB"
    assert by_key(got) == by_key(expected)
    if partitions == 1:
        assert got == expected


TABLE_TABLE = """
CREATE TABLE l (id STRING PRIMARY KEY, name STRING) WITH (kafka_topic='{l}', value_format='JSON', partitions={partitions});
CREATE TABLE r (id STRING PRIMARY KEY, f1 STRING) WITH (kafka_topic='{r}', value_format='JSON', partitions={partitions});
CREATE TABLE o WITH (kafka_topic='{out}') AS SELECT KEY_COLUMN AS id, l.name, r.f1 FROM l JOIN_TYPE JOIN r ON l.id = r.id;
"""

TABLE_CHANGES: Phase = [
    ("l", "1", {"NAME": "one"}, 10),      # left alone
    ("r", "1", {"F1": "uno"}, 15),        # both
    ("r", "2", {"F1": "dos"}, 20),        # right alone
    ("l", "1", None, 30),                 # left deleted while the right has the key
    ("r", "2", None, 40),                 # right deleted, no left
    ("l", "4", {"NAME": "four"}, 45),
    ("r", "4", {"F1": "cuatro"}, 50),
    ("r", "4", None, 55),                 # right deleted while the left has the key
    ("l", "3", None, 60),                 # deleting a key never seen
]


@pytest.mark.parametrize(("join_type", "expected"), [
    ("INNER", [("1", {"NAME": "one", "F1": "uno"}, 15), ("1", None, 30),
               ("4", {"NAME": "four", "F1": "cuatro"}, 50), ("4", None, 55)]),
    ("LEFT", [("1", {"NAME": "one", "F1": None}, 10), ("1", {"NAME": "one", "F1": "uno"}, 15), ("1", None, 30),
              ("4", {"NAME": "four", "F1": None}, 45), ("4", {"NAME": "four", "F1": "cuatro"}, 50),
              ("4", {"NAME": "four", "F1": None}, 55)]),
    ("FULL", [("1", {"NAME": "one", "F1": None}, 10), ("1", {"NAME": "one", "F1": "uno"}, 15),
              ("2", {"NAME": None, "F1": "dos"}, 20), ("1", {"NAME": None, "F1": "uno"}, 30), ("2", None, 40),
              ("4", {"NAME": "four", "F1": None}, 45), ("4", {"NAME": "four", "F1": "cuatro"}, 50),
              ("4", {"NAME": "four", "F1": None}, 55)]),
])
def test_a_table_table_join_follows_updates_and_tombstones_of_either_side(
    broker_join: Callable[..., BrokerJoin], join_type: str, expected: list[Output],
) -> None:
    # a FULL join's key may come from either side: ksqlDB names it ROWKEY
    key_column = "ROWKEY" if join_type == "FULL" else "l.id"
    sql = TABLE_TABLE.replace("KEY_COLUMN", key_column).replace("JOIN_TYPE", join_type)
    check(broker_join("l", "r"), sql, [TABLE_CHANGES], expected)


STREAM_TABLE = """
CREATE STREAM readings (car STRING KEY, speed INT) WITH (kafka_topic='{readings}', value_format='JSON',
  partitions={partitions});
CREATE TABLE cars (car STRING PRIMARY KEY, model STRING) WITH (kafka_topic='{cars}', value_format='JSON',
  partitions={partitions});
CREATE STREAM enriched WITH (kafka_topic='{out}') AS
  SELECT r.car AS car, r.speed, c.model FROM readings r LEFT JOIN cars c ON r.car = c.car;
"""


def test_a_left_stream_table_join_pads_a_reading_of_a_missing_or_deleted_car_with_nulls(
    broker_join: Callable[..., BrokerJoin],
) -> None:
    check(broker_join("readings", "cars"), STREAM_TABLE, [[
        ("cars", "c1", {"MODEL": "m1"}, 1), ("readings", "c1", {"SPEED": 1}, 2), ("readings", "c9", {"SPEED": 9}, 3),
        ("cars", "c1", None, 4), ("readings", "c1", {"SPEED": 5}, 5),
    ]], [("c1", {"SPEED": 1, "MODEL": "m1"}, 2), ("c9", {"SPEED": 9, "MODEL": None}, 3),
         ("c1", {"SPEED": 5, "MODEL": None}, 5)])


STREAM_STREAM = """
CREATE STREAM views (user STRING KEY, page STRING) WITH (kafka_topic='{views}', value_format='JSON',
  partitions={partitions});
CREATE STREAM clicks (user STRING KEY, button STRING) WITH (kafka_topic='{clicks}', value_format='JSON',
  partitions={partitions});
CREATE STREAM clicked_views WITH (kafka_topic='{out}') AS SELECT v.user AS user, v.page, c.button
  FROM views v JOIN_TYPE JOIN clicks c WITHIN 10 SECONDS GRACE ON v.user = c.user;
"""


def stream_stream(join_type: str, grace: str) -> str:
    return STREAM_STREAM.replace("JOIN_TYPE", join_type).replace("GRACE", grace)


def test_a_left_stream_stream_join_without_grace_emits_the_padded_row_at_once_and_the_pair_later(
    broker_join: Callable[..., BrokerJoin],
) -> None:
    check(broker_join("views", "clicks"), stream_stream("LEFT", ""), [[
        ("views", "u1", {"PAGE": "home"}, 1_000), ("clicks", "u1", {"BUTTON": "buy"}, 3_000),
        ("views", "u2", {"PAGE": "cart"}, 4_000),
    ]], [("u1", {"PAGE": "home", "BUTTON": None}, 1_000), ("u1", {"PAGE": "home", "BUTTON": "buy"}, 3_000),
         ("u2", {"PAGE": "cart", "BUTTON": None}, 4_000)], partitions=1)


def test_a_left_stream_stream_join_with_grace_emits_an_unmatched_row_only_when_its_window_closes(
    broker_join: Callable[..., BrokerJoin],
) -> None:
    join = broker_join("views", "clicks")
    sql = stream_stream("LEFT", "GRACE PERIOD 5 SECONDS")
    pair = ("u1", {"PAGE": "home", "BUTTON": "buy"}, 3_000)
    unmatched = ("u2", {"PAGE": "cart", "BUTTON": None}, 4_000)
    opening = [("views", "u1", {"PAGE": "home"}, 1_000), ("clicks", "u1", {"BUTTON": "buy"}, 3_000),
               ("views", "u2", {"PAGE": "cart"}, 4_000)]
    # u2's window closes once stream time passes 4 s + 10 s + 5 s grace
    assert join.run(sql, [opening, [("clicks", "u3", {"BUTTON": "x"}, 19_000)]], partitions=1) == [pair]
    join.produce([("clicks", "u3", {"BUTTON": "y"}, 19_001)])
    assert join.outputs() == [pair, unmatched]
    phases = [opening, [("clicks", "u3", {"BUTTON": "x"}, 19_000)], [("clicks", "u3", {"BUTTON": "y"}, 19_001)]]
    assert in_memory(sql.format(partitions=1, **join.topics), phases, join.topics) == [pair, unmatched]


def test_a_stream_stream_join_restarted_keeps_its_unmatched_row_until_the_window_closes(
    broker: str, tmp_path: Path, unique_topic: Callable[..., str], produce_json: Callable[..., None],
    consume_all: Callable[..., list[ConsumedRecord]], wait_until: Callable[..., Any],
) -> None:
    topics = {name: unique_topic(name) for name in ("views", "clicks", "out")}
    sql = stream_stream("LEFT", "GRACE PERIOD 5 SECONDS").format(partitions=1, **topics)
    service_id = service()
    produce_json(broker, topics["views"], [("u1", {"PAGE": "home"}, 1_000), ("u2", {"PAGE": "cart"}, 4_000)])
    produce_json(broker, topics["clicks"], [("u1", {"BUTTON": "buy"}, 3_000)])
    with make_app(broker, tmp_path, service_id) as app:
        app.execute(sql)
        wait_until(lambda: sum(s.records_in for s in app.backend.query_status().values()) == 3, timeout=30,
                   message="the join to read its three records")
    produce_json(broker, topics["clicks"], [("u3", {"BUTTON": "x"}, 19_001)])
    with make_app(broker, tmp_path, service_id):
        consume_all(broker, topics["out"], expected_count=2, timeout=30)
        output = consume_all(broker, topics["out"], idle=1.0)
    # the restarted query neither read its input again (no second pair) nor lost the unmatched u2
    assert [(r.key_text, r.json_value, r.timestamp) for r in output] == [
        ("u1", {"PAGE": "home", "BUTTON": "buy"}, 3_000), ("u2", {"PAGE": "cart", "BUTTON": None}, 4_000)]


def test_a_record_arriving_after_its_window_and_grace_closed_is_joined_with_nothing(
    broker_join: Callable[..., BrokerJoin],
) -> None:
    check(broker_join("views", "clicks"), stream_stream("INNER", "GRACE PERIOD 1 SECOND"), [
        [("views", "u1", {"PAGE": "home"}, 1_000), ("clicks", "u1", {"BUTTON": "buy"}, 3_000),
         ("views", "u9", {"PAGE": "far"}, 60_000), ("clicks", "u9", {"BUTTON": "x"}, 60_000)],
        # both sides' stream time is at 60 s: 'home' and 'buy' have expired, and so do these late records
        [("clicks", "u1", {"BUTTON": "late"}, 2_500), ("views", "u1", {"PAGE": "late"}, 2_000)],
    ], [("u1", {"PAGE": "home", "BUTTON": "buy"}, 3_000), ("u9", {"PAGE": "far", "BUTTON": "x"}, 60_000)],
        partitions=1)


FOREIGN_KEY = """
CREATE TABLE orders (id STRING PRIMARY KEY, customer STRING, amount INT) WITH (kafka_topic='{orders}',
  value_format='JSON', partitions={partitions});
CREATE TABLE customers (id STRING PRIMARY KEY, name STRING) WITH (kafka_topic='{customers}', value_format='JSON',
  partitions={partitions});
CREATE TABLE order_names WITH (kafka_topic='{out}') AS
  SELECT o.id AS id, o.amount, c.name FROM orders o JOIN_TYPE JOIN customers c ON o.customer = c.id;
"""

ORDERS_AND_CUSTOMERS: Phase = [
    ("customers", "c1", {"NAME": "ann"}, 1),
    ("orders", "o1", {"CUSTOMER": "c1", "AMOUNT": 10}, 2),
    ("orders", "o2", {"CUSTOMER": "c1", "AMOUNT": 20}, 3),
    ("orders", "o3", {"CUSTOMER": "c2", "AMOUNT": 30}, 4),  # no such customer
    ("customers", "c1", {"NAME": "anne"}, 5),              # updates both of c1's orders
    ("customers", "c1", None, 6),                           # deletes c1 under both orders
]


FOREIGN_KEY_LEFT: list[Output] = [
    ("o1", {"AMOUNT": 10, "NAME": "ann"}, 2), ("o2", {"AMOUNT": 20, "NAME": "ann"}, 3),
    ("o3", {"AMOUNT": 30, "NAME": None}, 4),
    ("o1", {"AMOUNT": 10, "NAME": "anne"}, 5), ("o2", {"AMOUNT": 20, "NAME": "anne"}, 5),
    ("o1", {"AMOUNT": 10, "NAME": None}, 6), ("o2", {"AMOUNT": 20, "NAME": None}, 6),
]


@pytest.mark.parametrize(("join_type", "expected"), [
    ("INNER", [("o1", {"AMOUNT": 10, "NAME": "ann"}, 2), ("o2", {"AMOUNT": 20, "NAME": "ann"}, 3),
               ("o1", {"AMOUNT": 10, "NAME": "anne"}, 5), ("o2", {"AMOUNT": 20, "NAME": "anne"}, 5),
               ("o1", None, 6), ("o2", None, 6)]),
    ("LEFT", FOREIGN_KEY_LEFT),
])
def test_a_foreign_key_join_carries_a_customer_change_to_every_order_pointing_at_it(
    broker_join: Callable[..., BrokerJoin], join_type: str, expected: list[Output],
) -> None:
    check(broker_join("orders", "customers"), FOREIGN_KEY.replace("JOIN_TYPE", join_type),
          [ORDERS_AND_CUSTOMERS], expected)


@pytest.mark.parametrize("more_partitions", ["orders", "customers"])
def test_a_foreign_key_join_of_tables_with_different_partition_counts_takes_changes_in_time_order(
    broker_join: Callable[..., BrokerJoin], more_partitions: str,
) -> None:
    table = {"orders": "CREATE TABLE customers", "customers": "CREATE TABLE order_names"}[more_partitions]
    sql = FOREIGN_KEY.replace("JOIN_TYPE", "LEFT").replace(f"partitions={{partitions}});\n{table}",
                                                            f"partitions=3);\n{table}")
    assert "partitions=3" in sql  # one table on 3 partitions, the other on 2
    check(broker_join("orders", "customers"), sql, [ORDERS_AND_CUSTOMERS], FOREIGN_KEY_LEFT)


def test_a_stream_joined_to_two_tables_takes_each_tables_row_at_the_readings_time(
    broker_join: Callable[..., BrokerJoin],
) -> None:
    sql = """
CREATE STREAM readings (car STRING KEY, speed INT) WITH (kafka_topic='{readings}', value_format='JSON',
  partitions={partitions});
CREATE TABLE cars (car STRING PRIMARY KEY, model STRING) WITH (kafka_topic='{cars}', value_format='JSON',
  partitions={partitions});
CREATE TABLE owners (car STRING PRIMARY KEY, owner STRING) WITH (kafka_topic='{owners}', value_format='JSON',
  partitions={partitions});
CREATE STREAM enriched WITH (kafka_topic='{out}') AS SELECT r.car AS car, r.speed, c.model, w.owner
  FROM readings r JOIN cars c ON r.car = c.car LEFT JOIN owners w ON r.car = w.car;
"""
    check(broker_join("readings", "cars", "owners"), sql, [[
        ("cars", "c1", {"MODEL": "m1"}, 1), ("owners", "c1", {"OWNER": "ann"}, 2), ("cars", "c2", {"MODEL": "m2"}, 3),
        ("readings", "c1", {"SPEED": 1}, 4), ("readings", "c2", {"SPEED": 2}, 5), ("readings", "c3", {"SPEED": 3}, 6),
        ("owners", "c1", {"OWNER": "bob"}, 7), ("readings", "c1", {"SPEED": 4}, 8),
    ]], [("c1", {"SPEED": 1, "MODEL": "m1", "OWNER": "ann"}, 4), ("c2", {"SPEED": 2, "MODEL": "m2", "OWNER": None}, 5),
         ("c1", {"SPEED": 4, "MODEL": "m1", "OWNER": "bob"}, 8)])


def test_a_join_on_two_key_columns_matches_only_rows_equal_in_both(broker_join: Callable[..., BrokerJoin]) -> None:
    sql = """
CREATE STREAM readings (x STRING KEY, y INT KEY, speed INT) WITH (kafka_topic='{readings}', key_format='JSON',
  value_format='JSON', partitions={partitions});
CREATE TABLE cars (x STRING PRIMARY KEY, y INT PRIMARY KEY, model STRING) WITH (kafka_topic='{cars}',
  key_format='JSON', value_format='JSON', partitions={partitions});
CREATE STREAM enriched WITH (kafka_topic='{out}') AS SELECT r.x AS x, r.y AS y, r.speed, c.model
  FROM readings r JOIN cars c ON r.x = c.x AND r.y = c.y;
"""
    check(broker_join("readings", "cars"), sql, [[
        ("cars", {"X": "a", "Y": 1}, {"MODEL": "a1"}, 1), ("cars", {"X": "a", "Y": 2}, {"MODEL": "a2"}, 2),
        ("readings", {"X": "a", "Y": 2}, {"SPEED": 5}, 3), ("readings", {"X": "a", "Y": 3}, {"SPEED": 6}, 4),
        ("readings", {"X": "b", "Y": 1}, {"SPEED": 7}, 5),
    ]], [({"X": "a", "Y": 2}, {"SPEED": 5, "MODEL": "a2"}, 3)])


def final_rows(outputs: Sequence[Output]) -> dict[Any, Any]:
    """A table's last value per key, deleted keys left out."""
    last = {key: value for key, value, _ in outputs}
    return {key: value for key, value in last.items() if value is not None}


def test_a_table_table_join_killed_mid_stream_ends_with_exactly_the_joined_rows(
    broker: str, tmp_path: Path, unique_topic: Callable[..., str], produce_json: Callable[..., None],
    consume_all: Callable[..., list[ConsumedRecord]], wait_until: Callable[..., Any],
) -> None:
    topics = {name: unique_topic(name) for name in ("l", "r", "out")}
    sql_text = TABLE_TABLE.replace("KEY_COLUMN", "l.id").replace("JOIN_TYPE", "LEFT").format(partitions=2, **topics)
    sql = write_sql(tmp_path, "table_join", "SET 'auto.offset.reset'='earliest';\n"
                    "SET 'processing.guarantee'='exactly_once';\n" + sql_text)
    keys = [f"k{i}" for i in range(40)]
    before: Phase = [*(("r", key, {"F1": f"r{i}"}, 1_000 + i) for i, key in enumerate(keys)),
                     *(("l", key, {"NAME": f"n{i}.{n}"}, 2_000 + 40 * n + i) for n in range(30)
                       for i, key in enumerate(keys))]
    after: Phase = [*(("r", key, {"F1": f"new{i}"}, 5_000 + i) for i, key in enumerate(keys) if i % 3 == 0),
                    *(("r", key, None, 5_100 + i) for i, key in enumerate(keys) if i % 3 == 1),
                    *(("l", key, None, 5_200 + i) for i, key in enumerate(keys) if i % 5 == 0)]
    for name in ("r", "l"):
        produce_json(broker, topics[name], [(k, v, t) for n, k, v, t in before if n == name], partitions=2)
    service_id = service()
    first = KsqlpyRun(sql, broker, service_id)

    def changes() -> dict[Any, list[tuple[Any, int]]]:
        return by_key([(key_of(r.key), value_of(r.value), r.timestamp) for r in consume_all(broker, topics["out"])])

    # Killed once its first phase is committed: killed inside a transaction, its records would show on the test
    # broker, which ends a dead producer's transaction only when its id comes back, and then shows its aborted
    # records to read_committed readers (Tansu filters none), so no exactly-once run could be checked exactly.
    first_phase = by_key(in_memory(sql_text, [before], topics))
    try:
        wait_until(lambda: changes() == first_phase, timeout=40, message=f"the first phase's changes\n{first.describe()}")
    finally:
        first.kill()
    for name in ("r", "l"):
        produce_json(broker, topics[name], [(k, v, t) for n, k, v, t in after if n == name], partitions=2)
    second = KsqlpyRun(sql, broker, service_id, "--until-idle", "3")
    assert second.wait(90) == 0, second.describe()
    expected = {key: {"NAME": f"n{i}.29", "F1": f"new{i}" if i % 3 == 0 else None if i % 3 == 1 else f"r{i}"}
                for i, key in enumerate(keys) if i % 5 != 0}
    engine = in_memory(sql_text, [before, after], topics)
    assert final_rows(engine) == expected
    # Exactly once: every change emitted once, none lost or repeated across the crash.
    wait_until(lambda: changes() == by_key(engine), timeout=40, message="the join's changes to be the engine's")
