"""The issue's UDF failures on the Kafka runtime (embedded broker): a UDF that calls sys.exit() or returns a
string for BIGINT, and a module that calls sys.exit() while it is hot-reloaded, leave the persistent query
RUNNING, each bad row NULL and processing-logged, and the reload watcher alive."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ksqlpy.runtime.app import KsqlpyApp
from ksqlpy.runtime.config import RuntimeConfig
from ksqlpy.runtime.processing_log import PROCESSING_LOG_TOPIC
from tests.runtime.conftest import broker, consume_all, produce_json, unique_topic, wait_until  # noqa: F401
from tests.runtime.test_udfs_runtime import write_module

MODULE = '''
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
def app(broker: str, tmp_path: Path) -> Iterator[KsqlpyApp]:  # noqa: F811
    write_module(tmp_path, MODULE)
    config = RuntimeConfig(bootstrap_servers=broker, service_id=f"udf_failures_{uuid.uuid4().hex[:10]}_",
                           udf_directories=[str(tmp_path)])
    with KsqlpyApp(config, status=io.StringIO()) as running:
        assert running.udf_loader is not None
        running.udf_loader.stop()
        running.udf_loader.start(interval=0.1)  # a quicker watcher than the default, for the test
        yield running


def test_udf_failures_leave_the_query_running(
    app: KsqlpyApp, broker: str, tmp_path: Path, unique_topic: Callable[..., str],  # noqa: F811
    produce_json: Callable[..., None], consume_all: Callable[..., Any], wait_until: Callable[..., None],  # noqa: F811
) -> None:
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
    write_module(tmp_path, MODULE + "    sys.exit(1)\n")  # exits while the watcher imports it
    wait_until(lambda: loader.scan() == [], message="the exiting module was not examined")
    write_module(tmp_path, MODULE.replace("FACTOR = 10", "FACTOR = 100"))  # the watcher is still there
    careless = app.engine.registry.overloads("CARELESS")[0]
    wait_until(lambda: careless.impl(1) == 100, message="the watcher did not reload the next version")
    produce_json(broker, source, [("e", {"N": 3})])
    records = consume_all(broker, sink, expected_count=5, timeout=20)
    assert (records[-1].key_text, records[-1].json_value["SCALED"]) == ("e", 300)
    assert app.backend.query_status()["CSAS_SCALED_0"].state == "RUNNING"
