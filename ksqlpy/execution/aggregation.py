"""The aggregate operator: GROUP BY over streams and tables, without windows or in time or session windows.

Its input rows are the group key columns followed by the aggregates' arguments; its output rows are
shaped like a source's (key columns, one column per aggregate, then the metadata of ksqlpy.execution.rows),
one per update of a (key, window) entry. State is one entry per (key, window) in the query's store for the
row's partition: the aggregates' accumulators and the largest timestamp that has contributed.

Over a stream the work is columnar: a batch's rows are numbered by (key, window) once, each aggregate
folds all of the batch's groups in one call (add_each_grouped, or add per group), and the store is read
and written once per group. With every update emitted, the per-row running values come from the same
pass. Tables (which retract a row's old contribution) and session windows (which merge) go row by row, as
their semantics are sequential.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from itertools import accumulate, repeat
from typing import Any, cast

from ksqlpy.execution.emission import Emission
from ksqlpy.execution.partitioning import partition_for
from ksqlpy.execution.rows import (
    KEY_BYTES,
    META_COLUMNS,
    ORIGIN,
    PARTITION,
    ROWOFFSET,
    ROWPARTITION,
    TIMESTAMP,
    TOMBSTONE,
)
from ksqlpy.functions.aggregate import Aggregator
from ksqlpy.planning.plan import AggregateStep
from ksqlpy.serialization.base import RecordSerde
from ksqlpy.state.operator_stores import OperatorStores

_START = struct.Struct(">q")
_SESSION = struct.Struct(">qq")  # end, start: ksqlDB's session key layout
RowLogger = Callable[[int, str, str], None]  # (input position, reason, level)
# One entry's state: the accumulators, the largest timestamp that has contributed, and the group key.
Entry = tuple[tuple[Any, ...], int, Any]


def _picked(column: list[Any], rows: Sequence[int]) -> list[Any]:
    return [column[r] for r in rows]


def _members(group_of: Sequence[int], groups: int) -> list[list[int]]:
    """Each group's positions in `group_of`, in order."""
    members: list[list[int]] = [[] for _ in range(groups)]
    for position, group in enumerate(group_of):
        members[group].append(position)
    return members


class Output:
    """Rows an operator emits, gathered row by row (the sequential paths) and handed on as columns."""

    def __init__(self, width: int) -> None:
        self.rows: list[tuple[Any, ...]] = []
        self.width = width

    def emit(self, key: Sequence[Any], values: Sequence[Any], meta: Sequence[Any]) -> None:
        self.rows.append((*key, *values, *meta))

    def keep_latest_per_entry(self, created: set[tuple[int, bytes]]) -> None:
        """What a record cache flushes: each (partition, entry key)'s last row, in the order of their last
        update, leaving out the deletion of an entry the batch itself created (never emitted downstream)."""
        partition_at, key_at, tombstone_at = (self.width - META_COLUMNS + i for i in (PARTITION, KEY_BYTES, TOMBSTONE))
        last = {(row[partition_at], row[key_at]): index for index, row in enumerate(self.rows)}
        self.rows = [self.rows[index] for entry, index in sorted(last.items(), key=lambda item: item[1])
                     if not (self.rows[index][tombstone_at] and entry in created)]

    def columns(self) -> list[list[Any]]:
        if not self.rows:
            return [[] for _ in range(self.width)]
        return [list(column) for column in zip(*self.rows, strict=True)]


