"""The committed autoencoder artifact: metadata, scoring (numpy equals Keras), detection quality on a held-out
fleet, parsing of the demo's '#'-separated readings, threshold choice and artifact versions."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ksqlpy.ml.anomaly import (
    ARTIFACT_FORMAT,
    METADATA_FILE,
    SCORE_CHUNK_ROWS,
    Scorer,
    artifact_sha256,
    next_version_directory,
    parse_delimited,
    read_metadata,
    scale,
)
from ksqlpy.ml.cars import SENSOR_FIELDS, SENSOR_RANGES
from ksqlpy.ml.quality import choose_threshold, quality_report

REQUIRED_KINDS = ("overheating", "tyre_pressure", "drive_shaft_vibration")


def test_artifact_metadata_describes_the_model(committed_artifact: Path) -> None:
    metadata = read_metadata(committed_artifact)
    assert metadata["format"] == ARTIFACT_FORMAT
    assert metadata["version"] == "v1"
    assert metadata["fields"] == list(SENSOR_FIELDS)
    assert {name: tuple(bounds) for name, bounds in metadata["scaling"].items()} == SENSOR_RANGES
    assert metadata["architecture"] == [18, "14 tanh", "7 relu", "7 tanh", "18 linear"]
    assert metadata["threshold"] > 0
    assert metadata["training"]["source"] == "generated"
    evaluation = metadata["quality"]["evaluation"]
    assert evaluation["precision"] >= 0.9
    assert all(evaluation["recall_by_kind"][kind]["recall"] >= 0.9 for kind in REQUIRED_KINDS)
    model_file = committed_artifact / metadata["model_file"]
    assert model_file.stat().st_size < 100_000


def test_scorer_matches_the_keras_model(committed_scorer: Scorer, held_out_fleet: tuple, committed_artifact: Path) -> None:
    import keras

    rows = held_out_fleet[0][:2_000]
    model = keras.models.load_model(committed_artifact / "autoencoder.keras", compile=False)
    scaled = scale(rows, committed_scorer.low, committed_scorer.span)
    keras_errors = np.mean((np.asarray(model(scaled)) - scaled) ** 2, axis=1)
    np.testing.assert_allclose(committed_scorer.score(rows), keras_errors, rtol=1e-3, atol=1e-9)


def test_scores_do_not_depend_on_batching(committed_scorer: Scorer, held_out_fleet: tuple) -> None:
    rows = held_out_fleet[0][: SCORE_CHUNK_ROWS * 2 + 7]
    whole = committed_scorer.score(rows)
    assert whole.shape == (len(rows),) and whole.dtype == np.float64
    one_by_one = np.concatenate([committed_scorer.score(rows[i:i + 1]) for i in range(0, len(rows), 97)])
    np.testing.assert_allclose(whole[::97], one_by_one, rtol=1e-5)
    assert committed_scorer.score(np.zeros((0, 18))).shape == (0,)
    with pytest.raises(ValueError, match="18 readings"):
        committed_scorer.score(np.zeros((3, 17)))


def test_scorer_separates_faulty_from_normal_rows(committed_scorer: Scorer, held_out_fleet: tuple) -> None:
    rows, failures, kinds = held_out_fleet
    report = quality_report(committed_scorer.score(rows), committed_scorer.threshold, failures, kinds)
    assert report["precision"] >= 0.9
    for kind in REQUIRED_KINDS:
        assert report["recall_by_kind"][kind]["recall"] >= 0.9, kind
    flagged = committed_scorer.is_anomaly(rows)
    assert flagged[failures].mean() > 0.9 and flagged[~failures].mean() < 0.01


def test_sha256_covers_every_artifact_file(committed_scorer: Scorer, committed_artifact: Path, tmp_path: Path) -> None:
    copy = tmp_path / "v1"
    shutil.copytree(committed_artifact, copy)
    assert committed_scorer.sha256() == artifact_sha256(copy) == artifact_sha256(committed_artifact)
    metadata = json.loads((copy / METADATA_FILE).read_text())
    metadata["threshold"] *= 2
    (copy / METADATA_FILE).write_text(json.dumps(metadata))
    assert artifact_sha256(copy) != artifact_sha256(committed_artifact)


def test_read_metadata_rejects_other_json(tmp_path: Path) -> None:
    (tmp_path / METADATA_FILE).write_text('{"format": "something-else"}')
    with pytest.raises(ValueError, match="not a"):
        read_metadata(tmp_path)


def test_parse_delimited_keeps_well_formed_rows_only() -> None:
    good = "#".join(str(i + 0.5) for i in range(18))
    texts = [good, None, "1#2#3", good.replace("3.5", "x"), good.replace("3.5", "nan"), good, f"{good}#1"]
    rows, valid = parse_delimited(texts)
    assert valid.tolist() == [True, False, False, False, False, True, False]
    np.testing.assert_array_equal(rows, np.tile(np.arange(18) + 0.5, (2, 1)))
    empty_rows, empty_valid = parse_delimited([])
    assert empty_rows.shape == (0, 18) and empty_valid.shape == (0,)


def test_quality_report_counts_per_kind() -> None:
    scores = np.array([0.1, 0.9, 0.8, 0.2, 0.95, 0.05])
    failures = np.array([False, True, True, True, False, False])
    kinds = [None, "overheating", "overheating", "tyre_pressure", None, None]
    report = quality_report(scores, 0.5, failures, kinds)
    assert report["flagged"] == 3 and report["failures"] == 3
    assert report["precision"] == pytest.approx(2 / 3, abs=1e-4)
    assert report["recall"] == pytest.approx(2 / 3, abs=1e-4)
    assert report["false_positive_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert report["recall_by_kind"]["overheating"] == {"rows": 2, "recall": 1.0}
    assert report["recall_by_kind"]["tyre_pressure"] == {"rows": 1, "recall": 0.0}
    assert report["recall_by_kind"]["old_firmware"] == {"rows": 0, "recall": None}


def test_choose_threshold_keeps_precision() -> None:
    rng = np.random.default_rng(0)
    normal = rng.exponential(1.0, 10_000)
    failing = rng.uniform(8.0, 20.0, 500)
    scores = np.concatenate([normal, failing])
    failures = np.concatenate([np.zeros(len(normal), bool), np.ones(len(failing), bool)])
    threshold, percentile = choose_threshold(normal, scores, failures)
    flagged = scores > threshold
    assert (flagged & failures).sum() / flagged.sum() >= 0.9
    assert threshold == pytest.approx(np.percentile(normal, percentile))
    # Without labelled failures no percentile can show its precision: the strictest one is used.
    assert choose_threshold(normal, normal, np.zeros(len(normal), bool))[1] == 99.95


def test_next_version_directory(tmp_path: Path) -> None:
    assert next_version_directory(tmp_path / "missing") == tmp_path / "missing" / "v1"
    for name in ("v1", "v3", "notes", "v2x"):
        (tmp_path / name).mkdir()
    assert next_version_directory(tmp_path) == tmp_path / "v4"


def test_loading_the_model_writes_nothing_to_stderr(committed_artifact: Path) -> None:
    """TensorFlow's start-up lines (oneDNN, absl) must not land in the middle of `ksqlpy run`'s output."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    loaded = subprocess.run(
        [sys.executable, "-c", f"from ksqlpy.ml.anomaly import load_scorer; load_scorer({str(committed_artifact)!r})"],
        capture_output=True, text=True, env=environment, timeout=120, check=True,
    )
    assert loaded.stderr == ""
