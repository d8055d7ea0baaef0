"""The engine's backend on a Kafka broker: topics through the admin client, one QueryWorker thread per query.

Topics are created with the broker's default replication factor (replication_factor -1, which real clusters
resolve from `default.replication.factor`); the `ksql.sink.replicas` property overrides it. No topic
configs are set: retention and cleanup follow the broker's defaults, as for ksqlDB's sink topics.

A watch thread checks every few seconds (one metadata request) that the topics ksqlpy relies on still exist:
its internal topics and each running query's source and sink. A broker that lost them (Tansu with memory
storage restarted, or a topic deleted behind ksqlpy's back) is said so plainly; the topics are created
again with their declared partitions, internal topics are restored by their owners, and the queries that
use them restart with fresh clients, reading their re-created input from its beginning.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from ksqlpy.engine import PersistentQuery
from ksqlpy.errors import KsqlError
from ksqlpy.execution.pipeline import OutputBatch, Pipeline, ProcessingLogger, Record
from ksqlpy.execution.pull import KeyLookup
from ksqlpy.planning.plan import QueryPlan
from ksqlpy.runtime.clients import KafkaClients
from ksqlpy.runtime.config import RuntimeConfig
from ksqlpy.runtime.materialized import TableMaterialization
from ksqlpy.runtime.processing_log import ProcessingLog
from ksqlpy.runtime.push import run_push_query
from ksqlpy.runtime.stages import query_stages
from ksqlpy.runtime.tools import read_to_end
from ksqlpy.runtime.worker import (
    ONLY_ERROR_REPORTS,
    RUNNING,
    QueryStatus,
    QueryWorker,
    consumer_group_id,
    describe_error,
    produce_all,
)

logger = logging.getLogger(__name__)

REPLICAS_PROPERTY = "ksql.sink.replicas"
BROKER_DEFAULT_REPLICAS = -1
ADMIN_TIMEOUT = 15.0
# How long stop_query/close wait for a worker to finish its batch, commit and close.
WORKER_STOP_TIMEOUT = 30.0
# How often the watch thread checks that the topics ksqlpy relies on still exist.
TOPIC_CHECK_INTERVAL = 5.0
# How long a group join takes to complete: Kafka's (and Tansu's) initial rebalance delay is 3 s.
GROUP_JOIN_SETTLE = 5.0
LOSS_CONFIRMATION_S = 1.0


@dataclass(frozen=True)
class KeptTopic:
    """A topic ksqlpy owns outside any query: how to create it again, and who restores what it held."""

    partitions: int
    config: dict[str, str] = field(default_factory=dict)
    restore: Callable[[], None] | None = None


class KafkaBackend:
    def __init__(self, clients: KafkaClients, config: RuntimeConfig, instance_id: str | None = None) -> None:
        self.clients = clients
        self.config = config
        # Distinguishes this process's transactional ids from those of other processes sharing the queries;
        # KsqlpyApp passes the id its state directory keeps for it (runtime.process_id).
        self.instance_id = instance_id or uuid.uuid4().hex[:12]
        self._admin: AdminClient = clients.admin()
        self._producer = clients.producer(**ONLY_ERROR_REPORTS)
        self._processing_log = ProcessingLog(self._producer, self._create_processing_log_topic)
        self._workers: dict[str, QueryWorker] = {}  # per query: the worker running it, or its downstream stage
        # per query that goes through repartition topics: the stages that write them
        self._upstream: dict[str, list[QueryWorker]] = {}
        self._lock = threading.Lock()
        self._last_input = time.monotonic()
        self._kept_topics: dict[str, KeptTopic] = {}
        self._internal_topics: dict[str, list[str]] = {}  # per query
        self._closing = threading.Event()
        self._watch: threading.Thread | None = None
        self._tables: dict[str, TableMaterialization] = {}

    # -- topics

    def create_topic(self, name: str, partitions: int, config: Mapping[str, str] | None = None) -> None:
        """Create the topic unless it exists, then wait until the broker's metadata shows it."""
        replicas = int(self.config.properties.get(REPLICAS_PROPERTY, BROKER_DEFAULT_REPLICAS))
        futures = self._admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=replicas, config=dict(config or {}))],
            operation_timeout=ADMIN_TIMEOUT,
            request_timeout=ADMIN_TIMEOUT,
        )
        try:
            futures[name].result()
        except KafkaException as error:
            if _code(error) != KafkaError.TOPIC_ALREADY_EXISTS:
                raise KsqlError(f"Could not create topic {name}: {describe_error(error)}") from error
        self._wait_for(name, present=True)

    def keep_topic(self, name: str, topic: KeptTopic) -> None:
        """Watch an internal topic (it exists already): created again, and restored, should the broker lose it."""
        with self._lock:
            self._kept_topics[name] = topic

    def _create_processing_log_topic(self, name: str, partitions: int) -> None:
        self.create_topic(name, partitions)
        self.keep_topic(name, KeptTopic(partitions))

    def topic_partitions(self, name: str) -> int | None:
        return self._topic_sizes().get(name)

    def delete_topic(self, name: str) -> None:
        self.forget_table(name)
        futures = self._admin.delete_topics([name], operation_timeout=ADMIN_TIMEOUT, request_timeout=ADMIN_TIMEOUT)
        try:
            futures[name].result()
        except KafkaException as error:
            if _code(error) != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise KsqlError(f"Could not delete topic {name}: {describe_error(error)}") from error
        self._wait_for(name, present=False)

    def list_topics(self, include_internal: bool = False) -> dict[str, int]:
        """Topics and their partition counts; names starting with '_' (internal) only when asked."""
        return {
            name: size for name, size in self._topic_sizes().items() if include_internal or not name.startswith("_")
        }

    def cluster_id(self) -> str:
        """The Kafka cluster's id, as its metadata gives it ("" if the broker does not say)."""
        try:
            return self._admin.list_topics(timeout=ADMIN_TIMEOUT).cluster_id or ""
        except KafkaException as error:
            raise KsqlError(f"Could not reach Kafka: {describe_error(error)}") from error

    def is_reachable(self, timeout: float = 2.0) -> bool:
        """Whether the broker answers a metadata request within `timeout` seconds."""
        try:
            self._admin.list_topics(timeout=timeout)
        except KafkaException:
            return False
        return True

    def _topic_sizes(self) -> dict[str, int]:
        # Always the full listing: asking the metadata for one named topic auto-creates it on some brokers.
        try:
            metadata = self._admin.list_topics(timeout=ADMIN_TIMEOUT)
        except KafkaException as error:
            raise KsqlError(f"Could not list topics: {describe_error(error)}") from error
        return {name: len(topic.partitions) for name, topic in metadata.topics.items() if topic.error is None}

    def _wait_for(self, name: str, present: bool, timeout: float = ADMIN_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while (name in self._topic_sizes()) != present:
            if time.monotonic() > deadline:
                state = "appear" if present else "disappear"
                raise KsqlError(f"Topic {name} did not {state} in the broker's metadata within {timeout:.0f} s")
            time.sleep(0.1)

    # -- lost topics

    def watch_topics(self) -> None:
        """Start checking, every TOPIC_CHECK_INTERVAL, that the topics ksqlpy relies on are still there."""
        if self._watch is None:
            self._watch = threading.Thread(target=self._watch_topics, name="ksqlpy-topic-watch", daemon=True)
            self._watch.start()

    def _watch_topics(self) -> None:
        while not self._closing.wait(TOPIC_CHECK_INTERVAL):
            try:
                self.restore_lost_topics()
            except KsqlError as error:  # an unreachable broker: the clients report that themselves
                logger.debug("topic check skipped: %s", error)

    def restore_lost_topics(self) -> list[str]:
        """Create again the topics ksqlpy relies on that the broker no longer has; returns their names."""
        with self._lock:
            kept = dict(self._kept_topics)
            workers = [*self._workers.values(), *self._upstream_workers()]
        wanted = {name: topic.partitions for name, topic in kept.items()}
        for worker in workers:
            wanted.update(worker.stage.sources)
            if worker.stage.lease_topic is not None:
                wanted[worker.stage.lease_topic] = 1
            if worker.stage.is_main:
                wanted[worker.sink_topic] = worker.query.sink.partitions
        lost = self._missing(wanted)
        # A listing can miss a topic for a moment (a leader moving, a broker answering from a stale cache), and
        # restarting queries from the beginning of their input on a false alarm would write everything again:
        # a topic is lost when a second listing, a little later, misses it too.
        if not lost or self._closing.wait(LOSS_CONFIRMATION_S):
            return []
        lost = [name for name in self._missing(wanted) if name in lost]
        if not lost:
            return []
        logger.error(
            "Kafka at %s no longer has %s: the broker lost its data (restarted without its storage?) or the "
            "topics were deleted. Creating them again with their declared partitions; queries using them restart "
            "and read their input from the beginning of the new topics. Records and offsets they held are gone.",
            self.config.bootstrap_servers, ", ".join(lost),
        )
        # The queries' clients hold state the broker lost (producer ids, group generations): they restart.
        # Their consumers are stopped once they have rejoined the emptied broker's groups and before their
        # topics exist again (which would make them rejoin): a consumer leaving in the middle of a join stays
        # in the group as a member that never syncs, and on Tansu nobody can join after it.
        affected = [w for w in workers
                    if set(w.source_topics).intersection(lost) or {w.sink_topic, w.stage.lease_topic} & set(lost)]
        if affected:
            self._closing.wait(GROUP_JOIN_SETTLE)
        for worker in affected:
            worker.stop(0)
        for worker in affected:
            worker.stop(WORKER_STOP_TIMEOUT)
        for name in lost:
            topic = kept.get(name)
            self.create_topic(name, wanted[name], topic.config if topic is not None else None)
            if topic is not None and topic.restore is not None:
                try:
                    topic.restore()
                except KsqlError as error:
                    logger.error("could not restore what %s held: %s", name, error)
        for worker in affected:
            with self._lock:
                still_running = self._workers.get(worker.query_id) is worker
            if still_running:  # not terminated meanwhile (an upstream stage restarts with its query)
                self.start_query(worker.query, from_beginning=bool(set(worker.source_topics).intersection(lost)))
        return lost

    def _missing(self, wanted: Iterable[str]) -> list[str]:
        """The wanted topics the broker's metadata does not name at all (one that errors still exists)."""
        try:
            named = self._admin.list_topics(timeout=ADMIN_TIMEOUT).topics
        except KafkaException as error:
            raise KsqlError(f"Could not list topics: {describe_error(error)}") from error
        return sorted(name for name in wanted if name not in named)

    # -- records

    def write(self, topic: str, records: list[Record]) -> None:
        """Produce and wait for acknowledgement; the producer partitions by key as ksqlDB's would."""
        failures = produce_all(self._producer, topic, OutputBatch.of(records))
        remaining = self._producer.flush(ADMIN_TIMEOUT)
        if failures:
            raise KsqlError(f"Could not write to {topic}: {failures[0][0].str()}")
        if remaining:
            raise KsqlError(f"Could not write to {topic}: the broker did not acknowledge {remaining} records")

    def topic_records(self, topic: str) -> list[Record]:
        return read_to_end(self.clients, topic)

    def table_records(self, topic: str, lookup: KeyLookup | None) -> list[Record]:
        """The current records of the table on `topic` from its materialization, made on first use and caught
        up with the topic first: all of them, or the looked-up keys'."""
        with self._lock:
            table = self._tables.get(topic)
            if table is None:
                table = self._tables[topic] = TableMaterialization(self.clients, topic)
        return table.records(lookup)

    def materialization(self, topic: str) -> TableMaterialization | None:
        with self._lock:
            return self._tables.get(topic)

    def forget_table(self, topic: str) -> None:
        """Drop the materialization of the table on `topic` (the table was dropped)."""
        with self._lock:
            table = self._tables.pop(topic, None)
        if table is not None:
            table.close()

    def processing_logger(self, query_id: str, topic: str) -> ProcessingLogger:
        return self._processing_log.logger(query_id, topic)

    def processing_log_counts(self) -> dict[tuple[str, str], int]:
        """Processing log entries written so far, per query id and level."""
        return self._processing_log.counts()

    # -- queries

    def start_query(self, query: PersistentQuery, from_beginning: bool = False) -> None:
        """Run the query in a new worker (replacing a running one); `from_beginning` reads its input from the
        start wherever the group has no committed offset, whatever auto.offset.reset says."""
        properties = {**self.config.properties, **query.plan.properties}
        if from_beginning:
            properties["auto.offset.reset"] = "earliest"
        stages = [QueryWorker(query, self.clients, self.config.service_id, properties, self.instance_id, stage)
                  for stage in query_stages(query, consumer_group_id(self.config.service_id, query.query_id))]
        *upstream, worker = stages
        internal = sorted(worker.stage.internal)
        for topic in internal:
            self.create_topic(topic, worker.stage.sources[topic])
        if worker.stage.lease_topic is not None:
            self.create_topic(worker.stage.lease_topic, 1)
            internal.append(worker.stage.lease_topic)
        if worker.state is not None:
            for topic, config in worker.state.topic_configs().items():
                self.create_topic(topic, worker.state.partitions, config)
            internal += worker.state.topics.values()
        self._internal_topics[query.query_id] = internal
        with self._lock:
            previous = [self._workers.pop(query.query_id, None), *self._upstream.pop(query.query_id, [])]
            self._workers[query.query_id] = worker
            if upstream:
                self._upstream[query.query_id] = upstream
        for replaced in previous:
            if replaced is not None:
                self._retire(replaced)
        query.state = "RUNNING"
        for started in stages:
            started.start()
        logger.info(
            "query %s started (group %s, %s)",
            query.query_id, worker.group_id, "exactly-once" if worker.exactly_once else "at-least-once",
        )

    def delete_internal_topics(self, query_id: str) -> None:
        """Delete the topics a terminated query kept its state in (changelogs, repartition topics)."""
        for topic in self._internal_topics.pop(query_id, []):
            self.delete_topic(topic)

    def stop_query(self, query_id: str) -> None:
        with self._lock:
            workers = [*self._upstream.pop(query_id, []), self._workers.pop(query_id, None)]
        for worker in workers:
            if worker is not None:
                self._retire(worker)

    def _retire(self, worker: QueryWorker) -> None:
        worker.stop(WORKER_STOP_TIMEOUT)
        self._last_input = max(self._last_input, worker.last_input)

    def query_status(self) -> dict[str, QueryStatus]:
        """Per query; one that runs in stages counts the input and lag of them all at its sources (not at its
        repartition topics), its partitions are those its main stage (which keeps the state) holds, and it is
        as healthy as its sickest stage."""
        with self._lock:
            workers = list(self._workers.values())
            upstream = dict(self._upstream)
        statuses = {}
        for worker in workers:
            status = worker.status()
            for before in upstream.get(worker.query_id, []):
                earlier = before.status()
                status.records_in += earlier.records_in
                status.batch_seconds.add(earlier.batch_seconds)
                status.lag.update(earlier.lag)
                status.offsets.update(earlier.offsets)
                if earlier.state != RUNNING and status.state == RUNNING:
                    status.state, status.error = earlier.state, earlier.error
            internal = worker.stage.internal
            status.lag = {place: lag for place, lag in status.lag.items() if place[0] not in internal}
            status.offsets = {place: offset for place, offset in status.offsets.items() if place[0] not in internal}
            statuses[worker.query_id] = status
        return statuses

    def _upstream_workers(self) -> list[QueryWorker]:
        return [worker for stages in self._upstream.values() for worker in stages]

    def idle_since(self) -> float | None:
        """Monotonic time a record was last consumed (or a query joined its group), for --until-idle; None
        while any query is still joining its group or reading its backlog."""
        with self._lock:
            workers = [*self._workers.values(), *self._upstream_workers()]
        times = [worker.idle_since() for worker in workers]
        if None in times:
            return None
        return max([self._last_input, *(t for t in times if t is not None)])

    def push_query(
        self,
        plan: QueryPlan,
        pipeline: Pipeline,
        properties: Mapping[str, Any] | None = None,
        limit: int | None = None,
        cancel: threading.Event | None = None,
        ready: threading.Event | None = None,
    ) -> Iterator[list[Any]]:
        """Stream a transient query's rows; session properties override the configured ones."""
        merged = {**self.config.properties, **(properties or {})}
        return run_push_query(self.clients, plan, pipeline, merged, limit, cancel, ready)

    def close(self) -> None:
        """Stop every query (each finishes its batch, commits and closes), then flush what is left to write."""
        self._closing.set()
        if self._watch is not None:
            self._watch.join()
        with self._lock:
            workers = [*self._upstream_workers(), *self._workers.values()]
            self._workers.clear()
            self._upstream.clear()
            tables = list(self._tables.values())
            self._tables.clear()
        for table in tables:
            table.close()
        for worker in workers:
            worker.stop(0)  # signal all first, so they shut down in parallel
        for worker in workers:
            self._retire(worker)
        self._processing_log.flush(ADMIN_TIMEOUT)
        self._producer.flush(ADMIN_TIMEOUT)


def _code(error: KafkaException) -> int | None:
    inner = error.args[0] if error.args else None
    return inner.code() if isinstance(inner, KafkaError) else None
