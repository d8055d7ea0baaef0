"""queries/anomaly_detection.sql through the in-memory driver, with the stand-in anomaly UDFs: the scored
stream keeps every reading, the alerts stream only IS_ANOMALY ones, keyed by car with TS, score and label
and the car's model, owner and region from the registry table (NULL for a car not in it); the per-minute
table counts each car's alerts per tumbling minute and the pages table holds the counts of 3 and more."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from ksqlpy.demo.simulate import car_registry
from ksqlpy.driver import InMemoryDriver
from ksqlpy.functions.loader import UdfLoader
from ksqlpy.functions.registry import FunctionRegistry
from ksqlpy.ml.cars import CarSimulator

SQL = Path(__file__).resolve().parents[2] / "queries" / "anomaly_detection.sql"
MINUTE_MS = 60_000
PAGE_THRESHOLD = 3


def run_pipeline(udfs: Path, readings: list[dict[str, Any]], registered: list[dict[str, str]]) -> InMemoryDriver:
    """The registry rows first, stamped before any reading (as the simulator publishes them), then the readings."""
    functions = FunctionRegistry.with_builtins()
    assert all(result.error is None for result in UdfLoader(functions, [udfs]).scan())
    driver = InMemoryDriver(registry=functions)
    driver.execute(SQL.read_text(encoding="utf-8"))
    for row in registered:
        driver.produce("cars", row["car_id"].encode(), orjson.dumps(row), 0)
    for reading in readings:
        driver.produce("sensor-data", reading["car_id"].encode(), orjson.dumps(reading), 0)
    driver.process()
    return driver


def test_alerts_carry_car_id_ts_score_label_and_the_registry_row_for_anomalous_readings_only(
    stand_in_udfs: Path,
) -> None:
    def expected_score(reading: dict[str, float]) -> float:
        tyres = [reading[f"tire_pressure_{wheel}"] for wheel in ("11", "12", "21", "22")]
        return max((reading["coolant_temp"] - 100.0) / 10.0, max(abs(p - 33.0) for p in tyres) / 6.0)

    readings = list(CarSimulator(cars=5, failure_rate=0.3, seed=11).readings(600))
    anomalous = [r for r in readings if expected_score(r) > 1.0]
    # The first car with an alert is missing from the registry: its alerts are raised without model etc.
    registered = {row["car_id"]: row for row in car_registry(5, seed=11) if row["car_id"] != anomalous[0]["car_id"]}
    driver = run_pipeline(stand_in_udfs, readings, list(registered.values()))

    scores = [orjson.loads(record.value or b"") for record in driver.records("car-scores")]
    assert len(scores) == 600
    assert scores[0]["COOLANT_TEMP"] == readings[0]["coolant_temp"]

    alerts = driver.records("car-anomalies")
    assert 0 < len(alerts) == len(anomalous)
    for record, reading in zip(alerts, anomalous, strict=True):
        value = orjson.loads(record.value or b"")
        assert record.key == reading["car_id"].encode()
        assert set(value) == {"TS", "ANOMALY_SCORE", "FAILURE_OCCURRED", "MODEL", "OWNER", "REGION"}
        assert value["TS"] == record.timestamp == reading["ts"]  # TIMESTAMP='ts' carries through
        assert abs(value["ANOMALY_SCORE"] - expected_score(reading)) < 1e-9
        assert value["FAILURE_OCCURRED"] == reading["failure_occurred"]
        car = registered.get(reading["car_id"], {})
        assert (value["MODEL"], value["OWNER"], value["REGION"]) == (car.get("model"), car.get("owner"),
                                                                      car.get("region"))
    assert {orjson.loads(record.value or b"")["MODEL"] is None for record in alerts} == {True, False}


def test_the_per_minute_table_updates_each_car_minute_with_every_alert_and_pages_hold_counts_of_three_and_more(
    stand_in_udfs: Path,
) -> None:
    # 6 readings per car a minute for 17 minutes, from 50 s into a minute: failure episodes start and end
    # within minutes, so some car-minutes have 1 or 2 anomalies (no page) and others up to 6.
    start_ms = 1_700_000_000_000 - 1_700_000_000_000 % MINUTE_MS + 50_000
    readings = list(CarSimulator(cars=4, failure_rate=0.3, seed=7, start_ms=start_ms, interval_ms=10_000).readings(400))
    driver = run_pipeline(stand_in_udfs, readings, car_registry(4, seed=7))
    alerts = [(record.key, record.timestamp, orjson.loads(record.value or b"")) for record in driver.records("car-anomalies")]

    # ksqlDB with the record cache off: one update per alert; the row's timestamp is its latest alert's.
    expected: list[tuple[bytes | None, tuple[int, int, str], dict[str, Any], int]] = []
    state: dict[tuple[bytes | None, int], dict[str, Any]] = {}
    for key, timestamp, value in alerts:
        start = timestamp - timestamp % MINUTE_MS
        before = state.get((key, start), {"ANOMALIES": 0, "REAL_FAILURES": 0, "MAX_SCORE": value["ANOMALY_SCORE"]})
        row = {"ANOMALIES": before["ANOMALIES"] + 1,
               "REAL_FAILURES": before["REAL_FAILURES"] + (value["FAILURE_OCCURRED"] == "true"),
               "MAX_SCORE": max(before["MAX_SCORE"], value["ANOMALY_SCORE"])}
        state[(key, start)] = row
        expected.append((key, (start, start + MINUTE_MS, "time"), row, timestamp))
    per_minute = [(r.key, r.window, orjson.loads(r.value or b""), r.timestamp)
                  for r in driver.records("car-anomalies-per-minute")]
    assert per_minute == expected
    assert len({window for _, window, _, _ in expected}) > 1
    assert any(row["ANOMALIES"] >= PAGE_THRESHOLD for row in state.values())
    assert any(row["ANOMALIES"] < PAGE_THRESHOLD for row in state.values())

    pages = [(r.key, r.window, orjson.loads(r.value or b""), r.timestamp) for r in driver.records("car-pages")]
    assert pages == [(key, window, {"ANOMALIES": row["ANOMALIES"]}, timestamp)
                     for key, window, row, timestamp in expected if row["ANOMALIES"] >= PAGE_THRESHOLD]
