"""`ksqlpy train`: train the anomaly autoencoder from a Kafka topic (or generated readings) into a new
versioned artifact.

Records stream through a tf.data pipeline fed by a confluent-kafka consumer in a consumer group, the way
TensorFlow-IO's KafkaGroupIODataset feeds Keras: `Dataset.from_generator` over batches of consumed JSON
records. Every fifth row is held out (for the threshold and the quality report); the rest of the normal
rows (failure_occurred = "false") train the model. The pipeline caches the decoded rows: a first pass reads
the topic to its end (or --max-records) and splits off the held-out rows, the epochs replay the cache.
"""

from __future__ import annotations

import argparse
import time
import uuid
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from ksqlpy.errors import KsqlError
from ksqlpy.ml.anomaly import (
    Scorer,
    build_autoencoder,
    next_version_directory,
    quiet_tensorflow_logs,
    save_artifact,
    scale,
    scaling_bounds,
)
from ksqlpy.ml.cars import SENSOR_FIELDS, SENSOR_RANGES, CarSimulator, is_failure, sensor_matrix
from ksqlpy.ml.quality import MIN_PRECISION, choose_threshold, quality_report
from ksqlpy.runtime.tools import run_tool

DEFAULT_TOPIC = "sensor-data"
DEFAULT_MODELS_ROOT = Path("udfs") / "models" / "anomaly"
HOLDOUT_EVERY = 5
TRAINING_BATCH = 256
SHUFFLE_BUFFER = 20_000
CONSUME_BATCH = 1000
POLL_TIMEOUT_S = 0.5
FIRST_RECORD_TIMEOUT_S = 30.0  # joining a consumer group and the first fetch can take several seconds
EVALUATION_SEED_OFFSET = 1000  # the evaluation fleet never shares a seed with the training fleet
EVALUATION_CARS = 10
EVALUATION_FAILURE_RATE = 0.05


def decode_readings(payloads: list[bytes | None]) -> tuple[np.ndarray, np.ndarray, int]:
    """(sensor rows, failure flags, skipped count) from JSON record values; records that are not objects
    with all 18 numeric readings are skipped."""
    readings = []
    skipped = 0
    for payload in payloads:
        try:
            document = orjson.loads(payload) if payload is not None else None
        except orjson.JSONDecodeError:
            document = None
        if isinstance(document, dict) and all(
            isinstance(document.get(name), int | float) and not isinstance(document.get(name), bool)
            for name in SENSOR_FIELDS
        ):
            readings.append(document)
        else:
            skipped += 1
    failures = np.array([is_failure(reading) for reading in readings], dtype=bool)
    return sensor_matrix(readings), failures, skipped


class KafkaSource:
    """Consumes a topic in a consumer group and hands out decoded batches; commits the group's offsets once
    the records are read, so a later run with the same group trains on what arrived since."""

    def __init__(self, clients: Any, topic: str, group: str, max_records: int | None, idle_timeout_s: float,
                 first_record_timeout_s: float = FIRST_RECORD_TIMEOUT_S) -> None:
        self.clients = clients
        self.topic = topic
        self.group = group
        self.max_records = max_records
        self.idle_timeout_s = idle_timeout_s
        self.first_record_timeout_s = first_record_timeout_s
        self.records = 0
        self.skipped = 0

    def __call__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        consumer = self.clients.consumer(self.group, **{"auto.offset.reset": "earliest"})
        try:
            consumer.subscribe([self.topic])
            started = last_arrival = time.monotonic()
            while self.max_records is None or self.records < self.max_records:
                wanted = CONSUME_BATCH if self.max_records is None else min(CONSUME_BATCH, self.max_records - self.records)
                messages = [m for m in consumer.consume(wanted, POLL_TIMEOUT_S) if m.error() is None]
                now = time.monotonic()
                if not messages:
                    waited, limit = (now - started, self.first_record_timeout_s) if self.records == 0 else (
                        now - last_arrival, self.idle_timeout_s)
                    if waited >= limit:
                        break
                    continue
                last_arrival = now
                self.records += len(messages)
                matrix, failures, skipped = decode_readings([m.value() for m in messages])
                self.skipped += skipped
                if len(matrix):
                    yield matrix, failures
            if self.records:
                consumer.commit(asynchronous=False)
        finally:
            consumer.close()

    def empty_reason(self) -> str:
        return (f"nothing arrived from topic {self.topic} for consumer group {self.group} within "
                f"{self.first_record_timeout_s:g} s (a group that already read the topic only gets new records)")


class GeneratedSource:
    """Freshly simulated readings (no Kafka): the way the committed artifact is trained."""

    def __init__(self, count: int, seed: int, cars: int, failure_rate: float) -> None:
        self.count = count
        self.seed = seed
        self.cars = cars
        self.failure_rate = failure_rate
        self.records = 0
        self.skipped = 0

    def __call__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        simulator = CarSimulator(cars=self.cars, failure_rate=self.failure_rate, seed=self.seed)
        readings = simulator.readings(self.count)
        while chunk := list(islice(readings, CONSUME_BATCH)):
            self.records += len(chunk)
            yield sensor_matrix(chunk), np.array([is_failure(r) for r in chunk], dtype=bool)

    def empty_reason(self) -> str:
        return "--generate asked for no readings"


