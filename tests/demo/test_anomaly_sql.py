"""queries/anomaly_detection.sql through the in-memory driver, with the stand-in anomaly UDFs: the scored
stream keeps every reading, the alerts stream only IS_ANOMALY ones, keyed by car with TS, score and label."""

from __future__ import annotations

from pathlib import Path

import orjson

from ksqlpy.driver import InMemoryDriver
from ksqlpy.functions.loader import UdfLoader
from ksqlpy.functions.registry import FunctionRegistry
from ksqlpy.ml.cars import CarSimulator

SQL = Path(__file__).resolve().parents[2] / "queries" / "anomaly_detection.sql"


def test_alerts_carry_car_id_ts_score_and_label_for_anomalous_readings_only(stand_in_udfs: Path) -> None:
    registry = FunctionRegistry.with_builtins()
    assert all(result.error is None for result in UdfLoader(registry, [stand_in_udfs]).scan())
    driver = InMemoryDriver(registry=registry)
    driver.execute(SQL.read_text(encoding="utf-8"))
    readings = list(CarSimulator(cars=5, failure_rate=0.3, seed=11).readings(600))
    for reading in readings:
        driver.produce("sensor-data", reading["car_id"].encode(), orjson.dumps(reading), 0)
    driver.process()

    scores = [orjson.loads(record.value or b"") for record in driver.records("car-scores")]
    assert len(scores) == 600
    assert scores[0]["COOLANT_TEMP"] == readings[0]["coolant_temp"]

    def expected_score(reading: dict[str, float]) -> float:
        tyres = [reading[f"tire_pressure_{wheel}"] for wheel in ("11", "12", "21", "22")]
        return max((reading["coolant_temp"] - 100.0) / 10.0, max(abs(p - 33.0) for p in tyres) / 6.0)

    anomalous = [r for r in readings if expected_score(r) > 1.0]
    alerts = driver.records("car-anomalies")
    assert 0 < len(alerts) == len(anomalous)
    for record, reading in zip(alerts, anomalous, strict=True):
        value = orjson.loads(record.value or b"")
        assert record.key == reading["car_id"].encode()
        assert set(value) == {"TS", "ANOMALY_SCORE", "FAILURE_OCCURRED"}
        assert value["TS"] == record.timestamp == reading["ts"]  # TIMESTAMP='ts' carries through
        assert abs(value["ANOMALY_SCORE"] - expected_score(reading)) < 1e-9
        assert value["FAILURE_OCCURRED"] == reading["failure_occurred"]
