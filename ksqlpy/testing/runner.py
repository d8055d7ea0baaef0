"""Runs one test case through the in-memory driver and judges the outcome against its expectations."""

from __future__ import annotations

import base64
import json
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from types import FrameType
from typing import Any, Protocol

from ksqlpy.errors import KsqlError
from ksqlpy.execution.partitioning import partition_for
from ksqlpy.testing.cases import Case, RecordSpec, Window
from ksqlpy.testing.compare import ActualRecord, compare_outputs, error_mismatch, topics_checked

PASS, FAIL, ERROR, SKIP = "pass", "fail", "error", "skip"
DEFAULT_TIME_LIMIT_S = 10.0

_TRANSIENT_QUERY = re.compile(r"^\s*(SELECT|PRINT)\b", re.IGNORECASE)


class Serde(Protocol):
    format_name: str

    def from_logical(self, logical: Any) -> bytes | None: ...

    def to_logical(self, payload: bytes | None) -> Any: ...


class TopicRecordLike(Protocol):
    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...

    @property
    def timestamp(self) -> int: ...

    @property
    def headers(self) -> tuple[tuple[str, bytes | None], ...]: ...

    @property
    def window(self) -> tuple[int, int, str] | None: ...


class Driver(Protocol):
    """What the runner needs of ksqlpy.driver.InMemoryDriver (fakes in tests implement the same)."""

    @property
    def processing_log(self) -> list[dict[str, Any]]: ...

    def execute(self, sql: str) -> Any: ...

    def produce(self, topic: str, key: bytes | None, value: bytes | None, timestamp: int,
                headers: Sequence[tuple[str, bytes | None]] = (), partition: int | None = None, *,
                window: tuple[int, int, str] | None = None) -> None: ...

    def process(self) -> None: ...

    def records(self, topic: str) -> Sequence[TopicRecordLike]: ...

    def serdes_for_topic(self, topic: str) -> tuple[Serde, Serde] | None: ...


DriverFactory = Callable[[dict[str, object]], Driver]


def in_memory_driver(properties: dict[str, object]) -> Driver:
    """The engine's own driver; imported late so that loading cases never needs the engine."""
    from ksqlpy.driver import InMemoryDriver

    return InMemoryDriver(properties)


@dataclass
class CaseResult:
    case: Case
    status: str  # PASS, FAIL, ERROR or SKIP
    reason: str | None = None  # one line saying why it did not pass
    details: list[str] = field(default_factory=list)  # the full diff
    error: str | None = None  # the message of the error the run raised, if any
    outputs: list[ActualRecord] = field(default_factory=list)  # produced records on the checked topics
    error_raised: bool = False  # for expected-error cases: did the run fail at all (the lenient count)
    seconds: float = 0.0
    responses: list[Any] | None = None  # REST-flavour cases: what the server answered each statement

    @property
    def passed(self) -> bool:
        return self.status == PASS


class CaseTimeout(BaseException):
    """Raised into a case that runs past its time limit; a BaseException so engine code cannot swallow it."""


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Interrupt the block with CaseTimeout after `seconds`, using SIGALRM (main thread only, else no limit)."""
    if (seconds is None or seconds <= 0 or not hasattr(signal, "setitimer")
            or threading.current_thread() is not threading.main_thread()):
        yield
        return

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise CaseTimeout(f"timed out after {seconds:g} s")

    started = time.monotonic()
    previous_handler = signal.signal(signal.SIGALRM, on_alarm)
    outer_delay, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        # Give back an enclosing alarm (pytest-timeout uses one) with the time it has left.
        if outer_delay > 0:
            signal.setitimer(signal.ITIMER_REAL, max(outer_delay - (time.monotonic() - started), 0.001))


def skip_reason(case: Case) -> str | None:
    """REST-flavour cases run here only when they need no REST server (no pull or push query)."""
    if case.suite == "rqtt" and any(_TRANSIENT_QUERY.match(s) for s in case.statements):
        return "REST-flavour case with a pull/push query: needs the REST server"
    return None


def decode_payload(serde: Serde | None, payload: bytes | None, exact: bool) -> Any:
    """Engine bytes -> the logical form test files compare against.

    JSON is decoded here rather than by the serde so floats stay exact Decimals: the comparison must see
    the text the engine wrote (2.0 vs 2.00), not a value a serde already rounded through a float.
    """
    if payload is None:
        return None
    if serde is None:
        return payload.decode("utf-8", "replace")
    if serde.format_name == "JSON":
        return json.loads(payload, parse_float=Decimal if exact else float)
    if serde.format_name == "DELIMITED":
        return payload.decode("utf-8", "replace")
    return serde.to_logical(payload)


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _written_form(serde: Serde | None, payload: bytes | None, logical: Any) -> Any:
    if payload is None:
        return None
    if serde is None or serde.format_name in ("JSON", "DELIMITED"):
        return payload.decode("utf-8", "replace")
    return _jsonable(logical)


def _encode(serde: Serde, logical: Any) -> bytes | None:
    return None if logical is None else serde.from_logical(logical)


def produce_input(driver: Driver, record: RecordSpec, partitions: int = 1) -> None:
    """Write one input record as its topic's source encodes it; over several `partitions`, in the one the
    producer's partitioner puts its key in."""
    serdes = driver.serdes_for_topic(record.topic)
    if serdes is None:
        # No source reads this topic, so nothing could consume the record.
        return
    key_serde, value_serde = serdes
    key, value = _encode(key_serde, record.key), _encode(value_serde, record.value)
    placement: dict[str, Any] = {}
    if record.window is not None:
        # Only sources declared with WINDOW_TYPE take windowed keys.
        placement["window"] = (record.window.start, record.window.end, record.window.type)
    if partitions > 1 and key is not None:
        placement["partition"] = partition_for(key, partitions)
    driver.produce(record.topic, key, value, record.timestamp or 0, record.headers, **placement)


