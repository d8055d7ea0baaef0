"""Aggregate functions: the one interface every built-in and user aggregate implements.

An aggregate call in a query is bound once, at plan time, to its argument types and its literal
parameters (TOPK's k, LATEST_BY_OFFSET's n and ignore-nulls flag), giving an Aggregator. The aggregate
operator then folds whole column slices into accumulators, one slice per group and batch, so the
per-record work of the common aggregates stays in C-level passes.

Accumulators are plain data (None, bool, int, float, str, bytes, Decimal, tuples, lists, dicts) so that a
durable store can serialize them, and an aggregator never mutates an accumulator it is given: the store,
its cache and the previous emission may all still hold it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from ksqlpy.errors import StatementError
from ksqlpy.types import SqlType

Columns = Sequence[Sequence[Any]]


class Aggregator(ABC):
    """One aggregate call bound to its argument types (after implicit casts) and literal parameters.

    `columns` passed to add/add_each/undo are the call's column arguments, each restricted to one group's
    rows in arrival order; when `needs_sequence` is set, one more column is appended: each row's position in
    its input (its offset), which orders rows across batches and sessions (and lets COUNT(*), which has no
    column argument, see its rows).
    """

    # Usable over a table: a changed or deleted row's old contribution can be taken back (undo).
    undoable: ClassVar[bool] = False
    # The rows' input positions are appended to the columns (EARLIEST/LATEST_BY_OFFSET).
    needs_sequence: ClassVar[bool] = False
    # The accumulator is one primitive value, which any value format can hold (ksqlDB refuses aggregates
    # whose intermediate is a STRUCT, ARRAY or MAP when the source's value format is DELIMITED or KAFKA).
    primitive_intermediate: ClassVar[bool] = False

    def __init__(self, arg_types: Sequence[SqlType], return_type: SqlType, literals: Sequence[Any]) -> None:
        self.arg_types = list(arg_types)
        self.return_type = return_type
        self.literals = list(literals)

    def configure(self, properties: Mapping[str, Any]) -> None:  # noqa: B027 - most aggregates have no settings
        """Read the query properties that tune this aggregate (ksqlDB's `ksql.functions.<name>.<setting>`)."""

    @abstractmethod
    def initial(self) -> Any:
        """The accumulator of a group that has seen no rows."""

    @abstractmethod
    def add(self, accumulator: Any, columns: Columns) -> Any:
        """The accumulator with every row of `columns` added."""

    def add_each(self, accumulator: Any, columns: Columns) -> tuple[Any, list[Any]]:
        """Like add, plus the result after each row: the running values an update per input record needs.
        This default adds row by row; the common aggregates override it with prefix passes."""
        results: list[Any] = []
        for row in range(len(columns[0]) if columns else 0):
            accumulator = self.add(accumulator, [column[row : row + 1] for column in columns])
            results.append(self.result(accumulator))
        return accumulator, results

    def add_each_grouped(self, accumulators: Sequence[Any], columns: Columns,
                         group_of: Sequence[int]) -> tuple[list[Any], list[Any]]:
        """add_each over many groups at once: row i of `columns` belongs to group group_of[i], which starts
        from accumulators[group]. Returns each group's new accumulator and every row's result, in row order.
        Many small groups (a batch spread over many keys) make a call per group the cost; the common
        aggregates override this with one pass over the rows."""
        members: list[list[int]] = [[] for _ in accumulators]
        for row, group in enumerate(group_of):
            members[group].append(row)
        updated: list[Any] = []
        results: list[Any] = [None] * len(group_of)
        for accumulator, rows in zip(accumulators, members, strict=True):
            accumulator, running = self.add_each(accumulator, [[column[r] for r in rows] for column in columns])
            updated.append(accumulator)
            for row, result in zip(rows, running, strict=True):
                results[row] = result
        return updated, results

    def undo(self, accumulator: Any, columns: Columns) -> Any:
        """The accumulator with the rows of `columns` taken back out (aggregation over tables)."""
        raise StatementError(f"{type(self).__name__} cannot undo a row's contribution")

    @abstractmethod
    def merge(self, earlier: Any, later: Any) -> Any:
        """Two session windows' accumulators combined (`earlier` is the session that started first)."""

    @abstractmethod
    def result(self, accumulator: Any) -> Any:
        """The aggregate's value for the accumulator, of `return_type`."""
