"""`ksqlpy demo` end to end on its own embedded broker: simulator -> (Mosquitto -> bridge ->) Kafka ->
queries/anomaly_detection.sql -> alerts enriched from the cars table and pages printed, checked against the
records on cars, car-anomalies and the windowed tables' topics car-anomalies-per-minute and car-pages."""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from ksqlpy.connect.mosquitto import MosquittoBroker
from ksqlpy.demo import pipeline
from ksqlpy.demo.simulate import car_readings, car_registry
from ksqlpy.runtime.broker import EmbeddedBroker
from ksqlpy.runtime.tools import ConsumedRecord
from ksqlpy.serialization.windowed import WindowInfo, split_windowed_keys

REPOSITORY_UDFS = Path(__file__).resolve().parents[2] / "udfs"
ANOMALY_SQL = Path(__file__).resolve().parents[2] / "queries" / "anomaly_detection.sql"
SUMMARY = re.compile(r"readings sent: (\d+) \((\d+) during a failure\); alerts: (\d+), (\d+) on real failures; "
                     r"pages: (\d+)")
PAGE = re.compile(r"PAGE: (\S+) had (\d+) anomalies in the minute starting (\d\d:\d\d)")
ALERT = re.compile(r"ALERT (\S+) \((.+), owner (.+), region (\S+)\)  at .*")
ALERT_COLUMNS = {"TS", "ANOMALY_SCORE", "FAILURE_OCCURRED", "MODEL", "OWNER", "REGION"}
MINUTE_MS = 60_000
PAGE_THRESHOLD = 3
CarMinute = tuple[str, int]  # car id, window start


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
    pages: int
    alert_lines: list[str]
    page_lines: list[str]
    status: str


def run_demo(kafka: str, udfs: Path, capsys: pytest.CaptureFixture[str], *options: str) -> DemoRun:
    out = io.StringIO()
    code = pipeline.main(["--bootstrap-servers", kafka, "--udfs-dir", str(udfs), "--cars", "10", *options], out=out)
    status = capsys.readouterr().err
    assert code == 0, status
    lines = out.getvalue().splitlines()
    summary = SUMMARY.search(out.getvalue())
    assert summary is not None, out.getvalue()
    sent, failures, alerts, real, pages = (int(group) for group in summary.groups())
    return DemoRun(sent, failures, alerts, real, pages, [line for line in lines if line.startswith("ALERT ")],
                   [line for line in lines if line.startswith("PAGE: ")], status)


def alert_records(kafka: str, consume_all: Callable[..., list[ConsumedRecord]], count: int) -> list[ConsumedRecord]:
    records = consume_all(kafka, "car-anomalies", expected_count=count, timeout=10)
    assert len(records) == count
    return records


def check_enrichment(kafka: str, consume_all: Callable[..., list[ConsumedRecord]], run: DemoRun,
                     records: list[ConsumedRecord]) -> None:
    """The registry (seed 42) is on the cars topic, stamped before the first alert's reading; every alert,
    on the topic and as printed, carries its car's model, owner and region."""
    registry = {row["car_id"]: row for row in car_registry(10, seed=42)}
    registered = consume_all(kafka, "cars", expected_count=len(registry), timeout=10)
    assert {(r.key or b"").decode(): orjson.loads(r.value or b"") for r in registered} == registry
    values = [orjson.loads(record.value or b"") for record in records]
    assert max(r.timestamp for r in registered) < min(value["TS"] for value in values)
    expected = [registry[(record.key or b"").decode()] for record in records]
    assert [(v["MODEL"], v["OWNER"], v["REGION"]) for v in values] == \
        [(car["model"], car["owner"], car["region"]) for car in expected]
    printed = [ALERT.fullmatch(line) for line in run.alert_lines]
    assert [match.groups() if match else line for match, line in zip(printed, run.alert_lines, strict=True)] == \
        [(car["car_id"], car["model"], car["owner"], car["region"]) for car in expected]


def latest_per_car_minute(kafka: str, consume_all: Callable[..., list[ConsumedRecord]],
                           topic: str) -> dict[CarMinute, dict[str, Any]]:
    """A windowed table's rows as its topic leaves them: the last value per car and minute."""
    records = consume_all(kafka, topic)
    keys, starts, _ends = split_windowed_keys([record.key for record in records], WindowInfo("TUMBLING", MINUTE_MS))
    return {((key or b"").decode(), start or 0): orjson.loads(record.value or b"")
            for key, start, record in zip(keys, starts, records, strict=True)}


