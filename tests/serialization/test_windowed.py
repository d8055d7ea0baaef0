"""Windowed keys: Kafka Streams' byte layouts for time and session windows, both ways, batch-wise."""

from __future__ import annotations

import pytest

from ksqlpy.errors import SerdeError
from ksqlpy.serialization.windowed import WindowInfo, split_windowed_keys, windowed_keys

TUMBLING = WindowInfo("TUMBLING", 30_000)
HOPPING = WindowInfo("HOPPING", 10_000)
SESSION = WindowInfo("SESSION", None)


def test_time_window_key_is_the_key_then_the_start_as_big_endian_int64() -> None:
    start = 0x0102030405060708
    expected = b"abc" + bytes([1, 2, 3, 4, 5, 6, 7, 8])
    assert windowed_keys([b"abc"], [start], [start + 30_000], TUMBLING) == [expected]


def test_session_window_key_is_the_key_then_end_then_start() -> None:
    layout = b"k" + (1_000).to_bytes(8, "big") + (200).to_bytes(8, "big")
    assert windowed_keys([b"k"], [200], [1_000], SESSION) == [layout]


def test_negative_bounds_are_twos_complement() -> None:
    assert windowed_keys([b""], [-1], [29_999], TUMBLING) == [b"\xff" * 8]


@pytest.mark.parametrize("info", [TUMBLING, HOPPING, SESSION])
def test_split_inverts_windowed_keys(info: WindowInfo) -> None:
    keys: list[bytes | None] = [b"a", b"", None, b"\x00\xff" * 20]
    starts = [0, 1_581_323_504_000, 5, 2**40]
    ends = [start + 30_000 if info.size_ms is None else start + info.size_ms for start in starts]
    plain, got_starts, got_ends = split_windowed_keys(windowed_keys(keys, starts, ends, info), info)
    assert plain == keys
    assert got_starts == [0, 1_581_323_504_000, None, 2**40]
    assert got_ends == [ends[0], ends[1], None, ends[3]]


def test_time_window_end_is_start_plus_size() -> None:
    key = b"x" + (60_000).to_bytes(8, "big")
    assert split_windowed_keys([key], HOPPING) == ([b"x"], [60_000], [70_000])


def test_session_split_reads_the_end_before_the_start() -> None:
    key = b"x" + (9).to_bytes(8, "big") + (3).to_bytes(8, "big")
    assert split_windowed_keys([key], SESSION) == ([b"x"], [3], [9])


def test_keys_too_short_for_their_bounds_raise() -> None:
    with pytest.raises(SerdeError, match="needs at least 8 bytes"):
        split_windowed_keys([b"1234567"], TUMBLING)
    with pytest.raises(SerdeError, match="needs at least 16 bytes"):
        split_windowed_keys([b"x" * 15], SESSION)


def test_keys_too_short_are_marked_by_row_when_errors_are_collected() -> None:
    good = b"k" + (7).to_bytes(8, "big")
    errors: dict[int, SerdeError] = {}
    plain, starts, ends = split_windowed_keys([good, b"short", None, good], TUMBLING, errors)
    assert list(errors) == [1]
    assert plain == [b"k", None, None, b"k"]
    assert starts == [7, None, None, 7]
    assert ends == [30_007, None, None, 30_007]


def test_empty_batches() -> None:
    assert windowed_keys([], [], [], SESSION) == []
    assert split_windowed_keys([], SESSION) == ([], [], [])


def test_byte_order_of_one_keys_windows_is_time_order() -> None:
    starts = [0, 1, 255, 256, 65_535, 65_536, 2**31, 2**32, 1_581_323_504_000]
    time_keys = windowed_keys([b"k"] * len(starts), starts, starts, TUMBLING)
    assert sorted(time_keys) == time_keys  # type: ignore[type-var]
    # Sessions of one key sort by end, then start.
    bounds = [(0, 10), (5, 10), (0, 11), (256, 300), (1, 65_536)]
    session_keys = windowed_keys([b"k"] * len(bounds), [s for s, _ in bounds], [e for _, e in bounds], SESSION)
    expected_order = sorted(bounds, key=lambda se: (se[1], se[0]))
    assert [bounds[session_keys.index(k)] for k in sorted(session_keys)] == expected_order  # type: ignore[type-var]


def test_window_info_checks_its_kind_and_size() -> None:
    assert SESSION.is_session and not TUMBLING.is_session
    assert TUMBLING.bounds(0, 30_000) == (0, 30_000, "time")
    assert SESSION.bounds(1, 2) == (1, 2, "session")
    with pytest.raises(ValueError, match="need a size"):
        WindowInfo("TUMBLING", None)
    with pytest.raises(ValueError, match="take no size"):
        WindowInfo("SESSION", 1_000)
    with pytest.raises(ValueError, match="Unknown window kind"):
        WindowInfo("SLIDING", 1_000)
