"""Joins not on their inputs' keys, on the embedded broker: a stream side keyed otherwise is re-keyed through a
`…-Join-left/right-repartition` topic by a stage of its own, so two processes sharing the query (each with
some of the partitions) still meet every reading with its car, and a re-keying GROUP BY still goes through
its own repartition topic."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app_process import KsqlpyRun, write_sql

from ksqlpy.runtime.clients import KafkaClients
from ksqlpy.runtime.config import RuntimeConfig
from ksqlpy.runtime.tools import ConsumedRecord
from ksqlpy.runtime.worker import consumer_group_id

PARTITIONS = 4
LEASED = re.compile(r"query CTAS_ORDER_NAMES_0: assigned partitions \[([\d, ]*)\]")
CARS = 12
READINGS = 600


def enrichment(readings: str, cars: str, sink: str) -> str:
    """Readings keyed by their own id carry the car's id in a value column; cars are keyed by theirs."""
    return (
        "SET 'auto.offset.reset'='earliest';\n"
        f"CREATE STREAM readings (reading_id STRING KEY, car_id STRING, speed INT) WITH (kafka_topic='{readings}', "
        f"value_format='JSON', partitions={PARTITIONS});\n"
        f"CREATE TABLE cars (id STRING PRIMARY KEY, model STRING) WITH (kafka_topic='{cars}', value_format='JSON', "
        f"partitions={PARTITIONS});\n"
        f"CREATE STREAM enriched WITH (kafka_topic='{sink}') AS\n"
        "  SELECT r.car_id, r.reading_id, r.speed, c.model FROM readings r JOIN cars c ON r.car_id = c.id;\n"
    )


def topics_named(broker: str) -> set[str]:
    return set(KafkaClients(RuntimeConfig(bootstrap_servers=broker)).admin().list_topics(timeout=10).topics)


