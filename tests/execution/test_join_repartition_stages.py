"""A join not on its inputs' keys, run in stages as on Kafka (each re-keyed stream side written to its
repartition topic by process_rekey, the join reading those topics and the keyed sides' topics), writes what
the same query writes when its rows are placed by their join key in process: the same records, in the
partition their key hashes to."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from stateful_driving import driver

from ksqlpy.execution.partitioning import partition_for
from ksqlpy.execution.pipeline import OutputBatch, Pipeline, Record, RecordBatch
from ksqlpy.state.memory import InMemoryStoreProvider

PARTITIONS = 3
# (sink key, sink value, timestamp, partition) of each record a query writes
Written = tuple[bytes | None, bytes | None, int, int]
# (topic, key, value, timestamp): records in the order they are written
Sent = tuple[str, Any, Any, int]

SOURCES = (
    "CREATE STREAM readings (reading_id STRING KEY, car_id STRING, speed INT) WITH (kafka_topic='readings', "
    f"value_format='JSON', partitions={PARTITIONS});",
    "CREATE TABLE cars (id STRING PRIMARY KEY, model STRING) WITH (kafka_topic='cars', value_format='JSON', "
    f"partitions={PARTITIONS});",
    "CREATE STREAM alerts (alert_id STRING KEY, car_id STRING, level INT) WITH (kafka_topic='alerts', "
    f"value_format='JSON', partitions={PARTITIONS});",
)
QUERIES = {
    "stream-table on a value column": "CREATE STREAM o AS SELECT r.car_id, r.speed, c.model FROM readings r "
                                      "JOIN cars c ON r.car_id = c.id;",
    "left stream-table": "CREATE STREAM o AS SELECT r.car_id, r.speed, c.model FROM readings r "
                         "LEFT JOIN cars c ON r.car_id = c.id;",
    "stream-table on an expression": "CREATE STREAM o AS SELECT c.id, r.speed, c.model FROM readings r "
                                     "JOIN cars c ON UCASE(r.car_id) = c.id;",
    "stream-stream, both re-keyed": "CREATE STREAM o AS SELECT r.car_id, r.speed, a.level FROM readings r "
                                    "JOIN alerts a WITHIN 5 SECONDS ON r.car_id = a.car_id;",
    "outer stream-stream": "CREATE STREAM o AS SELECT ROWKEY, r.speed, a.level FROM readings r "
                           "FULL OUTER JOIN alerts a WITHIN 5 SECONDS ON r.car_id = a.car_id;",
    "one side keyed": "CREATE STREAM o AS SELECT a.alert_id, r.speed, a.level FROM readings r "
                      "JOIN alerts a WITHIN 5 SECONDS ON r.car_id = a.alert_id;",
}


def traffic() -> list[Sent]:
    """Cars (some updated, one deleted), readings with and without a car (one NULL), alerts; times mostly rising."""
    sent: list[Sent] = [("cars", f"car{i}", {"MODEL": f"m{i}"}, 1_000) for i in range(5)]
    sent += [("cars", "CAR1", {"MODEL": "loud"}, 1_000)]
    for i in range(40):
        car = None if i == 17 else f"car{i % 6}"
        sent.append(("readings", f"reading{i}", {"CAR_ID": car, "SPEED": i}, 2_000 + 500 * i))
        if i % 4 == 0:
            alert_id = f"car{i % 6}" if i % 8 == 0 else f"alert{i}"  # some keyed by the car they are about
            sent.append(("alerts", alert_id, {"CAR_ID": f"car{i % 6}", "LEVEL": i}, 2_000 + 500 * i + 300))
        if i == 20:
            sent += [("cars", "car2", None, 12_000), ("cars", "car3", {"MODEL": "m3b"}, 12_000)]
    return sent


def written(output: OutputBatch) -> list[Written]:
    return list(zip(output.keys, output.values, output.timestamps, output.partitions, strict=True))


class Topic:
    """One topic's records per partition, each read once."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.records: list[list[Record]] = [[] for _ in range(PARTITIONS)]
        self.read = [0] * PARTITIONS

    def write(self, records: Sequence[Record]) -> None:
        for record in records:
            record.offset = len(self.records[record.partition])
            record.topic = self.name
            self.records[record.partition].append(record)

    def unread(self) -> list[RecordBatch]:
        batches = [RecordBatch.of(records[start:]) for records, start in zip(self.records, self.read, strict=True)]
        self.read = [len(records) for records in self.records]
        return [batch for batch in batches if len(batch)]


def record(topic: str, key: Any, value: Any, timestamp: int) -> Record:
    key_bytes = None if key is None else key.encode()
    return Record(key_bytes, None if value is None else orjson.dumps(value), timestamp, topic=topic,
                  partition=0 if key_bytes is None else partition_for(key_bytes, PARTITIONS))


