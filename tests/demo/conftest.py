"""Fixtures for the demo tests: the session's embedded Kafka broker (tests/conftest.py), the Mosquitto broker of
tests/connect, and a stand-in for the anomaly UDFs (same SQL signatures, a simple rule instead of the model)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.connect.conftest import mosquitto  # noqa: F401

# Alerts when the coolant runs hot or a tyre is far from its usual pressure: two of the simulator's faults.
STAND_IN_UDFS = '''
import numpy as np
from ksqlpy import udf

def _deviation(columns):
    readings = np.column_stack(columns)
    return np.maximum((readings[:, 0] - 100.0) / 10.0, np.abs(readings[:, 9:13] - 33.0).max(axis=1) / 6.0)

@udf(name="ANOMALY_SCORE", vectorized=True, params=["DOUBLE"] * 18, returns="DOUBLE")
def anomaly_score(*columns):
    return _deviation(columns)

@udf(name="IS_ANOMALY", vectorized=True, params=["DOUBLE"] * 18, returns="BOOLEAN")
def is_anomaly(*columns):
    return _deviation(columns) > 1.0
'''


@pytest.fixture
def stand_in_udfs(tmp_path: Path) -> Path:
    directory = tmp_path / "udfs"
    directory.mkdir()
    (directory / "stand_in_anomaly.py").write_text(textwrap.dedent(STAND_IN_UDFS), encoding="utf-8")
    return directory
