"""udfs/anomaly.py loaded the way ksqlpy loads it, queried through SQL: ANOMALY_SCORE, IS_ANOMALY and the demo's
ANOMALY(sensorinput) over a DELIMITED stream, in the seed article's pipeline too; importing the module must not
import TensorFlow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from ksqlpy.driver import InMemoryDriver
from ksqlpy.functions.loader import UdfLoader
from ksqlpy.functions.registry import FunctionRegistry
from ksqlpy.ml.anomaly import Scorer
from ksqlpy.ml.cars import SENSOR_FIELDS, CarSimulator, is_failure, sensor_matrix, sensorinput

READINGS = ", ".join(SENSOR_FIELDS)
COLUMNS = ", ".join(f"{name} DOUBLE" for name in SENSOR_FIELDS)


@pytest.fixture(scope="module")
def registry(udfs_directory: Path) -> FunctionRegistry:
    registry = FunctionRegistry.with_builtins()
    results = UdfLoader(registry, [udfs_directory]).scan()
    assert any(r.path.name == "anomaly.py" and r.error is None for r in results), [str(r) for r in results]
    return registry


def output_values(driver: InMemoryDriver, topic: str) -> list[dict[str, Any]]:
    return [orjson.loads(record.value or b"null") for record in driver.records(topic)]


def test_functions_are_registered_with_sensor_parameter_names(registry: FunctionRegistry) -> None:
    for name in ("ANOMALY_SCORE", "IS_ANOMALY"):
        [overload] = registry.overloads(name)
        assert overload.param_names == SENSOR_FIELDS
        assert overload.vectorized
    [delimited] = registry.overloads("ANOMALY")
    assert delimited.param_names == ("sensorinput",)


def test_describe_function_states_each_scale(registry: FunctionRegistry) -> None:
    driver = InMemoryDriver(registry=registry)
    described = {name: driver.execute(f"DESCRIBE FUNCTION {name};")[0].rows[0][2]
                 for name in ("ANOMALY_SCORE", "IS_ANOMALY", "ANOMALY")}
    assert described["ANOMALY_SCORE"].startswith("Raw reconstruction error")
    assert "exceeds the threshold" in described["IS_ANOMALY"]
    assert "relative to the model's alert threshold: 1.0 is the threshold" in described["ANOMALY"]


def test_score_and_alert_per_reading(registry: FunctionRegistry, committed_scorer: Scorer) -> None:
    readings = list(CarSimulator(cars=5, failure_rate=0.3, seed=31).readings(400))
    readings[3]["speed"] = None  # a missing reading gives NULL, not an error
    driver = InMemoryDriver(registry=registry)
    driver.execute(
        f"CREATE STREAM car_sensor_data (car_id VARCHAR KEY, {COLUMNS}, failure_occurred VARCHAR) "
        "WITH (kafka_topic='sensor-data', value_format='JSON', partitions=1);"
        f"CREATE STREAM car_scores AS SELECT car_id, ANOMALY_SCORE({READINGS}) AS score, "
        f"IS_ANOMALY({READINGS}) AS alert, failure_occurred FROM car_sensor_data;"
    )
    for offset, reading in enumerate(readings):
        driver.produce("sensor-data", reading["car_id"].encode(), orjson.dumps(reading), 1_000 + offset)
    driver.process()
    outputs = output_values(driver, "CAR_SCORES")
    assert len(outputs) == len(readings)
    assert outputs[3]["SCORE"] is None and outputs[3]["ALERT"] is None
    scored = [i for i in range(len(readings)) if i != 3]
    expected = committed_scorer.score(sensor_matrix(readings[i] for i in scored))
    np.testing.assert_allclose([outputs[i]["SCORE"] for i in scored], expected, rtol=1e-9)
    assert [outputs[i]["ALERT"] for i in scored] == (expected > committed_scorer.threshold).tolist()
    alerts = [outputs[i]["ALERT"] for i in scored]
    failing = [readings[i]["failure_occurred"] == "true" for i in scored]
    assert sum(a and f for a, f in zip(alerts, failing, strict=True)) >= 0.8 * sum(failing)
    assert sum(a and not f for a, f in zip(alerts, failing, strict=True)) <= 2


def test_anomaly_over_the_demos_delimited_sensorinput(registry: FunctionRegistry, committed_scorer: Scorer) -> None:
    readings = list(CarSimulator(cars=3, failure_rate=0.2, seed=8).readings(30))
    texts = [sensorinput(reading) for reading in readings]
    driver = InMemoryDriver(registry=registry)
    driver.execute(
        "CREATE STREAM carsensor (eventid INTEGER, sensorinput VARCHAR) "
        "WITH (kafka_topic='temperature', value_format='DELIMITED', partitions=1);"
        "CREATE STREAM anomalydetection WITH (value_format='JSON') AS "
        "SELECT eventid, ANOMALY(sensorinput) AS anomaly_val FROM carsensor;"
    )
    values = [f"{i},{text}" for i, text in enumerate(texts)] + ["100,1#2#3", "101,not#a#number"]
    for offset, value in enumerate(values):
        driver.produce("temperature", None, value.encode(), 1_000 + offset)
    driver.process()
    outputs = output_values(driver, "ANOMALYDETECTION")
    assert [o["EVENTID"] for o in outputs] == [*range(30), 100, 101]
    relative = committed_scorer.score(sensor_matrix(readings)) / committed_scorer.threshold
    np.testing.assert_allclose([o["ANOMALY_VAL"] for o in outputs[:30]], relative, rtol=1e-9)
    assert outputs[30]["ANOMALY_VAL"] is None and outputs[31]["ANOMALY_VAL"] is None


def test_the_seed_articles_pipeline_alerts_on_the_faulty_reading_only(
        registry: FunctionRegistry, committed_scorer: Scorer, udfs_directory: Path) -> None:
    readings = list(CarSimulator(cars=3, failure_rate=0.2, seed=8).readings(60))
    normal = next(reading for reading in readings if not is_failure(reading))
    faulty = next(reading for reading in readings if is_failure(reading))
    driver = InMemoryDriver(registry=registry)
    driver.execute((udfs_directory.parent / "queries" / "seed_article.sql").read_text(encoding="utf-8"))
    driver.produce("car-sensor", None, f"normal-1,{sensorinput(normal)}".encode(), 1_000)
    driver.produce("car-sensor", None, f"faulty-2,{sensorinput(faulty)}".encode(), 1_001)
    driver.process()
    scored = [(record.value or b"").decode().split(",") for record in driver.records("ANOMALYDETECTION")]
    alerts = [(record.value or b"").decode().split(",") for record in driver.records("ANOMALYDETECTIONWITHFILTER")]
    assert [(eventid, text) for eventid, text, _ in alerts] == [("faulty-2", sensorinput(faulty))]
    relative = committed_scorer.score(sensor_matrix([normal, faulty])) / committed_scorer.threshold
    np.testing.assert_allclose([float(value) for _, _, value in scored], relative, rtol=1e-9)
    assert relative[0] < 1 and relative[1] > 3


def test_importing_the_module_does_not_import_tensorflow(udfs_directory: Path) -> None:
    probe = (
        "import sys\n"
        "from ksqlpy.functions.loader import UdfLoader\n"
        "from ksqlpy.functions.registry import FunctionRegistry\n"
        f"results = UdfLoader(FunctionRegistry(), [{str(udfs_directory)!r}]).scan()\n"
        "assert any(r.path.name == 'anomaly.py' and r.error is None for r in results), results\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=udfs_directory.parent, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
