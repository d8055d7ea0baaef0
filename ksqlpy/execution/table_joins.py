"""The joins whose right side is a table on its primary key: stream-table and table-table.

The table side's current rows are kept in the operator's stores under their join key's bytes; a table-table
join keeps both sides' rows, each with its time. A batch comes from one side, so the other side's state does
not change while it runs: it is read with one multi_get per partition for the whole batch.
"""

from __future__ import annotations

from typing import Any

from ksqlpy.execution.join_rows import JoinedRows, key_bytes, key_values
from ksqlpy.execution.joins import LEFT, RIGHT, JoinOperator, RowLogger, StoresFor
from ksqlpy.execution.rows import (
    KEY_BYTES,
    META_COLUMNS,
    ORIGIN,
    PARTITION,
    ROWOFFSET,
    ROWPARTITION,
    ROWTIME,
    TIMESTAMP,
    TOMBSTONE,
)
from ksqlpy.planning.plan import JoinStep

Row = tuple[Any, ...]


def _rows(columns: list[list[Any]], size: int) -> list[Row]:
    return list(zip(*columns, strict=True)) if columns else [()] * size


def _by_partition(rows: list[int], partitions: list[int]) -> dict[int, list[int]]:
    grouped: dict[int, list[int]] = {}
    for row in rows:
        grouped.setdefault(partitions[row], []).append(row)
    return grouped


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
        partitions, tombstones = meta[PARTITION], meta[TOMBSTONE]
        output = JoinedRows(self, meta)
        if side == RIGHT:
            rows = _rows(columns, len(keys))
            for key, row, partition, tombstone in zip(keys, rows, partitions, tombstones, strict=True):
                if key is not None:
                    store = self.table(partition)
                    if tombstone:
                        store.delete(key_bytes(key))
                    else:
                        store.put(key_bytes(key), row)
            return output.columns()
        joining = [i for i, key in enumerate(keys) if key is not None and not tombstones[i]]
        matches: dict[int, Row | None] = {}
        store_keys: dict[int, bytes] = {}
        for partition, positions in _by_partition(joining, partitions).items():
            # A batch of readings names the same few keys over and over: each is read (and decoded) once.
            partition_keys = [key_bytes(keys[i]) for i in positions]
            store_keys.update(zip(positions, partition_keys, strict=True))
            distinct = list(dict.fromkeys(partition_keys))
            found = dict(zip(distinct, self.table(partition).multi_get(distinct), strict=True))
            matches.update(zip(positions, map(found.__getitem__, partition_keys), strict=True))
        emitted = joining if self.keeps_unmatched else [i for i in joining if matches[i] is not None]
        if not emitted:
            return output.columns()
        return self._joined_columns(emitted, keys, columns, matches, store_keys, meta)

    def _joined_columns(self, emitted: list[int], keys: list[Any], columns: list[list[Any]],
                        matches: dict[int, Row | None], store_keys: dict[int, bytes],
                        meta: list[list[Any]]) -> list[list[Any]]:
        """The output rows of the stream rows `emitted`, built column by column in JoinedRows' layout: a batch
        of readings is mostly joined rows, and building each as a tuple first cost more than the lookups."""
        key_rows = [key_values(keys[i], self.width - self.left_width - self.right_width) for i in emitted]
        right_nulls = (None,) * self.right_width
        table_rows = [right_nulls if matches[i] is None else matches[i] for i in emitted]
        key_data: dict[bytes, bytes] = {}  # KEY_BYTES by store key: each distinct key serialized once
        for i, key in zip(emitted, key_rows, strict=True):
            if store_keys[i] not in key_data:
                key_data[store_keys[i]] = key_bytes(key)
        times = [meta[TIMESTAMP][i] for i in emitted]
        joined_meta: list[list[Any]] = [[None] * len(emitted) for _ in range(META_COLUMNS)]
        joined_meta[ROWTIME], joined_meta[TIMESTAMP] = times, list(times)
        for column in (ROWPARTITION, ROWOFFSET, ORIGIN, PARTITION):
            joined_meta[column] = [meta[column][i] for i in emitted]
        joined_meta[TOMBSTONE] = [False] * len(emitted)
        joined_meta[KEY_BYTES] = [key_data[store_keys[i]] for i in emitted]
        return [*map(list, zip(*key_rows, strict=True)), *([column[i] for i in emitted] for column in columns),
                *map(list, zip(*table_rows, strict=True)), *joined_meta]