def collect_outputs(driver: Driver, topics: Sequence[str], exact: bool) -> list[ActualRecord]:
    """Every record on the given topics, decoded with the serdes of the sources on each topic."""
    collected: list[ActualRecord] = []
    for topic in topics:
        serdes = driver.serdes_for_topic(topic)
        key_serde, value_serde = serdes if serdes is not None else (None, None)
        for record in driver.records(topic):
            key = decode_payload(key_serde, record.key, exact)
            value = decode_payload(value_serde, record.value, exact)
            collected.append(ActualRecord(
                topic=topic,
                key=key,
                value=value,
                timestamp=record.timestamp,
                window=None if record.window is None else Window(*record.window),
                headers=tuple(record.headers),
                key_format=None if key_serde is None else key_serde.format_name,
                value_format=None if value_serde is None else value_serde.format_name,
                key_written=_written_form(key_serde, record.key, key),
                value_written=_written_form(value_serde, record.value, value),
            ))
    return collected


@dataclass
class _Execution:
    failure: str | None
    outputs: list[ActualRecord]
    processing_log: list[str]


def _failure_message(error: KsqlError) -> str:
    return str(error) or type(error).__name__


def _execute(case: Case, driver_factory: DriverFactory) -> _Execution:
    try:
        driver = driver_factory(dict(case.properties))
    except KsqlError as error:  # properties the engine rejects
        return _Execution(_failure_message(error), [], [])
    failure: str | None = None
    try:
        # Statements stop at the first error; records are only produced once every statement ran.
        # ksqlDB's runner reads the statements as one script, so an error's line counts the lines before it
        lines_before = 0
        for statement in case.statements:
            driver.execute("\n" * lines_before + statement)
            lines_before += statement.count("\n") + 1
        for record in case.inputs:
            produce_input(driver, record)
        driver.process()
    except KsqlError as error:
        failure = _failure_message(error)
    outputs = collect_outputs(driver, topics_checked(case.outputs), case.exact_numeric_comparison)
    log = [str(entry.get("reason", "")) for entry in driver.processing_log]
    return _Execution(failure, outputs, log)


def _judge(case: Case, execution: _Execution, seconds: float) -> CaseResult:
    details = compare_outputs(case.outputs, execution.outputs, case.exact_numeric_comparison)
    result = CaseResult(case, PASS, error=execution.failure, outputs=execution.outputs, seconds=seconds,
                        error_raised=execution.failure is not None)
    if case.expected_error is not None:
        problem = error_mismatch(case.expected_error, execution.failure, execution.processing_log)
        if problem:
            details.insert(0, problem)
    elif execution.failure is not None:
        details.insert(0, f"unexpected error: {execution.failure}")
    if details:
        result.status, result.reason, result.details = FAIL, details[0], details
    return result


def run_case(case: Case, driver_factory: DriverFactory = in_memory_driver,
             time_limit_s: float | None = DEFAULT_TIME_LIMIT_S) -> CaseResult:
    """Run a case in a fresh driver; never raises: engine crashes and time-outs become status ERROR."""
    reason = skip_reason(case)
    if reason:
        return CaseResult(case, SKIP, reason=reason)

    def execute_and_judge() -> CaseResult:
        started = time.perf_counter()
        execution = _execute(case, driver_factory)
        return _judge(case, execution, time.perf_counter() - started)

    return guarded(case, time_limit_s, execute_and_judge)


def guarded(case: Case, time_limit_s: float | None, run: Callable[[], CaseResult]) -> CaseResult:
    """`run`'s result for the case, within the time limit; engine crashes and time-outs become status ERROR."""
    started = time.perf_counter()
    try:
        with time_limit(time_limit_s):
            return run()
    except CaseTimeout as timeout:
        return CaseResult(case, ERROR, reason=str(timeout), error=str(timeout),
                          seconds=time.perf_counter() - started)
    except Exception as error:  # an engine bug must not stop the other cases
        message = f"{type(error).__name__}: {error}"
        return CaseResult(case, ERROR, reason=f"internal error: {message}", error=message,
                          seconds=time.perf_counter() - started)


def result_to_json(result: CaseResult) -> dict[str, Any]:
    """A case's result in the `--json` report form."""
    return {
        "id": result.case.id,
        "status": result.status,
        "outputs": [{
            "topic": record.topic,
            "key": record.key_written,
            "value": record.value_written,
            "timestamp": record.timestamp,
            "window": None if record.window is None else record.window.to_json(),
            "headers": [{"key": key, "value": _jsonable(value)} for key, value in record.headers],
            "key_format": record.key_format,
            "value_format": record.value_format,
        } for record in result.outputs],
        "error": result.error,
        **({} if result.responses is None else {"responses": result.responses}),
    }

