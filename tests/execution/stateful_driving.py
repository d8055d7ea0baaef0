"""Driving stateful queries through the in-memory driver with JSON records, and reading their output back."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from ksqlpy.driver import InMemoryDriver
from ksqlpy.functions.registry import FunctionRegistry
from ksqlpy.functions.udf import declarations_of

# An output record as the tests compare it: decoded key, decoded value (None for a tombstone), timestamp,
# and the window (start, end, 'time'|'session') of a windowed key.
Output = tuple[Any, Any, int]
WindowedOutput = tuple[Any, Any, int, tuple[int, int, str] | None]


def driver(*statements: str, properties: Mapping[str, Any] | None = None,
           user_aggregates: Iterable[type] = ()) -> InMemoryDriver:
    """A driver, knowing the @udaf classes given, that has executed the statements."""
    registry = FunctionRegistry.with_builtins()
    for declared in user_aggregates:
        for overload in declarations_of(declared):
            registry.add(overload)
    made = InMemoryDriver(properties, registry)
    for statement in statements:
        made.execute(statement)
    return made


def encoded(document: Any) -> bytes | None:
    return None if document is None else orjson.dumps(document)


def send(made: InMemoryDriver, topic: str, records: Iterable[tuple[Any, Any, int]], partition: int = 0) -> None:
    """Produce (key, value, timestamp) records as JSON documents (None stays a NULL key or value), then
    run the queries over them."""
    for key, value, timestamp in records:
        made.produce(topic, encoded(key), encoded(value), timestamp, partition=partition)
    made.process()


def decoded(raw: bytes | None) -> Any:
    return None if raw is None else orjson.loads(raw)


def outputs(made: InMemoryDriver, topic: str) -> list[Output]:
    """The topic's records as (key, value, timestamp)."""
    return [(decoded(r.key), decoded(r.value), r.timestamp) for r in made.records(topic)]


def windowed_outputs(made: InMemoryDriver, topic: str) -> list[WindowedOutput]:
    """The topic's records as (key, value, timestamp, window)."""
    return [(decoded(r.key), decoded(r.value), r.timestamp, r.window) for r in made.records(topic)]


def late_records(made: InMemoryDriver) -> int:
    """Records the driver's queries dropped because their window had closed."""
    return sum(query.pipeline.late_records for query in made.engine.queries.values())


def log_reasons(made: InMemoryDriver) -> list[str]:
    return [entry["reason"] for entry in made.processing_log]
