"""Fixtures for the MQTT connector tests: the session's embedded Kafka broker (tests/conftest.py) and a
fresh Mosquitto broker per test, skipped with the reason when mosquitto is not installed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ksqlpy.connect.mosquitto import MosquittoBroker, find_mosquitto


@pytest.fixture
def mosquitto() -> Iterator[MosquittoBroker]:
    binary = find_mosquitto()
    if binary is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto); .ci/run installs it")
    with MosquittoBroker(binary) as started:
        yield started
