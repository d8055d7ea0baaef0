"""UDFs on the Kafka runtime: modules from --udfs-dir, hot reload while a persistent query runs, the dead-letter
topic and the processing log entry of a failing UDF."""

from __future__ import annotations

import io
import json
import os
import textwrap
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ksqlpy.runtime.app import KsqlpyApp
from ksqlpy.runtime.config import RuntimeConfig
from ksqlpy.runtime.processing_log import PROCESSING_LOG_TOPIC

SCALER = '''
    from ksqlpy import udf

    @udf(vectorized=True, params=["INT"], returns="INT")
    def scale(amounts):
        if (amounts == 13).any():
            raise ValueError("thirteen is not allowed")
        return amounts * FACTOR

    FACTOR = 10
'''


def write_module(directory: Path, source: str) -> None:
    path = directory / "scaler.py"
    existed = path.exists()
    path.write_text(textwrap.dedent(source))
    if existed:  # a rewrite inside the timestamp granularity still counts as a change
        stamp = path.stat().st_mtime_ns + 1_000_000_000
        os.utime(path, ns=(stamp, stamp))


@contextmanager
def app_with_module(broker: str, directory: Path, source: str) -> Iterator[KsqlpyApp]:
    """An app loading UDFs from `directory`, where `source` is written first, watched every 0.1 s."""
    write_module(directory, source)
    config = RuntimeConfig(bootstrap_servers=broker, service_id=f"udf_{uuid.uuid4().hex[:10]}_",
                           udf_directories=[str(directory)])
    status = io.StringIO()
    with KsqlpyApp(config, status=status) as app:
        assert "loaded 1 UDF(s)" in status.getvalue()
        assert app.udf_loader is not None
        app.udf_loader.stop()
        app.udf_loader.start(interval=0.1)  # a quicker watcher than the default, for the test
        yield app


@pytest.fixture
def udf_app(broker: str, tmp_path: Path) -> Iterator[KsqlpyApp]:
    with app_with_module(broker, tmp_path, SCALER) as app:
        yield app


def test_a_persistent_query_picks_up_a_changed_module_and_dead_letters_failures(
    udf_app: KsqlpyApp, broker: str, tmp_path: Path, unique_topic: Callable[..., str],
    produce_json: Callable[..., None], consume_all: Callable[..., Any], wait_until: Callable[..., None],
) -> None:
    source, sink = unique_topic("amounts"), unique_topic("scaled")
    udf_app.execute(
        "SET 'auto.offset.reset'='earliest';\nSET 'udf.error.policy'='dlq';\n"
        f"CREATE STREAM amounts (k STRING KEY, amount INT) WITH (kafka_topic='{source}', value_format='JSON', partitions=1);\n"
        f"CREATE STREAM scaled WITH (kafka_topic='{sink}') AS SELECT k, SCALE(amount) AS scaled FROM amounts;\n"
    )
    produce_json(broker, source, [("a", {"AMOUNT": 1}), ("b", {"AMOUNT": 13}), ("c", {"AMOUNT": 2})])
    first = consume_all(broker, sink, expected_count=2, timeout=20)
    assert sorted((r.key_text, r.json_value["SCALED"]) for r in first) == [("a", 10), ("c", 20)]

    [letter] = consume_all(broker, f"{sink}_dlq", expected_count=1, timeout=10)
    assert (letter.key_text, letter.json_value) == ("b", {"AMOUNT": 13})
    assert dict(letter.headers)["ksqlpy.error"] == b"UDF SCALE failed: ValueError: thirteen is not allowed"
    entries = [r.json_value for r in consume_all(broker, PROCESSING_LOG_TOPIC, timeout=5)]
    mine = [e for e in entries if e["topic"] == source]
    assert len(mine) == 1 and json.loads(mine[0]["value"]) == {"AMOUNT": 13} and "Traceback" in mine[0]["reason"]

    write_module(tmp_path, SCALER.replace("FACTOR = 10", "FACTOR = 1000"))
    loader = udf_app.udf_loader
    assert loader is not None
    scale = udf_app.engine.registry.overloads("SCALE")[0]
    wait_until(lambda: scale.impl(np.array([1]))[0] == 1000, message="the watcher did not reload the module")
    produce_json(broker, source, [("d", {"AMOUNT": 3})])
    records = consume_all(broker, sink, expected_count=3, timeout=20)
    assert ("d", 3000) in [(r.key_text, r.json_value["SCALED"]) for r in records]

    # a broken version is rejected and the query keeps running the last good one
    write_module(tmp_path, SCALER + "    def broken(:\n")
    wait_until(lambda: loader.scan() == [], message="the broken module was not examined")
    produce_json(broker, source, [("e", {"AMOUNT": 4})])
    records = consume_all(broker, sink, expected_count=4, timeout=20)
    assert ("e", 4000) in [(r.key_text, r.json_value["SCALED"]) for r in records]
    assert udf_app.backend.query_status()["CSAS_SCALED_0"].state == "RUNNING"