def evaluation_set(count: int, seed: int, cars: int, failure_rate: float) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    """(rows, failure flags, failure kinds) of a fleet simulated with `seed`."""
    labelled = list(CarSimulator(cars=cars, failure_rate=failure_rate, seed=seed).labelled_readings(count))
    kinds = [kind for _, kind in labelled]
    return sensor_matrix(r for r, _ in labelled), np.array([k is not None for k in kinds]), kinds


def train_artifact(
    source: KafkaSource | GeneratedSource,
    out: Path,
    epochs: int,
    seed: int,
    source_description: dict[str, Any],
    evaluate: int = 0,
    verbose: int = 0,
) -> dict[str, Any]:
    """Train on `source`, choose the threshold on the held-out rows, save the artifact; returns its metadata."""
    quiet_tensorflow_logs()
    import keras
    import tensorflow as tf

    started = time.monotonic()
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    low, span = scaling_bounds()
    signature = (
        tf.TensorSpec((None, len(SENSOR_FIELDS)), tf.float64),
        tf.TensorSpec((None,), tf.bool),
        tf.TensorSpec((None,), tf.bool),
    )
    # Whole batches are scaled and masked: per-row tf.data functions would cost more than the training.
    batches = (
        tf.data.Dataset.from_generator(lambda: _with_holdout_flags(source()), output_signature=signature)
        .map(lambda readings, failed, held_out: ((tf.cast(readings, tf.float32) - low) / span, failed, held_out))
        .cache()
    )
    normal_training = (
        batches.map(lambda rows, failed, held_out: tf.boolean_mask(rows, ~(failed | held_out)))
        .unbatch()
        .shuffle(SHUFFLE_BUFFER, seed=seed)
        .batch(TRAINING_BATCH)
        .map(lambda rows: (rows, rows))
        .prefetch(2)
    )
    # This first pass reads the source to its end (filling the cache) and splits off the held-out rows.
    holdout_scaled, holdout_failures, training_rows = _split_cached(batches)
    if not source.records:
        raise KsqlError(f"No records to train on: {source.empty_reason()}")
    if not training_rows:
        raise KsqlError(f"None of the {source.records} records is a normal reading to train on")
    model = build_autoencoder(seed)
    with warnings.catch_warnings():
        # Keras cannot know a stream's length (the first epoch "runs out of data") and offers to shuffle it.
        warnings.filterwarnings("ignore", message=".*ran out of data.*")
        warnings.filterwarnings("ignore", message=".*shuffle=True.*")
        history = model.fit(normal_training, epochs=epochs, verbose=verbose)
    metadata: dict[str, Any] = {"fields": list(SENSOR_FIELDS), "scaling": SENSOR_RANGES, "threshold": float("inf"),
                                "version": out.name}
    scorer = Scorer.from_keras(model, metadata)
    holdout_errors = scorer.score_scaled(holdout_scaled)
    normal_errors = holdout_errors[~holdout_failures]
    if not len(normal_errors):
        raise KsqlError("No normal readings were held out to set the threshold: read more records")
    threshold, percentile = choose_threshold(normal_errors, holdout_errors, holdout_failures)
    quality: dict[str, Any] = {"holdout": quality_report(holdout_errors, threshold, holdout_failures)}
    if evaluate:
        eval_seed = seed + EVALUATION_SEED_OFFSET
        rows_eval, failures_eval, kinds_eval = evaluation_set(evaluate, eval_seed, EVALUATION_CARS, EVALUATION_FAILURE_RATE)
        quality["evaluation"] = {
            "generator": {"rows": evaluate, "seed": eval_seed, "cars": EVALUATION_CARS,
                          "failure_rate": EVALUATION_FAILURE_RATE},
            **quality_report(scorer.score_scaled(scale(rows_eval, low, span)), threshold, failures_eval, kinds_eval),
        }
    training = {
        **source_description,
        "records": source.records,
        "skipped_records": source.skipped,
        "training_rows": training_rows,
        "holdout_rows": len(holdout_failures),
        "epochs": epochs,
        "batch_size": TRAINING_BATCH,
        "seed": seed,
        "final_loss": round(float(history.history["loss"][-1]), 8),
        "duration_s": round(time.monotonic() - started, 2),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }
    document = {
        "threshold": threshold,
        "threshold_rule": f"percentile {percentile} of held-out normal-row reconstruction error: the best "
                          f"held-out F1 among the percentiles with held-out precision >= {MIN_PRECISION}",
        "threshold_percentile": percentile,
        "score": "mean squared reconstruction error of the readings scaled to 0..1 by the fixed ranges",
        "training": training,
        "quality": quality,
    }
    save_artifact(model, out, document)
    return document


