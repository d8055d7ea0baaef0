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
from collections.abc import Callable, Sequence
from typing import Any

from ksqlpy.execution.rows import (
    KEY_BYTES,
    META_COLUMNS,
    PARTITION,
    ROWTIME,
    TIMESTAMP,
    TOMBSTONE,
    WINDOWEND,
    WINDOWSTART,
)
from ksqlpy.planning.plan import JoinStep
from ksqlpy.state.operator_stores import OperatorStores
from ksqlpy.state.values import encode

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

    def store_key(self, key: Any) -> bytes:
        """The bytes a join key is stored under (also the joined row's KEY_BYTES)."""
        return encode(key)

    def key_columns(self, key: Any) -> tuple[Any, ...]:
        """The output's join key column values for a join key."""
        return key if isinstance(key, tuple) and self.step.key_width > 1 else (key,)


class JoinedRows:
    """A join operator's output, collected row by row and handed back as columns."""

    def __init__(self, operator: JoinOperator) -> None:
        self.operator = operator
        self.rows: list[tuple[Any, ...]] = []

    def add(self, key: Any, left: Sequence[Any] | None, right: Sequence[Any] | None, trigger: Sequence[Any],
            time: int, tombstone: bool = False) -> None:
        """A joined row for `key` (an absent side: None, its columns NULL), triggered by the row whose
        metadata is `trigger`, at `time`."""
        operator = self.operator
        meta = list(trigger)
        meta[ROWTIME] = meta[TIMESTAMP] = time
        meta[WINDOWSTART] = meta[WINDOWEND] = None
        meta[TOMBSTONE] = tombstone
        meta[KEY_BYTES] = operator.store_key(key)
        self.rows.append((
            *operator.key_columns(key),
            *(left if left is not None else (None,) * operator.left_width),
            *(right if right is not None else (None,) * operator.right_width),
            *meta,
        ))

    def columns(self) -> list[list[Any]]:
        if not self.rows:
            return [[] for _ in range(self.operator.width + META_COLUMNS)]
        return [list(column) for column in zip(*self.rows, strict=True)]


