"""The processing log: records a query could not handle, as JSON entries on the `ksqlpy_processing_log` topic."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable

import orjson
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from ksqlpy.errors import KsqlError
from ksqlpy.execution.pipeline import ProcessingLogger, Record
from ksqlpy.runtime.clients import RepeatFilter

PROCESSING_LOG_TOPIC = "ksqlpy_processing_log"

logger = logging.getLogger(__name__)
# Every entry is on the topic; on the console a burst of bad records (thousands of lines) is one line per
# kind of failure every few seconds, with the count of those held back.
logger.addFilter(RepeatFilter(label="processing log"))


# An entry quotes at most this much of a record's key and of its value, and of the reason (which may quote
# the record): a poison record can be megabytes, an entry stays a few KB.
PREVIEW_BYTES = 2048
REASON_CHARS = 8192


def processing_log_entry(
    query_id: str, topic: str, record: Record | None, reason: str, level: str = "ERROR"
) -> dict[str, object]:
    """What went wrong and where: the record's topic (its own if it names one, e.g. a sink record the broker
    refused, else the query's source), partition, offset and size in bytes (key plus value), with the
    start of its key and value."""
    return {
        "level": level,
        "query_id": query_id,
        "topic": (record.topic or topic) if record is not None else topic,
        "partition": record.partition if record is not None else None,
        "offset": record.offset if record is not None else None,
        "size": len(record.key or b"") + len(record.value or b"") if record is not None else None,
        "key": _preview(record.key) if record is not None else None,
        "value": _preview(record.value) if record is not None else None,
        "reason": _shortened(reason, REASON_CHARS),
        "timestamp": int(time.time() * 1000),
    }


def _preview(payload: bytes | None) -> str | None:
    """The start of a payload as readable text (non-UTF-8 bytes escaped), so an entry shows what failed."""
    if payload is None:
        return None
    text = payload[:PREVIEW_BYTES].decode("utf-8", "backslashreplace")
    return text if len(payload) <= PREVIEW_BYTES else f"{text}... ({len(payload)} bytes)"


def _shortened(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


class ProcessingLog:
    """One producer shared by every query's logger; the topic is created (one partition) on the first entry.

    Entries are also written to the `logging` module, so they are visible even when the broker is not.
    Producing is asynchronous: workers call flush() at the end of each batch.
    """

    def __init__(self, producer: Producer, create_topic: Callable[[str, int], None]) -> None:
        self._producer = producer
        self._create_topic = create_topic
        self._topic_ready = False
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()  # entries written, per query id and level

    def logger(self, query_id: str, topic: str) -> ProcessingLogger:
        def log(record: Record | None, reason: str, level: str = "ERROR") -> None:
            self.write(processing_log_entry(query_id, topic, record, reason, level))

        return log

    def counts(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._counts)

    def write(self, entry: dict[str, object]) -> None:
        with self._lock:
            self._counts[(str(entry["query_id"]), str(entry.get("level", "ERROR")))] += 1
        # DEBUG entries (records expectedly dropped, such as late ones) stay off the console by default
        logger.log(
            logging.DEBUG if entry.get("level") == "DEBUG" else logging.WARNING,
            "query %s, topic %s, partition %s, offset %s, %s bytes: %s",
            entry["query_id"], entry["topic"], entry["partition"], entry["offset"], entry["size"], entry["reason"],
        )
        self._ensure_topic()
        try:
            self._producer.produce(PROCESSING_LOG_TOPIC, value=orjson.dumps(entry), on_delivery=_report_failure)
        except (BufferError, KafkaException) as error:
            logger.error("could not write to %s: %s", PROCESSING_LOG_TOPIC, error)
        self._producer.poll(0)

    def flush(self, timeout: float = 5.0) -> None:
        self._producer.flush(timeout)

    def _ensure_topic(self) -> None:
        with self._lock:
            if self._topic_ready:
                return
            try:
                self._create_topic(PROCESSING_LOG_TOPIC, 1)
                self._topic_ready = True
            except (KsqlError, KafkaException) as error:  # the entry is still logged locally; retried next time
                logger.error("could not create %s: %s", PROCESSING_LOG_TOPIC, error)


def _report_failure(error: KafkaError | None, _message: Message) -> None:
    if error is not None:
        logger.error("could not write to %s: %s", PROCESSING_LOG_TOPIC, error)
