"""Plain-number counts that hot paths keep once per batch (histograms, a function's calls, errors and time,
a model's scores); ksqlpy.runtime.metrics turns them into Prometheus metrics only when they are scraped.

Nothing here is a Prometheus object: updating one is a few list and int operations, so a batch pays
well under a microsecond for each count it keeps, and the process pays nothing while nobody scrapes.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# Seconds a batch (or one function's share of it) takes: 100 µs up to 10 s.
LATENCY_BOUNDS: tuple[float, ...] = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                     0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Model scores such as reconstruction errors spread over orders of magnitude: powers of 10^(1/4) from
# 1e-6 to 1e4 (to three digits: 1, 1.78, 3.16, 5.62, 10...) resolve both raw errors (~1e-4) and errors
# relative to a threshold (~0.1 to 100).
SCORE_BOUNDS: tuple[float, ...] = tuple(float(f"{10 ** (exponent / 4):.3g}") for exponent in range(-24, 17))


@dataclass
class Histogram:
    """Observations per bucket (`counts[i]` are those <= bounds[i] and above the bound before; the last
    count is those above every bound) and their sum. Not thread-safe: its owner serializes access."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def observe_array(self, values: Any) -> None:
        """A numpy array's finite values, counted by numpy in one pass (NaN, a NULL, is left out)."""
        import numpy

        finite = values[numpy.isfinite(values)]
        if not finite.size:
            return
        places = numpy.searchsorted(self.bounds, finite, side="left")
        for index, count in enumerate(numpy.bincount(places, minlength=len(self.counts)).tolist()):
            self.counts[index] += count
        self.total += float(finite.sum())

    def copy(self) -> Histogram:
        return Histogram(self.bounds, list(self.counts), self.total)

    def add(self, other: Histogram) -> None:
        """Add another histogram's observations (same bounds) to this one."""
        for index, count in enumerate(other.counts):
            self.counts[index] += count
        self.total += other.total

    @property
    def count(self) -> int:
        return sum(self.counts)


ModelKey = tuple[str, str]  # the model's name and version


class FunctionStats:
    """One user function's counts: rows it was given, rows it failed on, seconds per batch, and, when a
    model stands behind it, the distribution of its numeric results per model version (drift shows there)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # queries on several threads share one function
        self.rows = 0
        self.errors = 0
        self.seconds = Histogram(LATENCY_BOUNDS)
        self.scores: dict[ModelKey, Histogram] = {}

    def called(self, rows: int, seconds: float) -> None:
        with self._lock:
            self.rows += rows
            self.seconds.observe(seconds)

    def failed(self) -> None:
        with self._lock:
            self.errors += 1

    def scored(self, model: ModelKey, results: Sequence[Any]) -> None:
        """A batch's results of a model's function (a numpy array, or a list where None is NULL); results that
        are not numbers are left to the function's type check, which rejects them."""
        import numpy

        try:
            values = numpy.asarray(results, dtype=numpy.float64)
        except (TypeError, ValueError):
            return
        with self._lock:
            histogram = self.scores.get(model)
            if histogram is None:
                histogram = self.scores[model] = Histogram(SCORE_BOUNDS)
            histogram.observe_array(values)

    def snapshot(self) -> tuple[int, int, Histogram, dict[ModelKey, Histogram]]:
        """rows, errors, seconds and scores as they are now, copied under the lock."""
        with self._lock:
            return self.rows, self.errors, self.seconds.copy(), {key: h.copy() for key, h in self.scores.items()}

