"""`ksqlpy simulate`: the registry then readings to Kafka (exact count, key = car id, the row or reading as
JSON), the registry alone, pacing, and to MQTT (the registry retained)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import orjson
import paho.mqtt.client as paho
import pytest

from ksqlpy.connect.mosquitto import MosquittoBroker
from ksqlpy.demo import simulate
from ksqlpy.ml.cars import SENSOR_FIELDS
from ksqlpy.runtime.broker import free_loopback_port
from ksqlpy.runtime.tools import ConsumedRecord


def test_kafka_mode_writes_count_readings_keyed_by_car(
    broker: str, unique_topic: Callable[..., str], consume_all: Callable[..., list[ConsumedRecord]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    topic, registry_topic = unique_topic("sensor"), unique_topic("cars")
    started_ms = int(time.time() * 1000)
    code = simulate.main(["--kafka", "--bootstrap-servers", broker, "--topic", topic, "--registry-topic",
                          registry_topic, "--cars", "4", "--count", "400", "--rate", "0", "--failure-rate", "0.2",
                          "--seed", "7"])
    assert code == 0
    records = consume_all(broker, topic, expected_count=400)
    assert len(records) == 400
    assert len(consume_all(broker, topic, idle=0.5)) == 400
    values = [orjson.loads(record.value or b"") for record in records]
    assert {record.key for record in records} == {f"car-{n:05d}".encode() for n in range(4)}
    assert all(record.key == value["car_id"].encode() for record, value in zip(records, values, strict=True))
    assert set(values[0]) == {"car_id", "ts", *SENSOR_FIELDS, "failure_occurred"}
    assert values[0]["ts"] >= started_ms  # stamped from now, not from the generator's fixed epoch
    failures = sum(value["failure_occurred"] == "true" for value in values)
    assert 0 < failures < 400
    assert f"sent 4 registry row(s) and 400 reading(s), {failures} during a failure" in capsys.readouterr().err
    registered = consume_all(broker, registry_topic, expected_count=4)
    assert [(r.key, orjson.loads(r.value or b"")) for r in registered] == \
        [(row["car_id"].encode(), row) for row in simulate.car_registry(4, seed=7)]
    assert max(r.timestamp for r in registered) < min(value["ts"] for value in values)


def test_the_registry_is_the_same_for_a_seed_and_differs_between_seeds() -> None:
    registry = simulate.car_registry(50, seed=7)
    assert registry == simulate.car_registry(50, seed=7) != simulate.car_registry(50, seed=8)
    assert [row["car_id"] for row in registry] == [f"car-{n:05d}" for n in range(50)]
    assert {row["model"] for row in registry} == set(simulate.CAR_MODELS)
    assert {row["region"] for row in registry} == set(simulate.REGIONS)
    assert len({row["owner"] for row in registry}) > 25


def test_registry_only_publishes_the_registry_again_and_no_readings(
    broker: str, unique_topic: Callable[..., str], consume_all: Callable[..., list[ConsumedRecord]],
) -> None:
    topic, registry_topic = unique_topic("sensor"), unique_topic("cars")
    arguments = ["--kafka", "--bootstrap-servers", broker, "--topic", topic, "--registry-topic", registry_topic,
                 "--cars", "3", "--registry-only"]
    assert simulate.main(arguments) == simulate.main(arguments) == 0
    registered = consume_all(broker, registry_topic, expected_count=6)
    assert [r.key for r in registered] == [f"car-{n:05d}".encode() for n in range(3)] * 2
    assert consume_all(broker, topic, idle=0.5) == []


def test_rate_paces_readings() -> None:
    stop = threading.Event()
    started = time.monotonic()
    assert len(list(simulate.paced([{"n": n} for n in range(11)], rate=50, stop=stop))) == 11
    assert 0.19 <= time.monotonic() - started < 1.0


def test_stop_ends_an_endless_simulation() -> None:
    stop = threading.Event()
    stop.set()
    endless = ({"n": n} for n in range(10**9))
    assert list(simulate.paced(endless, rate=0, stop=stop)) == []


def test_mqtt_mode_publishes_to_each_cars_topic(mosquitto: MosquittoBroker) -> None:
    assert mosquitto.port is not None
    received: list[paho.MQTTMessage] = []
    subscribed = threading.Event()
    listener = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"listener-{uuid.uuid4().hex[:8]}")
    listener.on_subscribe = lambda *_args: subscribed.set()
    listener.on_message = lambda _client, _userdata, message: received.append(message)
    listener.connect(mosquitto.host, mosquitto.port)
    listener.subscribe([("vehicles/sensor/data/#", 1), ("vehicles/registry/#", 1)])
    listener.loop_start()
    try:
        assert subscribed.wait(10)
        code = simulate.main(["--mqtt-host", mosquitto.host, "--mqtt-port", str(mosquitto.port), "--cars", "3",
                              "--count", "30", "--rate", "0"])
        assert code == 0
        deadline = time.monotonic() + 10
        while len(received) < 30 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        listener.disconnect()
        listener.loop_stop()
    registry, readings = received[:3], received[3:]
    assert len(readings) == 30
    assert [(m.topic, orjson.loads(m.payload)) for m in registry] == \
        [(f"vehicles/registry/{row['car_id']}", row) for row in simulate.car_registry(3, seed=42)]
    assert {message.topic for message in readings} == {f"vehicles/sensor/data/car-{n:05d}" for n in range(3)}
    assert all(orjson.loads(m.payload)["car_id"] == m.topic.rpartition("/")[2] for m in readings)
    # Retained: a subscriber that comes later (a bridge started after the simulator) still gets the registry.
    assert retained_topics(mosquitto, "vehicles/registry/#", 3) == {f"vehicles/registry/car-{n:05d}" for n in range(3)}


def retained_topics(mosquitto: MosquittoBroker, topic_filter: str, expected: int) -> set[str]:
    """The topics of the retained messages a new subscriber to `topic_filter` gets at once (waiting for up to
    `expected` of them)."""
    assert mosquitto.port is not None
    topics: set[str] = set()
    late = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"late-{uuid.uuid4().hex[:8]}")
    late.on_message = lambda _client, _userdata, message: topics.add(message.topic) if message.retain else None
    late.connect(mosquitto.host, mosquitto.port)
    late.subscribe(topic_filter, qos=1)
    late.loop_start()
    try:
        deadline = time.monotonic() + 10
        while len(topics) < expected and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        late.disconnect()
        late.loop_stop()
    return topics


def test_unreachable_mqtt_broker_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert simulate.main(["--mqtt-host", "127.0.0.1", "--mqtt-port", str(free_loopback_port()), "--count", "1"]) == 1
    assert "Cannot reach the MQTT broker" in capsys.readouterr().err
