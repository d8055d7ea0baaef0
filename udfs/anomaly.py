"""Anomaly-detection UDFs for connected-car sensor readings: ANOMALY_SCORE, IS_ANOMALY and ANOMALY.

All three score rows with the autoencoder artifact in models/anomaly/v1 (trained by `ksqlpy train`), loaded
once per process; the readings are the 18 sensors of ksqlpy.ml.cars.SENSOR_FIELDS in that order. The
module itself stays cheap to import: TensorFlow is loaded by load_scorer, when a query first needs it.

Scales: ANOMALY_SCORE is the raw mean squared reconstruction error (about 1e-4 for normal readings, the
v1 threshold 2.55e-4); ANOMALY is that error divided by the model's threshold, so 1.0 is the threshold
and the original article's `WHERE Anomaly_Val > 3` means "three times the alert threshold". With v1,
normal readings score 0.17 (median) and at most about 1.6; faults score 2.5 and up, 13 at the median.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np

from ksqlpy import model, udf
from ksqlpy.ml.anomaly import Scorer, load_scorer, parse_delimited
from ksqlpy.ml.cars import SENSOR_FIELDS

AUTHOR = "ksqlpy"
VERSION = "1.0.0"
# Named parameters, so DESCRIBE FUNCTION lists the sensors
SENSORS = {name: "DOUBLE" for name in SENSOR_FIELDS}

AUTOENCODER = model(
    "anomaly-autoencoder",
    path=Path(__file__).parent / "models" / "anomaly" / "v1",
    load=load_scorer,
    warmup=lambda scorer: scorer.score(np.zeros((8, len(SENSOR_FIELDS)))),
)


# Every UDF here is vectorized (one model call per batch) and shares the one loaded model.
model_udf = partial(udf, vectorized=True, author=AUTHOR, version=VERSION, model=AUTOENCODER)


def _scorer() -> Scorer:
    scorer: Scorer = AUTOENCODER.get()
    return scorer


@model_udf(
    name="ANOMALY_SCORE",
    params=SENSORS,
    returns="DOUBLE",
    description="Raw reconstruction error (mean squared, on readings scaled to 0..1) of the 18 car sensor "
                "readings under the anomaly autoencoder: about 1e-4 for normal readings; IS_ANOMALY compares it "
                "with the model's threshold (2.55e-4 for v1), ANOMALY divides it by that threshold.",
)
def anomaly_score(*readings: np.ndarray) -> np.ndarray:
    return _scorer().score(np.column_stack(readings))


@model_udf(
    name="IS_ANOMALY",
    params=SENSORS,
    returns="BOOLEAN",
    description="TRUE when ANOMALY_SCORE of the 18 car sensor readings exceeds the threshold stored with the model.",
)
def is_anomaly(*readings: np.ndarray) -> np.ndarray:
    return _scorer().is_anomaly(np.column_stack(readings))


@model_udf(
    name="ANOMALY",
    params={"sensorinput": "VARCHAR"},
    returns="DOUBLE",
    description="Reconstruction error of a '#'-separated text of the 18 readings (the original car demo's "
                "DELIMITED sensorinput column) relative to the model's alert threshold: 1.0 is the threshold; with "
                "v1 normal readings score about 0.2 and stay below 2, faults 2.5 and up (13 at the median), "
                "so the demo's `> 3` keeps its meaning; NULL for a text that is not 18 numbers.",
)
def anomaly(sensorinput: Sequence[str]) -> np.ndarray | list[float | None]:
    rows, valid = parse_delimited(sensorinput)
    if valid.all():
        return _scorer().relative_score(rows)
    scores: list[float | None] = [None] * len(valid)
    for index, score in zip(np.flatnonzero(valid).tolist(), _scorer().relative_score(rows).tolist(), strict=True):
        scores[index] = score
    return scores
