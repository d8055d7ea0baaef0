"""Sensor statistics as user aggregates for GROUP BY: ROOT_MEAN_SQUARE of a reading, vectorized.

The root mean square measures a signal's energy whatever its sign (vibration, current, acceleration), so a
car whose readings swing widely stands out even when their mean stays near zero. It is an example of a
@udaf: `add_batch` folds a group's whole slice of readings with one numpy call, `add` serves one row at a
time, and `undo` lets it aggregate a table, whose rows may change.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from ksqlpy import udaf

# (sum of the squared readings, number of readings)
Squares = tuple[float, int]


@udaf(name="ROOT_MEAN_SQUARE", description="The root mean square of the readings; NULLs are ignored.",
      author="ksqlpy", version="1.0.0")
class RootMeanSquare:
    def init(self) -> Squares:
        return (0.0, 0)

    def add(self, squares: Squares, reading: float | None) -> Squares:
        if reading is None:
            return squares
        return (squares[0] + reading * reading, squares[1] + 1)

    def add_batch(self, squares: Squares, readings: NDArray[np.float64]) -> Squares:
        return (squares[0] + float(np.dot(readings, readings)), squares[1] + len(readings))

    def undo(self, squares: Squares, reading: float | None) -> Squares:
        if reading is None:
            return squares
        return (squares[0] - reading * reading, squares[1] - 1)

    def merge(self, earlier: Squares, later: Squares) -> Squares:
        return (earlier[0] + later[0], earlier[1] + later[1])

    def result(self, squares: Squares) -> float | None:
        total, count = squares
        return math.sqrt(max(total, 0.0) / count) if count else None
