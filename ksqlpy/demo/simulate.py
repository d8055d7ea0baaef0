"""`ksqlpy simulate`: generated connected-car readings (ksqlpy.ml.cars) as JSON, paced, to MQTT or Kafka.

First each car's registry row (model, owner, region: the same for a seed) is published and acknowledged, so
it is on Kafka before, and stamped earlier than, the readings a stream-table join enriches with it.
MQTT: readings on `vehicles/sensor/data/<car_id>`, registry rows retained on `vehicles/registry/<car_id>`,
QoS 1 (what `ksqlpy mqtt-bridge` subscribes to). Kafka (--kafka): topics `sensor-data` and `cars`, key =
car_id. Either way the value is the reading or the registry row as JSON (orjson).
"""

from __future__ import annotations

import argparse
import random
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
from ksqlpy.connect.mqtt import DEFAULT_KAFKA_TOPIC, KEEPALIVE_S, REGISTRY_KAFKA_TOPIC
from ksqlpy.errors import KsqlError
from ksqlpy.ml.cars import CarSimulator, is_failure
from ksqlpy.runtime.clients import KafkaClients
from ksqlpy.runtime.config import load_config
from ksqlpy.runtime.signals import stop_on_signals
from ksqlpy.runtime.tools import NO_BROKER_MESSAGE, ensure_topic, run_tool

MQTT_TOPIC_PREFIX = "vehicles/sensor/data/"
REGISTRY_TOPIC_PREFIX = "vehicles/registry/"
CAR_MODELS = ("Aurora S", "Aurora X", "Breeze 2", "Comet GT", "Drift E", "Ember 4")
OWNER_FIRST_NAMES = ("Ada", "Bruno", "Chiara", "Dmitri", "Elena", "Farid", "Greta", "Hiro", "Ines", "Jonas")
OWNER_LAST_NAMES = ("Alvarez", "Berg", "Costa", "Dubois", "Eriksen", "Fischer", "Gallo", "Huber", "Ivanova")
REGIONS = ("north", "south", "east", "west", "central")
CLOSE_TIMEOUT_S = 30.0
# Below this a pacing pause is not worth a wait: the next readings go out at once and catch up.
MIN_PAUSE_S = 0.002


class ReadingSink(Protocol):
    """Where readings and registry rows go: send() / register() queue one, flush() waits until the broker
    acknowledged all so far, close() flushes and disconnects."""

    target: str

    def send(self, car_id: str, payload: bytes) -> None: ...

    def register(self, car_id: str, payload: bytes) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class MqttSink:
    """QoS 1 publishes to `vehicles/sensor/data/<car_id>`, registry rows retained on `vehicles/registry/<car_id>`
    (a bridge that subscribes later still gets them); paho resends unacknowledged ones after a reconnect."""

    def __init__(self, host: str, port: int, client_id: str = "") -> None:
        self.target = f"MQTT broker {host}:{port} (topics {MQTT_TOPIC_PREFIX}<car_id>, {REGISTRY_TOPIC_PREFIX}<car_id>)"
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

    def register(self, car_id: str, payload: bytes) -> None:
        self._client.publish(REGISTRY_TOPIC_PREFIX + car_id, payload, qos=1, retain=True)
        self._sent += 1

    def flush(self) -> None:
        deadline = time.monotonic() + CLOSE_TIMEOUT_S
        while self._acknowledged < self._sent and time.monotonic() < deadline:
            time.sleep(0.01)
        if self._acknowledged < self._sent:
            raise KsqlError(f"The MQTT broker acknowledged only {self._acknowledged} of {self._sent} messages")

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._client.disconnect()
            self._client.loop_stop()


