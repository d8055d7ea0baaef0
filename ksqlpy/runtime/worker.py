"""One persistent query on the broker: a thread that consumes a batch, runs the pipeline, produces, then commits.

A batch is whatever the consumer has already fetched (up to BATCH_SIZE): the worker waits only when nothing
is there, so batches are small when records trickle in and full under load.
At-least-once (the default): the consumed offsets are committed only after every produced record is
acknowledged; a failed delivery rewinds the consumer to the start of the batch and retries it.
Exactly-once (processing.guarantee = exactly_once / exactly_once_v2): the output of the batches consumed
within TRANSACTION_INTERVAL and their input offsets are committed in one Kafka transaction; a failed
transaction is aborted and its batches retried from the first.
Broker outages are retried with exponential back-off. A record the sink refuses for good (too large for
its max.message.bytes, which the producer's limit follows) is logged to the processing log and skipped,
unless ksql.fail.on.production.error is true; a fatal client error stops the query (state ERROR), and so
does anything else that ends the thread, with the reason.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import repeat
from operator import itemgetter
from typing import Any, cast

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import ConfigResource

from ksqlpy.backoff import Backoff
from ksqlpy.counters import LATENCY_BOUNDS, Histogram
from ksqlpy.engine import PersistentQuery
from ksqlpy.errors import KsqlError
from ksqlpy.execution.pipeline import FAIL_ON_PRODUCTION_PROPERTY, Headers, OutputBatch, Record, RecordBatch
from ksqlpy.planning.plan import query_property
from ksqlpy.runtime.alignment import DEFAULT_IDLE_LIMIT_S, TimeAligner
from ksqlpy.runtime.changelog import QueryState
from ksqlpy.runtime.clients import KafkaClients, PartitionId, describe_error
from ksqlpy.runtime.stages import Stage, whole_query
from ksqlpy.state.rocksdb import RocksDBStoreProvider

logger = logging.getLogger(__name__)

BATCH_SIZE = 5000
# How long a worker with nothing fetched waits for a record before it looks after its commits again.
POLL_TIMEOUT = 0.2
# At-least-once: produced records are flushed, and the offsets behind them committed, at most this often
# (Kafka Streams commits every 30 s; a short interval bounds what a crash replays). Waiting for every
# batch's acknowledgements instead would stall the loop on each broker round trip.
COMMIT_INTERVAL = 0.5
# Exactly-once: a transaction takes in every batch consumed for this long, then commits their output and
# input offsets together (Kafka Streams' commit.interval.ms under exactly-once). Read_committed readers see
# output only once it commits, so this bounds the latency it adds; small batches at low rates share one
# transaction instead of each paying for its own.
TRANSACTION_INTERVAL = 0.1
MAX_BACKOFF = 5.0
# How long stop() keeps waiting for an unreachable broker to acknowledge a batch before giving up on it
# (the batch is then not committed, so it is processed again on restart: nothing is lost).
STOP_GRACE = 10.0
# Kafka Streams' exactly-once default: a crashed instance's open transaction blocks read_committed readers
# for at most this long.
TRANSACTION_TIMEOUT_MS = 10000
CLIENT_CALL_TIMEOUT = 10.0
# How long a starting query waits for its sink's max.message.bytes before taking Kafka's default: until then it
# does not poll its consumer, so it joins no group and writes nothing. The broker still refuses a record over its
# limit, which is then logged and skipped.
CONFIG_LOOKUP_TIMEOUT = 3.0
EXACTLY_ONCE = frozenset({"exactly_once", "exactly_once_v2"})
RUNNING, ERROR, NOT_RUNNING = "RUNNING", "ERROR", "NOT_RUNNING"
PROBE_TIMEOUT = 2.0
# Commit failures caused by a rebalance: the partitions now belong to another member, which reprocesses
# the uncommitted records (at-least-once).
LOST_OWNERSHIP = frozenset(
    {KafkaError.REBALANCE_IN_PROGRESS, KafkaError.ILLEGAL_GENERATION, KafkaError.UNKNOWN_MEMBER_ID}
)


# New container objects the garbage collector lets pile up before it looks at them. Python's default, 700,
# has it run about thirty times a batch (each record leaves a few objects alive while its batch is
# processed), and every run walks the objects alive; this many is one run every few batches.
GC_YOUNG_THRESHOLD = 100_000


def tune_garbage_collector() -> None:
    """Once a query has run its first batch, what is alive (modules, the compiled query, the models its
    functions loaded: TensorFlow alone is ~200k objects) lives as long as it does: frozen, it is left out of
    every collection from then on, and the collector runs once every few batches instead of many times in each."""
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def consumer_group_id(service_id: str, query_id: str) -> str:
    return f"_ksqlpy_{service_id}query_{query_id}"


@dataclass
class QueryStatus:
    """A snapshot for SHOW QUERIES and the progress line; lag is best-effort and never negative."""

    state: str
    records_in: int = 0
    records_out: int = 0
    offsets: dict[PartitionId, int] = field(default_factory=dict)  # committed offset per source partition
    lag: dict[PartitionId, int] = field(default_factory=dict)
    error: str | None = None
    partitions: list[int] = field(default_factory=list)  # source partitions this process is assigned
    late_records: int | None = None  # dropped as their window had closed; None for a query without aggregation
    restoring: dict[int, int] = field(default_factory=dict)  # partition -> changelog records restored so far
    batch_seconds: Histogram = field(default_factory=lambda: Histogram(LATENCY_BOUNDS))  # per batch processed

    @property
    def total_lag(self) -> int:
        return sum(self.lag.values())


class TransientFailure(Exception):
    """The batch was not committed and the consumer was rewound to its start; retry after a pause."""


class QueryFailure(Exception):
    """Retrying cannot help (e.g. the sink rejects a record outright): the query stops in state ERROR."""


# Producer settings under which delivery callbacks fire only for failures.
ONLY_ERROR_REPORTS = {"delivery.report.only.error": True}


_second = itemgetter(1)


def partition_id(message: Message) -> PartitionId:
    return cast(str, message.topic()), cast(int, message.partition())


def batch_of(messages: list[Message], topic: str) -> RecordBatch:
    """Consumed messages (records only, no errors) as columns.

    Each column is one C-level pass (map over the Message method), with no Python frame per record.
    """
    headers = list(map(Message.headers, messages))
    return RecordBatch(
        list(map(Message.key, messages)),
        list(map(Message.value, messages)),
        list(map(_second, map(Message.timestamp, messages))),
        list(map(Message.partition, messages)),  # type: ignore[arg-type]
        list(map(Message.offset, messages)),  # type: ignore[arg-type]
        [tuple(h) if h else () for h in headers] if any(headers) else None,  # type: ignore[arg-type]
        topic,
    )


def batches_of(messages: list[Message], topics: list[str]) -> list[RecordBatch]:
    """Consumed messages as batches of one topic each, in the order given (for a query reading several
    topics, the order its TimeAligner released them in): runs of same-topic records."""
    if len(topics) == 1:
        return [batch_of(messages, topics[0])]
    batches: list[RecordBatch] = []
    start = 0
    for position in range(1, len(messages) + 1):
        if position == len(messages) or messages[position].topic() != messages[start].topic():
            batches.append(batch_of(messages[start:position], cast(str, messages[start].topic())))
            start = position
    return batches


def take_fetched(consumer: Consumer, wait: float) -> list[Message]:
    """What the consumer has already fetched, up to a batch; only when that is nothing, the first record to
    arrive within `wait` seconds and whatever came with it.

    consume(n, timeout) waits until it has n records or the timeout ends: at low rates that is pure delay.
    Taking what is there keeps batches small when records trickle in and full under load.
    """
    messages = consumer.consume(BATCH_SIZE, 0)
    if not messages:
        messages = consumer.consume(1, wait)
        if messages:
            messages += consumer.consume(BATCH_SIZE - 1, 0)
    return messages


class LatestStart:
    """Drops records that were already in a partition when reading began at 'latest'.

    Some brokers (Tansu) answer "where does this partition end" with the start of its last batch, so a
    consumer told to begin at the end may begin a few records early. The fetch's end-of-partition event
    (enable.partition.eof) marks where "now" really is; on brokers that answer correctly it comes at once.
    """

    def __init__(self, partitions: set[PartitionId] | None = None,
                 on_end: Callable[[PartitionId], None] | None = None) -> None:
        self.pending: set[PartitionId] = set(partitions or ())
        self.on_end = on_end  # told of every end-of-partition event

    def records(self, messages: list[Message], on_error: Callable[[KafkaError], None]) -> list[Message]:
        """The messages that are records to process; other errors than end-of-partition go to `on_error`."""
        if not self.pending and not any(map(Message.error, messages)):
            return messages  # the common case, checked without a Python call per message
        records = []
        for message in messages:
            if self.keep(message):
                records.append(message)
                continue
            error = message.error()
            if error is not None and error.code() != KafkaError._PARTITION_EOF:
                on_error(error)
        return records

    def keep(self, message: Message) -> bool:
        """Whether a message is a record to process (errors, including end-of-partition, are not)."""
        error = message.error()
        place = partition_id(message)
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                self.pending.discard(place)
                if self.on_end is not None:
                    self.on_end(place)
            return False
        return place not in self.pending


class CatchUp:
    """Whether a query holds its partitions and has read each one to its end since it got it: until then,
    a pause in its input is a rebalance or a fetch under way, not idleness (`ksqlpy run --until-idle`)."""

    def __init__(self) -> None:
        self.assigned = False
        self.behind: set[PartitionId] = set()  # assigned partitions whose end has not been reached yet

    def assign(self, partitions: Iterable[PartitionId]) -> None:
        # Partitions first: read from another thread in between, `done` must not see assigned and none behind.
        self.behind.update(partitions)
        self.assigned = True

    def revoke(self, partitions: Iterable[PartitionId]) -> None:
        # The (eager) rebalance protocol revokes everything and then assigns anew.
        self.assigned = False
        self.behind.difference_update(partitions)

    def reached_end(self, partition: PartitionId) -> None:
        self.behind.discard(partition)

    @property
    def done(self) -> bool:
        return self.assigned and not self.behind


# librdkafka's RD_KAFKA_PARTITION_UA: no partition chosen, the partitioner places the record by key
_ANY_PARTITION = -1
# How the producer (checking ahead against its message.max.bytes) or the broker refuses one record for good:
# sending it again cannot help, so it is logged and skipped, or stops the query (ksql.fail.on.production.error).
RECORD_REFUSALS = frozenset(
    {KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE, KafkaError.INVALID_RECORD,
     KafkaError.INVALID_TIMESTAMP}
)
# Kafka's default max.message.bytes (topic) and message.max.bytes (broker): what a sink takes when the broker
# does not say (Tansu does not).
KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1048588
DeliveryFailure = tuple[KafkaError, Message]


def produce_all(
    producer: Producer, topic: str, batch: OutputBatch, on_refused: Callable[[int, KafkaError], None] | None = None,
) -> list[DeliveryFailure]:
    """Produce a batch's records, letting the producer's (murmur2) partitioner place each one by key as ksqlDB's would
    (or where the batch says, for windowed keys, which are placed by their key alone).

    The returned list fills with delivery failures (error and message) as the producer is flushed. Producers
    made with ONLY_ERROR_REPORTS call back for failed deliveries alone, which keeps Python off the per-record
    path. A record the producer refuses outright (RECORD_REFUSALS, e.g. larger than its message.max.bytes)
    goes to `on_refused` with its position and the others are produced; without `on_refused` it is raised.
    """
    failures: list[DeliveryFailure] = []

    def on_delivery(error: KafkaError | None, message: Message) -> None:
        if error is not None:
            failures.append((error, message))

    # Arguments go by position: keywords cost produce() about a microsecond a record. Its positional
    # order is topic, value, key, partition, on_delivery, callback (an alias), timestamp, headers.
    produce = producer.produce
    headers_column: Iterable[Headers] = batch.headers or repeat(())
    placements: Iterable[int] = batch.partitions if batch.place_by_partition else repeat(_ANY_PARTITION)
    rows = zip(batch.values, batch.keys, batch.timestamps, headers_column, placements, strict=False)
    for row, (value, key, timestamp, headers, partition) in enumerate(rows):
        while True:
            try:
                if headers:
                    produce(topic, value, key, partition, on_delivery, None, timestamp, list(headers))
                else:
                    produce(topic, value, key, partition, on_delivery, None, timestamp)
                break
            except BufferError:  # the local queue is full: let deliveries drain it, then try again
                producer.poll(0.1)
            except KafkaException as error:
                if on_refused is None or error.args[0].code() not in RECORD_REFUSALS:
                    raise
                on_refused(row, error.args[0])
                break
    return failures


def max_record_bytes(clients: KafkaClients, topic: str) -> int:
    """The largest record the broker takes on `topic`: its max.message.bytes (which a topic without its own
    value inherits from the broker's message.max.bytes), else Kafka's default. Producers check each record
    against it before sending, so one too large is refused at once, record by record."""
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    # Held until the answer is in: a client collected as soon as describe_configs returned failed the request
    # ("handle destroyed") or, now and then, never completed its future, and the query never started.
    admin = clients.admin()
    try:
        future = admin.describe_configs([resource], request_timeout=CONFIG_LOOKUP_TIMEOUT)[resource]
        configs = future.result(timeout=CONFIG_LOOKUP_TIMEOUT)
    except (KafkaException, TimeoutError) as error:
        logger.debug("could not read max.message.bytes of %s: %s", topic, describe_error(error))
        return KAFKA_DEFAULT_MAX_MESSAGE_BYTES
    entry = configs.get("max.message.bytes")
    if entry is not None and entry.value and entry.value.isdigit():
        return int(entry.value)
    return KAFKA_DEFAULT_MAX_MESSAGE_BYTES


def message_record(message: Message) -> Record:
    """A produced record the broker refused, as the processing log names it (sink topic and partition)."""
    return Record(message.key(), message.value(), 0, partition=cast(int, message.partition()), offset=-1,
                  topic=cast(str, message.topic()))


def offset_ranges(batch: RecordBatch) -> tuple[dict[PartitionId, int], dict[PartitionId, int]]:
    """Per partition, the first offset in the batch and the offset after its last (a consumer returns each
    partition's records in offset order)."""
    topic, partitions, offsets = batch.topic, batch.partitions, batch.offsets
    if len(set(partitions)) == 1:
        return {(topic, partitions[0]): offsets[0]}, {(topic, partitions[0]): offsets[-1] + 1}
    starts: dict[PartitionId, int] = {}
    ends: dict[PartitionId, int] = {}
    for partition, offset in zip(partitions, offsets, strict=True):
        starts.setdefault((topic, partition), offset)
        ends[(topic, partition)] = offset + 1
    return starts, ends


class QueryWorker(threading.Thread):
    def __init__(
        self,
        query: PersistentQuery,
        clients: KafkaClients,
        service_id: str,
        properties: Mapping[str, Any],
        instance_id: str | None = None,
        stage: Stage | None = None,
    ) -> None:
        """`stage`: the part of the query this worker runs (ksqlpy.runtime.stages), by default all of it; each
        stage is a consumer group of its own."""
        # The main stage, which owns the state, has the query's application id: its changelogs are named after it.
        application_id = consumer_group_id(service_id, query.query_id)
        if stage is None:
            stage = whole_query(query, application_id)
        super().__init__(name=f"ksqlpy-{query.query_id}{'-' + stage.name if stage.name else ''}", daemon=True)
        self.query = query
        self.clients = clients
        self.stage = stage
        # a join reads several topics (a self-join reads its one topic once)
        self.source_topics = list(stage.sources)
        self.sink_topic = stage.sink_topic
        self.group_id = application_id + ('-' + stage.name if stage.name else '')
        self.pipeline = stage.pipeline
        self.exactly_once = query_property(properties, "processing.guarantee", "at_least_once") in EXACTLY_ONCE
        self.offset_reset = query_property(properties, "auto.offset.reset", "latest")
        # Each process running the query needs its own transactional id; zombies are fenced through the
        # consumer group generation carried by send_offsets_to_transaction.
        self.transactional_id = (f"_ksqlpy_{service_id}{query.query_id}{'-' + stage.name if stage.name else ''}_"
                                 f"{instance_id or uuid.uuid4().hex[:12]}")
        self.last_input = time.monotonic()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._status = QueryStatus(RUNNING)
        self._batch_seconds = Histogram(LATENCY_BOUNDS)
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self._transactions_ready = False
        self._pending_commit: dict[PartitionId, int] = {}  # delivered but not yet committed (at-least-once)
        # Produced but not yet known to be delivered (at-least-once): where to rewind to, where to commit to.
        self._unsettled_starts: dict[PartitionId, int] = {}
        self._unsettled_ends: dict[PartitionId, int] = {}
        self._unsettled_failures: list[list[DeliveryFailure]] = []
        self._last_settle = time.monotonic()
        self._catch_up = CatchUp()
        self._latest_start = LatestStart(on_end=self._reached_end)
        # A join's inputs are taken in timestamp order, waiting for an input that may have older records.
        idle_ms = int(query_property(properties, "max.task.idle.ms", "0") or 0)
        self._aligner = TimeAligner(not stage.co_partitioned, max(idle_ms / 1000, DEFAULT_IDLE_LIMIT_S)) \
            if len(self.source_topics) > 1 else None
        # Exactly-once: the batches in the open transaction, where to rewind to and where to commit to.
        self._transaction_opened: float | None = None
        self._transaction_starts: dict[PartitionId, int] = {}
        self._transaction_ends: dict[PartitionId, int] = {}
        self._last_warning = ("", 0.0)
        # Set by the clients' error callback: librdkafka reports lost brokers and fatal errors there.
        self._broker_down = False
        self._fatal_error: KafkaError | None = None
        self._collector_tuned = False
        # A stateful query whose pipeline leaves state commits to its runner keeps durable state here.
        pipeline = self.pipeline
        self.state: QueryState | None = None
        if pipeline.state and not pipeline.commits_state and stage.is_main:
            assert isinstance(pipeline.stores, RocksDBStoreProvider)
            self.state = QueryState(clients, query.query_id, self.group_id, pipeline, self.source_topics,
                                    self.exactly_once)

    # -- the thread's public face

    @property
    def query_id(self) -> str:
        return self.query.query_id

    def status(self) -> QueryStatus:
        with self._lock:
            return QueryStatus(
                self._status.state,
                self._status.records_in,
                self._status.records_out,
                dict(self._status.offsets),
                dict(self._status.lag),
                self._status.error,
                list(self._status.partitions),
                self.pipeline.late_records if self.query.plan.is_stateful and self.stage.is_main else None,
                dict(self.state.restoring) if self.state is not None else {},
                self._batch_seconds.copy(),
            )

    def idle_since(self) -> float | None:
        """Monotonic time of the query's last input (a record, or joining its group), once it holds its
        partitions and has read each to its end; None while it is still joining or catching up. A query
        whose thread has ended waits for nothing."""
        holding_back = self._aligner is not None and len(self._aligner) > 0  # records waiting for another input
        if self.is_alive() and (not self._catch_up.done or holding_back):
            return None
        return self.last_input

    def stop(self, timeout: float | None = None) -> None:
        """Finish the current batch, commit, close the clients and wait for the thread."""
        self._stopping.set()
        if self.is_alive():
            self.join(timeout)

    # -- the loop

    def run(self) -> None:
        """The query's thread. Whatever ends it other than stop() (SystemExit included) leaves the query in
        state ERROR with the reason, for SHOW QUERIES, the progress line and the log."""
        backoff = Backoff(first=0.1, cap=MAX_BACKOFF)
        try:
            while not self._stopping.is_set():
                try:
                    self._open()
                    self._step()
                    backoff.reset()
                except (QueryFailure, KsqlError) as error:  # KsqlError: a record the query is set to stop on
                    self._fail(str(error))
                    return
                except (KafkaException, TransientFailure) as error:
                    kafka_error = error.args[0] if isinstance(error, KafkaException) else None
                    if isinstance(kafka_error, KafkaError) and kafka_error.fatal():
                        self._fail(f"fatal Kafka error: {kafka_error.str()}")
                        return
                    delay = backoff.next()
                    reason = str(error) if isinstance(error, TransientFailure) else f"Kafka error: {describe_error(error)}"
                    logger.warning("query %s: %s, retrying in %.1f s", self.query_id, reason, delay)
                    self._stopping.wait(delay)
        except BaseException as error:  # the thread ends here: nothing may escape unseen
            logger.debug("query %s failed", self.query_id, exc_info=error)
            self._fail(describe_exception(error))
        finally:
            try:
                self._close()
            except BaseException as error:
                logger.debug("query %s: closing failed", self.query_id, exc_info=error)
                self._fail(f"closing the query failed: {describe_exception(error)}")
                self._close_consumer()

    def _open(self) -> None:
        if self._consumer is None:
            settings: dict[str, Any] = {
                "auto.offset.reset": self.offset_reset,
                # End-of-partition events tell when 'latest' really starts and when the backlog is read.
                "enable.partition.eof": True,
            }
            if self.exactly_once:
                settings["isolation.level"] = "read_committed"
            if len(self.source_topics) > 1:
                # A join's inputs are co-partitioned: partition p of every topic must go to the same member.
                settings["partition.assignment.strategy"] = "range"
            consumer = self.clients.consumer(self.group_id, **settings)
            subscribed = [self.stage.lease_topic] if self.stage.lease_topic else self.source_topics
            consumer.subscribe(subscribed, on_assign=self._on_assign, on_revoke=self._on_revoke)
            self._consumer = consumer
        if self._producer is None:
            settings = (
                {"transactional.id": self.transactional_id, "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS}
                if self.exactly_once
                else {"enable.idempotence": True}
            )
            settings["message.max.bytes"] = max_record_bytes(self.clients, self.sink_topic)
            self._producer = self.clients.producer(error_cb=self._on_client_error, **ONLY_ERROR_REPORTS, **settings)
        if self.exactly_once and not self._transactions_ready:
            self._producer.init_transactions(CLIENT_CALL_TIMEOUT)
            self._transactions_ready = True

    def _step(self) -> None:
        assert self._consumer is not None and self._producer is not None
        self._producer.poll(0)  # serves the error callback
        if self._fatal_error is not None:
            raise KafkaException(self._fatal_error)
        if self._broker_down:
            self._probe_broker()
        messages = self._latest_start.records(take_fetched(self._consumer, self._fetch_wait()), self._on_consumer_error)
        if self._aligner is not None:
            messages = self._aligner.release(messages)
        if messages:
            for batch in batches_of(messages, self.source_topics):
                self._process(batch)
            if not self._collector_tuned:
                tune_garbage_collector()
                self._collector_tuned = True
        if self._unsettled_ends and (not messages or time.monotonic() - self._last_settle >= COMMIT_INTERVAL):
            self._settle()
        if self._pending_commit:
            self._commit_pending()
        if self._transaction_opened is not None and time.monotonic() - self._transaction_opened >= TRANSACTION_INTERVAL:
            self._commit_open_transaction()
        self._update_lag()

    def _fetch_wait(self) -> float:
        """How long to wait for input when none is fetched: not past the moment the open transaction is due."""
        if self._transaction_opened is None:
            return POLL_TIMEOUT
        return max(0.0, min(POLL_TIMEOUT, self._transaction_opened + TRANSACTION_INTERVAL - time.monotonic()))

    def _on_consumer_error(self, error: KafkaError) -> None:
        if error.fatal():
            raise KafkaException(error)
        self._warn_once(f"query {self.query_id}: consumer error on {', '.join(self.source_topics)}: {error.str()}")

    def _on_client_error(self, error: KafkaError) -> None:
        if error.fatal():
            self._fatal_error = error
        elif error.code() == KafkaError._ALL_BROKERS_DOWN:
            self._broker_down = True

    def _probe_broker(self) -> None:
        """A metadata request answers only once a broker is back; until then the loop backs off."""
        assert self._consumer is not None
        try:
            self._consumer.list_topics(timeout=PROBE_TIMEOUT)
        except KafkaException as error:
            raise TransientFailure(f"broker unreachable ({describe_error(error)})") from error
        self._broker_down = False
        logger.info("query %s: broker reachable again", self.query_id)

    def _process(self, batch: RecordBatch) -> None:
        started = time.perf_counter()
        self.last_input = time.monotonic()
        starts, ends = offset_ranges(batch)
        outputs = self._run_stage(batch)
        if self.exactly_once:
            self._commit_in_transaction(outputs, starts, ends)
        else:
            self._deliver(outputs, starts)
            for partition, offset in starts.items():
                self._unsettled_starts.setdefault(partition, offset)
            self._unsettled_ends.update(ends)
        with self._lock:
            if batch.topic not in self.stage.internal:  # counted where it was read first, at its source
                self._status.records_in += len(batch)
            self._status.records_out += len(outputs)
            if self.exactly_once:
                self._status.offsets.update(ends)
            self._batch_seconds.observe(time.perf_counter() - started)

    def _run_stage(self, batch: RecordBatch) -> OutputBatch:
        """The worker's part of the query over a batch."""
        return self.stage.run(self.pipeline, batch)

    # -- at-least-once

    def _deliver(self, outputs: OutputBatch, starts: dict[PartitionId, int]) -> None:
        producer = self._producer
        assert producer is not None
        try:
            self._unsettled_failures.append(self._produce(producer, outputs))
        except KafkaException:
            self._rewind({**starts, **self._unsettled_starts})
            self._forget_unsettled()
            raise

    def _settle(self) -> None:
        """Wait until everything produced is acknowledged; only then may its input offsets be committed.

        Records lost on the way are produced again (from the first uncommitted input); records the broker
        refused for good are logged and skipped, or stop the query under ksql.fail.on.production.error.
        """
        producer = self._producer
        assert producer is not None
        self._flush(producer)
        failures = [failure for batch in self._unsettled_failures for failure in batch]
        refused = [(error, message) for error, message in failures if error.code() in RECORD_REFUSALS]
        lost = [error for error, _message in failures if error.code() not in RECORD_REFUSALS]
        if lost or (refused and self.pipeline.fail_on_production_error):
            self._rewind(self._unsettled_starts)
            self._forget_unsettled()
        if lost:
            raise TransientFailure(f"{len(lost)} records not delivered to {self.sink_topic}: {lost[0].str()}")
        for error, message in refused:
            size = len(message.key() or b"") + len(message.value() or b"")
            self._refused(message_record(message), cast(str, message.topic()), size, error)
        if self.state is not None:
            self._commit_state(producer)
        self._pending_commit.update(self._unsettled_ends)
        self._forget_unsettled()

    def _commit_state(self, producer: Producer) -> None:
        """At-least-once: write the state changes of the settled batches locally and to the changelogs, and
        wait for the changelogs' acknowledgement before the input offsets may be committed."""
        assert self.state is not None
        changes = self.pipeline.commit_state()
        if not changes:
            return
        failures: list[KafkaError] = []

        def on_delivery(error: KafkaError | None, _message: object) -> None:
            if error is not None:
                failures.append(error)

        self.state.produce(producer, changes, self._unsettled_ends, on_delivery)
        self._flush(producer)
        if failures:
            self._rewind(self._unsettled_starts)
            self._forget_unsettled()
            raise TransientFailure(f"{len(failures)} changelog records of {self.query_id} not delivered: {failures[0].str()}")

    def _forget_unsettled(self) -> None:
        self._unsettled_starts.clear()
        self._unsettled_ends.clear()
        self._unsettled_failures.clear()
        self._last_settle = time.monotonic()

    def _produce(self, producer: Producer, outputs: OutputBatch) -> list[DeliveryFailure]:
        def refused_output(row: int, error: KafkaError) -> None:
            size = len(outputs.keys[row] or b"") + len(outputs.values[row] or b"")
            self._refused(outputs.input_record(row), self.sink_topic, size, error)

        try:
            failures = produce_all(producer, self.sink_topic, outputs, refused_output)
            if outputs.dead_letters:
                letters, topic = outputs.dead_letters, self.pipeline.dead_letter_topic
                failures += produce_all(producer, topic, OutputBatch.of(letters),
                                        lambda row, error: self._refused(letters[row], topic, len(letters[row].value or b""), error))
            return failures
        except KafkaException as error:
            if error.args[0].retriable():
                raise
            raise QueryFailure(f"cannot write to {self.sink_topic}: {describe_error(error)}") from error

    def _refused(self, record: Record | None, topic: str, size: int, error: KafkaError) -> None:
        """A record `topic` will never take: to the processing log, or the end of the query if it is set to
        fail on production errors. `record` is the input it came from when known, else the refused record."""
        reason = f"Failed to produce a record of {size} bytes to {topic}: {error.str()}"
        if self.pipeline.fail_on_production_error:
            raise QueryFailure(f"{reason} ({FAIL_ON_PRODUCTION_PROPERTY}=true)")
        if topic == self.sink_topic:
            with self._lock:  # counted as out when its batch was processed, but the sink never got it
                self._status.records_out -= 1
        self.pipeline.log(record, reason)

    def _flush(self, producer: Producer) -> None:
        backoff = Backoff(first=0.5, cap=MAX_BACKOFF)
        waited = 0.0
        while True:
            wait = backoff.next()
            remaining = producer.flush(wait)
            if remaining == 0:
                return
            waited += wait
            if self._stopping.is_set() and waited >= STOP_GRACE:
                raise TransientFailure(f"{remaining} records still unacknowledged at shutdown; the batch is not committed")
            logger.warning(
                "query %s: broker unreachable, %d records awaiting acknowledgement, retrying in %.1f s",
                self.query_id, remaining, wait,
            )

    def _commit_pending(self, partitions: set[PartitionId] | None = None) -> None:
        consumer = self._consumer
        if consumer is None or not self._pending_commit:
            return
        chosen = {p: o for p, o in self._pending_commit.items() if partitions is None or p in partitions}
        if not chosen:
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in sorted(chosen.items())]
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as error:
            kafka_error = error.args[0]
            if kafka_error.code() in LOST_OWNERSHIP:
                # Nothing to retry: whoever owns the partitions now resumes from the last commit.
                logger.warning(
                    "query %s: could not commit after a rebalance (%s); records may be processed again",
                    self.query_id, kafka_error.str(),
                )
                for partition in chosen:
                    self._pending_commit.pop(partition, None)
                return
            raise
        for partition, offset in chosen.items():
            if self._pending_commit.get(partition) == offset:
                del self._pending_commit[partition]
        with self._lock:
            self._status.offsets.update(chosen)

    # -- exactly-once

    def _commit_in_transaction(
        self, outputs: OutputBatch, starts: dict[PartitionId, int], ends: dict[PartitionId, int],
    ) -> None:
        """Produce a batch's output in the open transaction, beginning one if none is open; _step commits it,
        with the input offsets of every batch in it, once it has been open for TRANSACTION_INTERVAL."""
        producer = self._producer
        assert producer is not None
        # Recorded first: if beginning the transaction fails, this batch too is rewound.
        for partition, offset in starts.items():
            self._transaction_starts.setdefault(partition, offset)
        self._transaction_ends.update(ends)
        with self._aborting_on_failure(producer):
            if self._transaction_opened is None:
                producer.begin_transaction()
                self._transaction_opened = time.monotonic()
            self._produce(producer, outputs)

    def _commit_open_transaction(self) -> None:
        producer, consumer = self._producer, self._consumer
        assert producer is not None and consumer is not None
        offsets = [TopicPartition(t, p, o) for (t, p), o in sorted(self._transaction_ends.items())]
        pipeline = self.pipeline
        with self._aborting_on_failure(producer):
            if self.state is not None:  # the state changes go in the transaction; local stores once it commits
                self.state.produce(producer, pipeline.pending_state(), self._transaction_ends, None)
            producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), CLIENT_CALL_TIMEOUT)
            self._commit_transaction(producer)
        if self.state is not None:
            pipeline.commit_state()
        self._forget_transaction()

    def _commit_before_leaving(self, occasion: str) -> None:
        """Commit the open transaction before its partitions are given up; if that fails, whoever gets them
        next resumes from the last commit."""
        if self._transaction_opened is None or self._consumer is None or self._producer is None:
            return  # nothing open, or the consumer is closing after the transaction failed
        try:
            self._commit_open_transaction()
        except (KafkaException, TransientFailure) as error:
            logger.warning("query %s: open transaction not committed at %s (%s); its records are processed again",
                           self.query_id, occasion, describe_error(error))

    @contextmanager
    def _aborting_on_failure(self, producer: Producer) -> Iterator[None]:
        """A failure aborts the open transaction and rewinds the consumer to the first batch in it."""
        try:
            yield
        except QueryFailure:
            self._abort_transaction(producer)
            self._rollback_state()
            self._forget_transaction()
            raise
        except KafkaException as error:
            kafka_error = error.args[0]
            if kafka_error.fatal():
                raise
            self._abort_transaction(producer)
            self._rewind(self._transaction_starts)
            self._forget_transaction()
            raise TransientFailure(f"transaction aborted: {kafka_error.str()}") from error

    def _forget_transaction(self) -> None:
        self._transaction_opened = None
        self._transaction_starts.clear()
        self._transaction_ends.clear()

    def _commit_transaction(self, producer: Producer) -> None:
        backoff = Backoff(first=0.1, cap=MAX_BACKOFF)
        while True:
            try:
                producer.commit_transaction(CLIENT_CALL_TIMEOUT)
                return
            except KafkaException as error:
                kafka_error = error.args[0]
                if not kafka_error.retriable() or self._stopping.is_set():
                    raise
                delay = backoff.next()
                logger.warning(
                    "query %s: broker unreachable while committing a transaction (%s), retrying in %.1f s",
                    self.query_id, kafka_error.str(), delay,
                )
                time.sleep(delay)

    def _abort_transaction(self, producer: Producer) -> None:
        try:
            producer.abort_transaction(CLIENT_CALL_TIMEOUT)
        except KafkaException as error:
            # The producer is unusable; a fresh one re-initialises the transactional id, which aborts
            # whatever the old one left open.
            logger.warning("query %s: could not abort transaction (%s); recreating the producer", self.query_id,
                           describe_error(error))
            self._producer = None
            self._transactions_ready = False

    # -- shared

    def _rewind(self, starts: dict[PartitionId, int]) -> None:
        """Move the consumer back to the first record of a batch that was not committed, and the state back to
        the last commit."""
        self._rollback_state()
        if self._aligner is not None:
            self._aligner.forget()  # what was held back lies beyond the rewind: it is fetched again
        consumer = self._consumer
        assert consumer is not None
        try:
            for (topic, partition), offset in starts.items():
                consumer.seek(TopicPartition(topic, partition, offset))
        except KafkaException as error:
            # Seeking needs the partition assigned; a fresh consumer resumes from the committed offsets,
            # which at this point are the batch's start.
            logger.warning("query %s: could not rewind (%s); reopening the consumer", self.query_id, describe_error(error))
            self._close_consumer()

    def _reached_end(self, place: PartitionId) -> None:
        self._catch_up.reached_end(place)
        if self._aligner is not None:
            self._aligner.ended(place)

    def _rollback_state(self) -> None:
        if self.state is not None:
            self.pipeline.rollback_state()

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.last_input = time.monotonic()  # joining the group counts as activity for --until-idle
        # A leased stage's member holding the lease reads every partition of its inputs; the others, none.
        reassign = self.stage.lease_topic is not None
        if reassign:
            partitions = [TopicPartition(topic, number) for topic, count in self.stage.sources.items()
                          for number in range(count)] if partitions else []
        assigned = {(tp.topic, tp.partition) for tp in partitions}
        numbers = sorted({partition for _topic, partition in assigned})
        self._catch_up.assign(assigned)
        if self._aligner is not None:
            self._aligner.assign(assigned)
        with self._lock:
            self._status.partitions = sorted({*self._status.partitions, *numbers})
        if partitions and (self.offset_reset == "latest" or self.state is not None):
            committed = self._committed_offsets(consumer, partitions)
            if self.offset_reset == "latest" and committed is not None:
                # Only partitions without a committed offset start at 'latest', and never a repartition topic's.
                fresh = assigned - committed.keys()
                self._latest_start.pending.update(place for place in fresh if place[0] not in self.stage.internal)
                for tp in partitions:
                    if (tp.topic, tp.partition) in fresh and tp.topic in self.stage.internal:
                        tp.offset = OFFSET_BEGINNING
                        reassign = True
            if self.state is not None:
                if committed is None:
                    raise QueryFailure("cannot restore the query's state without its committed offsets")
                self.state.take_up(set(numbers), committed)
        if reassign:
            consumer.assign(partitions)
        logger.info("query %s: assigned partitions %s", self.query_id, numbers)

    def _committed_offsets(
        self, consumer: Consumer, partitions: list[TopicPartition],
    ) -> dict[PartitionId, int] | None:
        """The group's committed offset per partition (absent where none); None if the broker does not say."""
        backoff = Backoff(first=0.5, cap=MAX_BACKOFF)
        for _attempt in range(5):
            try:
                committed = consumer.committed(partitions, timeout=CLIENT_CALL_TIMEOUT)
            except KafkaException as error:
                logger.warning("query %s: could not read committed offsets (%s)", self.query_id, describe_error(error))
                time.sleep(backoff.next())
                continue
            return {(tp.topic, tp.partition): tp.offset for tp in committed if tp.offset >= 0}
        return None

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self.stage.lease_topic is not None:  # giving up the lease gives up what it was reading
            partitions = consumer.assignment()
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        if not self.exactly_once:
            try:
                if self._unsettled_ends:
                    self._settle()
                self._commit_pending(revoked)
            except KafkaException as error:
                logger.warning("query %s: commit on revoke failed (%s)", self.query_id, describe_error(error))
            except TransientFailure as error:
                logger.warning("query %s: %s; the records are processed again by the new owner", self.query_id, error)
        else:
            self._commit_before_leaving("rebalance")
        for partition in revoked:
            self._pending_commit.pop(partition, None)
        numbers = {partition for _topic, partition in revoked}
        if self.state is not None:
            self.state.give_up(numbers, self._consumer)
        self._latest_start.pending -= revoked
        self._catch_up.revoke(revoked)
        if self._aligner is not None:
            self._aligner.revoke(revoked)
        with self._lock:
            for place in revoked:
                self._status.lag.pop(place, None)
            self._status.partitions = [p for p in self._status.partitions if p not in numbers]

    def _update_lag(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        lag: dict[PartitionId, int] = {}
        for tp in consumer.assignment():
            # Cached from fetch responses: no broker round trip. Some brokers (Tansu) under-report the high
            # watermark, so lag is best-effort and clamped at zero.
            _low, high = consumer.get_watermark_offsets(tp, cached=True)
            committed = self._status.offsets.get((tp.topic, tp.partition))
            if high >= 0 and committed is not None:
                lag[(tp.topic, tp.partition)] = max(0, high - committed)
        with self._lock:
            self._status.lag.update(lag)

    def _warn_once(self, message: str, every: float = 30.0) -> None:
        now = time.monotonic()
        if message != self._last_warning[0] or now - self._last_warning[1] >= every:
            logger.warning("%s", message)
            self._last_warning = (message, now)

    def _fail(self, message: str) -> None:
        logger.error("query %s stopped: %s", self.query_id, message)
        self.query.state = ERROR
        with self._lock:
            self._status.state = ERROR
            if self._status.error is None:  # the first failure is the cause; what follows it is a consequence
                self._status.error = message

    def _close(self) -> None:
        if not self.exactly_once and self._consumer is not None:
            try:
                if self._unsettled_ends and self._producer is not None:
                    self._settle()
                self._commit_pending()
            except KafkaException as error:
                logger.warning("query %s: final commit failed (%s)", self.query_id, describe_error(error))
            except TransientFailure as error:
                logger.warning("query %s: not committed at shutdown (%s); it is processed again on restart",
                               self.query_id, error)
        if self.exactly_once:
            self._commit_before_leaving("shutdown")
        if self.state is not None:
            self.state.give_up(set(self.state.held), self._consumer)
        self._close_consumer()
        if self._producer is not None:
            self._producer.flush(CLIENT_CALL_TIMEOUT)
            self._producer = None
        with self._lock:
            if self._status.state != ERROR:
                self._status.state = NOT_RUNNING

    def _close_consumer(self) -> None:
        consumer, self._consumer = self._consumer, None
        self._pending_commit.clear()
        if self._aligner is not None:
            self._aligner.reset()
        if consumer is not None:
            try:
                consumer.close()
            except (KafkaException, RuntimeError) as error:
                logger.warning("query %s: closing the consumer failed (%s)", self.query_id, describe_error(error))


def describe_exception(error: BaseException) -> str:
    """An exception nobody expected, in one line: its type and its text."""
    text = describe_error(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__

