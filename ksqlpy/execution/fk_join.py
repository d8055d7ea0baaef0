"""The foreign-key table-table join: each row of the left table joined to the right table's row whose
primary key its foreign key (an expression of its columns) equals, keyed by the left table's primary key.

Left rows arrive with their foreign key as the join key, right rows with their primary key. The operator
keeps each left row's foreign key by its primary key, every right row by its primary key, and the
subscriptions: the left rows with a foreign key, under the foreign key followed by the left primary key, so
the left rows that point at a right key are one prefix scan. As Kafka Streams' foreign-key join emits: a left row joins the right row it points
at (INNER emits nothing for a new row that points at none, and a tombstone for a changed one, to retract
what it emitted before; LEFT emits it NULL-padded); a deleted left row emits a tombstone; a changed right
row re-emits every left row pointing at it, and a deleted one a tombstone (INNER) or the NULL-padded row
(LEFT) for each. A joined row's time is the larger of its two rows' times.

A foreign-key join is the one join that needs no co-partitioning: a right row concerns left rows of any
partition. All of the join's state is therefore kept in one state partition; each output row names the
left row's partition, where its key lives.
"""

from __future__ import annotations

from typing import Any

from ksqlpy.execution.join_rows import JoinedRows, key_bytes, prefix_bytes
from ksqlpy.execution.joins import LEFT, JoinOperator, RowLogger, StoresFor
from ksqlpy.execution.rows import PARTITION, TIMESTAMP, TOMBSTONE
from ksqlpy.planning.plan import JoinStep
from ksqlpy.schema import Namespace

STATE_PARTITION = 0
LEFT_STORE, RIGHT_STORE, SUBSCRIPTION_STORE = "KafkaTopic_Left-Reduce", "KafkaTopic_Right-Reduce", "FkJoin-subscriptions"


class ForeignKeyJoin(JoinOperator):
    """INNER or LEFT foreign-key join of two tables (see the module docstring)."""

    def __init__(self, step: JoinStep, stores_for: StoresFor, log_row: RowLogger) -> None:
        super().__init__(step, stores_for, log_row)
        if step.join_type not in ("INNER", "LEFT"):
            raise ValueError(f"A foreign-key join is INNER or LEFT, not {step.join_type}")
        self.keeps_unmatched = step.join_type == "LEFT"
        self.primary_key_at = [i for i, column in enumerate(step.left.columns) if column.namespace is Namespace.KEY]
        self.foreign_keys = stores_for(LEFT_STORE)  # left primary key -> (foreign key,)
        self.right_rows = stores_for(RIGHT_STORE)  # right primary key -> (columns, time)
        # foreign key + left primary key -> (left primary key, left columns, time, partition)
        self.subscriptions = stores_for(SUBSCRIPTION_STORE)

    def process(
        self, side: int, keys: list[Any], columns: list[list[Any]], meta: list[list[Any]],
    ) -> list[list[Any]]:
        out = JoinedRows(self, meta)
        if side == LEFT:
            self._left_changes(keys, columns, meta, out)
        else:
            self._right_changes(keys, columns, meta, out)
        return out.columns()

    def _left_changes(self, foreign_keys: list[Any], columns: list[list[Any]], meta: list[list[Any]],
                      out: JoinedRows) -> None:
        pointers, right_rows = self.foreign_keys(STATE_PARTITION), self.right_rows(STATE_PARTITION)
        subscriptions = self.subscriptions(STATE_PARTITION)
        for row, foreign_key in enumerate(foreign_keys):
            primary_key = tuple(columns[i][row] for i in self.primary_key_at)
            if None in primary_key:
                continue
            time, partition = meta[TIMESTAMP][row], meta[PARTITION][row]
            left_key = key_bytes(primary_key)
            old = pointers.get(left_key)
            old_foreign_key = None if old is None else old[0]
            deleted = bool(meta[TOMBSTONE][row])
            if old_foreign_key is not None and (deleted or old_foreign_key != foreign_key):
                subscriptions.delete(prefix_bytes(old_foreign_key) + left_key)
            if deleted:
                if old is not None:
                    pointers.delete(left_key)
                    out.add(primary_key, None, None, time, row, partition, tombstone=True)
                continue
            values = tuple(column[row] for column in columns)
            pointers.put(left_key, (foreign_key,))
            found = None
            if foreign_key is not None:
                subscriptions.put(prefix_bytes(foreign_key) + left_key, (primary_key, values, time, partition))
                found = right_rows.get(key_bytes(foreign_key))
            if found is not None:
                right_values, right_time = found
                out.add(primary_key, values, right_values, max(time, right_time), row, partition)
            elif self.keeps_unmatched:
                out.add(primary_key, values, None, time, row, partition)
            elif old is not None:
                out.add(primary_key, None, None, time, row, partition, tombstone=True)

    def _right_changes(self, primary_keys: list[Any], columns: list[list[Any]], meta: list[list[Any]],
                       out: JoinedRows) -> None:
        right_rows, subscriptions = self.right_rows(STATE_PARTITION), self.subscriptions(STATE_PARTITION)
        for row, primary_key in enumerate(primary_keys):
            if primary_key is None:
                continue
            time = meta[TIMESTAMP][row]
            right_key = key_bytes(primary_key)
            deleted = bool(meta[TOMBSTONE][row])
            values = None
            if deleted:
                if right_rows.get(right_key) is None:
                    continue
                right_rows.delete(right_key)
            else:
                values = tuple(column[row] for column in columns)
                right_rows.put(right_key, (values, time))
            for _, (left_primary_key, left_values, left_time, partition) in subscriptions.prefix(
                    prefix_bytes(primary_key)):
                joined_time = max(time, left_time)
                if values is not None or self.keeps_unmatched:
                    out.add(left_primary_key, left_values, values, joined_time, row, partition)
                else:
                    out.add(left_primary_key, None, None, joined_time, row, partition, tombstone=True)
