"""Transient push queries (SELECT ... EMIT CHANGES): stream a query's rows from the broker until LIMIT or cancel.

Over a table (a table source, or an aggregation), a row the table deletes is streamed as ksqlDB's CLI shows
it: its key columns, and DELETED in each value column (printed `<TOMBSTONE>`).
"""

from __future__ import annotations

import itertools
import logging
import threading
import uuid
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, TopicPartition

from ksqlpy.execution.pipeline import Pipeline
from ksqlpy.planning.catalog import WINDOW_BOUND_COLUMNS
from ksqlpy.planning.plan import QueryPlan, query_property
from ksqlpy.runtime.alignment import TimeAligner
from ksqlpy.runtime.clients import KafkaClients
from ksqlpy.runtime.tools import topic_partition_ids
from ksqlpy.runtime.worker import (
    POLL_TIMEOUT,
    LatestStart,
    batches_of,
    take_fetched,
)
from ksqlpy.schema import Namespace

logger = logging.getLogger(__name__)


class Deleted:
    """The value cells of a row a push query reports deleted from its table."""

    __slots__ = ()

    def __str__(self) -> str:
        return "<TOMBSTONE>"

    __repr__ = __str__


DELETED = Deleted()


def push_rows(plan: QueryPlan) -> Callable[[list[list[Any]], list[bool]], list[list[Any]]]:
    """How a push query's rows come from a batch's output columns and tombstone flags: over a table a deleted
    row is its key (with its window bounds) and DELETED in every other column; over a stream a record
    without a value is no row, as in ksqlDB."""
    kept = {i for i, column in enumerate(plan.output.columns) if column.namespace is Namespace.KEY}
    if plan.root.window is not None:
        kept |= {i for i, column in enumerate(plan.output.columns) if column.name in WINDOW_BOUND_COLUMNS}
    over_table = plan.root.is_table

    def rows(columns: list[list[Any]], tombstones: list[bool]) -> list[list[Any]]:
        made = []
        for row, tombstone in zip(zip(*columns, strict=True), tombstones, strict=True):
            if not tombstone:
                made.append(list(row))
            elif over_table:
                made.append([value if i in kept else DELETED for i, value in enumerate(row)])
        return made

    return rows


def run_push_query(
    clients: KafkaClients,
    plan: QueryPlan,
    pipeline: Pipeline,
    properties: Mapping[str, Any],
    limit: int | None = None,
    cancel: threading.Event | None = None,
    ready: threading.Event | None = None,
) -> Iterator[list[Any]]:
    """Yield the query's output rows (its output columns, key columns included) as they arrive.

    Reads every partition of the source from the start ('earliest') or from now ('latest', the default,
    as in ksqlDB), as set by auto.offset.reset. Nothing is committed: each run starts afresh. Partitions are
    assigned directly rather than through a group join, so the first rows come without a rebalance delay.
    `limit` defaults to the query's LIMIT; closing the iterator closes the consumer. `ready` is set once the
    query reads from "now" on every partition: every record produced after that is seen.
    """
    return limited(_pushed_rows(clients, plan, pipeline, properties, cancel, ready),
                   limit if limit is not None else plan.limit)


def limited(rows: Generator[list[Any], None, None], limit: int | None) -> Iterator[list[Any]]:
    """The first `limit` rows (every row if None); `rows` is closed as soon as the last is taken, which frees
    what it reads from."""
    try:
        yield from rows if limit is None else itertools.islice(rows, limit)
    finally:
        rows.close()


def _pushed_rows(
    clients: KafkaClients,
    plan: QueryPlan,
    pipeline: Pipeline,
    properties: Mapping[str, Any],
    cancel: threading.Event | None,
    ready: threading.Event | None,
) -> Generator[list[Any], None, None]:
    topics = list(dict.fromkeys(plan.input_topics))  # a join reads several (a self-join its one topic once)
    rows_of = push_rows(plan)
    from_start = query_property(properties, "auto.offset.reset", "latest") == "earliest"
    # A join takes its inputs in time order (see TimeAligner), which the end-of-partition events help with.
    aligner = TimeAligner(not plan.co_partitioned) if len(topics) > 1 else None
    consumer = clients.consumer(f"_ksqlpy_transient_{uuid.uuid4().hex}",
                                **{"enable.partition.eof": not from_start or aligner is not None})
    try:
        partitions = [(topic, partition) for topic in topics for partition in topic_partition_ids(consumer, topic)]
        start = OFFSET_BEGINNING if from_start else OFFSET_END
        consumer.assign([TopicPartition(topic, partition, start) for topic, partition in partitions])
        latest_start = LatestStart(set() if from_start else set(partitions),
                                   None if aligner is None else aligner.ended)
        if aligner is not None:
            aligner.assign(partitions)
        while not (cancel is not None and cancel.is_set()):
            messages = latest_start.records(
                take_fetched(consumer, POLL_TIMEOUT),
                lambda failure: logger.warning("push query on %s: %s", ", ".join(topics), failure.str()),
            )
            if aligner is not None:
                messages = aligner.release(messages)
            if ready is not None and not latest_start.pending:
                ready.set()
                ready = None  # said once
            if not messages:
                continue
            for batch in batches_of(messages, topics):
                yield from rows_of(*pipeline.rows(batch))
    finally:
        consumer.close()

