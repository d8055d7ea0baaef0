"""Kafka clients built from one RuntimeConfig, with the defaults ksqlpy relies on.

Every client logs through the `ksqlpy.kafka` logger (librdkafka's log and its error callback alike), where
RepeatFilter keeps an outage to one line per distinct message every REPEAT_WINDOW_S. No client may create a
topic by naming it (allow.auto.create.topics=false): ksqlpy creates the topics it owns with the admin client,
with the partitions they were declared with.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from ksqlpy.errors import KsqlError
from ksqlpy.runtime.config import RuntimeConfig
from ksqlpy.secrets import redact, secret_values

Client = TypeVar("Client", Consumer, Producer, AdminClient)
PartitionId = tuple[str, int]  # (topic, partition)

# A short session timeout keeps consumer-group joins fast (seconds, not tens of seconds, on small brokers).
# Tansu does not answer a waiting fetch as soon as records arrive: with librdkafka's 500 ms fetch wait one
# hop through the embedded broker took p50 125 ms at 10k records/s, with 100 ms p50 31 ms. On Apache Kafka
# the wait only bounds how often an idle consumer asks.
CONSUMER_DEFAULTS = {
    "session.timeout.ms": "6000",
    "heartbeat.interval.ms": "1500",
    "enable.auto.commit": "false",
    "auto.offset.reset": "latest",
    "fetch.wait.max.ms": "100",
}
# murmur2 is what Java clients and Kafka Streams use, so keys land on the same partitions as ksqlDB's.
PRODUCER_DEFAULTS = {"partitioner": "murmur2_random", "linger.ms": "5"}
# A broker that auto-creates a topic gives it its default partition count (4 on Tansu), not the declared one.
NO_AUTO_CREATE = {"allow.auto.create.topics": "false"}
# How long start-up waits for a broker to answer before giving up (below 10 s, CLI start-up included).
CONNECT_TIMEOUT_S = 7.0
REPEAT_WINDOW_S = 10.0

KAFKA_LOGGER = logging.getLogger("ksqlpy.kafka")
# librdkafka's lines start "FACILITY [client name] [thrd:broker thread]: ": the client and thread say nothing
# to a user, and without them the same failure seen by several clients is one message.
_CLIENT_PREFIX = re.compile(r"^[A-Z_]+ \[[^\]]*\] (?:\[thrd:[^\]]*\]: )?")
_NUMBERS = re.compile(r"\d+")
# "GroupCoordinator: ", "127.0.0.1:9092/1: ": which connection failed, the same failure for each of them.
_CONNECTION_NAME = re.compile(r"^(?:\S+: )+")
_ATTEMPT_DETAILS = re.compile(r"\s*\(after \d+ms in state [^)]*\)")


class RepeatFilter(logging.Filter):
    """Lets a message through once per `window` seconds; the next copy to pass says how many were held back.

    Messages that differ only in numbers (timings, counts, ports) are the same message. The values of the
    secret settings registered with hide() never appear in a line.
    """

    def __init__(
        self, window: float = REPEAT_WINDOW_S, clock: Callable[[], float] = time.monotonic, label: str = "Kafka",
    ) -> None:
        super().__init__()
        self.window = window
        self.label = label
        self._clock = clock
        self._lock = threading.Lock()
        self._last_shown: dict[str, float] = {}
        self._held_back: dict[str, int] = {}
        self._secrets: set[str] = set()

    def hide(self, settings: Mapping[str, Any]) -> None:
        with self._lock:
            self._secrets |= secret_values(settings)

    def filter(self, record: logging.LogRecord) -> bool:
        text = _CLIENT_PREFIX.sub("", record.getMessage())
        key = _NUMBERS.sub("#", _CONNECTION_NAME.sub("", text))
        now = self._clock()
        with self._lock:
            if now - self._last_shown.get(key, -self.window) < self.window:
                self._held_back[key] = self._held_back.get(key, 0) + 1
                return False
            if len(self._last_shown) > 1000:  # forget messages not seen for a window
                for stale in [k for k, shown in self._last_shown.items() if now - shown >= self.window]:
                    del self._last_shown[stale]
                    self._held_back.pop(stale, None)
            self._last_shown[key] = now
            held_back = self._held_back.pop(key, 0)
            text = redact(text, self._secrets)
        if held_back:
            text += f" ({held_back} more like this in the last {self.window:g} s)"
        record.msg, record.args = f"{self.label}: %s", (text,)
        return True


REPEATS = RepeatFilter()
KAFKA_LOGGER.addFilter(REPEATS)


def report_client_error(error: KafkaError) -> None:
    """librdkafka's error callback: errors a client recovers from by itself are logged, rate limited."""
    KAFKA_LOGGER.log(logging.ERROR if error.fatal() else logging.WARNING, "%s", error.str())


