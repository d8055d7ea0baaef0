"""The MQTT -> Kafka bridge against a real Mosquitto and the embedded Kafka broker: keys, values, exact
counts, and no message lost when Kafka is late, goes away, or fails deliveries."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import paho.mqtt.client as paho
import pytest
from confluent_kafka import KafkaError, Producer

from ksqlpy.connect import mqtt
from ksqlpy.connect.mosquitto import MosquittoBroker
from ksqlpy.connect.mqtt import BridgeSettings, MqttKafkaBridge, backoff_delay, record_key
from ksqlpy.runtime.broker import EmbeddedBroker, free_loopback_port
from ksqlpy.runtime.clients import KafkaClients
from ksqlpy.runtime.config import RuntimeConfig
from ksqlpy.runtime.tools import ConsumedRecord


def test_record_key_is_the_topics_last_level() -> None:
    assert record_key("vehicles/sensor/data/car-00007") == b"car-00007"
    assert record_key("car-1") == b"car-1"
    assert record_key("vehicles/sensor/data/") == b""


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff_delay(n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert backoff_delay(10) == backoff_delay(1000) == mqtt.MAX_BACKOFF_S


def test_registry_messages_go_to_the_registry_topic_and_the_rest_to_the_readings_topic() -> None:
    settings = BridgeSettings(kafka_topic="readings", registry_kafka_topic="registry")
    assert settings.kafka_topic_for("vehicles/sensor/data/car-00001") == "readings"
    assert settings.kafka_topic_for("vehicles/registry/car-00001") == "registry"
    assert BridgeSettings(registry_mqtt_topic=None).routes == [("vehicles/sensor/data/#", "sensor-data")]


def settings_for(mosquitto: MosquittoBroker, kafka_topic: str) -> BridgeSettings:
    """Readings to `kafka_topic`, registry rows to `<kafka_topic>-registry`."""
    assert mosquitto.port is not None
    return BridgeSettings(mqtt_host=mosquitto.host, mqtt_port=mosquitto.port, kafka_topic=kafka_topic,
                          client_id=f"bridge-{uuid.uuid4().hex[:8]}", registry_kafka_topic=f"{kafka_topic}-registry")


@contextmanager
def running_bridge(bridge: MqttKafkaBridge) -> Iterator[MqttKafkaBridge]:
    """The bridge in a thread, subscribed; stopped (and its errors re-raised) when the block ends."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            bridge.run(stop)
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=run, name="mqtt-bridge")
    thread.start()
    try:
        assert bridge.subscribed.wait(20), "the bridge did not subscribe within 20 s"
        yield bridge
    finally:
        stop.set()
        thread.join(30)
        assert not thread.is_alive(), "the bridge did not stop within 30 s"
    if errors:
        raise errors[0]


