"""Kafka clients built from one RuntimeConfig, with the defaults ksqlpy relies on."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from ksqlpy.runtime.config import RuntimeConfig

# A short session timeout keeps consumer-group joins fast (seconds, not tens of seconds, on small brokers).
# Tansu does not answer a waiting fetch as soon as records arrive: with librdkafka's 500 ms fetch wait one
# hop through the embedded broker took p50 125 ms at 10k records/s, with 100 ms p50 31 ms. On Apache Kafka
# the wait only bounds how often an idle consumer asks.
CONSUMER_DEFAULTS = {
    "session.timeout.ms": "6000",
    "heartbeat.interval.ms": "1500",
    "enable.auto.commit": "false",
    "auto.offset.reset": "latest",
    "fetch.wait.max.ms": "100",
}
# murmur2 is what Java clients and Kafka Streams use, so keys land on the same partitions as ksqlDB's.
PRODUCER_DEFAULTS = {"partitioner": "murmur2_random", "linger.ms": "5"}


class KafkaClients:
    def __init__(self, config: RuntimeConfig) -> None:
        self.config = config

    def consumer(self, group_id: str, **settings: Any) -> Consumer:
        merged: dict[str, Any] = {**CONSUMER_DEFAULTS, **self.config.client_settings(), "group.id": group_id}
        merged.update(settings)  # values pass through as given: callbacks such as error_cb included
        return Consumer(merged)

    def producer(self, **settings: Any) -> Producer:
        merged: dict[str, Any] = {**PRODUCER_DEFAULTS, **self.config.client_settings()}
        merged.update(settings)
        return Producer(merged)

    def admin(self) -> AdminClient:
        settings: dict[str, Any] = dict(self.config.client_settings())
        return AdminClient(settings)