class KafkaSink:
    """Produces readings and registry rows to two Kafka topics (created when missing, with the same partition
    count: a join needs them co-partitioned), key = car id; flush() and close() report failures."""

    def __init__(self, clients: KafkaClients, topic: str = DEFAULT_KAFKA_TOPIC, partitions: int = 1,
                 registry_topic: str = REGISTRY_KAFKA_TOPIC) -> None:
        servers = clients.config.client_settings()["bootstrap.servers"]
        self.target = f"Kafka topics {topic} and {registry_topic} at {servers}"
        self.topic = topic
        self.registry_topic = registry_topic
        admin = clients.admin()
        for name in (topic, registry_topic):
            ensure_topic(admin, name, partitions)
        self._producer = clients.producer(logger=LIBRDKAFKA_LOGGER)
        self._failures: list[KafkaError] = []

    def _on_delivery(self, error: KafkaError | None, _record: Message) -> None:
        if error is not None:
            self._failures.append(error)

    def _produce(self, topic: str, car_id: str, payload: bytes) -> None:
        while True:
            try:
                self._producer.produce(topic, value=payload, key=car_id.encode("utf-8"), on_delivery=self._on_delivery)
                break
            except BufferError:
                self._producer.poll(0.1)  # the local queue is full: wait for deliveries to make room
        self._producer.poll(0)

    def send(self, car_id: str, payload: bytes) -> None:
        self._produce(self.topic, car_id, payload)

    def register(self, car_id: str, payload: bytes) -> None:
        self._produce(self.registry_topic, car_id, payload)

    def flush(self) -> None:
        remaining = self._producer.flush(CLOSE_TIMEOUT_S)
        if remaining or self._failures:
            reason = self._failures[0].str() if self._failures else "no acknowledgement in time"
            raise KsqlError(f"{remaining + len(self._failures)} record(s) were not written to {self.topic} or "
                            f"{self.registry_topic}: {reason}")

    def close(self) -> None:
        self.flush()


@dataclass
class SimulationStats:
    sent: int = 0
    failures: int = 0  # readings sent with failure_occurred = "true"
    registered: int = 0  # registry rows published


def car_registry(cars: int, seed: int) -> list[dict[str, str]]:
    """Each car's registry row (car_id as the readings name it, model, owner, region), the same for a seed.
    Drawn from a generator of its own, so the readings of a seed do not change with it."""
    rng = random.Random(f"car-registry-{seed}")
    return [{"car_id": CarSimulator.car_id(index), "model": rng.choice(CAR_MODELS),
             "owner": f"{rng.choice(OWNER_FIRST_NAMES)} {rng.choice(OWNER_LAST_NAMES)}",
             "region": rng.choice(REGIONS)} for index in range(cars)]


def publish_registry(sink: ReadingSink, cars: int, seed: int, stats: SimulationStats) -> None:
    """Publish every car's registry row and wait for the broker's acknowledgement: readings sent afterwards
    are stamped later than the rows, which is what a stream-table join needs to find them."""
    for row in car_registry(cars, seed):
        sink.register(row["car_id"], orjson.dumps(row))
        stats.registered += 1
    sink.flush()


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
        description=f"Publish each car's registry row (model, owner, region) and then generated connected-car "
                    f"readings as JSON to MQTT ({REGISTRY_TOPIC_PREFIX}<car_id> retained, {MQTT_TOPIC_PREFIX}<car_id>; "
                    f"QoS 1) or, with --kafka, to Kafka topics ({REGISTRY_KAFKA_TOPIC}, {DEFAULT_KAFKA_TOPIC}; "
                    "key = car_id).")
    parser.add_argument("--cars", type=int, default=10, help="number of cars (10)")
    parser.add_argument("--rate", type=float, default=10.0, help="readings per second, all cars together (10; 0: unpaced)")
    parser.add_argument("--count", type=int, help="stop after this many readings (default: until Ctrl-C)")
    parser.add_argument("--failure-rate", type=float, default=0.05, help="share of readings during a failure (0.05)")
    parser.add_argument("--seed", type=int, default=42, help="random seed: the same seed gives the same readings (42)")
    parser.add_argument("--mqtt-host", default="localhost", help="MQTT broker host (localhost)")
    parser.add_argument("--mqtt-port", type=int, default=1883, help="MQTT broker port (1883)")
    parser.add_argument("--kafka", action="store_true", help="write to Kafka directly instead of MQTT")
    parser.add_argument("--topic", default=DEFAULT_KAFKA_TOPIC,
                        help=f"readings' Kafka topic with --kafka ({DEFAULT_KAFKA_TOPIC})")
    parser.add_argument("--registry-topic", default=REGISTRY_KAFKA_TOPIC,
                        help=f"registry rows' Kafka topic with --kafka ({REGISTRY_KAFKA_TOPIC})")
    parser.add_argument("--registry-only", action="store_true",
                        help="publish the registry rows again and exit, sending no readings")
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
    return KafkaSink(KafkaClients.connected(config), args.topic, registry_topic=args.registry_topic)


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
                publish_registry(sink, args.cars, args.seed, stats)
                if not args.registry_only:
                    simulate(car_readings(args.cars, args.rate, args.failure_rate, args.seed, args.count), sink,
                             args.rate, stop, stats)
            finally:
                sink.close()
        print(f"ksqlpy simulate: sent {stats.registered} registry row(s) and {stats.sent} reading(s), "
              f"{stats.failures} during a failure", file=sys.stderr)
        return 0

    return run_tool("ksqlpy simulate", job)
