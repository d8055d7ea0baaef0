"""How an at-least-once worker settles its deliveries, without a broker: records lost on the way are produced
again and nothing is committed; records the broker refused for good are logged and the offsets committed
(unless ksql.fail.on.production.error says to stop). Tansu takes records of any size, so the broker's own
refusals are reproduced here with stand-in clients."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, Message, TopicPartition

from ksqlpy.driver import InMemoryDriver
from ksqlpy.runtime.clients import KafkaClients
from ksqlpy.runtime.config import RuntimeConfig
from ksqlpy.runtime.worker import QueryFailure, QueryWorker, TransientFailure


class AcknowledgingProducer:
    def flush(self, _timeout: float) -> int:
        return 0


class RecordingConsumer:
    def __init__(self) -> None:
        self.seeks: list[tuple[int, int]] = []

    def seek(self, partition: TopicPartition) -> None:
        self.seeks.append((partition.partition, partition.offset))


def settling_worker(*settings: str) -> tuple[QueryWorker, InMemoryDriver, RecordingConsumer]:
    driver = InMemoryDriver(dict(setting.split("=", 1) for setting in settings))
    driver.execute("CREATE STREAM src (id STRING KEY, n INT) WITH (kafka_topic='src', value_format='JSON');")
    [result] = driver.execute("CREATE STREAM out AS SELECT id, n FROM src;")
    assert result.query_id is not None
    worker = QueryWorker(driver.engine.queries[result.query_id],
                         KafkaClients(RuntimeConfig(bootstrap_servers="127.0.0.1:9")), "svc_", {})
    consumer = RecordingConsumer()
    worker._producer = AcknowledgingProducer()  # type: ignore[assignment]
    worker._consumer = consumer  # type: ignore[assignment]
    worker._unsettled_starts.update({("src", 0): 10})
    worker._unsettled_ends.update({("src", 0): 20})
    return worker, driver, consumer


def failure(code: int, partition: int = 1) -> tuple[KafkaError, Any]:
    return KafkaError(code), Message(topic="OUT", partition=partition, key=b"k", value=b"v" * 100)


def test_records_the_broker_refuses_are_logged_and_the_offsets_committed() -> None:
    worker, driver, consumer = settling_worker()
    worker._unsettled_failures.append([failure(KafkaError.MSG_SIZE_TOO_LARGE, partition=3)])
    worker._settle()
    assert worker._pending_commit == {("src", 0): 20}
    assert consumer.seeks == []
    [entry] = driver.processing_log
    assert entry["partition"] == 3
    assert entry["reason"].startswith("Failed to produce a record of 101 bytes to OUT: ")


def test_records_lost_on_the_way_are_produced_again_and_nothing_committed() -> None:
    worker, driver, consumer = settling_worker()
    worker._unsettled_failures.append([failure(KafkaError._MSG_TIMED_OUT), failure(KafkaError.MSG_SIZE_TOO_LARGE)])
    with pytest.raises(TransientFailure, match="1 records not delivered to OUT"):
        worker._settle()
    assert worker._pending_commit == {}
    assert consumer.seeks == [(0, 10)]
    assert driver.processing_log == []  # the refused record is logged when the batch settles


def test_fail_on_production_error_stops_without_committing() -> None:
    worker, driver, consumer = settling_worker("ksql.fail.on.production.error=true")
    worker._unsettled_failures.append([failure(KafkaError.MSG_SIZE_TOO_LARGE)])
    with pytest.raises(QueryFailure, match=r"to OUT: .*\(ksql\.fail\.on\.production\.error=true\)"):
        worker._settle()
    assert worker._pending_commit == {}
    assert consumer.seeks == [(0, 10)]
    assert driver.processing_log == []