def test_two_processes_share_a_join_on_a_value_column_and_one_killed_loses_and_repeats_nothing(
    broker: str, tmp_path: Path, unique_topic: Callable[..., str], produce_json: Callable[..., None],
    consume_all: Callable[..., list[ConsumedRecord]], wait_until: Callable[..., Any],
) -> None:
    readings, cars, sink = unique_topic("readings"), unique_topic("cars"), unique_topic("enriched")
    service_id = f"rekey_{uuid.uuid4().hex[:10]}_"
    sql = write_sql(tmp_path, "enrich", "SET 'processing.guarantee'='exactly_once';\n" +
                    enrichment(readings, cars, sink))
    produce_json(broker, cars, [(f"car{i}", {"MODEL": f"model{i}"}, 1_000) for i in range(CARS)],
                 partitions=PARTITIONS)

    def start(name: str) -> KsqlpyRun:
        return KsqlpyRun(sql, broker, service_id, "--verbose", "-p", f"ksql.streams.state.dir={tmp_path / name}")

    def send(numbers: range) -> None:
        # Each reading's key hashes it to some partition; its car's row is in the partition its car id hashes to.
        produce_json(broker, readings, [(f"reading{i}", {"CAR_ID": f"car{i % CARS}", "SPEED": i}, 2_000 + i)
                                        for i in numbers], partitions=PARTITIONS)

    doomed, survivor = start("doomed"), start("survivor")
    try:
        wait_until(lambda: "assigned partitions [" in doomed.stderr and "assigned partitions [" in survivor.stderr,
                   timeout=40, message=f"both processes to hold partitions\n{doomed.describe()}\n{survivor.describe()}")
        send(range(READINGS // 2))
        wait_until(lambda: consume_all(broker, sink, idle=0.5), timeout=40, message="the first joined readings")
        doomed.kill()
        send(range(READINGS // 2, READINGS))
        output = consume_all(broker, sink, expected_count=READINGS, timeout=90)
        assert survivor.stop() == 0, survivor.describe()
    finally:
        doomed.ensure_stopped()
        survivor.ensure_stopped()
    assert sorted(record.json_value["READING_ID"] for record in output) == sorted(f"reading{i}" for i in range(READINGS))
    assert all(record.json_value["MODEL"] == f"model{record.json_value['SPEED'] % CARS}" for record in output)
    # the output is keyed, and so partitioned, by the join key
    assert {record.key_text for record in output} == {f"car{i}" for i in range(CARS)}
    assert len(consume_all(broker, sink, idle=2.0)) == READINGS  # and nothing more: no reading twice
    application_id = consumer_group_id(service_id, "CSAS_ENRICHED_0")
    assert f"{application_id}-Join-left-repartition" in topics_named(broker)


def test_a_stream_stream_join_of_two_value_columns_rekeys_both_sides(
    broker: str, tmp_path: Path, unique_topic: Callable[..., str], produce_json: Callable[..., None],
    consume_all: Callable[..., list[ConsumedRecord]],
) -> None:
    clicks, views, sink = unique_topic("clicks"), unique_topic("views"), unique_topic("paired")
    service_id = f"rekey_{uuid.uuid4().hex[:10]}_"
    sql = write_sql(tmp_path, "pair", (
        "SET 'auto.offset.reset'='earliest';\n"
        f"CREATE STREAM clicks (click_id STRING KEY, user_id STRING, button STRING) WITH (kafka_topic='{clicks}', "
        "value_format='JSON', partitions=3);\n"
        f"CREATE STREAM views (view_id STRING KEY, user_id STRING, page STRING) WITH (kafka_topic='{views}', "
        "value_format='JSON', partitions=3);\n"
        f"CREATE STREAM paired WITH (kafka_topic='{sink}') AS\n"
        "  SELECT v.user_id, v.page, c.button FROM views v JOIN clicks c WITHIN 10 SECONDS\n"
        "  ON v.user_id = c.user_id;\n"
    ))
    users = 9
    produce_json(broker, views, [(f"view{i}", {"USER_ID": f"user{i}", "PAGE": f"page{i}"}, 1_000)
                                 for i in range(users)], partitions=3)
    produce_json(broker, clicks, [(f"click{i}", {"USER_ID": f"user{i}", "BUTTON": f"button{i}"}, 5_000)
                                  for i in range(users)]
                 + [(f"late{i}", {"USER_ID": f"user{i}", "BUTTON": "too late"}, 60_000) for i in range(users)],
                 partitions=3)
    run = KsqlpyRun(sql, broker, service_id, "--until-idle", "3", "--verbose",
                    "-p", f"ksql.streams.state.dir={tmp_path / 'state'}")
    assert run.wait(120) == 0, run.describe()
    output = consume_all(broker, sink, expected_count=users, timeout=10)
    assert sorted((r.key_text, r.json_value["PAGE"], r.json_value["BUTTON"]) for r in output) == sorted(
        (f"user{i}", f"page{i}", f"button{i}") for i in range(users))
    application_id = consumer_group_id(service_id, "CSAS_PAIRED_0")
    assert {f"{application_id}-Join-left-repartition", f"{application_id}-Join-right-repartition"} <= \
        topics_named(broker)


def test_a_group_by_a_value_column_goes_through_its_repartition_topic(
    broker: str, tmp_path: Path, unique_topic: Callable[..., str], produce_json: Callable[..., None],
    consume_all: Callable[..., list[ConsumedRecord]],
) -> None:
    source, sink = unique_topic("readings"), unique_topic("per_car")
    service_id = f"rekey_{uuid.uuid4().hex[:10]}_"
    sql = write_sql(tmp_path, "count", (
        "SET 'auto.offset.reset'='earliest';\n"
        f"CREATE STREAM readings (reading_id STRING KEY, car_id STRING) WITH (kafka_topic='{source}', "
        "value_format='JSON', partitions=3);\n"
        f"CREATE TABLE per_car WITH (kafka_topic='{sink}') AS SELECT car_id, COUNT(*) AS n FROM readings "
        "GROUP BY car_id;\n"
    ))
    produce_json(broker, source, [(f"reading{i}", {"CAR_ID": f"car{i % 5}"}) for i in range(100)], partitions=3)
    run = KsqlpyRun(sql, broker, service_id, "--until-idle", "3", "--verbose",
                    "-p", f"ksql.streams.state.dir={tmp_path / 'state'}", "-p", "ksql.streams.cache.max.bytes.buffering=0")
    assert run.wait(120) == 0, run.describe()
    output = consume_all(broker, sink, idle=1.0)
    assert {r.key_text: r.json_value["N"] for r in output} == {f"car{i}": 20 for i in range(5)}
    assert run.totals()["CTAS_PER_CAR_0"].records_in == 100  # counted once, at the source
    assert f"{consumer_group_id(service_id, 'CTAS_PER_CAR_0')}-Aggregate-GroupBy-repartition" in topics_named(broker)


def test_a_foreign_key_join_runs_in_the_process_holding_its_lease_and_moves_on_when_that_one_stops(
    broker: str, tmp_path: Path, unique_topic: Callable[..., str], produce_json: Callable[..., None],
    consume_all: Callable[..., list[ConsumedRecord]], wait_until: Callable[..., Any],
) -> None:
    orders, customers, sink = unique_topic("orders"), unique_topic("customers"), unique_topic("order_names")
    service_id = f"lease_{uuid.uuid4().hex[:10]}_"
    sql = write_sql(tmp_path, "fk", (
        "SET 'auto.offset.reset'='earliest';\n"
        "SET 'processing.guarantee'='exactly_once';\n"
        f"CREATE TABLE orders (id STRING PRIMARY KEY, customer_id STRING, amount INT) WITH (kafka_topic='{orders}', "
        f"value_format='JSON', partitions={PARTITIONS});\n"
        f"CREATE TABLE customers (id STRING PRIMARY KEY, name STRING) WITH (kafka_topic='{customers}', "
        "value_format='JSON', partitions=3);\n"
        f"CREATE TABLE order_names WITH (kafka_topic='{sink}') AS\n"
        "  SELECT o.id, o.amount, c.name FROM orders o JOIN customers c ON o.customer_id = c.id;\n"
    ))
    customer_count, order_count = 10, 200
    produce_json(broker, customers, [(f"c{i}", {"NAME": f"name{i}"}, 1_000) for i in range(customer_count)],
                 partitions=3)
    produce_json(broker, orders, [(f"o{i}", {"CUSTOMER_ID": f"c{i % customer_count}", "AMOUNT": i}, 2_000)
                                  for i in range(order_count)], partitions=PARTITIONS)

    def start(name: str) -> KsqlpyRun:
        return KsqlpyRun(sql, broker, service_id, "--verbose", "-p", f"ksql.streams.state.dir={tmp_path / name}")

    def latest(records: list[ConsumedRecord]) -> dict[str, str | None]:
        return {str(r.key_text): None if r.value is None else r.json_value["NAME"] for r in records}

    first = start("first")
    second: KsqlpyRun | None = None
    try:
        wait_until(lambda: len(latest(consume_all(broker, sink, idle=1.0))) == order_count, timeout=60,
                   message=f"the first process to join every order\n{first.describe()}")
        second = start("second")
        runs = (first, second)

        def holder_and_standby() -> tuple[KsqlpyRun, KsqlpyRun] | None:
            held = [LEASED.findall(run.stderr)[-1:] for run in runs]
            if held in ([["0, 1, 2, 3"], [""]], [[""], ["0, 1, 2, 3"]]):
                return (first, second) if held[0] == ["0, 1, 2, 3"] else (second, first)
            return None

        holder, standby = wait_until(holder_and_standby, timeout=40, message="one process holding the lease, "
                                     f"the other standing by\n{first.describe()}\n{second.describe()}")
        # Renaming a customer updates every order pointing at it; half the orders move to another customer.
        produce_json(broker, customers, [("c1", {"NAME": "renamed"}, 3_000)], partitions=3)
        produce_json(broker, orders, [(f"o{i}", {"CUSTOMER_ID": "c1", "AMOUNT": i}, 3_000)
                                      for i in range(0, order_count, 2)], partitions=PARTITIONS)
        # Stopped, not killed: a killed holder's lease waits for the broker to expire its session, which the
        # shared test broker did not always do within the test's time (kill -9 recovery of joins is tested above).
        assert holder.stop() == 0, holder.describe()
        produce_json(broker, customers, [("c3", {"NAME": "late"}, 4_000)], partitions=3)
        expected = {f"o{i}": "renamed" if i % 2 == 0 or i % customer_count == 1 else
                    "late" if i % customer_count == 3 else f"name{i % customer_count}" for i in range(order_count)}
        wait_until(lambda: latest(consume_all(broker, sink, idle=1.0)) == expected, timeout=90,
                   message=f"every order joined by the survivor\n{standby.describe()}")
        assert standby.stop() == 0, standby.describe()
    finally:
        first.ensure_stopped()
        if second is not None:
            second.ensure_stopped()
    assert LEASED.findall(standby.stderr)[-1] == "0, 1, 2, 3"  # it took over every partition
    assert f"{consumer_group_id(service_id, 'CTAS_ORDER_NAMES_0')}-lease" in topics_named(broker)
