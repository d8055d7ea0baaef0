"""Anomaly-detection UDFs for connected-car sensor readings: ANOMALY_SCORE, IS_ANOMALY and ANOMALY.

All three score rows with the autoencoder artifact in models/anomaly/v1 (trained by `ksqlpy train`), loaded
once per process; the readings are the 18 sensors of ksqlpy.ml.cars.SENSOR_FIELDS in that order. The
module itself stays cheap to import: TensorFlow is loaded by load_scorer, when a query first needs it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ksqlpy import model, udf
from ksqlpy.ml.anomaly import Scorer, load_scorer, parse_delimited
from ksqlpy.ml.cars import SENSOR_FIELDS

AUTHOR = "ksqlpy"
VERSION = "1.0.0"
SENSOR_TYPES = ["DOUBLE"] * len(SENSOR_FIELDS)

AUTOENCODER = model(
    "anomaly-autoencoder",
    path=Path(__file__).parent / "models" / "anomaly" / "v1",
    load=load_scorer,
    warmup=lambda scorer: scorer.score(np.zeros((8, len(SENSOR_FIELDS)))),
)


def _named_after_sensors(function: Callable[..., Any]) -> Callable[..., Any]:
    """Give a `*readings` function the 18 sensor names as its signature, so DESCRIBE FUNCTION lists them."""
    function.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=np.ndarray) for name in SENSOR_FIELDS],
        return_annotation=np.ndarray,
    )
    return function


def _scorer() -> Scorer:
    scorer: Scorer = AUTOENCODER.get()
    return scorer


@udf(
    name="ANOMALY_SCORE",
    vectorized=True,
    params=SENSOR_TYPES,
    returns="DOUBLE",
    description="Reconstruction error of the 18 car sensor readings under the anomaly autoencoder "
                "(higher is more unusual; IS_ANOMALY compares it with the model's threshold).",
    author=AUTHOR,
    version=VERSION,
    model=AUTOENCODER,
)
@_named_after_sensors
def anomaly_score(*readings: np.ndarray) -> np.ndarray:
    return _scorer().score(np.column_stack(readings))


@udf(
    name="IS_ANOMALY",
    vectorized=True,
    params=SENSOR_TYPES,
    returns="BOOLEAN",
    description="TRUE when ANOMALY_SCORE of the 18 car sensor readings exceeds the threshold stored with the model.",
    author=AUTHOR,
    version=VERSION,
    model=AUTOENCODER,
)
@_named_after_sensors
def is_anomaly(*readings: np.ndarray) -> np.ndarray:
    return _scorer().is_anomaly(np.column_stack(readings))


@udf(
    name="ANOMALY",
    vectorized=True,
    params={"sensorinput": "VARCHAR"},
    returns="DOUBLE",
    description="ANOMALY_SCORE of a '#'-separated text of the 18 readings (the original car demo's DELIMITED "
                "sensorinput column); NULL for a text that is not 18 numbers.",
    author=AUTHOR,
    version=VERSION,
    model=AUTOENCODER,
)
def anomaly(sensorinput: Sequence[str]) -> np.ndarray | list[float | None]:
    rows, valid = parse_delimited(sensorinput)
    if valid.all():
        return _scorer().score(rows)
    scores: list[float | None] = [None] * len(valid)
    for index, score in zip(np.flatnonzero(valid).tolist(), _scorer().score(rows).tolist(), strict=True):
        scores[index] = score
    return scores
