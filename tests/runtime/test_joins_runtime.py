"""Joins on the embedded broker: a query reading two co-partitioned topics through one consumer group, its
join state durable (restored after kill -9), and push queries over joins."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from app_process import KsqlpyRun, write_sql

from ksqlpy.runtime.app import KsqlpyApp
from ksqlpy.runtime.config import RuntimeConfig
from ksqlpy.runtime.tools import ConsumedRecord

PARTITIONS = 2


def service() -> str:
    return f"join_{uuid.uuid4().hex[:10]}_"


def make_app(broker: str, tmp_path: Path, **properties: str) -> KsqlpyApp:
    config = RuntimeConfig(bootstrap_servers=broker, service_id=service(), properties={
        "auto.offset.reset": "earliest", "ksql.streams.state.dir": str(tmp_path), **properties})
    return KsqlpyApp(config, status=io.StringIO()).start()


def enrichment_sql(readings: str, cars: str, sink: str) -> str:
    return (
        f"CREATE STREAM readings (car STRING KEY, speed INT) WITH (kafka_topic='{readings}', value_format='JSON', "
        f"partitions={PARTITIONS});\n"
        f"CREATE TABLE cars (car STRING PRIMARY KEY, model STRING) WITH (kafka_topic='{cars}', value_format='JSON', "
        f"partitions={PARTITIONS});\n"
        f"CREATE STREAM enriched WITH (kafka_topic='{sink}') AS\n"
        "  SELECT r.car AS car, r.speed, c.model FROM readings r JOIN cars c ON r.car = c.car;\n"
    )


def rows(records: list[ConsumedRecord]) -> list[tuple[str | None, Any]]:
    return [(record.key_text, record.json_value) for record in records]


def test_a_stream_table_join_enriches_readings_from_both_partitions_of_its_table(
    broker: str, tmp_path: Path, unique_topic: Callable[..., str], produce_json: Callable[..., None],
    consume_all: Callable[..., list[ConsumedRecord]],
) -> None:
    readings, cars, sink = unique_topic("readings"), unique_topic("cars"), unique_topic("enriched")
    produce_json(broker, cars, [(f"car{i}", {"MODEL": f"model{i}"}, 1_000) for i in range(6)], partitions=PARTITIONS)
    produce_json(broker, readings, [(f"car{i}", {"SPEED": 10 * i}, 2_000) for i in range(8)], partitions=PARTITIONS)
    with make_app(broker, tmp_path) as app:
        app.execute(enrichment_sql(readings, cars, sink))
        output = consume_all(broker, sink, expected_count=6, timeout=30)
        # cars 6 and 7 have no row in the table: an inner join drops them
        assert sorted(rows(output), key=str) == sorted(
            [(f"car{i}", {"SPEED": 10 * i, "MODEL": f"model{i}"}) for i in range(6)], key=str)
        # a later table update changes what later readings are joined with; a deleted car is not joined at all
        produce_json(broker, cars, [("car1", {"MODEL": "facelift"}, 3_000), ("car2", None, 3_000)],
                     partitions=PARTITIONS)
        consume_all(broker, sink, expected_count=6, timeout=5)
        produce_json(broker, readings, [("car1", {"SPEED": 99}, 4_000), ("car2", {"SPEED": 98}, 4_000)],
                     partitions=PARTITIONS)
        output = consume_all(broker, sink, expected_count=7, timeout=30)
    assert ("car1", {"SPEED": 99, "MODEL": "facelift"}) in rows(output)
    assert len(output) == 7  # car2's reading found no car


def test_a_stream_stream_join_pairs_records_within_its_window(
    broker: str, tmp_path: Path, unique_topic: Callable[..., str], produce_json: Callable[..., None],
    consume_all: Callable[..., list[ConsumedRecord]],
) -> None:
    clicks, views, sink = unique_topic("clicks"), unique_topic("views"), unique_topic("clicked_views")
    produce_json(broker, views, [("u1", {"PAGE": "home"}, 10_000), ("u2", {"PAGE": "cart"}, 10_000)])
    produce_json(broker, clicks, [("u1", {"BUTTON": "buy"}, 12_000), ("u2", {"BUTTON": "pay"}, 90_000)])
    with make_app(broker, tmp_path) as app:
        app.execute(
            f"CREATE STREAM views (user STRING KEY, page STRING) WITH (kafka_topic='{views}', value_format='JSON');"
            f"CREATE STREAM clicks (user STRING KEY, button STRING) WITH (kafka_topic='{clicks}', value_format='JSON');"
            f"CREATE STREAM clicked_views WITH (kafka_topic='{sink}') AS SELECT v.user AS user, v.page, c.button "
            "FROM views v JOIN clicks c WITHIN 10 SECONDS ON v.user = c.user;")
        output = consume_all(broker, sink, expected_count=1, timeout=30)
        # u2's click came 80 s after the view: outside the window
        assert rows(output) == [("u1", {"PAGE": "home", "BUTTON": "buy"})]
        assert consume_all(broker, sink, idle=2.0) == output


def test_a_push_query_over_a_join_streams_its_rows(
    broker: str, tmp_path: Path, unique_topic: Callable[..., str], produce_json: Callable[..., None],
) -> None:
    readings, cars = unique_topic("readings"), unique_topic("cars")
    produce_json(broker, cars, [("car1", {"MODEL": "roadster"}, 1_000)], partitions=PARTITIONS)
    produce_json(broker, readings, [("car1", {"SPEED": 50}, 2_000), ("car9", {"SPEED": 1}, 2_000)],
                 partitions=PARTITIONS)
    with make_app(broker, tmp_path) as app:
        app.execute(enrichment_sql(readings, cars, "unused").rsplit("CREATE STREAM enriched", 1)[0])
        [result] = app.execute("SELECT r.car, r.speed, c.model FROM readings r JOIN cars c ON r.car = c.car "
                               "EMIT CHANGES LIMIT 1;")
    assert result.rows == [["car1", 50, "roadster"]]


@pytest.mark.parametrize("guarantee", ["exactly_once"])
def test_a_join_killed_mid_stream_keeps_its_table_side_through_the_changelog(
    broker: str, tmp_path: Path, guarantee: str, unique_topic: Callable[..., str],
    produce_json: Callable[..., None], consume_all: Callable[..., list[ConsumedRecord]],
    wait_until: Callable[..., Any],
) -> None:
    readings, cars, sink = unique_topic("readings"), unique_topic("cars"), unique_topic("enriched")
    sql = write_sql(tmp_path, "enrich", f"SET 'auto.offset.reset'='earliest';\n"
                    f"SET 'processing.guarantee'='{guarantee}';\n" + enrichment_sql(readings, cars, sink))
    service_id = service()
    produce_json(broker, cars, [(f"car{i}", {"MODEL": f"model{i}"}, 1_000) for i in range(10)], partitions=PARTITIONS)
    produce_json(broker, readings, [(f"car{i % 10}", {"SPEED": i}, 2_000) for i in range(500)], partitions=PARTITIONS)
    first = KsqlpyRun(sql, broker, service_id)
    try:
        assert consume_all(broker, sink, expected_count=1, timeout=30), first.describe()
    finally:
        first.kill()
    # After the crash the table topic is read no further (its offsets are committed): the cars must come back
    # from the join's changelog, or the new readings would find no car to join with.
    produce_json(broker, readings, [(f"car{i % 10}", {"SPEED": i}, 3_000) for i in range(500, 600)],
                 partitions=PARTITIONS)
    second = KsqlpyRun(sql, broker, service_id, "--until-idle", "3", "--verbose")
    assert second.wait(90) == 0, second.describe()

    def speeds() -> list[int]:
        return sorted(record.json_value["SPEED"] for record in consume_all(broker, sink, idle=1.5))

    # the killed process's open transaction hides what follows it from read_committed readers until it times out
    wait_until(lambda: len(speeds()) >= 600, timeout=40, message=f"every reading joined\n{second.describe()}")
    assert speeds() == list(range(600))
