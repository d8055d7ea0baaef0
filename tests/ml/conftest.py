"""Fixtures for the anomaly-model tests: the session's embedded Kafka broker (tests/conftest.py), the
committed artifact's scorer, and a labelled held-out fleet simulated with a seed no training run uses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ksqlpy.ml.anomaly import Scorer, load_scorer
from ksqlpy.ml.train import evaluation_set

REPO = Path(__file__).resolve().parents[2]
COMMITTED_ARTIFACT = REPO / "udfs" / "models" / "anomaly" / "v1"
HELD_OUT_SEED = 777


@pytest.fixture(scope="session")
def udfs_directory() -> Path:
    return REPO / "udfs"


@pytest.fixture(scope="session")
def committed_artifact() -> Path:
    return COMMITTED_ARTIFACT


@pytest.fixture(scope="session")
def committed_scorer() -> Scorer:
    return load_scorer(COMMITTED_ARTIFACT)


@pytest.fixture(scope="session")
def held_out_fleet() -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    """(rows, failure flags, failure kinds) of 20,000 readings from ten cars, 5% of them failing."""
    return evaluation_set(20_000, HELD_OUT_SEED, cars=10, failure_rate=0.05)
