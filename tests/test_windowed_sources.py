"""Sources over windowed topics: WINDOW_TYPE/WINDOW_SIZE validation, windowed keys on topics, SHOW/DESCRIBE."""

from __future__ import annotations

import io
import struct

import pytest

from ksqlpy.driver import InMemoryDriver
from ksqlpy.errors import StatementError
from ksqlpy.execution.pipeline import Record
from ksqlpy.serialization.windowed import WindowInfo
from ksqlpy.shell.render import print_result


def create(window_properties: str, kind: str = "STREAM", name: str = "s", topic: str = "t") -> str:
    key = "KEY" if kind == "STREAM" else "PRIMARY KEY"
    return (f"CREATE {kind} {name} (k STRING {key}, v INT) WITH (kafka_topic='{topic}', format='KAFKA', "
            f"{window_properties});")


def window_of(window_properties: str) -> WindowInfo | None:
    driver = InMemoryDriver()
    driver.execute(create(window_properties))
    return driver.engine.catalog.get("S").window


def error_of(window_properties: str) -> str:
    with pytest.raises(StatementError) as raised:
        InMemoryDriver().execute(create(window_properties))
    return str(raised.value)


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        ("WINDOW_TYPE='Tumbling', WINDOW_SIZE='30 seconds'", WindowInfo("TUMBLING", 30_000)),
        ("window_type='HOPPING', window_size='1 MINUTE'", WindowInfo("HOPPING", 60_000)),
        ("WINDOW_TYPE='tumbling', WINDOW_SIZE='500 MILLISECONDS'", WindowInfo("TUMBLING", 500)),
        ("WINDOW_TYPE='tumbling', WINDOW_SIZE=' 2 hour '", WindowInfo("TUMBLING", 7_200_000)),
        ("WINDOW_TYPE='tumbling', WINDOW_SIZE='1 DAYS'", WindowInfo("TUMBLING", 86_400_000)),
        ("WINDOW_TYPE='tumbling', WINDOW_SIZE='2500 MICROSECONDS'", WindowInfo("TUMBLING", 2)),
        ("WINDOW_TYPE='Session'", WindowInfo("SESSION", None)),
        ("PARTITIONS=1", None),
    ],
)
def test_window_properties_set_the_sources_window(properties: str, expected: WindowInfo | None) -> None:
    assert window_of(properties) == expected


def test_time_windows_require_a_size() -> None:
    assert error_of("WINDOW_TYPE='hopping'") == (
        "HOPPING windows require 'WINDOW_SIZE' to be provided in the WITH clause. "
        "For example: 'WINDOW_SIZE'='10 SECONDS'"
    )


def test_a_size_is_refused_for_session_windows_and_without_a_window_type() -> None:
    message = "'WINDOW_SIZE' should not be set for SESSION windows."
    assert error_of("WINDOW_TYPE='SESSION', WINDOW_SIZE='30 seconds'") == message
    assert error_of("WINDOW_SIZE='30 seconds'") == message


def test_unknown_window_types_are_named_with_the_valid_ones() -> None:
    assert error_of("WINDOW_TYPE='Sliding', WINDOW_SIZE='1 SECOND'") == (
        "Error in WITH clause property 'WINDOW_TYPE': Unknown window type: 'Sliding' \n"
        "Valid values are: SESSION, HOPPING, TUMBLING"
    )


@pytest.mark.parametrize(
    ("size", "reason"),
    [
        ("30", "Expected 2 tokens, got: 1"),
        ("30  SECONDS", "Expected 2 tokens, got: 3"),
        ("thirty SECONDS", "Not numeric: 'thirty'"),
        ("99999999999999999999 SECONDS", "Not numeric: '99999999999999999999'"),
        ("3 fortnights", "Unknown time unit: 'FORTNIGHTS'\nSupported time units are: NANOSECONDS, MICROSECONDS, "
                         "MILLISECONDS, SECONDS, MINUTES, HOURS, DAYS"),
    ],
)
def test_window_sizes_ksqldb_cannot_parse_are_refused(size: str, reason: str) -> None:
    assert error_of(f"WINDOW_TYPE='TUMBLING', WINDOW_SIZE='{size}'") == (
        f"Error in WITH clause property 'WINDOW_SIZE': Invalid duration: '{size}'. {reason}\n"
        "Example valid value: '10 SECONDS'"
    )


