"""`ksqlpy mqtt-bridge`: copies MQTT messages into Kafka topics, acknowledging each to MQTT only once Kafka has it.

Two routes: readings (`vehicles/sensor/data/#`) go to the topic `sensor-data`, the cars' registry rows
(`vehicles/registry/#`, retained) to `cars`. Record key: the MQTT topic's last level. For
`vehicles/sensor/data/<car_id>` and `vehicles/registry/<car_id>` that is the car id: ksqlDB streams and
tables are keyed by their entity, so `car_id VARCHAR KEY` / `car_id STRING PRIMARY KEY` read it, each car's
readings share a partition (in order), and a car's registry row lands in the partition of its readings
(what a stream-table join needs). The full MQTT topic travels in the record header `mqtt_topic`. Value:
the payload bytes exactly as received.

No message is lost when Kafka or the bridge goes away: the subscription is QoS 1 in a persistent MQTT
session (fixed client id, clean session off), and a message is acknowledged to the MQTT broker only after
the idempotent producer's delivery report for it and for every message received before it (MQTT wants
acknowledgements in order). A failed delivery is retried with back-off while the message stays
unacknowledged; if the bridge stops first, the MQTT broker redelivers it to the next bridge with the same
client id. Delivery is therefore at-least-once: a crash between Kafka's acknowledgement and MQTT's
writes that message twice.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import logging
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import paho.mqtt.client as paho
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient

from ksqlpy.backoff import doubling_delay
from ksqlpy.connect.lifecycle import LIBRDKAFKA_LOGGER, configure_logging
from ksqlpy.errors import KsqlError
from ksqlpy.runtime.clients import KafkaClients
from ksqlpy.runtime.config import load_config
from ksqlpy.runtime.signals import stop_on_signals
from ksqlpy.runtime.tools import NO_BROKER_MESSAGE, ensure_topic, run_tool

LOGGER = logging.getLogger(__name__)

DEFAULT_MQTT_TOPIC = "vehicles/sensor/data/#"
DEFAULT_KAFKA_TOPIC = "sensor-data"
REGISTRY_MQTT_TOPIC = "vehicles/registry/#"
REGISTRY_KAFKA_TOPIC = "cars"
DEFAULT_CLIENT_ID = "ksqlpy-mqtt-bridge"
TOPIC_HEADER = "mqtt_topic"
POLL_INTERVAL_S = 0.02
KEEPALIVE_S = 30
MQTT_RECONNECT_MAX_S = 30
MIN_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0
KAFKA_PROBE_TIMEOUT_S = 5.0
SHUTDOWN_FLUSH_S = 10.0
STATUS_INTERVAL_S = 30.0
# Idempotence keeps librdkafka's own retries free of duplicates and reordering; a delivery that still
# fails after message.timeout.ms comes back to the bridge, which produces the message again.
PRODUCER_SETTINGS: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 2,
    "message.timeout.ms": 30000,
    "logger": LIBRDKAFKA_LOGGER,
}


def record_key(mqtt_topic: str) -> bytes:
    """The Kafka key for a message on `mqtt_topic`: its last level (the car id)."""
    return mqtt_topic.rpartition("/")[2].encode("utf-8")


def backoff_delay(attempt: int) -> float:
    """Seconds to wait before retry number `attempt` (1, 2, ...)."""
    return doubling_delay(attempt, MIN_BACKOFF_S, MAX_BACKOFF_S)


@dataclass(frozen=True)
class BridgeSettings:
    mqtt_host: str = "localhost"
    mqtt_port: int = 1883
    mqtt_topic: str = DEFAULT_MQTT_TOPIC
    kafka_topic: str = DEFAULT_KAFKA_TOPIC
    client_id: str = DEFAULT_CLIENT_ID
    partitions: int = 1  # when the bridge creates a Kafka topic: the same for both, so they are co-partitioned
    registry_mqtt_topic: str | None = REGISTRY_MQTT_TOPIC  # None: the registry is not bridged
    registry_kafka_topic: str = REGISTRY_KAFKA_TOPIC

    @property
    def routes(self) -> list[tuple[str, str]]:
        """(MQTT topic filter, Kafka topic) pairs; a message goes to the first whose filter matches its topic."""
        readings = (self.mqtt_topic, self.kafka_topic)
        if self.registry_mqtt_topic is None:
            return [readings]
        return [readings, (self.registry_mqtt_topic, self.registry_kafka_topic)]

    def kafka_topic_for(self, mqtt_topic: str) -> str:
        """The Kafka topic of a message received on `mqtt_topic` (the readings' when no filter matches)."""
        for mqtt_filter, kafka_topic in self.routes:
            if paho.topic_matches_sub(mqtt_filter, mqtt_topic):
                return kafka_topic
        return self.kafka_topic


@dataclass(eq=False)
class _InFlight:
    """One received MQTT message on its way to Kafka; `connection` says which MQTT connection may ack it."""

    connection: int
    mid: int
    qos: int
    topic: str
    kafka_topic: str
    payload: bytes
    delivered: bool = False
    attempts: int = 0


@dataclass
class BridgeStats:
    received: int = 0
    delivered: int = 0  # Kafka acknowledged (a redelivered message counts again)
    acknowledged: int = 0  # MQTT acknowledgements sent
    retried: int = 0  # deliveries that failed and were produced again


@dataclass
class _RetryQueue:
    """Messages whose delivery failed, ordered by when they may be produced again."""

    _heap: list[tuple[float, int, _InFlight]] = field(default_factory=list)
    _order: itertools.count[int] = field(default_factory=itertools.count)

    def schedule(self, message: _InFlight, delay: float) -> None:
        heapq.heappush(self._heap, (time.monotonic() + delay, next(self._order), message))

    def due(self) -> list[_InFlight]:
        now = time.monotonic()
        ready = []
        while self._heap and self._heap[0][0] <= now:
            ready.append(heapq.heappop(self._heap)[2])
        return ready


class MqttKafkaBridge:
    """Subscribe, produce, acknowledge: call run(stop) (in any thread); it returns once `stop` is set.

    paho's network thread only queues received messages; producing, delivery reports and MQTT
    acknowledgements all happen in the thread that calls run(), so they need no locks.
    """

    def __init__(self, settings: BridgeSettings, clients: KafkaClients) -> None:
        self.settings = settings
        self.clients = clients
        self.stats = BridgeStats()
        self.subscribed = threading.Event()  # set while the subscription is active
        self._incoming: queue.SimpleQueue[_InFlight] = queue.SimpleQueue()
        self._unacknowledged: deque[_InFlight] = deque()  # QoS 1 messages in the order received
        self._to_produce: deque[_InFlight] = deque()
        self._retries = _RetryQueue()
        self._connection = 0  # counts MQTT connections: acks of an earlier one are not sent
        self._mqtt_unreachable_reported = False
        self._trouble_since: float | None = None  # when Kafka stopped taking messages
        self._trouble_reported_at = 0.0
        self._fatal: KafkaError | None = None

    @property
    def bootstrap_servers(self) -> str:
        return self.clients.config.client_settings()["bootstrap.servers"]

    @property
    def mqtt_address(self) -> str:
        return f"{self.settings.mqtt_host}:{self.settings.mqtt_port}"

    # -- the loop

    def run(self, stop: threading.Event) -> None:
        """Bridge until `stop` is set, then let Kafka confirm what is in flight, acknowledge that, disconnect.

        Raises KsqlError when the producer hits a fatal error; unacknowledged messages stay with MQTT."""
        client = self._mqtt_client()
        client.connect_async(self.settings.mqtt_host, self.settings.mqtt_port, KEEPALIVE_S)
        client.loop_start()
        producer: Producer | None = None
        try:
            # Messages that arrive meanwhile wait unacknowledged: the broker's in-flight window bounds them.
            if not self._wait_for_topic(stop):
                return
            producer = self.clients.producer(**PRODUCER_SETTINGS, error_cb=self._on_kafka_error)
            while not stop.is_set():
                self._take_incoming(POLL_INTERVAL_S)
                self._produce(producer)
                producer.poll(0)
                self._acknowledge(client)
                if self._fatal is not None:
                    raise KsqlError(f"The Kafka producer failed and cannot continue: {self._fatal.str()}; "
                                    "unacknowledged MQTT messages will be redelivered to the next bridge")
        finally:
            if producer is not None:
                self._finish(producer, client)
            client.disconnect()
            client.loop_stop()
            self.subscribed.clear()
            LOGGER.info("MQTT bridge stopped: %d MQTT message(s) received, %d written to Kafka, %d acknowledged, %d retried",
                        self.stats.received, self.stats.delivered, self.stats.acknowledged, self.stats.retried)

    def _wait_for_topic(self, stop: threading.Event) -> bool:
        """Create the Kafka topics if missing, retrying with back-off while Kafka is unreachable; False on stop."""
        settings: dict[str, Any] = {**self.clients.config.client_settings(), "logger": LIBRDKAFKA_LOGGER}
        admin = AdminClient(settings)
        for attempt in itertools.count(1):
            if stop.is_set():
                return False
            try:
                # A short probe first: ensure_topic's own timeout would hold off Ctrl-C for longer.
                admin.list_topics(timeout=KAFKA_PROBE_TIMEOUT_S)
                for _mqtt_filter, kafka_topic in self.settings.routes:
                    if ensure_topic(admin, kafka_topic, self.settings.partitions):
                        LOGGER.info("created Kafka topic %s", kafka_topic)
                return True
            except (KafkaException, KsqlError) as error:
                delay = backoff_delay(attempt)
                LOGGER.warning("Kafka at %s is not reachable (%s); retrying in %.0fs. MQTT messages wait "
                               "unacknowledged meanwhile.", self.bootstrap_servers, _describe(error), delay)
                stop.wait(delay)
        raise AssertionError("unreachable")

    def _take_incoming(self, wait: float) -> None:
        try:
            message = self._incoming.get(timeout=wait)
            while True:
                self.stats.received += 1
                if message.qos > 0:
                    self._unacknowledged.append(message)
                self._to_produce.append(message)
                message = self._incoming.get_nowait()
        except queue.Empty:
            pass

    def _produce(self, producer: Producer) -> None:
        self._to_produce.extend(self._retries.due())
        while self._to_produce:
            message = self._to_produce[0]
            try:
                producer.produce(message.kafka_topic, value=message.payload, key=record_key(message.topic),
                                 headers=[(TOPIC_HEADER, message.topic.encode("utf-8"))],
                                 on_delivery=partial(self._on_delivery, message))
            except BufferError:
                return  # the producer's queue is full; poll() makes room
            self._to_produce.popleft()

    def _on_delivery(self, message: _InFlight, error: KafkaError | None, _record: Message) -> None:
        if error is None:
            message.delivered = True
            self.stats.delivered += 1
            self._report_recovery()
            return
        message.attempts += 1
        self.stats.retried += 1
        self._report_trouble(f"Kafka did not take messages ({error.str()}); they stay unacknowledged on MQTT and "
                             f"are produced again with back-off (up to {MAX_BACKOFF_S:.0f}s)")
        self._retries.schedule(message, backoff_delay(message.attempts))

    def _acknowledge(self, client: paho.Client) -> None:
        while self._unacknowledged and self._unacknowledged[0].delivered:
            message = self._unacknowledged.popleft()
            # After a reconnect the broker redelivers what the old connection did not acknowledge.
            if message.connection == self._connection:
                client.ack(message.mid, message.qos)
                self.stats.acknowledged += 1

    def _finish(self, producer: Producer, client: paho.Client) -> None:
        """Give Kafka a bounded time for what is in flight and acknowledge what it confirmed."""
        producer.flush(SHUTDOWN_FLUSH_S)
        self._acknowledge(client)
        left = len(self._unacknowledged)
        if left:
            LOGGER.warning("%d message(s) not confirmed by Kafka stay unacknowledged: the MQTT broker redelivers "
                           "them to the next bridge with client id %s", left, self.settings.client_id)

    # -- Kafka callbacks (called from producer.poll/flush in the run() thread)

    def _on_kafka_error(self, error: KafkaError) -> None:
        if error.fatal():
            self._fatal = error
        elif error.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT):
            self._report_trouble(f"Kafka at {self.bootstrap_servers} is unreachable ({error.str()}): MQTT messages "
                                 "stay unacknowledged until it is back; retrying")

    def _report_trouble(self, text: str) -> None:
        """Say what is wrong when Kafka stops taking messages, then every STATUS_INTERVAL_S while that lasts."""
        now = time.monotonic()
        if self._trouble_since is None:
            self._trouble_since = now
        elif now - self._trouble_reported_at < STATUS_INTERVAL_S:
            return
        self._trouble_reported_at = now
        LOGGER.warning("%s (%d message(s) waiting)", text, len(self._unacknowledged))

    def _report_recovery(self) -> None:
        if self._trouble_since is not None:
            LOGGER.info("Kafka at %s is taking messages again (after %.0fs)", self.bootstrap_servers,
                        time.monotonic() - self._trouble_since)
            self._trouble_since = None

    # -- MQTT callbacks (called from paho's network thread)

    def _mqtt_client(self) -> paho.Client:
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=self.settings.client_id,
                             clean_session=False, protocol=paho.MQTTv311, manual_ack=True)
        client.reconnect_delay_set(1, MQTT_RECONNECT_MAX_S)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _on_connect(self, client: paho.Client, _userdata: Any, flags: paho.ConnectFlags,
                    reason: paho.ReasonCode, _properties: paho.Properties | None) -> None:
        if reason.is_failure:
            LOGGER.error("the MQTT broker at %s refused the connection: %s", self.mqtt_address, reason)
            return
        self._connection += 1
        self._mqtt_unreachable_reported = False
        LOGGER.info("connected to the MQTT broker at %s (%s session, client id %s)", self.mqtt_address,
                    "resumed" if flags.session_present else "new", self.settings.client_id)
        client.subscribe([(mqtt_filter, 1) for mqtt_filter, _kafka_topic in self.settings.routes])

    def _on_connect_fail(self, _client: paho.Client, _userdata: Any) -> None:
        if not self._mqtt_unreachable_reported:
            self._mqtt_unreachable_reported = True
            LOGGER.warning("cannot reach the MQTT broker at %s; retrying every %ds at most", self.mqtt_address,
                           MQTT_RECONNECT_MAX_S)

    def _on_subscribe(self, _client: paho.Client, _userdata: Any, _mid: int, reasons: list[paho.ReasonCode],
                      _properties: paho.Properties | None) -> None:
        routes = self.settings.routes
        refused = [(mqtt_filter, reason) for (mqtt_filter, _), reason in zip(routes, reasons, strict=True)
                   if reason.is_failure]
        if refused:
            LOGGER.error("the MQTT broker refused the subscription to %s: %s", *refused[0])
            return
        described = ", ".join(f"{mqtt_filter} -> Kafka topic {kafka_topic}" for mqtt_filter, kafka_topic in routes)
        LOGGER.info("subscribed to %s (QoS 1) at %s", described, self.bootstrap_servers)
        self.subscribed.set()

    def _on_disconnect(self, _client: paho.Client, _userdata: Any, _flags: paho.DisconnectFlags,
                       reason: paho.ReasonCode, _properties: paho.Properties | None) -> None:
        self.subscribed.clear()
        if reason.is_failure:
            LOGGER.warning("lost the MQTT broker at %s (%s); reconnecting, and the broker redelivers what was "
                           "not acknowledged", self.mqtt_address, reason)

    def _on_message(self, _client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
        self._incoming.put(_InFlight(self._connection, message.mid, message.qos, message.topic,
                                     self.settings.kafka_topic_for(message.topic), bytes(message.payload)))


def _describe(error: Exception) -> str:
    inner = error.args[0] if error.args else error
    return inner.str() if isinstance(inner, KafkaError) else str(inner)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ksqlpy mqtt-bridge",
        description="Copy MQTT messages into Kafka topics (readings and the cars' registry rows each to their "
                    "own): key = the MQTT topic's last level (the car id), value = the payload unchanged, "
                    "header mqtt_topic = the full MQTT topic. Messages are "
                    "acknowledged to MQTT only after Kafka has them (QoS 1, persistent session).")
    parser.add_argument("--mqtt-host", default="localhost", help="MQTT broker host (localhost)")
    parser.add_argument("--mqtt-port", type=int, default=1883, help="MQTT broker port (1883)")
    parser.add_argument("--mqtt-topic", default=DEFAULT_MQTT_TOPIC,
                        help=f"readings' topic filter ({DEFAULT_MQTT_TOPIC})")
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID,
                        help=f"MQTT client id: the persistent session's name ({DEFAULT_CLIENT_ID})")
    parser.add_argument("--topic", default=DEFAULT_KAFKA_TOPIC, help=f"readings' Kafka topic ({DEFAULT_KAFKA_TOPIC})")
    parser.add_argument("--registry-mqtt-topic", default=REGISTRY_MQTT_TOPIC,
                        help=f"registry rows' topic filter ({REGISTRY_MQTT_TOPIC}; '' to bridge readings only)")
    parser.add_argument("--registry-topic", default=REGISTRY_KAFKA_TOPIC,
                        help=f"registry rows' Kafka topic ({REGISTRY_KAFKA_TOPIC})")
    parser.add_argument("--partitions", type=int, default=1, help="partitions if the bridge creates a topic (1)")
    parser.add_argument("--bootstrap-servers", metavar="B", help="Kafka bootstrap servers (or KSQLPY_BOOTSTRAP_SERVERS)")
    parser.add_argument("--config", metavar="FILE", help="name=value librdkafka settings")
    parser.add_argument("-p", "--property", action="append", default=[], metavar="NAME=VALUE",
                        help="a librdkafka setting (repeatable)")
    parser.add_argument("-v", "--verbose", action="store_true", help="also show librdkafka's own log")
    return parser


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    configure_logging("ksqlpy mqtt-bridge", args.verbose)
    try:
        config = load_config(args.bootstrap_servers, args.config, args.property)
    except KsqlError as error:
        print(f"ksqlpy mqtt-bridge: {error}", file=sys.stderr)
        return 2
    if config.bootstrap_servers is None:
        print(f"ksqlpy mqtt-bridge: {NO_BROKER_MESSAGE}", file=sys.stderr)
        return 2
    settings = BridgeSettings(args.mqtt_host, args.mqtt_port, args.mqtt_topic, args.topic, args.client_id,
                              args.partitions, args.registry_mqtt_topic or None, args.registry_topic)
    bridge = MqttKafkaBridge(settings, KafkaClients(config))

    def job() -> int:
        with stop_on_signals() as stop:
            bridge.run(stop)
        return 0

    return run_tool("ksqlpy mqtt-bridge", job)
