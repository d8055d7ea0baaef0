"""Bench only: ANOMALY_SCORE_ROWWISE, the anomaly autoencoder's Keras model called once per row, the way the
original Java UDF of the connected-car demo called it. bench/score.sh compares it with the vectorized
ANOMALY_SCORE of udfs/anomaly.py on the same artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ksqlpy import model, udf
from ksqlpy.ml.anomaly import quiet_tensorflow_logs, read_metadata, scale, scaling_bounds
from ksqlpy.ml.cars import SENSOR_FIELDS

ARTIFACT = Path(__file__).resolve().parents[2] / "udfs" / "models" / "anomaly" / "v1"


def load_keras(path: Path) -> tuple[Any, np.ndarray, np.ndarray]:
    quiet_tensorflow_logs()
    import keras

    metadata = read_metadata(path)
    low, span = scaling_bounds(tuple(metadata["fields"]), {k: tuple(v) for k, v in metadata["scaling"].items()})
    return keras.models.load_model(path / metadata["model_file"], compile=False), low, span


KERAS_AUTOENCODER = model("anomaly-autoencoder-keras", ARTIFACT, load_keras)


@udf(name="ANOMALY_SCORE_ROWWISE", params={name: "DOUBLE" for name in SENSOR_FIELDS}, returns="DOUBLE",
     description="ANOMALY_SCORE one row per Keras call (bench baseline)", model=KERAS_AUTOENCODER)
def anomaly_score_rowwise(*readings: float) -> float:
    keras_model, low, span = KERAS_AUTOENCODER.get()
    scaled = scale(np.array([readings]), low, span)
    reconstructed = keras_model(scaled, training=False).numpy()
    return float(np.mean((reconstructed - scaled) ** 2))
