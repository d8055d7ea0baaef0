"""`ksqlpy simulate`: readings to Kafka (exact count, key = car id, the reading as JSON), pacing, and to MQTT."""

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
    topic = unique_topic("sensor")
    started_ms = int(time.time() * 1000)
    code = simulate.main(["--kafka", "--bootstrap-servers", broker, "--topic", topic, "--cars", "4",
                          "--count", "400", "--rate", "0", "--failure-rate", "0.2", "--seed", "7"])
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
    assert f"sent 400 reading(s), {failures} during a failure" in capsys.readouterr().err


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
    listener.subscribe("vehicles/sensor/data/#", qos=1)
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
    assert len(received) == 30
    assert {message.topic for message in received} == {f"vehicles/sensor/data/car-{n:05d}" for n in range(3)}
    assert all(orjson.loads(m.payload)["car_id"] == m.topic.rpartition("/")[2] for m in received)


def test_unreachable_mqtt_broker_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert simulate.main(["--mqtt-host", "127.0.0.1", "--mqtt-port", str(free_loopback_port()), "--count", "1"]) == 1
    assert "Cannot reach the MQTT broker" in capsys.readouterr().err