def _rows(columns: list[list[Any]], meta: list[list[Any]]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Rows of a side's columns, and of their metadata."""
    size = len(meta[0])
    return (list(zip(*columns, strict=True)) if columns else [()] * size), list(zip(*meta, strict=True))


class StreamTableJoin(JoinOperator):
    """A stream (left) joined to a table (right), INNER or LEFT. Only stream records produce output, at the
    stream record's time; table rows (and tombstones, which delete) only update the table side's state.
    A stream record whose join key is NULL never joins, nor does one without a value."""

    def __init__(self, step: JoinStep, stores_for: StoresFor, log_row: RowLogger) -> None:
        super().__init__(step, stores_for, log_row)
        self.table = stores_for("KafkaTopic_Right-Reduce")
        self.keeps_unmatched = step.join_type == "LEFT"

    def process(
        self, side: int, keys: list[Any], columns: list[list[Any]], meta: list[list[Any]],
    ) -> list[list[Any]]:
        rows, metas = _rows(columns, meta)
        if side == RIGHT:
            for key, row, row_meta in zip(keys, rows, metas, strict=True):
                if key is None:
                    continue
                store = self.table(row_meta[PARTITION])
                if row_meta[TOMBSTONE]:
                    store.delete(self.store_key(key))
                else:
                    store.put(self.store_key(key), row)
            return JoinedRows(self).columns()
        joining = [i for i, (key, row_meta) in enumerate(zip(keys, metas, strict=True))
                   if key is not None and not row_meta[TOMBSTONE]]
        # one multi_get per partition for the whole batch: the table does not change while a stream batch runs
        by_partition: dict[int, list[int]] = {}
        for i in joining:
            by_partition.setdefault(metas[i][PARTITION], []).append(i)
        matches: dict[int, Any] = {}
        for partition, positions in by_partition.items():
            found = self.table(partition).multi_get([self.store_key(keys[i]) for i in positions])
            matches.update(zip(positions, found, strict=True))
        output = JoinedRows(self)
        for i in joining:
            match = matches[i]
            if match is not None or self.keeps_unmatched:
                output.add(keys[i], rows[i], match, metas[i], metas[i][TIMESTAMP])
        return output.columns()


class TableTableJoin(JoinOperator):
    """Two tables joined on their primary keys, INNER, LEFT, RIGHT or FULL, each side's current rows kept in
    its store with their times. A change on either side emits, as Kafka Streams' table-table joins do: the
    joined row when the other side has the key (at the later of the two times); when it has not, the
    changed row alone if its side is kept unmatched (LEFT's left, RIGHT's right, both for FULL). A deletion
    emits the other side's row alone if that side is kept unmatched, else a tombstone; one of a key whose
    other side is absent emits a tombstone only if its side is kept unmatched and had the key."""

    def __init__(self, step: JoinStep, stores_for: StoresFor, log_row: RowLogger) -> None:
        super().__init__(step, stores_for, log_row)
        self.stores = (stores_for("KafkaTopic_Left-Reduce"), stores_for("KafkaTopic_Right-Reduce"))
        kept = {"INNER": (), "LEFT": (LEFT,), "RIGHT": (RIGHT,), "FULL": (LEFT, RIGHT)}[step.join_type]
        self.keeps_unmatched = (LEFT in kept, RIGHT in kept)

    def process(
        self, side: int, keys: list[Any], columns: list[list[Any]], meta: list[list[Any]],
    ) -> list[list[Any]]:
        rows, metas = _rows(columns, meta)
        other = RIGHT if side == LEFT else LEFT
        own_stores, other_stores = self.stores[side], self.stores[other]
        this_kept, other_kept = self.keeps_unmatched[side], self.keeps_unmatched[other]
        changing = [i for i, key in enumerate(keys) if key is not None]
        # the other side does not change during this batch; this side's entries change as its rows apply
        by_partition: dict[int, list[int]] = {}
        for i in changing:
            by_partition.setdefault(metas[i][PARTITION], []).append(i)
        others: dict[int, Any] = {}
        current: dict[tuple[int, bytes], Any] = {}
        for partition, positions in by_partition.items():
            store_keys = [self.store_key(keys[i]) for i in positions]
            others.update(zip(positions, other_stores(partition).multi_get(store_keys), strict=True))
            for store_key, entry in zip(store_keys, own_stores(partition).multi_get(store_keys), strict=True):
                current.setdefault((partition, store_key), entry)
        output = JoinedRows(self)
        for i in changing:
            key, row, row_meta = keys[i], rows[i], metas[i]
            partition, time, deleted = row_meta[PARTITION], row_meta[TIMESTAMP], row_meta[TOMBSTONE]
            store_key = self.store_key(key)
            had_key = current[(partition, store_key)] is not None
            if deleted:
                own_stores(partition).delete(store_key)
                current[(partition, store_key)] = None
            else:
                own_stores(partition).put(store_key, (time, row))
                current[(partition, store_key)] = (time, row)
            found = others[i]
            if found is not None:
                other_time, other_row = found
                joined_time = max(time, other_time)
                if not deleted:
                    output.add(key, *self._sides(side, row, other_row), row_meta, joined_time)
                elif other_kept:
                    output.add(key, *self._sides(side, None, other_row), row_meta, joined_time)
                else:
                    output.add(key, None, None, row_meta, joined_time, tombstone=True)
            elif this_kept and not deleted:
                output.add(key, *self._sides(side, row, None), row_meta, time)
            elif this_kept and had_key:
                output.add(key, None, None, row_meta, time, tombstone=True)
        return output.columns()

    @staticmethod
    def _sides(side: int, own: Sequence[Any] | None, other: Sequence[Any] | None) -> tuple[Any, Any]:
        """(left row, right row) from the changed side's row and the other side's."""
        return (own, other) if side == LEFT else (other, own)

