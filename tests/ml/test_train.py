"""`ksqlpy train`: from a Kafka topic through the consumer-group fed tf.data pipeline, from generated readings,
and through the `ksqlpy` command line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from ksqlpy import cli
from ksqlpy.ml.anomaly import load_scorer, read_metadata
from ksqlpy.ml.cars import CarSimulator, is_failure, sensor_matrix
from ksqlpy.ml.train import decode_readings, main


def test_train_from_a_kafka_topic_in_a_consumer_group(
    broker: str, unique_topic: Callable[..., str], produce_json: Callable[..., None], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    topic = unique_topic("sensor_data")
    readings = list(CarSimulator(cars=5, failure_rate=0.05, seed=21).readings(3_000))
    produce_json(broker, topic, [(r["car_id"], r) for r in readings] + ["not a reading"], partitions=2)
    out = tmp_path / "v7"
    arguments = ["--bootstrap-servers", broker, "--topic", topic, "--group", f"{topic}-trainer", "--epochs", "3",
                 "--idle-timeout", "2", "-q"]

    assert main([*arguments, "--out", str(out)]) == 0

    assert f"Saved {out} (3001 records" in capsys.readouterr().out
    metadata = read_metadata(out)
    training = metadata["training"]
    assert training["source"] == "kafka" and training["topic"] == topic and training["group"] == f"{topic}-trainer"
    assert (training["records"], training["skipped_records"], training["holdout_rows"]) == (3_001, 1, 600)
    failing = sum(is_failure(r) for r in readings)
    assert 2_400 - failing <= training["training_rows"] <= 2_400
    assert training["epochs"] == 3 and metadata["version"] == "v7"
    scorer = load_scorer(out)
    scores = scorer.score(sensor_matrix(readings[:100]))
    assert np.isfinite(scores).all() and scorer.threshold > 0
    assert metadata["quality"]["holdout"]["rows"] == 600

    # The group committed its offsets: the same group has nothing new to train on.
    assert main([*arguments, "--out", str(tmp_path / "v8"), "--wait", "3"]) == 1
    assert "No records" in capsys.readouterr().err
    assert not (tmp_path / "v8").exists()


def test_max_records_limits_what_is_read(
    broker: str, unique_topic: Callable[..., str], produce_json: Callable[..., None], tmp_path: Path,
) -> None:
    topic = unique_topic("sensor_data")
    produce_json(broker, topic, list(CarSimulator(cars=3, seed=4).readings(2_000)))
    out = tmp_path / "model"
    assert main(["--bootstrap-servers", broker, "--topic", topic, "--max-records", "1000", "--epochs", "1",
                 "--out", str(out), "-q"]) == 0
    assert read_metadata(out)["training"]["records"] == 1_000


def test_cli_trains_generated_readings_into_the_next_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    arguments = ["train", "--generate", "2000", "--epochs", "2", "--evaluate", "2000", "--seed", "3", "-q"]
    assert cli.main(arguments) == 0
    assert cli.main(arguments) == 0
    root = tmp_path / "udfs" / "models" / "anomaly"
    assert sorted(p.name for p in root.iterdir()) == ["v1", "v2"]
    printed = capsys.readouterr().out
    assert f"Saved {Path('udfs/models/anomaly/v2')}" in printed and "evaluation: precision" in printed
    first, second = (json.loads((root / v / "artifact.json").read_text()) for v in ("v1", "v2"))
    # Seeded: the same data, weights and threshold each time.
    assert first["threshold"] == second["threshold"]
    assert first["training"]["final_loss"] == second["training"]["final_loss"]
    evaluation = first["quality"]["evaluation"]
    assert evaluation["generator"]["seed"] != first["training"]["seed"]
    assert evaluation["rows"] == 2_000 and set(evaluation["recall_by_kind"]) >= {"overheating", "tyre_pressure"}


def test_cli_without_kafka_says_how_to_connect(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("KSQLPY_BOOTSTRAP_SERVERS", raising=False)
    assert cli.main(["train"]) == 1
    assert "--bootstrap-servers" in capsys.readouterr().err


def test_decode_readings_skips_what_is_not_a_reading() -> None:
    [reading] = CarSimulator(seed=1).readings(1)
    without_speed = {k: v for k, v in reading.items() if k != "speed"}
    payloads = [json.dumps(reading).encode(), None, b"{not json", b"[1, 2]", json.dumps(without_speed).encode(),
                json.dumps({**reading, "speed": "fast"}).encode(), json.dumps({**reading, "failure_occurred": "true"}).encode()]
    rows, failures, skipped = decode_readings(payloads)
    assert skipped == 5
    np.testing.assert_array_equal(rows, sensor_matrix([reading, reading]))
    assert failures.tolist() == [False, True]