def _with_holdout_flags(batches: Iterator[tuple[np.ndarray, np.ndarray]]) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Adds a held-out flag per row: every HOLDOUT_EVERY-th row of the stream."""
    seen = 0
    for rows, failed in batches:
        yield rows, failed, (np.arange(seen, seen + len(rows)) % HOLDOUT_EVERY) == 0
        seen += len(rows)


def _split_cached(batches: Any) -> tuple[np.ndarray, np.ndarray, int]:
    """(held-out scaled rows, their failure flags, count of normal training rows) from the cached batches."""
    scaled, failures = [np.zeros((0, len(SENSOR_FIELDS)), dtype=np.float32)], [np.zeros(0, dtype=bool)]
    training_rows = 0
    for rows, failed, held_out in batches.as_numpy_iterator():
        scaled.append(rows[held_out])
        failures.append(failed[held_out])
        training_rows += int(np.sum(~(failed | held_out)))
    return np.concatenate(scaled), np.concatenate(failures), training_rows


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ksqlpy train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap-servers", help="Kafka bootstrap servers (or KSQLPY_BOOTSTRAP_SERVERS)")
    parser.add_argument("--config", help="properties file with librdkafka settings (name=value lines)")
    parser.add_argument("-p", "--property", action="append", default=[], metavar="NAME=VALUE",
                        help="a librdkafka setting (repeatable)")
    parser.add_argument("--topic", default=DEFAULT_TOPIC, help=f"topic of JSON sensor readings ({DEFAULT_TOPIC})")
    parser.add_argument("--group", help="consumer group; a fixed group trains on what arrived since its last run "
                                        "(default: a fresh group, reading the whole topic)")
    parser.add_argument("--max-records", type=int, help="stop after this many records (default: until idle)")
    parser.add_argument("--idle-timeout", type=float, default=5.0,
                        help="stop once no record arrived for this many seconds (5)")
    parser.add_argument("--wait", type=float, default=FIRST_RECORD_TIMEOUT_S,
                        help=f"how long to wait for the first record ({FIRST_RECORD_TIMEOUT_S:g} s)")
    parser.add_argument("--generate", type=int, metavar="N",
                        help="train on N freshly generated readings instead of a topic (no Kafka)")
    parser.add_argument("--cars", type=int, default=10, help="cars in the generated fleet (10)")
    parser.add_argument("--failure-rate", type=float, default=0.05, help="failure share of generated readings (0.05)")
    parser.add_argument("--evaluate", type=int, default=0, metavar="N",
                        help="also report precision/recall per failure kind on N generated readings of another seed")
    parser.add_argument("--epochs", type=int, default=20, help="training epochs (20)")
    parser.add_argument("--seed", type=int, default=42, help="random seed for weights, shuffling and generation (42)")
    parser.add_argument("--out", type=Path, help=f"artifact directory (default: the next vN under {DEFAULT_MODELS_ROOT})")
    parser.add_argument("-q", "--quiet", action="store_true", help="no per-epoch progress")
    return parser


def _source(args: argparse.Namespace) -> tuple[KafkaSource | GeneratedSource, dict[str, Any]]:
    if args.generate is not None:
        generated = GeneratedSource(args.generate, args.seed, args.cars, args.failure_rate)
        return generated, {"source": "generated", "cars": args.cars, "failure_rate": args.failure_rate}
    from ksqlpy.runtime.clients import KafkaClients
    from ksqlpy.runtime.config import load_config

    config = load_config(bootstrap_servers=args.bootstrap_servers, config_file=args.config, overrides=args.property)
    if config.bootstrap_servers is None:
        raise KsqlError("No Kafka to read from: pass --bootstrap-servers (or set KSQLPY_BOOTSTRAP_SERVERS), "
                        "or --generate N to train on generated readings")
    group = args.group or f"ksqlpy-train-{uuid.uuid4().hex[:12]}"
    kafka = KafkaSource(KafkaClients.connected(config), args.topic, group, args.max_records, args.idle_timeout, args.wait)
    return kafka, {"source": "kafka", "topic": args.topic, "group": group}


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    return run_tool("ksqlpy train", lambda: _train(args))


def _train(args: argparse.Namespace) -> int:
    source, description = _source(args)
    out = args.out or next_version_directory(DEFAULT_MODELS_ROOT)
    document = train_artifact(source, out, args.epochs, args.seed, description, args.evaluate,
                              verbose=0 if args.quiet else 2)
    training, holdout = document["training"], document["quality"]["holdout"]
    print(f"Saved {out} ({training['records']} records, {training['training_rows']} normal rows trained, "
          f"{training['duration_s']} s)")
    print(f"threshold {document['threshold']:.6g} (percentile {document['threshold_percentile']}); held out: "
          f"precision {holdout['precision']}, recall {holdout['recall']}")
    evaluation = document["quality"].get("evaluation")
    if evaluation:
        recalls = ", ".join(f"{kind} {value['recall']}" for kind, value in evaluation["recall_by_kind"].items())
        print(f"evaluation: precision {evaluation['precision']}, recall {evaluation['recall']} ({recalls})")
    return 0
