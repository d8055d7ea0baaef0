"""Topic tools over Kafka: create topics, produce and consume JSON lines, and ksqlDB-style PRINT output."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message
from confluent_kafka.admin import AdminClient, NewTopic

from ksqlpy.errors import KsqlError

ADMIN_TIMEOUT_S = 15.0


def ensure_topic(admin: AdminClient, name: str, partitions: int = 1, config: dict[str, str] | None = None) -> bool:
    """Create `name` unless it exists; True when this call created it."""
    # replication_factor=-1 lets the broker pick its default, which suits both one-node and real clusters.
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=-1, config=config or {})],
        operation_timeout=ADMIN_TIMEOUT_S,
        request_timeout=ADMIN_TIMEOUT_S,
    )
    try:
        futures[name].result()
    except KafkaException as error:
        kafka_error = error.args[0] if error.args else None
        if isinstance(kafka_error, KafkaError) and kafka_error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
            return False
        raise KsqlError(f"Cannot create topic {name}: {error}") from error
    return True


@dataclass(frozen=True)
class ConsumedRecord:
    """One record as read from a topic, payloads left as bytes."""

    key: bytes | None
    value: bytes | None
    partition: int
    offset: int
    timestamp: int
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)

    @property
    def key_text(self) -> str | None:
        return None if self.key is None else self.key.decode("utf-8")

    @property
    def json_value(self) -> Any:
        return None if self.value is None else json.loads(self.value)


def record_from_message(message: Message) -> ConsumedRecord:
    raw_headers = message.headers() or []
    header_items = raw_headers.items() if isinstance(raw_headers, dict) else raw_headers
    headers = [(name, value.encode("utf-8") if isinstance(value, str) else value) for name, value in header_items]
    key, value = message.key(), message.value()
    return ConsumedRecord(
        key=key.encode("utf-8") if isinstance(key, str) else key,
        value=value.encode("utf-8") if isinstance(value, str) else value,
        partition=message.partition() or 0,
        offset=message.offset() or 0,
        timestamp=message.timestamp()[1],
        headers=headers,
    )
