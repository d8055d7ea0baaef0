"""A fake in-memory driver for the test tools' own tests: `COPY src TO dst` copies records, upper-casing fields."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from ksqlpy.errors import StatementError


@dataclass(frozen=True)
class FakeTopicRecord:
    key: bytes | None
    value: bytes | None
    timestamp: int
    headers: tuple[tuple[str, bytes | None], ...] = ()
    window: tuple[int, int, str] | None = None


class FakeJsonSerde:
    format_name = "JSON"

    def from_logical(self, logical: Any) -> bytes | None:
        return json.dumps(logical, default=str).encode()

    def to_logical(self, payload: bytes | None) -> Any:
        return None if payload is None else json.loads(payload)


class FakeKafkaStringSerde:
    format_name = "KAFKA"

    def from_logical(self, logical: Any) -> bytes | None:
        return str(logical).encode()

    def to_logical(self, payload: bytes | None) -> Any:
        return None if payload is None else payload.decode()


class FakeDriver:
    """Statements: `COPY a TO b` (a query), `FAIL msg` (StatementError), `CRASH` (a bug), `HANG`,
    `LOG msg` (process() logs msg to the processing log), `RAW 1.50` (process() writes the JSON text
    1.50 verbatim to topic RAW)."""

    def __init__(self, properties: dict[str, object] | None = None) -> None:
        self.properties = dict(properties or {})
        self.copies: list[tuple[str, str]] = []
        self.topics: dict[str, list[FakeTopicRecord]] = {}
        self.processing_log: list[dict[str, Any]] = []
        self.log_messages: list[str] = []
        self.raw_texts: list[str] = []

    def execute(self, sql: str) -> list[object]:
        for statement in filter(None, (s.strip() for s in sql.split(";"))):
            words = statement.split()
            if words[0] == "COPY":
                self.copies.append((words[1], words[3]))
            elif words[0] == "FAIL":
                raise StatementError(statement[5:])
            elif words[0] == "CRASH":
                raise ZeroDivisionError("division by zero")
            elif words[0] == "HANG":
                while True:
                    time.sleep(0.01)
            elif words[0] == "LOG":
                self.log_messages.append(statement[4:])
            elif words[0] == "RAW":
                self.raw_texts.append(statement[4:])
        return []

    def produce(self, topic: str, key: bytes | None, value: bytes | None, timestamp: int,
                headers: Sequence[tuple[str, bytes | None]] = (), partition: int | None = None, *,
                window: tuple[int, int, str] | None = None) -> None:
        self.topics.setdefault(topic, []).append(FakeTopicRecord(key, value, timestamp, tuple(headers), window))

    def process(self) -> None:
        for source, sink in self.copies:
            for record in self.topics.get(source, []):
                value = None if record.value is None else {
                    name.upper(): field for name, field in json.loads(record.value).items()}
                encoded = None if value is None else json.dumps(value).encode()
                self.topics.setdefault(sink, []).append(
                    FakeTopicRecord(record.key, encoded, record.timestamp, record.headers, record.window))
        for text in self.raw_texts:
            self.topics.setdefault("RAW", []).append(FakeTopicRecord(None, text.encode(), 0))
        for message in self.log_messages:
            self.processing_log.append({"query_id": "Q1", "topic": "t", "partition": 0, "offset": 0,
                                        "reason": message})

    def records(self, topic: str) -> list[FakeTopicRecord]:
        return list(self.topics.get(topic, []))

    def serdes_for_topic(self, topic: str) -> tuple[Any, Any] | None:
        declared = {name for pair in self.copies for name in pair} | ({"RAW"} if self.raw_texts else set())
        return (FakeKafkaStringSerde(), FakeJsonSerde()) if topic in declared else None


@pytest.fixture
def fake_driver(monkeypatch: pytest.MonkeyPatch) -> type[FakeDriver]:
    """Makes the runners use FakeDriver instead of the engine."""
    from ksqlpy.testing import conformance, runner

    monkeypatch.setattr(runner, "in_memory_driver", FakeDriver)
    monkeypatch.setattr(conformance, "in_memory_driver_with_test_functions", FakeDriver)
    return FakeDriver