def test_produced_windows_go_into_the_key_and_come_back_out_of_it() -> None:
    driver = InMemoryDriver()
    driver.execute(create("WINDOW_TYPE='TUMBLING', WINDOW_SIZE='30 SECONDS'"))
    driver.produce("t", b"a", b"1", 0, window=(30_000, 60_000, "time"))
    driver.produce("t", None, b"2", 0, window=(0, 30_000, "time"))
    on_topic = driver._topics["t"].records
    assert [r.key for r in on_topic] == [b"a" + struct.pack(">q", 30_000), None]
    read = driver.records("t")
    assert [(r.key, r.value, r.window) for r in read] == [(b"a", b"1", (30_000, 60_000, "time")), (None, b"2", None)]
    assert on_topic[0].key == b"a" + struct.pack(">q", 30_000)  # reading does not change what the topic holds


def test_session_windows_keep_their_own_end() -> None:
    driver = InMemoryDriver()
    driver.execute(create("WINDOW_TYPE='SESSION'", kind="TABLE"))
    driver.produce("t", b"a", b"1", 0, window=(100, 250, "session"))
    assert driver._topics["t"].records[0].key == b"a" + struct.pack(">qq", 250, 100)
    assert [(r.key, r.window) for r in driver.records("t")] == [(b"a", (100, 250, "session"))]


def test_keys_too_short_for_a_window_are_read_as_they_are() -> None:
    driver = InMemoryDriver()
    driver.execute(create("WINDOW_TYPE='TUMBLING', WINDOW_SIZE='1 SECOND'"))
    driver.write("t", [Record(b"short", b"1", 0)])
    driver.produce("t", b"a", b"2", 0, window=(1_000, 2_000, "time"))
    assert [(r.key, r.window) for r in driver.records("t")] == [(b"short", None), (b"a", (1_000, 2_000, "time"))]


def test_keys_on_unwindowed_topics_are_written_and_read_as_they_are() -> None:
    driver = InMemoryDriver()
    driver.execute(create("PARTITIONS=1"))
    driver.produce("t", b"a", b"1", 0, window=(0, 30_000, "time"))
    driver.produce("elsewhere", b"b", b"2", 0)
    assert [(r.key, r.window) for r in driver.records("t")] == [(b"a", None)]
    assert [(r.key, r.window) for r in driver.records("elsewhere")] == [(b"b", None)]


def test_show_says_which_sources_are_windowed() -> None:
    driver = InMemoryDriver()
    driver.execute(create("WINDOW_TYPE='SESSION'", name="windowed", topic="t1")
                   + create("PARTITIONS=1", name="plain", topic="t2")
                   + create("WINDOW_TYPE='TUMBLING', WINDOW_SIZE='1 SECOND'", kind="TABLE", name="tab", topic="t3"))
    streams = driver.execute("SHOW STREAMS;")[0]
    assert streams.columns[-1] == "Windowed"
    assert [(row[0], row[-1]) for row in streams.rows] == [("PLAIN", False), ("WINDOWED", True)]
    tables = driver.execute("SHOW TABLES;")[0]
    assert [(row[0], row[-1]) for row in tables.rows] == [("TAB", True)]
    printed = io.StringIO()
    print_result(streams, printed)
    assert "| true" in printed.getvalue() and "| false" in printed.getvalue()


def test_describe_shows_the_window_type() -> None:
    driver = InMemoryDriver()
    driver.execute(create("WINDOW_TYPE='HOPPING', WINDOW_SIZE='10 SECONDS'") + create("PARTITIONS=1", name="p", topic="p"))
    described = driver.execute("DESCRIBE s;")[0]
    assert described.rows[0][1:] == ["K", "STRING (key) (Window type: HOPPING)"]
    assert described.rows[1][1:] == ["V", "INTEGER"]
    assert "\nWindow type: HOPPING" in (described.message or "")
    plain = driver.execute("DESCRIBE p;")[0]
    assert plain.rows[0][1:] == ["K", "STRING (key)"]
    assert "Window type" not in (plain.message or "")


def test_windowed_sources_need_a_key_column() -> None:
    with pytest.raises(StatementError, match=r"^Windowed sources require a key column\.$"):
        InMemoryDriver().execute("CREATE STREAM s (v INT) WITH (kafka_topic='t', format='JSON', WINDOW_TYPE='SESSION');")