def publish(mosquitto: MosquittoBroker, messages: list[tuple[str, bytes]], retain: bool = False) -> None:
    """QoS 1 publishes, returning once the broker acknowledged all of them."""
    assert mosquitto.port is not None
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"publisher-{uuid.uuid4().hex[:8]}")
    client.max_inflight_messages_set(1000)
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    try:
        infos = [client.publish(topic, payload, qos=1, retain=retain) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(20)
            assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


def readings(count: int, first: int = 0, cars: int = 3) -> list[tuple[str, bytes]]:
    return [(f"vehicles/sensor/data/car-{n % cars}", b'{"n":%d}' % n) for n in range(first, first + count)]


def payloads(records: list[ConsumedRecord]) -> list[bytes]:
    return [record.value or b"" for record in records]


def test_bridge_copies_each_message_with_car_id_key_and_payload_unchanged(
    broker: str, clients: KafkaClients, mosquitto: MosquittoBroker, unique_topic: Callable[..., str],
    consume_all: Callable[..., list[ConsumedRecord]],
) -> None:
    topic = unique_topic("sensor")
    sent = [*readings(300), ("vehicles/sensor/data/car-x", b"\x00not json\xff")]
    with running_bridge(MqttKafkaBridge(settings_for(mosquitto, topic), clients)) as bridge:
        publish(mosquitto, sent)
        records = consume_all(broker, topic, expected_count=len(sent))
    assert len(records) == len(sent)
    assert [(r.key, r.value) for r in records] == [(t.rpartition("/")[2].encode(), p) for t, p in sent]
    assert records[0].headers == [("mqtt_topic", b"vehicles/sensor/data/car-0")]
    assert bridge.stats.received == bridge.stats.delivered == bridge.stats.acknowledged == len(sent)
    # Nothing more arrives later: each message was written once.
    assert len(consume_all(broker, topic, idle=0.5)) == len(sent)


def test_retained_registry_rows_published_before_the_bridge_started_reach_the_registry_topic(
    broker: str, clients: KafkaClients, mosquitto: MosquittoBroker, unique_topic: Callable[..., str],
    consume_all: Callable[..., list[ConsumedRecord]],
) -> None:
    topic = unique_topic("sensor")
    registry = [(f"vehicles/registry/car-{n}", b'{"model":"m%d"}' % n) for n in range(3)]
    publish(mosquitto, registry, retain=True)
    with running_bridge(MqttKafkaBridge(settings_for(mosquitto, topic), clients)):
        publish(mosquitto, readings(30))
        registered = consume_all(broker, f"{topic}-registry", expected_count=3)
        records = consume_all(broker, topic, expected_count=30)
    assert [(r.key, r.value) for r in registered] == [(t.rpartition("/")[2].encode(), p) for t, p in registry]
    assert registered[0].headers == [("mqtt_topic", b"vehicles/registry/car-0")]
    assert [(r.key, r.value) for r in records] == [(t.rpartition("/")[2].encode(), p) for t, p in readings(30)]


def test_messages_wait_unacknowledged_while_kafka_is_not_up_yet(
    mosquitto: MosquittoBroker, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    consume_all: Callable[..., list[ConsumedRecord]], wait_until: Callable[..., Any],
) -> None:
    monkeypatch.setattr(mqtt, "KAFKA_PROBE_TIMEOUT_S", 0.3)
    port = free_loopback_port()
    late_clients = KafkaClients(RuntimeConfig(bootstrap_servers=f"127.0.0.1:{port}"))
    caplog.set_level(logging.WARNING, logger="ksqlpy.connect.mqtt")
    with running_bridge(MqttKafkaBridge(settings_for(mosquitto, "late"), late_clients)) as bridge:
        publish(mosquitto, readings(100))
        wait_until(lambda: "is not reachable" in caplog.text, 10, "the bridge to report Kafka unreachable")
        assert bridge.stats.acknowledged == 0
        with EmbeddedBroker(port=port) as kafka:
            wait_until(lambda: bridge.stats.acknowledged == 100, 20, "all 100 messages to be acknowledged")
            records = consume_all(kafka.bootstrap_servers, "late", expected_count=100)
    assert sorted(payloads(records)) == sorted(p for _, p in readings(100))


def test_messages_kafka_never_confirmed_are_redelivered_to_the_next_bridge(
    mosquitto: MosquittoBroker, monkeypatch: pytest.MonkeyPatch,
    consume_all: Callable[..., list[ConsumedRecord]], wait_until: Callable[..., Any],
) -> None:
    monkeypatch.setattr(mqtt, "SHUTDOWN_FLUSH_S", 0.5)
    settings = settings_for(mosquitto, "failover")
    with EmbeddedBroker() as first_kafka:
        first = MqttKafkaBridge(settings, KafkaClients(RuntimeConfig(bootstrap_servers=first_kafka.bootstrap_servers)))
        with running_bridge(first):
            publish(mosquitto, readings(50))
            wait_until(lambda: first.stats.acknowledged == 50, 15, "the first 50 messages to be acknowledged")
            first_kafka.stop()  # Kafka goes away with the bridge still running
            publish(mosquitto, readings(70, first=50))
            wait_until(lambda: first.stats.received == 120, 15, "the bridge to receive the next 70 messages")
            assert first.stats.acknowledged == 50
    # The same client id resumes the MQTT session, and the broker redelivers what was never acknowledged.
    with EmbeddedBroker() as second_kafka:
        second = MqttKafkaBridge(settings, KafkaClients(RuntimeConfig(bootstrap_servers=second_kafka.bootstrap_servers)))
        with running_bridge(second):
            wait_until(lambda: second.stats.acknowledged == 70, 15, "the 70 redelivered messages to be acknowledged")
            records = consume_all(second_kafka.bootstrap_servers, "failover", expected_count=70)
    assert sorted(payloads(records)) == sorted(p for _, p in readings(70, first=50))


class _FailingProducer:
    """A producer whose first `failures` deliveries are reported as timed out without reaching Kafka, once
    `report_failures` is set: until then they are in flight, however long the others take to be delivered."""

    def __init__(self, real: Producer, failures: int, report_failures: threading.Event) -> None:
        self.real = real
        self.failures_left = failures
        self.report_failures = report_failures
        self.failed: list[Callable[[KafkaError | None, Any], None]] = []

    def produce(self, topic: str, **arguments: Any) -> None:
        if self.failures_left > 0:
            self.failures_left -= 1
            self.failed.append(arguments["on_delivery"])
            return
        self.real.produce(topic, **arguments)

    def poll(self, timeout: float = 0) -> int:
        if not self.report_failures.is_set():
            return int(self.real.poll(timeout))
        failed, self.failed = self.failed, []
        for report in failed:
            report(KafkaError(KafkaError._MSG_TIMED_OUT), None)
        return self.real.poll(timeout) + len(failed)

    def flush(self, timeout: float) -> int:
        self.poll(0)
        return int(self.real.flush(timeout))


class _FailingClients(KafkaClients):
    def __init__(self, config: RuntimeConfig, failures: int) -> None:
        super().__init__(config)
        self.failures = failures
        self.report_failures = threading.Event()

    def producer(self, **settings: Any) -> Any:
        return _FailingProducer(super().producer(**settings), self.failures, self.report_failures)


def test_failed_deliveries_are_produced_again_and_acknowledged_in_order(
    broker: str, mosquitto: MosquittoBroker, unique_topic: Callable[..., str], monkeypatch: pytest.MonkeyPatch,
    consume_all: Callable[..., list[ConsumedRecord]], wait_until: Callable[..., Any],
) -> None:
    monkeypatch.setattr(mqtt, "MIN_BACKOFF_S", 1.0)
    topic = unique_topic("retried")
    flaky = _FailingClients(RuntimeConfig(bootstrap_servers=broker), failures=5)
    with running_bridge(MqttKafkaBridge(settings_for(mosquitto, topic), flaky)) as bridge:
        publish(mosquitto, readings(100))
        wait_until(lambda: bridge.stats.delivered >= 95, 10, "the messages after the failed ones to be delivered")
        # MQTT acknowledgements go in order: none until the failed first five are in Kafka.
        assert bridge.stats.acknowledged == 0
        flaky.report_failures.set()
        wait_until(lambda: bridge.stats.acknowledged == 100, 15, "every message to be acknowledged")
        records = consume_all(broker, topic, expected_count=100)
    assert bridge.stats.retried == 5
    assert sorted(payloads(records)) == sorted(p for _, p in readings(100))
    assert len(consume_all(broker, topic, idle=0.5)) == 100


def test_command_needs_bootstrap_servers(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KSQLPY_BOOTSTRAP_SERVERS", raising=False)
    assert mqtt.main([]) == 2
    assert "--bootstrap-servers" in capsys.readouterr().err


def test_command_stops_cleanly_on_sigterm(broker: str, mosquitto: MosquittoBroker, unique_topic: Callable[..., str],
                                          consume_all: Callable[..., list[ConsumedRecord]]) -> None:
    topic = unique_topic("cli")
    command = [sys.executable, "-m", "ksqlpy.cli", "mqtt-bridge", "--bootstrap-servers", broker,
               "--mqtt-host", mosquitto.host, "--mqtt-port", str(mosquitto.port), "--topic", topic,
               "--client-id", f"cli-{uuid.uuid4().hex[:8]}"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        for line in process.stderr:
            if "subscribed to vehicles/sensor/data/#" in line:
                break
        publish(mosquitto, readings(20))
        assert len(consume_all(broker, topic, expected_count=20)) == 20
        process.send_signal(signal.SIGTERM)
        remaining_output = process.stderr.read()
        assert process.wait(20) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert "20 written to Kafka, 20 acknowledged" in remaining_output
