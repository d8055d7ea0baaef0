"""Anomaly-detection UDFs for connected-car sensor readings: ANOMALY_SCORE, IS_ANOMALY and ANOMALY.

All three score rows with the autoencoder artifact in models/anomaly/v1 (trained by `ksqlpy train`), loaded
once per process; the readings are the 18 sensors of ksqlpy.ml.cars.SENSOR_FIELDS in that order. The
module itself stays cheap to import: TensorFlow is loaded by load_scorer, when a query first needs it.
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
    description="Reconstruction error of the 18 car sensor readings under the anomaly autoencoder "
                "(higher is more unusual; IS_ANOMALY compares it with the model's threshold).",
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
    description="ANOMALY_SCORE of a '#'-separated text of the 18 readings (the original car demo's DELIMITED "
                "sensorinput column); NULL for a text that is not 18 numbers.",
)
def anomaly(sensorinput: Sequence[str]) -> np.ndarray | list[float | None]:
    rows, valid = parse_delimited(sensorinput)
    if valid.all():
        return _scorer().score(rows)
    scores: list[float | None] = [None] * len(valid)
    for index, score in zip(np.flatnonzero(valid).tolist(), _scorer().score(rows).tolist(), strict=True):
        scores[index] = score
    return scores