class TableTableJoin(JoinOperator):
    """Two tables joined on their primary keys, INNER, LEFT, RIGHT or FULL. A change on either side emits, as
    Kafka Streams' table-table joins do: the joined row when the other side has the key (at the later of the
    two times); when it has not, the changed row alone if its side is kept unmatched (LEFT's left, RIGHT's
    right, both for FULL). A deletion emits the other side's row alone if that side is kept unmatched, else a
    tombstone; one of a key the other side lacks emits a tombstone only if its side is kept unmatched and
    had the key."""

    def __init__(self, step: JoinStep, stores_for: StoresFor, log_row: RowLogger) -> None:
        super().__init__(step, stores_for, log_row)
        self.stores = (stores_for("KafkaTopic_Left-Reduce"), stores_for("KafkaTopic_Right-Reduce"))
        kept = {"INNER": (), "LEFT": (LEFT,), "RIGHT": (RIGHT,), "FULL": (LEFT, RIGHT)}[step.join_type]
        self.keeps_unmatched = (LEFT in kept, RIGHT in kept)

    def process(
        self, side: int, keys: list[Any], columns: list[list[Any]], meta: list[list[Any]],
    ) -> list[list[Any]]:
        rows = _rows(columns, len(keys))
        partitions, times, tombstones = meta[PARTITION], meta[TIMESTAMP], meta[TOMBSTONE]
        other = RIGHT if side == LEFT else LEFT
        own_stores, other_stores = self.stores[side], self.stores[other]
        this_kept, other_kept = self.keeps_unmatched[side], self.keeps_unmatched[other]
        changing = [i for i, key in enumerate(keys) if key is not None]
        others: dict[int, Any] = {}
        # this side's entries as the rows apply, one after the other
        current: dict[tuple[int, bytes], Any] = {}
        for partition, positions in _by_partition(changing, partitions).items():
            store_keys = [key_bytes(keys[i]) for i in positions]
            others.update(zip(positions, other_stores(partition).multi_get(store_keys), strict=True))
            for store_key, entry in zip(store_keys, own_stores(partition).multi_get(store_keys), strict=True):
                current.setdefault((partition, store_key), entry)
        output = JoinedRows(self, meta)
        for i in changing:
            key, partition, time, deleted = keys[i], partitions[i], times[i], tombstones[i]
            store_key = key_bytes(key)
            had_key = current[(partition, store_key)] is not None
            entry = None if deleted else (time, rows[i])
            current[(partition, store_key)] = entry
            if entry is None:
                own_stores(partition).delete(store_key)
            else:
                own_stores(partition).put(store_key, entry)
            joined = self._joined(None if deleted else rows[i], others[i], this_kept, other_kept, had_key)
            if joined is not None:
                own, other_row, other_time, tombstone = joined
                left, right = (own, other_row) if side == LEFT else (other_row, own)
                output.add(key_values(key, output.key_width), left, right, max(time, other_time), i, partition,
                           tombstone)
        return output.columns()

    @staticmethod
    def _joined(row: Row | None, found: tuple[int, Row] | None, this_kept: bool, other_kept: bool,
                had_key: bool) -> tuple[Row | None, Row | None, int, bool] | None:
        """What a change of one side to `row` (None: deleted) emits, given the other side's entry: (this
        side's row, the other's, the other's time, whether a tombstone), or None for nothing."""
        if found is not None:
            other_time, other_row = found
            if row is None and not other_kept:
                return None, None, other_time, True
            return row, other_row, other_time, False
        if not this_kept:
            return None
        if row is not None:
            return row, None, -1, False
        return (None, None, -1, True) if had_key else None