def describe_error(error: BaseException) -> str:
    """The broker's words for a KafkaException, else the exception's own text."""
    if isinstance(error, KafkaException) and error.args and isinstance(error.args[0], KafkaError):
        return str(error.args[0].str())
    return str(error)


class KafkaClients:
    def __init__(self, config: RuntimeConfig) -> None:
        self.config = config
        REPEATS.hide(config.kafka)

    @classmethod
    def connected(cls, config: RuntimeConfig) -> KafkaClients:
        """Clients for a cluster that answered (see verify_connection)."""
        clients = cls(config)
        clients.verify_connection()
        return clients

    def consumer(self, group_id: str, **settings: Any) -> Consumer:
        return self._build(Consumer, {**CONSUMER_DEFAULTS, "group.id": group_id}, settings)

    def producer(self, **settings: Any) -> Producer:
        return self._build(Producer, PRODUCER_DEFAULTS, settings)

    def admin(self) -> AdminClient:
        return self._build(AdminClient, {}, {})

    def _build(self, kind: Callable[[dict[str, Any]], Client], defaults: Mapping[str, Any],
               settings: Mapping[str, Any], log_errors: bool = True) -> Client:
        """A client of `kind` with the defaults, the configured settings, then `settings` (values pass as
        given, callbacks included); an error callback of its own runs after the logging one."""
        merged: dict[str, Any] = {**defaults, **NO_AUTO_CREATE, **self.config.client_settings(),
                                  "logger": KAFKA_LOGGER}
        merged.update(settings)
        if log_errors:
            merged["error_cb"] = _reporting_first(merged.get("error_cb"))
        try:
            return kind(merged)
        except (KafkaException, TypeError, ValueError) as error:
            raise KsqlError(
                f"Invalid Kafka client setting: {redact(describe_error(error).strip(), secret_values(merged))} "
                "(check -p/--property, --config and KSQLPY_BOOTSTRAP_SERVERS)"
            ) from error

    def verify_connection(self, timeout: float = CONNECT_TIMEOUT_S) -> None:
        """Raise one KsqlError naming the address and the cause unless a broker answers within `timeout`.

        The probe keeps librdkafka's own lines to itself: its errors make the message instead.
        """
        errors: list[KafkaError] = []
        admin = self._build(AdminClient, {}, {"logger": _PROBE_LOGGER, "error_cb": errors.append},
                            log_errors=False)
        try:
            admin.list_topics(timeout=timeout)
        except KafkaException as error:
            admin.poll(0)  # serves the error callback with what went wrong on each attempt
            address = self.config.client_settings()["bootstrap.servers"]
            raise KsqlError(
                f"Cannot connect to Kafka at {address}: {connection_problem(errors) or describe_error(error)} "
                f"(no answer within {timeout:g} s)"
            ) from error


def _reporting_first(own: Callable[[KafkaError], None] | None) -> Callable[[KafkaError], None]:
    if own is None:
        return report_client_error

    def report_then_handle(error: KafkaError) -> None:
        report_client_error(error)
        own(error)

    return report_then_handle


def connection_problem(errors: list[KafkaError]) -> str | None:
    """The most telling of a client's errors (the refused or failed connection, not "all brokers down")."""
    telling = [e for e in errors if e.code() != KafkaError._ALL_BROKERS_DOWN] or errors
    if not telling:
        return None
    return _ATTEMPT_DETAILS.sub("", _CONNECTION_NAME.sub("", telling[-1].str()))


_PROBE_LOGGER = logging.getLogger("ksqlpy.kafka.probe")
_PROBE_LOGGER.propagate = False
_PROBE_LOGGER.addHandler(logging.NullHandler())
