"""Detection quality of an anomaly threshold: precision and recall overall and per failure kind, and the
choice of the threshold percentile that keeps precision at a target."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ksqlpy.ml.cars import FAILURE_KINDS

# Percentiles of normal-row reconstruction error tried as thresholds, most sensitive first.
THRESHOLD_PERCENTILES = (99.0, 99.3, 99.5, 99.7, 99.8, 99.9, 99.95)
MIN_PRECISION = 0.9


def _ratio(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def quality_report(scores: np.ndarray, threshold: float, failures: np.ndarray,
                   kinds: Sequence[str | None] | None = None) -> dict[str, Any]:
    """Precision/recall of `scores > threshold` against the failure labels; per kind when kinds are known."""
    flagged = np.asarray(scores) > threshold
    actual = np.asarray(failures, dtype=bool)
    true_positives = int(np.sum(flagged & actual))
    false_positives = int(np.sum(flagged & ~actual))
    normal_rows = int(np.sum(~actual))
    report: dict[str, Any] = {
        "rows": len(actual),
        "failures": int(actual.sum()),
        "flagged": int(flagged.sum()),
        "precision": _ratio(true_positives, int(flagged.sum())),
        "recall": _ratio(true_positives, int(actual.sum())),
        "false_positive_rate": _ratio(false_positives, normal_rows),
    }
    if kinds is not None:
        kind_array = np.array([kind or "" for kind in kinds])
        per_kind = {}
        for kind in FAILURE_KINDS:
            rows = kind_array == kind
            per_kind[kind] = {"rows": int(rows.sum()), "recall": _ratio(int(np.sum(flagged & rows)), int(rows.sum()))}
        report["recall_by_kind"] = per_kind
    return report


def choose_threshold(normal_errors: np.ndarray, scores: np.ndarray, failures: np.ndarray,
                     min_precision: float = MIN_PRECISION) -> tuple[float, float]:
    """(threshold, percentile): among the THRESHOLD_PERCENTILES of normal-row error whose precision on the
    labelled `scores` reaches min_precision, the one with the best F1 (ties: the higher threshold, which
    keeps a margin on precision); the highest percentile tried when none reaches it."""
    actual = np.asarray(failures, dtype=bool)
    best: tuple[float, float, float] | None = None  # (f1, threshold, percentile)
    for percentile in THRESHOLD_PERCENTILES:
        threshold = float(np.percentile(normal_errors, percentile))
        flagged = scores > threshold
        detected = int(np.sum(flagged & actual))
        if not detected or detected / flagged.sum() < min_precision:
            continue
        f1 = 2 * detected / (flagged.sum() + actual.sum())
        if best is None or f1 >= best[0]:
            best = (f1, threshold, percentile)
    if best is None:
        return float(np.percentile(normal_errors, THRESHOLD_PERCENTILES[-1])), THRESHOLD_PERCENTILES[-1]
    return best[1], best[2]