class AggregateOperator:
    """One GROUP BY aggregation of one query (see the module docstring)."""

    def __init__(
        self,
        step: AggregateStep,
        stores: OperatorStores,
        key_serde: RecordSerde,
        emission: Emission,
        partitions: int,
        log_row: RowLogger,
        final: bool = False,
        properties: Mapping[str, Any] | None = None,
    ) -> None:
        """`final`: EMIT FINAL over time windows; the operator emits each window once, when it closes.
        `properties`: the query's, which some aggregates read (COLLECT_LIST's limit)."""
        self.step = step
        self.properties = dict(properties or {})
        self.key_width = step.key_width
        self.aggregators: list[Aggregator] = []
        self._implementations: list[Any] = []
        self._bind_aggregators()
        self.arguments = [call.arguments for call in step.aggregates]
        self.stores = stores
        self.key_serde = key_serde
        self.emission = emission
        self.partitions = max(1, partitions)
        self.log_row = log_row
        self.window = step.window_spec
        self.final = final
        # Without a GRACE PERIOD, EMIT FINAL closes a window at its end, as ksqlDB does.
        self.grace = 0 if final and self.window is not None and self.window.grace_ms is None else step.grace_ms
        # A window is kept (and so can still be emitted as final) while its start is within the retention.
        self.retention = (self.window.retention_ms or (self.window.size_ms + self.grace)) if self.window else 0
        self.last_emits = stores.positions("last-emit")  # per partition: the close time of the last final emission
        self.width = len(step.columns) + META_COLUMNS
        self.stream_times = stores.positions("stream-time")
        self.late_counts = stores.positions("late-records")
        self.last_sweeps = stores.positions("last-expiry-sweep")  # per partition: stream time of the last sweep
        self.from_table = step.input.is_table
        # over a table, each source key's last row: (group key, arguments, store key, partition)
        self.previous_rows: OperatorStores | None = (
            OperatorStores(stores.provider, stores.query_id, f"{stores.operator}-source") if self.from_table else None
        )

    @property
    def late_records(self) -> int:
        return sum(self.late_counts.values())

    @property
    def operator_stores(self) -> list[OperatorStores]:
        return [self.stores] + ([self.previous_rows] if self.previous_rows is not None else [])

    def _bind_aggregators(self) -> None:
        """Bind the aggregate calls to their implementations; again after a user aggregate is reloaded (the
        loader only swaps in a version whose accumulators the stores can still hold)."""
        calls = self.step.aggregates
        self._implementations = [call.overload.impl for call in calls]
        self.aggregators = [call.overload.impl(call.function.arg_types, call.function.return_type, call.literals)
                            for call in calls]
        for aggregator in self.aggregators:
            aggregator.configure(self.properties)

    # -- entry point

    def process(self, columns: list[list[Any]], meta: list[list[Any]], placed: bool = False) -> list[list[Any]]:
        """Input rows -> output rows (key columns, aggregate columns, metadata). `placed`: the rows were read
        back from the repartition topic, where each already sits in its group's partition, which is then its
        state partition (else a re-keying GROUP BY hashes the group key to find it)."""
        if any(call.overload.impl is not bound for call, bound in zip(self.step.aggregates, self._implementations,
                                                                        strict=True)):
            self._bind_aggregators()
        if not meta[0]:
            return [[] for _ in range(self.width)]
        if self.from_table:
            return self._table_rows(columns, meta)
        hashed = self.step.rekeyed and not placed
        if self.window is None:
            return self._stream_rows(columns, meta, hashed)
        rows = self._session_rows(columns, meta, hashed) if self.window.kind == "SESSION" \
            else self._stream_rows(columns, meta, hashed)
        for partition in list(self.stream_times):
            self._expire(partition)
        return rows

    def _expire(self, partition: int) -> None:
        """Remove the windows past their retention from the partition's store, so that state stays bounded on
        an endless stream: time windows that start more than the retention before stream time, sessions closed
        for good (ended before stream time - gap - grace). A sweep reads the whole store, so it runs only once
        stream time has moved a quarter of the retention since the last one."""
        assert self.window is not None
        session = self.window.kind == "SESSION"
        retention = self.window.size_ms + self.grace if session else self.retention
        stream_time = self.stream_times[partition]
        last = self.last_sweeps.get(partition)
        if last is not None and stream_time - last < max(1, retention // 4):
            return
        self.last_sweeps[partition] = stream_time
        horizon = stream_time - retention
        # a time window's key ends in its start, a session's in its end and start
        bound_at, layout = (_SESSION.size, _SESSION) if session else (_START.size, _START)
        store = self.stores(partition)
        expired = [key for key, _ in store.range() if layout.unpack_from(key, len(key) - bound_at)[0] < horizon]
        if expired:
            store.write_batch(dict.fromkeys(expired))

    # -- shared pieces

    def _group_keys(self, columns: list[list[Any]], meta: list[list[Any]]) -> tuple[list[Any], list[int]]:
        """Each row's group key (a value, or a tuple for several columns) and the rows that aggregate: not
        tombstones, and with no NULL in the key (those are logged, as ksqlDB excludes them)."""
        width = self.key_width
        key_columns = [_hashable(column) for column in columns[:width]]
        keys: list[Any] = key_columns[0] if width == 1 else list(zip(*key_columns, strict=True))
        tombstones = meta[TOMBSTONE]
        null_keys = [i for i, key in enumerate(keys) if key is None or (width > 1 and None in key)]
        for row in null_keys:
            if not tombstones[row]:
                self._log_null_key(meta[ORIGIN][row])
        if not null_keys and True not in tombstones:
            return keys, list(range(len(keys)))
        dropped = set(null_keys)
        return keys, [i for i, tombstone in enumerate(tombstones) if not tombstone and i not in dropped]

    def _log_null_key(self, origin: int) -> None:
        self.log_row(origin, "Group-by key resolved to null: the record is excluded from the aggregation", "ERROR")

    def repartition_keys(self, columns: list[list[Any]], meta: list[list[Any]]) -> tuple[list[int], list[bytes]]:
        """What a repartition topic carries of the input rows: the rows that aggregate (see _group_keys) and
        each one's serialized group key, the bytes the group's entries are stored under."""
        keys, live = self._group_keys(columns, meta)
        serialized = self._serialized_keys(keys, live)
        return live, [serialized[keys[r]] for r in live]

    def _serialized_keys(self, keys: list[Any], rows: list[int]) -> dict[Any, bytes]:
        """The rows' distinct group keys, serialized once each."""
        return {key: self._serialized(key) for key in {keys[r] for r in rows}}

    def _serialized(self, key: Any) -> bytes:
        serialized = self.key_serde.serialize(self._key_fields(key))
        return serialized if serialized is not None else b""

    def _key_fields(self, key: Any) -> tuple[Any, ...]:
        """A group key's column values, as SQL sees them."""
        if self.key_width == 1 and not isinstance(key, _Frozen):
            return (key,)  # the common case, without the pass below
        fields = key if self.key_width > 1 else (key,)
        return tuple(field.value if isinstance(field, _Frozen) else field for field in fields)

    def _partition(self, key_bytes: bytes, record_partition: int, hashed: bool) -> int:
        """The state partition of a group: the group key's hash when `hashed` (a GROUP BY that re-keys in
        process: the partition a repartition topic would put it in), else the record's own partition."""
        if hashed:
            return partition_for(key_bytes, self.partitions)
        return record_partition

    def _arguments(self, columns: list[list[Any]], meta: list[list[Any]], rows: Sequence[int],
                   index: int) -> list[list[Any]]:
        """Aggregate `index`'s argument columns over `rows` (plus their offsets, if it needs a sequence)."""
        arguments = [[columns[p][r] for r in rows] for p in self.arguments[index]]
        if self.aggregators[index].needs_sequence:
            offsets = meta[ROWOFFSET]
            arguments.append([offsets[r] for r in rows])
        return arguments

    def _folded(self, index: int, accumulator: Any, slices: list[list[Any]], running: bool,
                origins: Callable[[], list[int]]) -> tuple[Any, list[Any]]:
        """Aggregate `index` with a group's rows added, and its results: after each row when `running`, else
        once. If the aggregate raises (a user aggregate's bug, or a value it cannot take), the rows are added
        one by one and each row it fails on is logged and left out (`origins` gives their input positions,
        only needed then)."""
        aggregator = self.aggregators[index]
        try:
            if running:
                return aggregator.add_each(accumulator, slices)
            accumulator = aggregator.add(accumulator, slices)
            return accumulator, [aggregator.result(accumulator)]
        except Exception:  # whatever an aggregate raises on some row, narrowed down to that row below
            results: list[Any] = []
            for row, origin in enumerate(origins()):
                try:
                    accumulator = aggregator.add(accumulator, [column[row : row + 1] for column in slices])
                except Exception as error:  # that row's fault: logged, the group goes on without it
                    self.log_row(origin, f"Error computing aggregate {self.step.aggregates[index].text}: {error}",
                                 "ERROR")
                results.append(aggregator.result(accumulator))
            return accumulator, results if running else results[-1:]

    def _folded_groups(self, index: int, accumulators: list[Any], arguments: list[list[Any]], group_of: list[int],
                       members: list[list[int]] | None, running: bool, origins: list[int]) -> tuple[list[Any], list[Any]]:
        """Aggregate `index` over a batch's groups (row i in group group_of[i], which starts from
        accumulators[group]): each group's new accumulator, and the results after each row (in row order)
        when `running`, else one per group. All groups go in one call; if that raises, group by group, down
        to the rows at fault. `members` lists each group's rows, when the caller has them."""
        if running:
            try:
                return self.aggregators[index].add_each_grouped(accumulators, arguments, group_of)
            except Exception:  # whatever it raises, narrowed down below
                pass
        updated: list[Any] = []
        results: list[Any] = [None] * len(group_of) if running else []
        for accumulator, rows in zip(accumulators, members or _members(group_of, len(accumulators)), strict=True):
            accumulator, values = self._folded(index, accumulator, [[column[r] for r in rows] for column in arguments],
                                               running, partial(_picked, origins, rows))
            updated.append(accumulator)
            if running:
                for row, value in zip(rows, values, strict=True):
                    results[row] = value
            else:
                results += values
        return updated, results

    def _late(self, partition: int, origin: int) -> None:
        self.late_counts[partition] = self.late_counts.get(partition, 0) + 1
        self.log_row(origin, "Record dropped: it arrived after its window closed (stream time past window end "
                             f"+ grace period of {self.grace} ms)", "DEBUG")

    # -- streams: columnar

    def _stream_rows(self, columns: list[list[Any]], meta: list[list[Any]], hashed: bool) -> list[list[Any]]:
        keys, live = self._group_keys(columns, meta)
        timestamps = meta[TIMESTAMP]
        # (row, window start) pairs, in input order; a hopping window gives a row several
        rows, starts = self._windows(live, timestamps)
        distinct = self._serialized_keys(keys, live)
        record_partitions = meta[PARTITION]
        if hashed:  # the partition follows from the key alone: hashed once per distinct key
            key_partitions = {key: partition_for(key_bytes, self.partitions) for key, key_bytes in distinct.items()}
            partition_of = [key_partitions[keys[r]] for r in rows]
        else:
            partition_of = [record_partitions[r] for r in rows]
        columnar: list[list[list[Any]]] = []
        for partition in sorted(set(partition_of)):
            picked = range(len(rows)) if len(set(partition_of)) == 1 else \
                [i for i, p in enumerate(partition_of) if p == partition]
            part_rows = [rows[i] for i in picked]
            part_starts = [starts[i] for i in picked] if starts is not None else None
            columnar.append(self._stream_partition(columns, meta, keys, distinct, partition, part_rows, part_starts))
        if len(columnar) == 1:
            return columnar[0]
        merged: list[list[Any]] = [[] for _ in range(self.width)]
        for part in columnar:
            for column, extra in zip(merged, part, strict=True):
                column.extend(extra)
        return merged

    def _windows(self, live: list[int], timestamps: list[Any]) -> tuple[list[int], list[int] | None]:
        window = self.window
        if window is None:
            return live, None
        size = window.size_ms
        if window.kind == "TUMBLING":
            return live, [timestamps[r] - timestamps[r] % size for r in live]
        rows: list[int] = []
        starts: list[int] = []
        for r in live:
            for start in self._windows_for(timestamps[r]):
                rows.append(r)
                starts.append(start)
        return rows, starts

    def _stream_partition(
        self,
        columns: list[list[Any]],
        meta: list[list[Any]],
        keys: list[Any],
        serialized: dict[Any, bytes],
        partition: int,
        rows: list[int],
        starts: list[int] | None,
    ) -> list[list[Any]]:
        timestamps = meta[TIMESTAMP]
        size = self.window.size_ms if self.window is not None else 0
        if starts is not None:
            # stream time as each row arrives decides whether its window is still open
            times = [timestamps[r] for r in rows]
            stream_times = list(accumulate(times, max, initial=self.stream_times.get(partition, -1)))
            self.stream_times[partition] = stream_times[-1]
            open_rows = [i for i, start in enumerate(starts) if start + size + self.grace > stream_times[i + 1]]
            if len(open_rows) != len(rows):
                kept = set(open_rows)
                for i, row in enumerate(rows):
                    if i not in kept:
                        self._late(partition, meta[ORIGIN][row])
                rows = [rows[i] for i in open_rows]
                starts = [starts[i] for i in open_rows]
        else:
            stream_times = []
        if not rows:
            return self._final_rows(partition, stream_times) if self.final else [[] for _ in range(self.width)]
        numbering: dict[Any, int] = {}
        if starts is not None and starts.count(starts[0]) != len(starts):
            group_of = [numbering.setdefault((keys[r], start), len(numbering)) for r, start in zip(rows, starts, strict=True)]
            distinct_groups: list[Any] = list(numbering)
        else:
            # Every row in one window (the common case for tumbling windows): numbered by key alone, which
            # spares a (key, window) pair per row.
            group_of = [numbering.setdefault(keys[r], len(numbering)) for r in rows]
            distinct_groups = list(numbering) if starts is None else [(key, starts[0]) for key in numbering]
        store_keys = [
            serialized[g[0]] + _START.pack(g[1]) if starts is not None else serialized[g]
            for g in distinct_groups
        ]
        store = self.stores(partition)
        entries: list[Entry | None] = store.multi_get(store_keys)
        every_update = self.emission is Emission.EVERY_UPDATE
        # each group's positions in `rows`: for emitting once per group, or narrowing a failing aggregate
        members = None if every_update else _members(group_of, len(distinct_groups))
        arguments = [self._arguments(columns, meta, rows, j) for j in range(len(self.aggregators))]
        origins = [meta[ORIGIN][r] for r in rows]
        results: list[list[Any]] = []
        folded: list[list[Any]] = []  # per aggregate, each group's new accumulator
        for j, aggregator in enumerate(self.aggregators):
            initial = [entry[0][j] if entry is not None else aggregator.initial() for entry in entries]
            accumulators, values = self._folded_groups(j, initial, arguments[j], group_of, members, every_update,
                                                       origins)
            folded.append(accumulators)
            results.append(values)
        # the largest timestamp that has contributed to each group, and after each row
        latest = [entry[1] if entry is not None else -1 for entry in entries]
        running_times: list[int] = []
        append = running_times.append
        for group, row in zip(group_of, rows, strict=True):
            time = timestamps[row]
            if time > latest[group]:
                latest[group] = time
            append(latest[group])
        changes: dict[bytes, Entry] = {}
        for group, (store_key, accumulators_of_group) in enumerate(
                zip(store_keys, zip(*folded, strict=True) if folded else repeat(()), strict=False)):
            changes[store_key] = (tuple(accumulators_of_group), latest[group],
                                  self._key_fields(distinct_groups[group][0] if starts is not None
                                                   else distinct_groups[group]))
        store.write_batch(changes)
        if self.final:
            return self._final_rows(partition, stream_times)
        if members is None:  # every update: output i belongs to input row i
            out_rows, out_groups, values, out_times = rows, group_of, results, running_times
        else:
            # one output per group, in the order of the groups' last updates (a record cache's flush order),
            # carrying the group's last row's metadata
            out_groups = sorted(range(len(distinct_groups)), key=lambda g: members[g][-1])
            out_rows = [rows[members[g][-1]] for g in out_groups]
            values = [[column[g] for g in out_groups] for column in results]
            out_times = [latest[g] for g in out_groups]
        return self._columns(meta, keys, out_rows, out_groups, distinct_groups, store_keys, values, out_times,
                             partition, starts is not None)

    def _columns(
        self,
        meta: list[list[Any]],
        keys: list[Any],
        rows: list[int],
        group_of: list[int],
        groups: list[Any],
        store_keys: list[bytes],
        values: list[list[Any]],
        times: list[int],
        partition: int,
        windowed: bool,
    ) -> list[list[Any]]:
        """Output columns: the group key, the aggregates, then the metadata."""
        if self.key_width == 1 and not isinstance(keys[rows[0]], _Frozen):
            key_columns = [[keys[r] for r in rows]]
        else:
            key_columns = [list(column) for column in zip(*(self._key_fields(keys[r]) for r in rows), strict=True)]
        size = len(rows)
        if windowed:
            window_starts = [groups[g][1] for g in group_of]
            size_ms = self.window.size_ms if self.window is not None else 0
            window_ends: list[Any] = [start + size_ms for start in window_starts]
        else:
            window_starts = window_ends = [None] * size
        return [
            *key_columns,
            *values,
            times,
            [meta[ROWPARTITION][r] for r in rows],
            [meta[ROWOFFSET][r] for r in rows],
            window_starts,
            window_ends,
            [meta[ORIGIN][r] for r in rows],
            [False] * size,
            times,
            [partition] * size,
            [store_keys[g] for g in group_of],
        ]

    # -- EMIT FINAL over time windows

    def _final_rows(self, partition: int, stream_times: list[int]) -> list[list[Any]]:
        """The windows that closed as stream time advanced through the batch, as Kafka Streams emits them
        on window close: at each advance, the windows starting after those emitted last time and no later
        than the close time minus the size, that are still within the retention."""
        assert self.window is not None
        size = self.window.size_ms
        last = self.last_emits.get(partition)
        ranges: list[tuple[int, int]] = []
        previous = None
        for stream_time in stream_times[1:]:
            if stream_time == previous:
                continue
            previous = stream_time
            close = stream_time - self.grace
            upper = close - size
            if upper < 0 or (last is not None and last >= close):
                continue
            lower = 0 if last is None else last - size + 1
            if last is not None and self._windows_for(upper) == self._windows_for(lower - 1):
                continue  # no new window has closed since the last emission
            ranges.append((max(lower, stream_time - self.retention), upper))
            last = close
        if not ranges:
            return [[] for _ in range(self.width)]
        self.last_emits[partition] = cast(int, last)
        closed = [(start, key, entry) for key, entry in self.stores(partition).range()
                  for start in (_START.unpack_from(key, len(key) - _START.size)[0],)
                  if any(low <= start <= high for low, high in ranges)]
        closed.sort(key=lambda item: (item[0], item[1]))
        out = Output(self.width)
        for start, key, (accumulators, time, group) in closed:
            values = [aggregator.result(acc) for aggregator, acc in zip(self.aggregators, accumulators, strict=True)]
            out.emit(group, values, (time, None, None, start, start + size, 0, False, time, partition, key))
        return out.columns()

    def _windows_for(self, time: int) -> tuple[int, ...]:
        """The starts of the windows a record at `time` falls in."""
        assert self.window is not None
        size = self.window.size_ms
        advance = self.window.advance_ms or size
        first = max(0, time - size + advance) // advance * advance
        return tuple(range(first, time + 1, advance))

    # -- tables: row by row, retracting each source key's previous row

    def _table_rows(self, columns: list[list[Any]], meta: list[list[Any]]) -> list[list[Any]]:
        assert self.previous_rows is not None
        keys = columns[0] if self.key_width == 1 else list(zip(*columns[: self.key_width], strict=True))
        out = Output(self.width)
        for row in range(len(meta[0])):
            source_key = meta[KEY_BYTES][row]
            source_partition = meta[PARTITION][row]
            previous_store = self.previous_rows(source_partition)
            previous = previous_store.get(source_key)
            key = keys[row]
            null_key = key is None or (self.key_width > 1 and None in key)
            if null_key and not meta[TOMBSTONE][row]:
                self._log_null_key(meta[ORIGIN][row])
            current = None
            if not meta[TOMBSTONE][row] and not null_key:
                arguments = [self._arguments(columns, meta, [row], j) for j in range(len(self.aggregators))]
                key_bytes = self._serialized(key)
                current = (key, arguments, key_bytes, self._partition(key_bytes, source_partition, self.step.rekeyed))
            time = meta[TIMESTAMP][row]
            try:
                if previous is not None and current is not None and previous[2] == current[2]:
                    changes = [self._table_change(meta, row, current, time, undo=previous[1])]
                else:
                    changes = [self._table_change(meta, row, previous, time, undo=previous[1], add=False)] \
                        if previous is not None else []
                    if current is not None:
                        changes.append(self._table_change(meta, row, current, time))
            except Exception as error:  # an aggregate that cannot take the old row back (or give a result):
                # the row is left out, here, before any state changes, so that the batch is not retried over
                # half-applied state
                self.log_row(meta[ORIGIN][row], f"Error updating the aggregate with the row: {error}", "ERROR")
                continue
            for partition, key_bytes, entry, values in changes:
                self.stores(partition).put(key_bytes, entry)
                latest = entry[1]
                out.emit(entry[2], values, (latest, meta[ROWPARTITION][row], meta[ROWOFFSET][row], None, None,
                                            meta[ORIGIN][row], False, latest, partition, key_bytes))
            if current is not None:
                previous_store.put(source_key, current)
            elif previous is not None:
                previous_store.delete(source_key)
        if self.emission is Emission.LATEST_PER_KEY:
            out.keep_latest_per_entry(set())  # a group's entry is never deleted
        return out.columns()

    def _table_change(
        self,
        meta: list[list[Any]],
        row: int,
        target: tuple[Any, list[list[list[Any]]], bytes, int],
        time: int,
        undo: list[list[list[Any]]] | None = None,
        add: bool = True,
    ) -> tuple[int, bytes, Entry, list[Any]]:
        """A group's entry with a row taken back (`undo`) and/or added, and its results, not yet written:
        (partition, store key, entry, values)."""
        key, arguments, key_bytes, partition = target
        entry: Entry | None = self.stores(partition).get(key_bytes)
        accumulators = list(entry[0]) if entry is not None else [a.initial() for a in self.aggregators]
        for j, aggregator in enumerate(self.aggregators):
            if undo is not None:
                accumulators[j] = aggregator.undo(accumulators[j], undo[j])
            if add:
                accumulators[j], _ = self._folded(j, accumulators[j], arguments[j], False, partial(_picked, meta[ORIGIN], [row]))
        latest = max(time, entry[1]) if entry is not None else time
        values = [aggregator.result(acc) for aggregator, acc in zip(self.aggregators, accumulators, strict=True)]
        return partition, key_bytes, (tuple(accumulators), latest, self._key_fields(key)), values

    # -- session windows: row by row, merging the sessions a record bridges

    def _session_rows(self, columns: list[list[Any]], meta: list[list[Any]], hashed: bool) -> list[list[Any]]:
        assert self.window is not None
        gap = self.window.size_ms
        keys, live = self._group_keys(columns, meta)
        out = Output(self.width)
        initial = [a.initial() for a in self.aggregators]
        created: set[tuple[int, bytes]] = set()  # the sessions this batch started
        for row in live:
            key = keys[row]
            key_bytes = self._serialized(key)
            partition = self._partition(key_bytes, meta[PARTITION][row], hashed)
            store = self.stores(partition)
            time = meta[TIMESTAMP][row]
            stream_time = max(self.stream_times.get(partition, -1), time)
            self.stream_times[partition] = stream_time
            closed_before = stream_time - gap - self.grace
            suffix = len(key_bytes) + _SESSION.size
            overlapping: list[tuple[int, int, bytes, Entry]] = []
            for stored_key, entry in store.prefix(key_bytes):
                if len(stored_key) != suffix:
                    continue  # a longer key that merely starts with this one
                end, start = _SESSION.unpack_from(stored_key, len(key_bytes))
                # a session that closed (its end before stream time - gap - grace) is out of retention: no
                # record merges with it any more
                if start <= time + gap and end >= time - gap and end >= closed_before:
                    overlapping.append((start, end, stored_key, entry))
            overlapping.sort()
            start = min([time, *(s for s, _, _, _ in overlapping)])
            end = max([time, *(e for _, e, _, _ in overlapping)])
            if end < closed_before:
                self._late(partition, meta[ORIGIN][row])
                continue
            accumulators = list(initial)
            try:
                for index, (_, _, _, entry) in enumerate(overlapping):
                    accumulators = list(entry[0]) if index == 0 else [
                        aggregator.merge(earlier, later)
                        for aggregator, earlier, later in zip(self.aggregators, accumulators, entry[0], strict=True)
                    ]
            except Exception as error:  # the sessions this record bridges cannot merge: the record is left out
                # (here, before any state changes, so that the batch is not retried over half-applied state)
                self.log_row(meta[ORIGIN][row], f"Error merging sessions: {error}", "ERROR")
                continue
            for j in range(len(self.aggregators)):
                accumulators[j], _ = self._folded(j, accumulators[j], self._arguments(columns, meta, [row], j), False,
                                                  partial(_picked, meta[ORIGIN], [row]))
            key_tuple = self._key_fields(key)
            new_key = key_bytes + _SESSION.pack(end, start)
            if (start, end) != (time, time):
                # the sessions the record joins are replaced by the merged one: each is deleted downstream too
                # (unless the merged session is the record's own one-event session, which Kafka Streams
                # overwrites in place)
                for old_start, old_end, stored_key, _ in overlapping:
                    store.delete(stored_key)
                    out.emit(key_tuple, [None] * len(self.aggregators),
                             (old_end, meta[ROWPARTITION][row], meta[ROWOFFSET][row], old_start, old_end,
                              meta[ORIGIN][row], True, old_end, partition, stored_key))
            if not any(stored_key == new_key for _, _, stored_key, _ in overlapping):
                created.add((partition, new_key))
            store.put(new_key, (tuple(accumulators), end, key_tuple))
            values = [aggregator.result(acc) for aggregator, acc in zip(self.aggregators, accumulators, strict=True)]
            out.emit(key_tuple, values, (end, meta[ROWPARTITION][row], meta[ROWOFFSET][row], start, end,
                                         meta[ORIGIN][row], False, end, partition, new_key))
        if self.emission is Emission.LATEST_PER_KEY:
            out.keep_latest_per_entry(created)
        return out.columns()


class _Frozen:
    """A STRUCT, MAP or ARRAY key value (a dict or list) made hashable by its contents, so it can group."""

    __slots__ = ("_identity", "value")

    def __init__(self, value: Any) -> None:
        self.value = value
        self._identity = _identity(value)

    def __hash__(self) -> int:
        return hash(self._identity)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Frozen) and self._identity == other._identity


def _identity(value: Any) -> Any:
    if isinstance(value, dict):
        return ("struct", tuple((name, _identity(item)) for name, item in value.items()))
    if isinstance(value, list):
        return ("array", tuple(_identity(item) for item in value))
    return value


def _hashable(column: list[Any]) -> list[Any]:
    """The column as it is, or with its dict and list values frozen when it has any."""
    kinds = set(map(type, column))
    if dict not in kinds and list not in kinds:
        return column
    return [_Frozen(value) if isinstance(value, (dict, list)) else value for value in column]
