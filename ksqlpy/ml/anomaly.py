"""The anomaly-detection autoencoder: Keras model, versioned artifact (save, load, sha256) and batch scoring.

An artifact is a directory (udfs/models/anomaly/v1/) holding the Keras file and `artifact.json`: field
order, fixed scaling ranges, the alert threshold, training metadata and the held-out quality report.
Scoring runs the loaded Keras model's dense layers as numpy matrix products: on batches of a few thousand
rows that is several times faster than calling Keras (no TensorFlow dispatch per batch), thread-safe, and
numerically the same network. TensorFlow is imported only inside the functions that need it.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ksqlpy.functions.udf import artifact_sha256
from ksqlpy.ml.cars import SENSOR_FIELDS, SENSOR_RANGES

if TYPE_CHECKING:
    import keras

ARTIFACT_FORMAT = "ksqlpy-anomaly-autoencoder"
MODEL_FILE = "autoencoder.keras"
METADATA_FILE = "artifact.json"
# (units, activation) per dense layer after the 18 inputs: 18 -> 14 tanh -> 7 relu -> 7 tanh -> 18 linear.
LAYERS: tuple[tuple[int, str], ...] = ((14, "tanh"), (7, "relu"), (7, "tanh"), (len(SENSOR_FIELDS), "linear"))
SCORE_CHUNK_ROWS = 1024
VERSION_PATTERN = re.compile(r"^v(\d+)$")

_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "linear": lambda x: x,
}


def scaling_bounds(fields: tuple[str, ...] = SENSOR_FIELDS,
                   ranges: Mapping[str, tuple[float, float]] = SENSOR_RANGES) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, spans) that map each field's fixed range onto 0..1."""
    low = np.array([ranges[name][0] for name in fields], dtype=np.float32)
    high = np.array([ranges[name][1] for name in fields], dtype=np.float32)
    return low, high - low


def scale(matrix: np.ndarray, low: np.ndarray, span: np.ndarray) -> np.ndarray:
    return ((np.asarray(matrix, dtype=np.float32) - low) / span).astype(np.float32, copy=False)


