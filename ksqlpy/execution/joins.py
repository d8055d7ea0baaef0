"""Join operators: rows arriving on either side of a JoinStep become joined rows, with state per side.

A join operator is fed one side's rows at a time (LEFT or RIGHT), as columns: each row's join key (a value,
or a tuple of values for a composite key; None when any part is NULL, which never matches), the side
input's columns without metadata, and the metadata columns of ksqlpy.execution.rows. It answers with the
join's output rows, shaped as JoinStep.columns says (join key column(s), the left input's columns, the right
input's columns, an absent side's columns NULL) followed by the metadata columns: ROWTIME and TIMESTAMP are
the output record's time, ORIGIN the triggering row's, PARTITION the partition the state of its key is kept
in (the triggering row's: joined inputs are co-partitioned), TOMBSTONE set for a deleted joined table row.

Each side keeps its state in the operator's stores, per partition, keyed by the serialized join key.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from ksqlpy.planning.plan import JoinStep
from ksqlpy.state.operator_stores import OperatorStores

LEFT, RIGHT = 0, 1
StoresFor = Callable[[str], OperatorStores]  # an operator's stores by store name, made by the pipeline
RowLogger = Callable[[int, str, str], None]  # (input position, reason, level)


class JoinOperator(ABC):
    """One join of one query (see the module docstring)."""

    def __init__(self, step: JoinStep, stores_for: StoresFor, log_row: RowLogger) -> None:
        self.step = step
        self.stores_for = stores_for
        self.log_row = log_row
        self.width = len(step.columns)
        self.left_width = len(step.left.columns)
        self.right_width = len(step.right.columns)

    @abstractmethod
    def process(
        self, side: int, keys: list[Any], columns: list[list[Any]], meta: list[list[Any]],
    ) -> list[list[Any]]:
        """Rows arriving on `side`; returns the output rows as columns: the step's columns, then metadata."""
