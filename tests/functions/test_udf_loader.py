"""UDF discovery and hot reload while a query runs (in-memory driver): add, change, break and delete modules."""

from __future__ import annotations

import logging
import os
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from ksqlpy import model
from ksqlpy.driver import InMemoryDriver
from ksqlpy.errors import KsqlError
from ksqlpy.functions.loader import UdfLoader
from ksqlpy.functions.registry import FunctionRegistry


class Harness:
    """A driver whose registry is fed by a loader watching `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        registry = FunctionRegistry.with_builtins()
        self.driver = InMemoryDriver(registry=registry)
        self.loader = UdfLoader(registry, [directory], self.driver.engine.functions_in_use)
        self.sent = 0

    def write(self, name: str, source: str) -> Path:
        path = self.directory / name
        existed = path.exists()
        path.write_text(textwrap.dedent(source))
        if existed:  # a rewrite within the file system's timestamp granularity must still count as a change
            stamp = path.stat().st_mtime_ns + 1_000_000_000
            os.utime(path, ns=(stamp, stamp))
        return path

    def send(self, *amounts: int) -> list[dict[str, object]]:
        """Produce values, run the queries, return the sink's new output values."""
        before = len(self.driver.records("OUT"))
        for amount in amounts:
            self.sent += 1
            self.driver.produce("src", str(self.sent).encode(), orjson.dumps({"AMOUNT": amount}), self.sent)
        self.driver.process()
        return [orjson.loads(r.value or b"null") for r in self.driver.records("OUT")[before:]]


SCALE_V1 = '''
    from ksqlpy import udf

    @udf(description="scales an amount", author="data team", version="1")
    def scale(amount: int) -> int:
        return amount * 10
'''


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    harness = Harness(tmp_path)
    harness.write("scaling.py", SCALE_V1)
    [result] = harness.loader.scan()
    assert (result.action, result.error, result.functions) == ("loaded", None, ["SCALE(BIGINT)"])
    harness.driver.execute("CREATE STREAM src (id STRING KEY, amount INT) WITH (kafka_topic='src', value_format='JSON');")
    harness.driver.execute("CREATE STREAM out AS SELECT id, SCALE(amount) AS scaled FROM src;")
    return harness


def test_loaded_functions_are_listed_and_described(harness: Harness) -> None:
    show = harness.driver.execute("SHOW FUNCTIONS;")[0]
    row = next(r for r in show.rows if r[0] == "SCALE")
    assert row[1:] == ["user", "SCALAR", "1", "data team", "scales an amount"]
    described = harness.driver.execute("DESCRIBE FUNCTION scale;")[0]
    assert f"Source      : {(harness.directory / 'scaling.py').resolve()}" in described.message
    assert "Author      : data team" in described.message
    assert described.rows == [["SCALE(BIGINT)", "BIGINT", "scales an amount (parameters: amount)"]]


def test_a_changed_module_takes_over_at_the_next_batch(harness: Harness) -> None:
    assert harness.send(1, 2) == [{"SCALED": 10}, {"SCALED": 20}]
    harness.write("scaling.py", SCALE_V1.replace("amount * 10", "amount * 100").replace('version="1"', 'version="2"'))
    [result] = harness.loader.scan()
    assert (result.action, result.error) == ("reloaded", None)
    assert harness.send(3) == [{"SCALED": 300}]
    assert "Version     : 2" in harness.driver.execute("DESCRIBE FUNCTION SCALE;")[0].message
    assert harness.loader.scan() == []  # nothing changed since


def test_a_module_that_fails_to_import_is_rejected_and_the_old_version_keeps_running(harness: Harness) -> None:
    harness.write("scaling.py", SCALE_V1 + "    def broken(:\n")
    [result] = harness.loader.scan()
    assert result.action == "rejected"
    assert "SyntaxError" in str(result) and "the previous version keeps running" in str(result)
    assert harness.send(4) == [{"SCALED": 40}]
    assert harness.loader.scan() == []  # the same broken version is not retried
    harness.write("scaling.py", SCALE_V1.replace("* 10", "* 2"))
    assert harness.loader.scan()[0].action == "reloaded"
    assert harness.send(4) == [{"SCALED": 8}]


def test_changing_a_signature_a_running_query_uses_is_rejected(harness: Harness) -> None:
    harness.write("scaling.py", SCALE_V1.replace("def scale(amount: int) -> int", "def scale(amount: str) -> int"))
    [result] = harness.loader.scan()
    assert result.action == "rejected"
    assert "SCALE(BIGINT) is used by CSAS_OUT_0 and the new version changes its signature" in str(result)
    assert harness.send(5) == [{"SCALED": 50}]


def test_removing_a_function_in_use_is_rejected_but_unused_ones_may_go(harness: Harness) -> None:
    harness.write("extra.py", '''
        from ksqlpy import udf

        @udf
        def unused(x: int) -> int:
            return x
    ''')
    assert [r.action for r in harness.loader.scan()] == ["loaded"]
    assert harness.driver.engine.registry.exists("UNUSED")
    (harness.directory / "extra.py").unlink()
    assert [r.action for r in harness.loader.scan()] == ["removed"]
    assert not harness.driver.engine.registry.exists("UNUSED")
    (harness.directory / "scaling.py").unlink()
    [result] = harness.loader.scan()
    assert result.action == "rejected" and "CSAS_OUT_0 still use" in str(result)
    assert harness.send(6) == [{"SCALED": 60}]


