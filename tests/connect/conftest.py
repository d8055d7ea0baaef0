"""Fixtures for the MQTT connector tests: the session's embedded Kafka broker (shared with tests/runtime) and a
fresh Mosquitto broker per test, skipped with the reason when mosquitto is not installed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ksqlpy.connect.mosquitto import MosquittoBroker, find_mosquitto
from tests.runtime.conftest import broker, clients, consume_all, unique_topic, wait_until  # noqa: F401


@pytest.fixture
def mosquitto() -> Iterator[MosquittoBroker]:
    binary = find_mosquitto()
    if binary is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto); .ci/run installs it")
    with MosquittoBroker(binary) as started:
        yield started
