"""`ksqlpy simulate`: generated connected-car readings (ksqlpy.ml.cars) as JSON, paced, to MQTT or Kafka.

MQTT: topic `vehicles/sensor/data/<car_id>`, QoS 1 (what `ksqlpy mqtt-bridge` subscribes to).
Kafka (--kafka): topic `sensor-data`, key = car_id. Either way the value is the reading as JSON (orjson).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
import paho.mqtt.client as paho
from confluent_kafka import KafkaError, Message

from ksqlpy.connect.lifecycle import LIBRDKAFKA_LOGGER, configure_logging
from ksqlpy.connect.mqtt import DEFAULT_KAFKA_TOPIC, KEEPALIVE_S
from ksqlpy.errors import KsqlError
from ksqlpy.ml.cars import CarSimulator, is_failure
from ksqlpy.runtime.clients import KafkaClients
from ksqlpy.runtime.config import load_config
from ksqlpy.runtime.signals import stop_on_signals
from ksqlpy.runtime.tools import NO_BROKER_MESSAGE, ensure_topic, run_tool

MQTT_TOPIC_PREFIX = "vehicles/sensor/data/"
CLOSE_TIMEOUT_S = 30.0
# Below this a pacing pause is not worth a wait: the next readings go out at once and catch up.
MIN_PAUSE_S = 0.002


class ReadingSink(Protocol):
    """Where readings go: send() queues one, close() waits until the broker acknowledged all of them."""

    target: str

    def send(self, car_id: str, payload: bytes) -> None: ...

    def close(self) -> None: ...


class MqttSink:
    """QoS 1 publishes to `vehicles/sensor/data/<car_id>`; paho resends unacknowledged ones after a reconnect."""

    def __init__(self, host: str, port: int, client_id: str = "") -> None:
        self.target = f"MQTT broker {host}:{port} (topics {MQTT_TOPIC_PREFIX}<car_id>)"
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv311)
        # The default window of 20 unacknowledged publishes would cap the rate at 20 per round trip.
        self._client.max_inflight_messages_set(1000)
        self._acknowledged = 0  # written by paho's network thread only
        self._sent = 0
        self._client.on_publish = self._on_publish
        try:
            self._client.connect(host, port, KEEPALIVE_S)
        except OSError as error:
            raise KsqlError(f"Cannot reach the MQTT broker at {host}:{port}: {error.strerror or error} "
                            "(start mosquitto, or use --kafka to write to Kafka directly)") from error
        self._client.loop_start()

    def _on_publish(self, _client: paho.Client, _userdata: Any, _mid: int, _reason: paho.ReasonCode,
                    _properties: paho.Properties | None) -> None:
        self._acknowledged += 1

    def send(self, car_id: str, payload: bytes) -> None:
        self._client.publish(MQTT_TOPIC_PREFIX + car_id, payload, qos=1)
        self._sent += 1

    def close(self) -> None:
        deadline = time.monotonic() + CLOSE_TIMEOUT_S
        try:
            while self._acknowledged < self._sent and time.monotonic() < deadline:
                time.sleep(0.01)
            if self._acknowledged < self._sent:
                raise KsqlError(f"The MQTT broker acknowledged only {self._acknowledged} of {self._sent} readings")
        finally:
            self._client.disconnect()
            self._client.loop_stop()


class KafkaSink:
    """Produces to a Kafka topic (created when missing), key = car id; close() flushes and reports failures."""

    def __init__(self, clients: KafkaClients, topic: str = DEFAULT_KAFKA_TOPIC, partitions: int = 1) -> None:
        self.target = f"Kafka topic {topic} at {clients.config.client_settings()['bootstrap.servers']}"
        self.topic = topic
        ensure_topic(clients.admin(), topic, partitions)
        self._producer = clients.producer(logger=LIBRDKAFKA_LOGGER)
        self._failures: list[KafkaError] = []

    def _on_delivery(self, error: KafkaError | None, _record: Message) -> None:
        if error is not None:
            self._failures.append(error)

    def send(self, car_id: str, payload: bytes) -> None:
        while True:
            try:
                self._producer.produce(self.topic, value=payload, key=car_id.encode("utf-8"),
                                       on_delivery=self._on_delivery)
                break
            except BufferError:
                self._producer.poll(0.1)  # the local queue is full: wait for deliveries to make room
        self._producer.poll(0)

    def close(self) -> None:
        remaining = self._producer.flush(CLOSE_TIMEOUT_S)
        if remaining or self._failures:
            reason = self._failures[0].str() if self._failures else "no acknowledgement in time"
            raise KsqlError(f"{remaining + len(self._failures)} reading(s) were not written to {self.topic}: {reason}")


@dataclass
class SimulationStats:
    sent: int = 0
    failures: int = 0  # readings sent with failure_occurred = "true"


def paced(readings: Iterable[dict[str, Any]], rate: float, stop: threading.Event) -> Iterator[dict[str, Any]]:
    """`readings` at `rate` per second overall (0: as fast as they come) until they end or `stop` is set."""
    started = time.monotonic()
    for index, reading in enumerate(readings):
        if rate > 0:
            pause = started + index / rate - time.monotonic()
            if pause >= MIN_PAUSE_S:
                stop.wait(pause)
        if stop.is_set():
            return
        yield reading


def simulate(readings: Iterable[dict[str, Any]], sink: ReadingSink, rate: float, stop: threading.Event,
             stats: SimulationStats | None = None) -> SimulationStats:
    """Send each reading as JSON, paced; `stats` (updated as it goes, for a caller in another thread)."""
    counts = stats if stats is not None else SimulationStats()
    for reading in paced(readings, rate, stop):
        sink.send(reading["car_id"], orjson.dumps(reading))
        counts.sent += 1
        counts.failures += is_failure(reading)
    return counts


def car_readings(cars: int, rate: float, failure_rate: float, seed: int, count: int | None) -> Iterator[dict[str, Any]]:
    """Readings stamped from now on, each car reporting every cars/rate seconds, so `ts` follows the clock."""
    interval_ms = max(1, round(1000 * cars / rate)) if rate > 0 else 1000
    simulator = CarSimulator(cars=cars, failure_rate=failure_rate, seed=seed, start_ms=int(time.time() * 1000),
                             interval_ms=interval_ms)
    return simulator.readings(count)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ksqlpy simulate",
        description=f"Publish generated connected-car readings as JSON to MQTT ({MQTT_TOPIC_PREFIX}<car_id>, QoS 1) "
                    f"or, with --kafka, to a Kafka topic ({DEFAULT_KAFKA_TOPIC}, key = car_id).")
    parser.add_argument("--cars", type=int, default=10, help="number of cars (10)")
    parser.add_argument("--rate", type=float, default=10.0, help="readings per second, all cars together (10; 0: unpaced)")
    parser.add_argument("--count", type=int, help="stop after this many readings (default: until Ctrl-C)")
    parser.add_argument("--failure-rate", type=float, default=0.05, help="share of readings during a failure (0.05)")
    parser.add_argument("--seed", type=int, default=42, help="random seed: the same seed gives the same readings (42)")
    parser.add_argument("--mqtt-host", default="localhost", help="MQTT broker host (localhost)")
    parser.add_argument("--mqtt-port", type=int, default=1883, help="MQTT broker port (1883)")
    parser.add_argument("--kafka", action="store_true", help="write to Kafka directly instead of MQTT")
    parser.add_argument("--topic", default=DEFAULT_KAFKA_TOPIC, help=f"Kafka topic with --kafka ({DEFAULT_KAFKA_TOPIC})")
    parser.add_argument("--bootstrap-servers", metavar="B", help="Kafka bootstrap servers (or KSQLPY_BOOTSTRAP_SERVERS)")
    parser.add_argument("--config", metavar="FILE", help="name=value librdkafka settings")
    parser.add_argument("-p", "--property", action="append", default=[], metavar="NAME=VALUE",
                        help="a librdkafka setting (repeatable)")
    return parser


def _open_sink(args: argparse.Namespace) -> ReadingSink:
    if not args.kafka:
        return MqttSink(args.mqtt_host, args.mqtt_port)
    config = load_config(args.bootstrap_servers, args.config, args.property)
    if config.bootstrap_servers is None:
        raise KsqlError(NO_BROKER_MESSAGE)
    return KafkaSink(KafkaClients.connected(config), args.topic)


def main(argv: Sequence[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(list(argv))
    if args.cars < 1 or args.rate < 0 or (args.count is not None and args.count < 0):
        parser.error("--cars must be at least 1, --rate and --count not negative")
    if not 0.0 <= args.failure_rate <= 1.0:
        parser.error("--failure-rate must be between 0 and 1")
    configure_logging("ksqlpy simulate")
    stats = SimulationStats()

    def job() -> int:
        sink = _open_sink(args)
        pace = f"{args.rate:g} reading(s)/s" if args.rate > 0 else "unpaced"
        print(f"ksqlpy simulate: {args.cars} car(s), {pace} to {sink.target}; "
              "Ctrl-C stops", file=sys.stderr, flush=True)
        with stop_on_signals() as stop:
            try:
                simulate(car_readings(args.cars, args.rate, args.failure_rate, args.seed, args.count), sink,
                         args.rate, stop, stats)
            finally:
                sink.close()
        print(f"ksqlpy simulate: sent {stats.sent} reading(s), {stats.failures} during a failure", file=sys.stderr)
        return 0

    return run_tool("ksqlpy simulate", job)
