"""Records that break a batch in unexpected ways are narrowed down to themselves: logged once, the rest written."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import orjson
import pytest

from ksqlpy.driver import InMemoryDriver
from ksqlpy.errors import StatementError
from ksqlpy.execution.pipeline import Pipeline, Record, RecordBatch, StopOnRecord

CREATE_SOURCE = "CREATE STREAM src (id STRING KEY, n INT, s STRING) WITH (kafka_topic='src', value_format='JSON');"


def driver_with_query(*settings: str) -> tuple[InMemoryDriver, Pipeline]:
    driver = InMemoryDriver()
    driver.execute(CREATE_SOURCE)
    for setting in settings:
        driver.execute(setting)
    [result] = driver.execute("CREATE STREAM out AS SELECT id, n, s FROM src;")
    assert result.query_id is not None
    return driver, driver.engine.queries[result.query_id].pipeline


def feed(driver: InMemoryDriver, payloads: Sequence[bytes]) -> list[Any]:
    for index, payload in enumerate(payloads):
        driver.produce("src", f"k{index}".encode(), payload, index)
    driver.process()
    return [orjson.loads(record.value or b"null")["N"] for record in driver.records("OUT")]


def row(n: int, s: str = "fine") -> bytes:
    return orjson.dumps({"N": n, "S": s})


def break_the_encoder_on(pipeline: Pipeline, poison: str) -> None:
    """A sink serde that raises an exception nobody expects (as a library bug would) for one value."""
    serde = pipeline.sink_value_serde
    serialize_columns, serialize = serde.serialize_columns, serde.serialize

    def columns_or_crash(columns: Sequence[Sequence[Any]], size: int) -> list[bytes | None]:
        if any(poison == value for column in columns for value in column):
            raise RuntimeError("the encoder broke")
        return serialize_columns(columns, size)

    def row_or_crash(values: Sequence[Any] | None) -> bytes | None:
        if values is not None and poison in values:
            raise RuntimeError("the encoder broke")
        return serialize(values)

    serde.serialize_columns = columns_or_crash  # type: ignore[method-assign]
    serde.serialize = row_or_crash  # type: ignore[method-assign]


def test_an_unexpected_error_is_narrowed_to_the_record_that_raises_it() -> None:
    driver, pipeline = driver_with_query()
    break_the_encoder_on(pipeline, "poison")
    payloads = [row(0), b"{not json", *(row(n) for n in range(2, 9)), row(9, "poison"), row(10)]

    assert feed(driver, payloads) == [0, *range(2, 9), 10]
    entries = [(entry["offset"], entry["reason"]) for entry in driver.processing_log]
    # the undecodable record is logged once, although its batch was retried in parts
    assert entries == [
        (1, entries[0][1]),
        (9, "Error processing record: RuntimeError: the encoder broke"),
    ]
    assert "Failed to deserialize" in entries[0][1]


def test_a_batch_of_only_poison_writes_nothing_and_logs_each_record() -> None:
    driver, pipeline = driver_with_query()
    break_the_encoder_on(pipeline, "poison")
    assert feed(driver, [row(n, "poison") for n in range(5)]) == []
    assert [entry["offset"] for entry in driver.processing_log] == [0, 1, 2, 3, 4]


def test_fail_on_deserialization_error_stops_the_query_after_logging_the_record() -> None:
    driver, _pipeline = driver_with_query("SET 'ksql.fail.on.deserialization.error'='true';")
    with pytest.raises(StopOnRecord, match=r"Failed to deserialize the record at src partition 0 offset 1 "):
        feed(driver, [row(0), b"{not json", row(2)])
    assert [entry["offset"] for entry in driver.processing_log] == [1]


def test_deserialization_errors_are_logged_and_skipped_by_default() -> None:
    driver, _pipeline = driver_with_query("SET 'ksql.fail.on.deserialization.error'='false';")
    assert feed(driver, [row(0), b"{not json", row(2)]) == [0, 2]


@pytest.mark.parametrize("name", ["ksql.fail.on.deserialization.error", "ksql.fail.on.production.error"])
def test_fail_on_settings_take_true_or_false(name: str) -> None:
    driver = InMemoryDriver()
    driver.execute(CREATE_SOURCE)
    driver.execute(f"SET '{name}'='sometimes';")
    with pytest.raises(StatementError, match=re.escape(f"Invalid value for {name}: 'sometimes'")):
        driver.execute("CREATE STREAM out AS SELECT id, n FROM src;")
    assert driver.engine.queries == {}


def test_push_query_rows_are_narrowed_to_the_record_that_raises() -> None:
    driver, pipeline = driver_with_query()
    decode = pipeline.decoder.decode

    def decode_or_crash(batch: RecordBatch) -> list[list[Any]]:
        if any(b"poison" in (value or b"") for value in batch.values):
            raise RuntimeError("the decoder broke")
        return decode(batch)

    pipeline.decoder.decode = decode_or_crash  # type: ignore[method-assign]
    payloads = [row(0), row(1, "poison"), row(2), row(3)]
    batch = RecordBatch.of([Record(b"k", payload, 0, offset=offset) for offset, payload in enumerate(payloads)])

    columns, tombstones = pipeline.rows(batch)

    assert columns[1] == [0, 2, 3]
    assert tombstones == [False, False, False]
    assert [(entry["offset"], entry["reason"]) for entry in driver.processing_log] == [
        (1, "Error processing record: RuntimeError: the decoder broke")
    ]