CARELESS_MODULE = '''
    import sys

    from ksqlpy import udf

    @udf
    def careless(n: int) -> int:
        if n == 13:
            sys.exit("thirteen")
        if n == 7:
            return "seven"
        return n * FACTOR

    FACTOR = 10
'''


@pytest.fixture
def careless_app(broker: str, tmp_path: Path) -> Iterator[KsqlpyApp]:
    with app_with_module(broker, tmp_path, CARELESS_MODULE) as app:
        yield app


def test_udf_failures_leave_the_query_running(
    careless_app: KsqlpyApp, broker: str, tmp_path: Path, unique_topic: Callable[..., str],
    produce_json: Callable[..., None], consume_all: Callable[..., Any], wait_until: Callable[..., None],
) -> None:
    """A UDF that calls sys.exit() or returns a string for BIGINT, and a module exiting while hot-reloaded,
    leave the query RUNNING, the bad rows NULL and logged, and the watcher reloading."""
    app = careless_app
    source, sink = unique_topic("numbers"), unique_topic("scaled")
    app.execute(
        "SET 'auto.offset.reset'='earliest';\n"
        f"CREATE STREAM numbers (k STRING KEY, n INT) WITH (kafka_topic='{source}', value_format='JSON', partitions=1);\n"
        f"CREATE STREAM scaled WITH (kafka_topic='{sink}') AS SELECT k, CARELESS(n) AS scaled FROM numbers;\n"
    )
    produce_json(broker, source, [("a", {"N": 1}), ("b", {"N": 13}), ("c", {"N": 7}), ("d", {"N": 2})])
    records = consume_all(broker, sink, expected_count=4, timeout=20)
    assert [(r.key_text, r.json_value["SCALED"]) for r in records] == [("a", 10), ("b", None), ("c", None), ("d", 20)]
    entries = [r.json_value for r in consume_all(broker, PROCESSING_LOG_TOPIC, timeout=5)]
    reasons = [e["reason"] for e in entries if e["topic"] == source]
    assert len(reasons) == 2
    assert "UDF CARELESS failed: SystemExit: thirteen" in reasons[0]
    assert "UDF CARELESS failed: UdfResultTypeError: returned 'seven' (str) where BIGINT is declared" in reasons[1]

    loader = app.udf_loader
    assert loader is not None
    write_module(tmp_path, CARELESS_MODULE + "    sys.exit(1)\n")  # exits while the watcher imports it
    wait_until(lambda: loader.scan() == [], message="the exiting module was not examined")
    write_module(tmp_path, CARELESS_MODULE.replace("FACTOR = 10", "FACTOR = 100"))  # the watcher is still there
    careless = app.engine.registry.overloads("CARELESS")[0]
    wait_until(lambda: careless.impl(1) == 100, message="the watcher did not reload the next version")
    produce_json(broker, source, [("e", {"N": 3})])
    records = consume_all(broker, sink, expected_count=5, timeout=20)
    assert (records[-1].key_text, records[-1].json_value["SCALED"]) == ("e", 300)
    assert app.backend.query_status()["CSAS_SCALED_0"].state == "RUNNING"