def check_minute_tables(kafka: str, consume_all: Callable[..., list[ConsumedRecord]], run: DemoRun,
                        alerts: list[ConsumedRecord]) -> None:
    """The per-minute table ends with each car-minute's alert count, the pages table with those of 3 and more,
    and the demo printed one page for each of the latter."""
    values = [orjson.loads(record.value or b"") for record in alerts]
    minutes: list[CarMinute] = [((record.key or b"").decode(), value["TS"] - value["TS"] % MINUTE_MS)
                                for record, value in zip(alerts, values, strict=True)]
    anomalies = Counter(minutes)
    real = Counter(minute for minute, value in zip(minutes, values, strict=True) if value["FAILURE_OCCURRED"] == "true")
    per_minute = latest_per_car_minute(kafka, consume_all, "car-anomalies-per-minute")
    assert {minute: (row["ANOMALIES"], row["REAL_FAILURES"]) for minute, row in per_minute.items()} == \
        {minute: (count, real[minute]) for minute, count in anomalies.items()}
    paged = {minute: count for minute, count in anomalies.items() if count >= PAGE_THRESHOLD}
    pages = latest_per_car_minute(kafka, consume_all, "car-pages")
    assert {minute: row["ANOMALIES"] for minute, row in pages.items()} == paged
    printed = [PAGE.fullmatch(line) for line in run.page_lines]
    assert all(match is not None and int(match[2]) >= PAGE_THRESHOLD for match in printed)
    assert sorted((match[1], match[3]) for match in printed if match is not None) == sorted(
        (car, datetime.fromtimestamp(start / 1000).strftime("%H:%M")) for car, start in paged)
    assert 0 < run.pages == len(run.page_lines)


def test_the_quickstart_demo_pages_within_its_30_seconds() -> None:
    # Five failing readings in a row span 2 s of a car's readings: 3 of them share a minute however the
    # minutes fall, and the model flags every faulty reading (recall 1.0 on every fault kind).
    defaults = pipeline.build_parser().parse_args([])
    readings = car_readings(defaults.cars, defaults.rate, defaults.failure_rate, defaults.seed, round(30 * defaults.rate))
    failing_in_a_row: Counter[str] = Counter()
    longest = 0
    for reading in readings:
        failing = reading["failure_occurred"] == "true"
        failing_in_a_row[reading["car_id"]] = failing_in_a_row[reading["car_id"]] + 1 if failing else 0
        longest = max(longest, failing_in_a_row[reading["car_id"]])
    assert longest >= 5


def test_demo_straight_to_kafka_prints_every_alert_of_the_alerts_stream(
    kafka: str, stand_in_udfs: Path, capsys: pytest.CaptureFixture[str],
    consume_all: Callable[..., list[ConsumedRecord]],
) -> None:
    run = run_demo(kafka, stand_in_udfs, capsys, "--no-mqtt", "--rate", "300", "--duration", "2",
                   "--failure-rate", "0.3")
    assert "to Kafka topics sensor-data and cars" in run.status and "registry of 10 cars" in run.status
    assert 300 <= run.sent <= 700
    assert len(consume_all(kafka, "sensor-data", expected_count=run.sent, timeout=10)) == run.sent
    assert 0 < run.alerts == len(run.alert_lines)
    records = alert_records(kafka, consume_all, run.alerts)
    values = [orjson.loads(record.value or b"") for record in records]
    assert all(set(value) == ALERT_COLUMNS for value in values)
    check_enrichment(kafka, consume_all, run, records)
    assert run.real_failures == sum(value["FAILURE_OCCURRED"] == "true" for value in values)
    assert run.real_failures >= 0.7 * run.alerts
    check_minute_tables(kafka, consume_all, run, records)


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
    assert all(set(value) == ALERT_COLUMNS for value in values)
    check_enrichment(kafka, consume_all, run, records)
    assert run.real_failures >= 0.8 * run.alerts  # mostly real failures
    check_minute_tables(kafka, consume_all, run, records)


def test_demo_with_its_own_sql_without_a_pages_table_prints_alerts_only(
    kafka: str, stand_in_udfs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    streams_only = tmp_path / "streams_only.sql"
    streams_only.write_text(ANOMALY_SQL.read_text(encoding="utf-8").split("CREATE TABLE car_anomalies_per_minute")[0],
                            encoding="utf-8")
    run = run_demo(kafka, stand_in_udfs, capsys, "--no-mqtt", "--rate", "300", "--duration", "1",
                   "--failure-rate", "0.3", "--sql", str(streams_only))
    assert run.alerts == len(run.alert_lines) > 0
    assert run.pages == len(run.page_lines) == 0