def quiet_tensorflow_logs() -> None:
    """Mute TensorFlow's C++ start-up chatter; call before the first Keras/TensorFlow import."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build_autoencoder(seed: int) -> keras.Model:
    """A fresh, compiled autoencoder with seeded initial weights."""
    quiet_tensorflow_logs()
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(len(SENSOR_FIELDS),), name="scaled_readings")
    hidden = inputs
    for index, (units, activation) in enumerate(LAYERS):
        hidden = keras.layers.Dense(units, activation=activation, name=f"dense_{index}")(hidden)
    model = keras.Model(inputs, hidden, name="car_sensor_autoencoder")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss="mse")
    return model


@dataclass(frozen=True)
class DenseLayer:
    weights: np.ndarray
    bias: np.ndarray
    activation: Callable[[np.ndarray], np.ndarray]


class Scorer:
    """Reconstruction error of raw sensor rows (n x 18, SENSOR_FIELDS order) under one artifact."""

    def __init__(self, layers: list[DenseLayer], metadata: Mapping[str, Any], path: Path | None = None) -> None:
        self.layers = layers
        self.metadata = dict(metadata)
        self.path = path
        self.fields: tuple[str, ...] = tuple(metadata["fields"])
        self.low, self.span = scaling_bounds(self.fields, {k: tuple(v) for k, v in metadata["scaling"].items()})
        self.threshold = float(metadata["threshold"])
        self.version = str(metadata["version"])

    @classmethod
    def from_keras(cls, model: keras.Model, metadata: Mapping[str, Any], path: Path | None = None) -> Scorer:
        layers = []
        for layer in model.layers:
            parameters = [np.asarray(variable.numpy()) for variable in layer.weights]
            if not parameters:
                continue  # the input layer
            activation = layer.get_config()["activation"]
            if activation not in _ACTIVATIONS:
                raise ValueError(f"layer {layer.name}: unsupported activation {activation!r}")
            weights, bias = parameters
            layers.append(DenseLayer(weights.astype(np.float32), bias.astype(np.float32), _ACTIVATIONS[activation]))
        return cls(layers, metadata, path)

    def score(self, matrix: np.ndarray) -> np.ndarray:
        """Mean squared reconstruction error per row, on the 0..1 scaled readings (float64)."""
        readings = np.asarray(matrix)
        if readings.ndim != 2 or readings.shape[1] != len(self.fields):
            raise ValueError(f"expected rows of {len(self.fields)} readings, got shape {readings.shape}")
        errors = np.empty(len(readings), dtype=np.float64)
        # Chunks keep every intermediate array in the CPU cache: large batches run at the small-batch rate.
        for start in range(0, len(readings), SCORE_CHUNK_ROWS):
            chunk = readings[start:start + SCORE_CHUNK_ROWS]
            errors[start:start + len(chunk)] = self.score_scaled(scale(chunk, self.low, self.span))
        return errors

    def score_scaled(self, scaled: np.ndarray) -> np.ndarray:
        hidden = scaled
        for layer in self.layers:
            hidden = layer.activation(hidden @ layer.weights + layer.bias)
        residual = hidden - scaled
        return np.einsum("ij,ij->i", residual, residual).astype(np.float64) / len(self.fields)

    def is_anomaly(self, matrix: np.ndarray) -> np.ndarray:
        return self.score(matrix) > self.threshold

    def relative_score(self, matrix: np.ndarray) -> np.ndarray:
        """The reconstruction error in units of the alert threshold: 1.0 is the threshold itself."""
        return self.score(matrix) / self.threshold

    def sha256(self) -> str:
        if self.path is None:
            raise ValueError("this scorer was not loaded from an artifact")
        return artifact_sha256(self.path)


def parse_delimited(texts: Sequence[str | None], separator: str = "#") -> tuple[np.ndarray, np.ndarray]:
    """(rows, valid) from texts of 18 readings joined by `separator` (the original demo's DELIMITED
    `sensorinput` column): `rows` holds the readings of the valid texts only, `valid` flags which texts
    hold exactly 18 finite numbers."""
    width = len(SENSOR_FIELDS)
    valid = np.array([text is not None and text.count(separator) == width - 1 for text in texts], dtype=bool)
    candidates = [text for text in texts if text is not None and text.count(separator) == width - 1]
    try:  # one split and one conversion for the whole batch: the common case
        matrix = np.array(separator.join(candidates).split(separator) if candidates else [], dtype=np.float64)
    except ValueError:  # some text holds a non-number: convert row by row
        parsed = [_floats_or_none(text.split(separator)) for text in candidates]
        valid[np.flatnonzero(valid)[[row is None for row in parsed]]] = False
        matrix = np.array([row for row in parsed if row is not None], dtype=np.float64)
    matrix = matrix.reshape(-1, width)
    finite = np.isfinite(matrix).all(axis=1)
    if not finite.all():
        valid[np.flatnonzero(valid)[~finite]] = False
        matrix = matrix[finite]
    return matrix, valid


def _floats_or_none(parts: list[str]) -> list[float] | None:
    try:
        return [float(part) for part in parts]
    except ValueError:
        return None


def read_metadata(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / METADATA_FILE
    metadata: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if metadata.get("format") != ARTIFACT_FORMAT:
        raise ValueError(f"{path} is not a {ARTIFACT_FORMAT} artifact")
    return metadata


def load_scorer(path: str | Path) -> Scorer:
    """Load an artifact directory (imports TensorFlow/Keras: call it off the hot path)."""
    # TensorFlow announces oneDNN on stderr whatever TF_CPP_MIN_LOG_LEVEL says (it logs before absl is set
    # up), in the middle of `ksqlpy run` and the demo's output. Keras only loads the weights here; scoring
    # is numpy, so oneDNN would speed up nothing.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    quiet_tensorflow_logs()
    import keras

    directory = Path(path)
    metadata = read_metadata(directory)
    model = keras.models.load_model(directory / metadata["model_file"], compile=False)
    return Scorer.from_keras(model, metadata, directory)


def save_artifact(model: keras.Model, directory: Path, metadata: Mapping[str, Any]) -> Path:
    """Write the Keras file and artifact.json (format, fields, scaling and model file added to `metadata`)."""
    directory.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # Keras' own saving code trips numpy 2's __array__(copy=...) deprecation: nothing a caller can change.
        warnings.filterwarnings("ignore", message="__array__ implementation", category=DeprecationWarning)
        model.save(directory / MODEL_FILE)
    document = {
        "format": ARTIFACT_FORMAT,
        "version": directory.name,
        "model_file": MODEL_FILE,
        "fields": list(SENSOR_FIELDS),
        "scaling": {name: list(SENSOR_RANGES[name]) for name in SENSOR_FIELDS},
        "architecture": [len(SENSOR_FIELDS), *(f"{units} {activation}" for units, activation in LAYERS)],
        **metadata,
    }
    (directory / METADATA_FILE).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return directory


def next_version_directory(root: Path) -> Path:
    """root/vN for the first N above every existing version (v1 in an empty or missing root)."""
    versions = [int(m.group(1)) for p in root.glob("v*") if p.is_dir() and (m := VERSION_PATTERN.match(p.name))]
    return root / f"v{max(versions, default=0) + 1}"