def run_both_ways(query_text: str) -> tuple[list[Written], list[Written], Pipeline]:
    made = driver(*SOURCES, query_text)
    (query,) = made.engine.queries.values()
    one_pass = Pipeline(query.plan, lambda *_: None, query.sink, stores=InMemoryStoreProvider(), default_cache_bytes=0)
    rekeying = Pipeline(query.plan, lambda *_: None, query.sink, stores=InMemoryStoreProvider(), default_cache_bytes=0)
    joining = rekeying.staged(lambda name: f"rep-{name}")
    rekeyed = {repartition.topic: repartition.name for repartition in rekeying.join_repartitions}
    assert rekeyed, "the query goes through repartition topics"
    topics = {name: Topic(name) for name in ("readings", "cars", "alerts", *(f"rep-{n}" for n in rekeyed.values()))}
    expected: list[Written] = []
    actual: list[Written] = []
    for topic_name, key, value, timestamp in traffic():
        sent = record(topic_name, key, value, timestamp)
        topics[topic_name].write([sent])
        expected += written(one_pass.process(RecordBatch.of([sent])))
        (batch,) = topics[topic_name].unread()
        if topic_name in rekeyed:
            repartition = topics[f"rep-{rekeyed[topic_name]}"]
            repartition.write(rekeying.process_rekey(rekeyed[topic_name], batch).records())
            for moved in repartition.unread():
                actual += written(joining.process(moved))
        elif topic_name in {"readings", "cars", "alerts"}:
            actual += written(joining.process(batch))
    return expected, actual, rekeying


@pytest.mark.parametrize("query_text", QUERIES.values(), ids=list(QUERIES))
def test_the_staged_join_writes_what_the_join_in_process_writes(query_text: str) -> None:
    expected, actual, _ = run_both_ways(query_text)
    assert expected  # the query wrote something to compare
    assert actual == expected


def test_each_repartition_record_goes_where_its_join_key_hashes_among_the_partitions() -> None:
    made = driver(*SOURCES, QUERIES["stream-table on a value column"])
    (query,) = made.engine.queries.values()
    pipeline = Pipeline(query.plan, lambda *_: None, query.sink, stores=InMemoryStoreProvider())
    (repartition,) = pipeline.join_repartitions
    assert (repartition.name, repartition.topic, repartition.partitions) == ("Join-left", "readings", PARTITIONS)
    batch = RecordBatch.of([record("readings", f"reading{i}", {"CAR_ID": f"car{i}", "SPEED": i}, i) for i in range(9)])
    output = pipeline.process_rekey("Join-left", batch)
    # keyed as the cars table's records are (KAFKA format strings), so each lands with its car's row
    assert output.keys == [f"car{i}".encode() for i in range(9)]
    assert output.partitions == [partition_for(f"car{i}".encode(), PARTITIONS) for i in range(9)]
    assert output.timestamps == list(range(9))


def test_a_join_on_both_keys_needs_no_repartition_topic() -> None:
    made = driver(*SOURCES, "CREATE STREAM o AS SELECT r.reading_id, c.model FROM readings r "
                            "JOIN cars c ON r.reading_id = c.id;")
    (query,) = made.engine.queries.values()
    assert query.pipeline.join_repartitions == []


def test_an_integer_join_key_is_written_as_the_tables_integer_keys_are() -> None:
    made = driver(
        "CREATE STREAM trips (trip_id STRING KEY, driver_id BIGINT) WITH (kafka_topic='trips', value_format='JSON', "
        "partitions=4);",
        "CREATE TABLE drivers (id BIGINT PRIMARY KEY, name STRING) WITH (kafka_topic='drivers', value_format='JSON', "
        "partitions=4);",
        "CREATE STREAM o AS SELECT d.id, d.name FROM trips t JOIN drivers d ON t.driver_id = d.id;")
    (query,) = made.engine.queries.values()
    pipeline = Pipeline(query.plan, lambda *_: None, query.sink, stores=InMemoryStoreProvider())
    batch = RecordBatch.of([Record(b"t", orjson.dumps({"DRIVER_ID": n}), 1, topic="trips") for n in (1, 7, 300)])
    output = pipeline.process_rekey("Join-left", batch)
    # a BIGINT key in the KAFKA format is 8 big-endian bytes: the driver's records hash from those
    assert output.keys == [n.to_bytes(8, "big") for n in (1, 7, 300)]
    assert output.partitions == [partition_for(n.to_bytes(8, "big"), 4) for n in (1, 7, 300)]


def test_a_repartition_record_that_is_not_a_row_is_logged_and_the_others_joined() -> None:
    made = driver(*SOURCES, QUERIES["stream-table on a value column"])
    (query,) = made.engine.queries.values()
    logged: list[tuple[int | None, str]] = []

    def log(record: Record | None, reason: str, level: str = "ERROR") -> None:
        logged.append((None if record is None else record.offset, reason))

    rekeying = Pipeline(query.plan, log, query.sink, stores=InMemoryStoreProvider(), default_cache_bytes=0)
    joining = rekeying.staged(lambda name: f"rep-{name}")
    joining.process(RecordBatch.of([record("cars", "car1", {"MODEL": "m1"}, 1)]))
    good = rekeying.process_rekey("Join-left", RecordBatch.of(
        [record("readings", "r1", {"CAR_ID": "car1", "SPEED": 7}, 2)])).records()
    topic = Topic("rep-Join-left")
    topic.write([Record(b"car1", b"not a row", 2, partition=good[0].partition), *good])
    (batch,) = topic.unread()
    joined = written(joining.process(batch))
    assert [orjson.loads(value or b"null") for _key, value, _time, _partition in joined] == \
        [{"SPEED": 7, "MODEL": "m1"}]
    assert [(offset, reason.split(":")[0]) for offset, reason in logged] == \
        [(0, "Failed to deserialize repartition record")]