def test_a_terminated_query_releases_its_functions(harness: Harness) -> None:
    harness.driver.execute("TERMINATE CSAS_OUT_0;")
    harness.write("scaling.py", SCALE_V1.replace("def scale(amount: int) -> int", "def scale(amount: str) -> int"))
    assert harness.loader.scan()[0].action == "reloaded"
    assert harness.driver.engine.registry.overloads("SCALE")[0].signature_text() == "SCALE(STRING)"


def test_clashes_with_built_ins_and_other_modules_are_rejected(harness: Harness) -> None:
    harness.write("clash.py", '''
        from ksqlpy import udf

        @udf
        def ucase(x: str) -> str:
            return x
    ''')
    harness.write("twin.py", '''
        from ksqlpy import udf

        @udf
        def scale(amount: int) -> int:
            return amount
    ''')
    results = {r.path.name: str(r) for r in harness.loader.scan()}
    assert "UCASE is a built-in function" in results["clash.py"]
    assert "SCALE(BIGINT) is already defined in" in results["twin.py"]


def test_helper_modules_are_importable_but_not_loaded(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    harness.write("_shared.py", "FACTOR = 3\n")
    harness.write("uses_helper.py", '''
        from _shared import FACTOR
        from ksqlpy import udf

        @udf
        def triple(x: int) -> int:
            return x * FACTOR
    ''')
    assert [r.path.name for r in harness.loader.scan()] == ["uses_helper.py"]
    harness.driver.execute("CREATE STREAM src (id STRING KEY, amount INT) WITH (kafka_topic='src', value_format='JSON');")
    harness.driver.execute("CREATE STREAM out AS SELECT id, TRIPLE(amount) AS scaled FROM src;")
    assert harness.send(2) == [{"SCALED": 6}]


def test_the_watcher_thread_reloads_without_being_asked(harness: Harness) -> None:
    harness.loader.start(interval=0.05)
    try:
        harness.write("scaling.py", SCALE_V1.replace("* 10", "* 7"))
        for _ in range(100):
            if harness.send(1) == [{"SCALED": 7}]:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the watcher did not reload the changed module")
    finally:
        harness.loader.stop()


IMPORT_FAILURES = [
    pytest.param("import sys\nsys.exit(3)\n", "it called sys.exit(3) while importing (line 2)", id="sys.exit"),
    pytest.param("import sys\n\nsys.exit()\n", "it called sys.exit() while importing (line 3)", id="bare sys.exit"),
    pytest.param("raise BaseException('boom')\n", "BaseException: boom (line 1)", id="BaseException"),
]


@pytest.mark.parametrize(("source", "reason"), IMPORT_FAILURES)
def test_a_module_failing_at_first_load_is_rejected_with_its_file_and_the_rest_load(
        tmp_path: Path, source: str, reason: str, caplog: pytest.LogCaptureFixture) -> None:
    harness = Harness(tmp_path)
    harness.write("exits.py", source)
    harness.write("scaling.py", SCALE_V1)
    with caplog.at_level(logging.WARNING):
        results = {r.path.name: r for r in harness.loader.scan()}
    assert caplog.records == []  # the first pass is the caller's to report, once
    assert results["scaling.py"].action == "loaded"
    rejected = results["exits.py"]
    assert rejected.action == "rejected"
    assert str(rejected) == f"UDF module {(tmp_path / 'exits.py').resolve()} rejected: {reason}"


@pytest.mark.parametrize(("source", "reason"), IMPORT_FAILURES)
def test_a_reload_failing_at_import_keeps_the_old_version_and_the_watcher(
        harness: Harness, source: str, reason: str, caplog: pytest.LogCaptureFixture) -> None:
    harness.loader.start(interval=0.02)
    try:
        harness.write("scaling.py", SCALE_V1 + textwrap.indent(source, "    "))
        cause = reason.split(" (line")[0]
        wait_for(lambda: any(cause in record.getMessage() for record in caplog.records), "the rejection")
        assert harness.send(5) == [{"SCALED": 50}]
        harness.write("scaling.py", SCALE_V1.replace("* 10", "* 3"))  # the watcher is still there to see this
        wait_for(lambda: harness.send(1) == [{"SCALED": 3}], "the next reload")
    finally:
        harness.loader.stop()
    assert "scaling.py rejected" in caplog.text and "the previous version keeps running" in caplog.text


def wait_for(condition: Callable[[], bool], what: str) -> None:
    for _ in range(200):
        if condition():
            return
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


def test_a_model_whose_load_exits_is_a_load_error() -> None:
    def load(_path: Path) -> object:
        raise SystemExit(1)

    exiting = model("exiting", "/nowhere", load)
    with pytest.raises(KsqlError, match="Model exiting could not be loaded from /nowhere"):
        exiting.get()
