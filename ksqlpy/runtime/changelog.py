"""A stateful query's durable state on Kafka, in this process: changelog topics, checkpoints and restore.

Every store of a stateful query (an operator's entries, and its positions) has a compacted changelog topic,
partitioned like the query's input, named after the query and the store as ksqlDB names its internal
topics (`<application id>-<store>-changelog`). At each commit the query's worker writes what the commit
changed to the local RocksDB stores and produces it to the changelogs, before the input offsets are
committed (under exactly_once, in the same transaction as the output and the offsets).

A partition's stores are restored before its input is processed: after a clean hand-over (the partition
was given up, or the process stopped, after a commit) a checkpoint file beside the stores says up to which
changelog offsets they are complete, and only the rest of the changelog is read; without one (a crash, or
no local state at all) the partition's local state is wiped and the whole changelog read. The checkpoint is
deleted as soon as the partition is taken up, so a crash while it runs always leads to a full restore.
Restoring writes one WriteBatch per RESTORE_BATCH records, keeping only each key's last value.

Under at-least-once a crash can come after the changelog was written and before the input offsets were
committed; that input is then processed again, so the changelog records written for it (each carries the
input offsets its commit was to reach, one per input topic, in a header) are not restored.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import cast

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition

from ksqlpy.errors import KsqlError
from ksqlpy.execution.pipeline import Pipeline
from ksqlpy.runtime.clients import KafkaClients, PartitionId
from ksqlpy.state.operator_stores import OperatorStores, StoreChanges
from ksqlpy.state.rocksdb import RocksDBStore, RocksDBStoreProvider
from ksqlpy.state.values import decode_received, encode

logger = logging.getLogger(__name__)

INPUT_OFFSET_HEADER = "ksqlpy.input.offset"
RESTORE_BATCH = 50_000
RESTORE_POLL_S = 0.5
PROGRESS_EVERY_S = 2.0
CHECKPOINT_SUFFIX = ".checkpoint"
# Kafka Streams keeps a windowed changelog's records a day longer than the windows themselves
# (windowstore.changelog.additional.retention.ms).
WINDOWED_CHANGELOG_EXTRA_RETENTION_MS = 24 * 3600 * 1000
CLIENT_TIMEOUT_S = 10.0


def changelog_topic(application_id: str, store: str) -> str:
    return f"{application_id}-{store}-changelog"


def changelog_config(window_retention_ms: int | None) -> dict[str, str]:
    """Compacted; a windowed store's changelog also drops what is older than its windows' retention."""
    if window_retention_ms is None:
        return {"cleanup.policy": "compact"}
    return {"cleanup.policy": "compact,delete",
            "retention.ms": str(window_retention_ms + WINDOWED_CHANGELOG_EXTRA_RETENTION_MS)}


class StateRestoreError(KsqlError):
    """A changelog could not be read back."""


class QueryState:
    """The durable state of one query's partitions held by this process."""

    def __init__(
        self,
        clients: KafkaClients,
        query_id: str,
        application_id: str,
        pipeline: Pipeline,
        input_topics: list[str],
        exactly_once: bool,
    ) -> None:
        """`input_topics`: what the query's worker reads, co-partitioned: state partition p holds what partition
        p of each of them brought."""
        assert isinstance(pipeline.stores, RocksDBStoreProvider)
        self.clients = clients
        self.query_id = query_id
        self.operators: list[OperatorStores] = pipeline.state
        self.provider = pipeline.stores
        self.exactly_once = exactly_once
        self.input_topics = input_topics
        # every partition number any input has (a foreign-key join's inputs may differ in partition count)
        self.partitions = max(1, *(step.source.partitions for step in pipeline.plan.sources))
        self.topics = {name: changelog_topic(application_id, name) for stores in self.operators for name in stores.store_names}
        # the windows' retention of each windowed aggregate's entries, which their changelog follows
        self._retention = {operator.stores.operator: operator.retention for operator in pipeline.stateful
                           if operator.window is not None}
        self._stores_of_topic = {topic: store for store, topic in self.topics.items()}
        self.held: set[int] = set()  # partitions whose stores are restored and in use here
        self.restoring: dict[int, int] = {}  # partition -> changelog records read so far, while restoring

    def topic_configs(self) -> dict[str, dict[str, str]]:
        """Each changelog topic's configuration, for creating it."""
        return {topic: changelog_config(self._retention.get(store)) for store, topic in self.topics.items()}

    # -- writing

    def produce(
        self,
        producer: Producer,
        changes: list[StoreChanges],
        input_ends: Mapping[PartitionId, int],
        on_delivery: Callable[[KafkaError | None, object], None] | None,
    ) -> int:
        """Produce a commit's changes to the changelogs; returns how many records. Each carries the input
        offsets the commit reaches for its partition (see the module docstring), -1 for an input it did not read."""
        produced = 0
        for change in changes:
            topic = self.topics[change.store]
            ends = [input_ends.get((input_topic, change.partition), -1) for input_topic in self.input_topics]
            headers: list[tuple[str, str | bytes | None]] | None = (
                [(INPUT_OFFSET_HEADER, ",".join(map(str, ends)).encode())] if max(ends) >= 0 else None)
            for key, value in change.changes.items():
                while True:
                    try:
                        producer.produce(topic, None if value is None else encode(value), key, change.partition,
                                         on_delivery, headers=headers)
                        break
                    except BufferError:  # the local queue is full: let deliveries drain it
                        producer.poll(0.1)
            produced += len(change.changes)
        return produced

    # -- partitions coming and going

    def take_up(self, partitions: set[int], committed: Mapping[PartitionId, int]) -> None:
        """Restore the partitions not already held here, then load the operators' positions for them.
        `committed`: the committed input offset per partition (absent: none)."""
        for partition in sorted(partitions - self.held):
            self._restore(partition, [committed.get((topic, partition), 0) for topic in self.input_topics])
            for stores in self.operators:
                stores.load(partition)
            self.held.add(partition)

    def give_up(self, partitions: set[int], consumer: Consumer | None) -> None:
        """After the last commit for them: checkpoint the partitions and let go of them."""
        for partition in sorted(partitions & self.held):
            if consumer is not None:
                self._write_checkpoint(partition, consumer)
            for stores in self.operators:
                stores.release({partition})
            self.provider.close_partition(self.query_id, partition)
            self.held.discard(partition)

    # -- checkpoints

    def _checkpoint_path(self, partition: int) -> Path:
        return self.provider.partition_directory(self.query_id, partition).with_suffix(CHECKPOINT_SUFFIX)

    def _write_checkpoint(self, partition: int, consumer: Consumer) -> None:
        """The changelogs' ends now (a broker may report an end short of the real one, which only makes the
        next restore read a few records again)."""
        offsets: dict[str, int] = {}
        try:
            for topic in self.topics.values():
                _low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=CLIENT_TIMEOUT_S)
                offsets[topic] = max(0, high)
        except KafkaException as error:
            logger.warning("query %s: no checkpoint for partition %d (%s); it is restored in full next time",
                           self.query_id, partition, error)
            return
        path = self._checkpoint_path(partition)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(offsets))
        temporary.replace(path)

    def _take_checkpoint(self, partition: int) -> dict[str, int] | None:
        """The partition's checkpoint, removed from disk (from now on the stores change ahead of it)."""
        path = self._checkpoint_path(partition)
        try:
            offsets = json.loads(path.read_text())
        except (OSError, ValueError):
            offsets = None
        path.unlink(missing_ok=True)
        if not isinstance(offsets, dict) or set(offsets) != set(self.topics.values()):
            return None
        return {topic: int(offset) for topic, offset in offsets.items()}

    # -- restore

    def _restore(self, partition: int, committed: list[int]) -> None:
        """`committed`: per input topic, the partition's committed offset (0 for none)."""
        # Imported here: the tools build on the worker, which builds on this module.
        from ksqlpy.runtime.tools import end_offsets

        checkpoint = self._take_checkpoint(partition)
        consumer = self.clients.consumer(f"_ksqlpy_restore_{uuid.uuid4().hex}", **{
            "enable.partition.eof": True, "isolation.level": "read_committed", "auto.offset.reset": "earliest",
        })
        self.restoring[partition] = 0
        began = time.monotonic()
        try:
            # Each changelog's end now, found by reading its last batch (some brokers report less).
            ends = {topic: end_offsets(consumer, topic, [partition])[partition] for topic in self.topics.values()}
            if checkpoint is not None and any(checkpoint[topic] > end for topic, end in ends.items()):
                # The changelog holds less than the local state was checkpointed against: it was deleted and made
                # again (a broker that lost its data), so the local state belongs to a past the topic forgot.
                logger.warning("query %s: the local state of partition %d is ahead of its changelog, which must "
                               "have been recreated: restoring from the changelog alone", self.query_id, partition)
                checkpoint = None
            if checkpoint is None:
                self.provider.drop_partition(self.query_id, partition)
            starts = checkpoint or dict.fromkeys(self.topics.values(), OFFSET_BEGINNING)
            stores = {topic: self.provider.store(self.query_id, store, partition)
                      for topic, store in self._stores_of_topic.items()}
            # Under at-least-once, changes for input beyond the committed offset are made again when it is
            # reprocessed.
            skip_beyond = None if self.exactly_once else committed
            restored = self._read_changelogs(consumer, partition, starts, ends, stores, skip_beyond)
        finally:
            consumer.close()
            self.restoring.pop(partition, None)
        if restored:
            elapsed = time.monotonic() - began
            logger.info("query %s: restored partition %d from %d changelog records in %.1f s (%.0f records/s)%s",
                        self.query_id, partition, restored, elapsed, restored / max(elapsed, 1e-9),
                        "" if checkpoint is None else " after its checkpoint")

    def _read_changelogs(
        self, consumer: Consumer, partition: int, starts: dict[str, int], ends: dict[str, int],
        stores: dict[str, RocksDBStore], skip_beyond: list[int] | None,
    ) -> int:
        """Read each changelog from its start up to its end, or its end-of-partition event (where a transaction
        marker, not a record, is last), into the stores; returns how many records were applied."""
        held: dict[str, dict[bytes, bytes | None]] = {topic: {} for topic in starts}
        count = held_count = 0  # records restored, and of those not yet written
        last_report = time.monotonic()
        pending = {topic for topic, start in starts.items() if start == OFFSET_BEGINNING or start < ends[topic]}
        consumer.assign([TopicPartition(topic, partition, starts[topic]) for topic in pending])
        while pending:
            for message in consumer.consume(RESTORE_BATCH, RESTORE_POLL_S):
                topic = message.topic() or ""
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        pending.discard(topic)
                        continue
                    raise StateRestoreError(f"Could not restore the state of query {self.query_id} from "
                                            f"{topic}: {error.str()}")
                if (message.offset() or 0) + 1 >= ends[topic]:
                    pending.discard(topic)
                if skip_beyond is not None and _beyond(message.headers(), skip_beyond):
                    continue
                held[topic][message.key() or b""] = message.value()
                held_count += 1
                count += 1
            self.restoring[partition] = count
            if held_count >= RESTORE_BATCH or (not pending and held_count):
                _write_restored(held, stores)
                held_count = 0
            if time.monotonic() - last_report >= PROGRESS_EVERY_S:
                logger.info("query %s: restoring partition %d: %d changelog records so far",
                            self.query_id, partition, count)
                last_report = time.monotonic()
        return count


def _beyond(headers: object, committed: list[int]) -> bool:
    """Whether a changelog record's commit reached past the committed input offsets (consumed headers are a
    list of pairs; a record without the header is kept)."""
    for name, value in cast("list[tuple[str, bytes | None]]", headers or ()):
        if name == INPUT_OFFSET_HEADER and value:
            return any(int(end) > limit for end, limit in zip(value.split(b","), committed, strict=False))
    return False


def _write_restored(held: dict[str, dict[bytes, bytes | None]], stores: dict[str, RocksDBStore]) -> None:
    """Write what restoring gathered, each key's last value only, after checking each is plain data."""
    for topic, changes in held.items():
        if not changes:
            continue
        try:
            for value in changes.values():
                if value is not None:
                    decode_received(value)
        except Exception as error:  # UnsafeStateValue, or whatever pickle raises on bytes it cannot read
            raise StateRestoreError(f"{topic} holds a record that is not ksqlpy state ({error}); if the topic was "
                                    "written by something else, delete it and the query's state is rebuilt "
                                    "from its input") from error
        stores[topic].write_encoded(changes)
        changes.clear()
