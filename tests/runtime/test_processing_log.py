"""Processing-log entries: where the record was, how big it is, and a bounded preview of it."""

from __future__ import annotations

import logging
import uuid

import orjson
import pytest
from confluent_kafka import Producer

from ksqlpy.execution.pipeline import Record
from ksqlpy.runtime import processing_log
from ksqlpy.runtime.processing_log import PREVIEW_BYTES, REASON_CHARS, processing_log_entry


def test_an_entry_names_the_record_and_its_size_and_quotes_only_its_start() -> None:
    value = b'{"A":"' + b"x" * 5_000_000 + b'"}'
    record = Record(b"k\xff", value, 5, partition=2, offset=41, topic="orders")
    entry = processing_log_entry("Q1", "source", record, "Failed to deserialize: " + "y" * 100_000)

    assert (entry["query_id"], entry["topic"], entry["partition"], entry["offset"]) == ("Q1", "orders", 2, 41)
    assert entry["size"] == len(value) + 2
    assert entry["key"] == "k\\xff"
    preview = str(entry["value"])
    assert preview.startswith('{"A":"xxx') and preview.endswith(f"... ({len(value)} bytes)")
    assert len(preview) < PREVIEW_BYTES + 40
    assert len(str(entry["reason"])) < REASON_CHARS + 40
    assert len(orjson.dumps(entry)) < 3 * PREVIEW_BYTES + REASON_CHARS


def test_an_entry_without_a_record_names_the_query_topic() -> None:
    entry = processing_log_entry("Q1", "source", None, "boom")
    assert (entry["topic"], entry["partition"], entry["offset"], entry["size"], entry["value"]) == (
        "source", None, None, None, None
    )


def test_a_burst_of_bad_records_is_one_console_line_per_kind_of_failure(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=processing_log.logger.name)
    query = f"Q_{uuid.uuid4().hex}"  # the filter is process-wide: no other test's lines look like these
    for offset in range(2000):
        processing_log.logger.warning(
            "query %s, topic %s, partition %s, offset %s, %s bytes: %s", query, "src", 0, offset, 10,
            f"Failed to deserialize the record at offset {offset}: Invalid JSON",
        )
    processing_log.logger.warning("query %s, topic %s, partition %s, offset %s, %s bytes: %s", query, "src", 0, 1, 10,
                                  "Error computing expression: division by zero")

    lines = [record.getMessage() for record in caplog.records]
    assert lines == [
        f"processing log: query {query}, topic src, partition 0, offset 0, 10 bytes: "
        "Failed to deserialize the record at offset 0: Invalid JSON",
        f"processing log: query {query}, topic src, partition 0, offset 1, 10 bytes: "
        "Error computing expression: division by zero",
    ]


def test_a_debug_entry_goes_to_the_topic_but_not_to_the_console(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=processing_log.logger.name)
    producer = Producer({"bootstrap.servers": "127.0.0.1:1", "message.timeout.ms": 1000})
    created: list[str] = []
    log = processing_log.ProcessingLog(producer, lambda name, _partitions: created.append(name))
    late = processing_log_entry("Q_late", "src", None, "Record dropped: it arrived after its window closed", "DEBUG")
    log.write(late)
    log.write(processing_log_entry("Q_late", "src", None, "Failed to deserialize record"))
    assert late["level"] == "DEBUG"
    assert [r.getMessage().split(": ")[-1] for r in caplog.records] == ["Failed to deserialize record"]
    assert len(producer) == 2 and created == [processing_log.PROCESSING_LOG_TOPIC]  # both entries are produced
