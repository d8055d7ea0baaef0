"""Fixtures for the demo tests: the embedded Kafka broker of tests/runtime and the Mosquitto broker of tests/connect."""

from tests.connect.conftest import mosquitto  # noqa: F401
from tests.runtime.conftest import broker, clients, consume_all, unique_topic, wait_until  # noqa: F401
