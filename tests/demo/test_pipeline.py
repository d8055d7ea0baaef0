"""`ksqlpy demo` end to end on its own embedded broker: simulator -> (Mosquitto -> bridge ->) Kafka ->
queries/anomaly_detection.sql -> alerts printed, checked against the records on car-anomalies."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from ksqlpy.connect.mosquitto import MosquittoBroker
from ksqlpy.demo import pipeline
from ksqlpy.runtime.broker import EmbeddedBroker
from ksqlpy.runtime.tools import ConsumedRecord

REPOSITORY_UDFS = Path(__file__).resolve().parents[2] / "udfs"
SUMMARY = re.compile(r"readings sent: (\d+) \((\d+) during a failure\); alerts: (\d+), (\d+) on real failures")


@pytest.fixture
def kafka() -> Iterator[str]:
    """A broker of the demo's own: its topic names are fixed, so it must not share one with other tests."""
    with EmbeddedBroker() as started:
        yield started.bootstrap_servers


@dataclass
class DemoRun:
    sent: int
    failures: int
    alerts: int
    real_failures: int
    alert_lines: list[str]
    status: str


def run_demo(kafka: str, udfs: Path, capsys: pytest.CaptureFixture[str], *options: str) -> DemoRun:
    out = io.StringIO()
    code = pipeline.main(["--bootstrap-servers", kafka, "--udfs-dir", str(udfs), "--cars", "10", *options], out=out)
    status = capsys.readouterr().err
    assert code == 0, status
    lines = out.getvalue().splitlines()
    summary = SUMMARY.search(out.getvalue())
    assert summary is not None, out.getvalue()
    sent, failures, alerts, real = (int(group) for group in summary.groups())
    return DemoRun(sent, failures, alerts, real, [line for line in lines if line.startswith("ALERT ")], status)


def alert_records(kafka: str, consume_all: Callable[..., list[ConsumedRecord]], count: int) -> list[ConsumedRecord]:
    records = consume_all(kafka, "car-anomalies", expected_count=count, timeout=10)
    assert len(records) == count
    return records


def test_demo_straight_to_kafka_prints_every_alert_of_the_alerts_stream(
    kafka: str, stand_in_udfs: Path, capsys: pytest.CaptureFixture[str],
    consume_all: Callable[..., list[ConsumedRecord]],
) -> None:
    run = run_demo(kafka, stand_in_udfs, capsys, "--no-mqtt", "--rate", "300", "--duration", "2",
                   "--failure-rate", "0.3")
    assert "to Kafka topic sensor-data" in run.status
    assert 300 <= run.sent <= 700
    assert len(consume_all(kafka, "sensor-data", expected_count=run.sent, timeout=10)) == run.sent
    assert 0 < run.alerts == len(run.alert_lines)
    records = alert_records(kafka, consume_all, run.alerts)
    values = [orjson.loads(record.value or b"") for record in records]
    printed = [line.split()[1] for line in run.alert_lines]
    assert printed == [(record.key or b"").decode() for record in records]
    assert all(set(value) == {"TS", "ANOMALY_SCORE", "FAILURE_OCCURRED"} for value in values)
    assert run.real_failures == sum(value["FAILURE_OCCURRED"] == "true" for value in values)
    assert run.real_failures >= 0.7 * run.alerts


def test_demo_over_mqtt_with_the_anomaly_model(
    kafka: str, mosquitto: MosquittoBroker, capsys: pytest.CaptureFixture[str],
    consume_all: Callable[..., list[ConsumedRecord]],
) -> None:
    if not (REPOSITORY_UDFS / "anomaly.py").exists() or not (REPOSITORY_UDFS / "models" / "anomaly" / "v1").is_dir():
        pytest.skip("udfs/anomaly.py or its model artifact udfs/models/anomaly/v1 is missing")
    run = run_demo(kafka, REPOSITORY_UDFS, capsys, "--rate", "200", "--duration", "4", "--failure-rate", "0.2")
    assert "started mosquitto" in run.status and "subscribed to vehicles/sensor/data/#" in run.status
    # Nothing lost on the MQTT leg: every reading the simulator published is on the sensor topic.
    assert len(consume_all(kafka, "sensor-data", expected_count=run.sent, timeout=10)) == run.sent
    assert run.failures > 0 and run.alerts == len(run.alert_lines) > 0
    records = alert_records(kafka, consume_all, run.alerts)
    values = [orjson.loads(record.value or b"") for record in records]
    assert all(set(value) == {"TS", "ANOMALY_SCORE", "FAILURE_OCCURRED"} for value in values)
    assert all(record.key for record in records)
    assert run.real_failures >= 0.8 * run.alerts  # mostly real failures
