"""Windowed record keys in Kafka Streams' (and so ksqlDB's) binary layouts, a batch of keys at a time.

A time window (TUMBLING, HOPPING) key is `serialized key || window start`, its end following from the
window size; a SESSION window key is `serialized key || window end || window start`. Bounds are signed
64-bit big-endian milliseconds, so for the non-negative times Kafka records carry, byte order within one
key is time order. A null key stays null: there is nothing to window.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import cast

from ksqlpy.errors import SerdeError

WINDOW_KINDS = ("SESSION", "HOPPING", "TUMBLING")  # ksqlDB's order, as its error messages list them

_BOUND = struct.Struct(">q")
_SESSION_BOUNDS = struct.Struct(">qq")  # end, then start


@dataclass(frozen=True)
class WindowInfo:
    """How a source's keys are windowed: the window kind and, for time windows, the size."""

    kind: str  # 'TUMBLING', 'HOPPING' or 'SESSION'
    size_ms: int | None = None  # None exactly for SESSION windows

    def __post_init__(self) -> None:
        if self.kind not in WINDOW_KINDS:
            raise ValueError(f"Unknown window kind {self.kind!r}")
        if (self.size_ms is None) != self.is_session:
            raise ValueError(f"{self.kind} windows {'take no' if self.is_session else 'need a'} size")

    @property
    def is_session(self) -> bool:
        return self.kind == "SESSION"

    @property
    def bounds_type(self) -> str:
        """The window type a test case's record names: 'session' or 'time'."""
        return "session" if self.is_session else "time"

    @property
    def suffix_length(self) -> int:
        """How many bytes the window bounds add to a serialized key."""
        return _SESSION_BOUNDS.size if self.is_session else _BOUND.size

    def bounds(self, start: int, end: int) -> tuple[int, int, str]:
        """The (start, end, 'time'|'session') triple that Record.window and test cases carry."""
        return (start, end, self.bounds_type)


def windowed_keys(keys: list[bytes | None], starts: list[int], ends: list[int], info: WindowInfo) -> list[bytes | None]:
    """Each serialized key with its window's bounds appended; time windows store only the start."""
    if info.is_session:
        pack_session = _SESSION_BOUNDS.pack
        return [
            None if key is None else key + pack_session(end, start)
            for key, start, end in zip(keys, starts, ends, strict=True)
        ]
    pack_start = _BOUND.pack
    return [None if key is None else key + pack_start(start) for key, start in zip(keys, starts, strict=True)]


def split_windowed_keys(
    keys: list[bytes | None], info: WindowInfo, errors: dict[int, SerdeError] | None = None
) -> tuple[list[bytes | None], list[int | None], list[int | None]]:
    """The serialized keys, window starts and window ends inside windowed keys.

    A key too short to hold its window bounds raises SerdeError; given `errors`, it is recorded there by
    row instead and the row's three entries are None, so one bad record does not fail its batch.
    """
    suffix = info.suffix_length
    if None in keys:
        return _split_checking_each(keys, info, errors)
    whole = cast(list[bytes], keys)
    if whole and min(map(len, whole)) < suffix:
        return _split_checking_each(keys, info, errors)
    plain: list[bytes | None] = [key[:-suffix] for key in whole]
    if info.is_session:
        unpack_session = _SESSION_BOUNDS.unpack_from
        ends_then_starts = [unpack_session(key, len(key) - suffix) for key in whole]
        return plain, [start for _, start in ends_then_starts], [end for end, _ in ends_then_starts]
    unpack_start = _BOUND.unpack_from
    starts = [unpack_start(key, len(key) - suffix)[0] for key in whole]
    size = cast(int, info.size_ms)
    return plain, list(starts), [start + size for start in starts]


def _split_checking_each(
    keys: list[bytes | None], info: WindowInfo, errors: dict[int, SerdeError] | None
) -> tuple[list[bytes | None], list[int | None], list[int | None]]:
    suffix = info.suffix_length
    plain: list[bytes | None] = []
    starts: list[int | None] = []
    ends: list[int | None] = []
    for row, key in enumerate(keys):
        if key is not None and len(key) < suffix:
            error = SerdeError(
                f"A {info.kind} windowed key needs at least {suffix} bytes for its window bounds; "
                f"this one has {len(key)}"
            )
            if errors is None:
                raise error
            errors[row] = error
            key = None
        if key is None:
            plain.append(None)
            starts.append(None)
            ends.append(None)
            continue
        plain.append(key[:-suffix])
        if info.is_session:
            end, start = _SESSION_BOUNDS.unpack_from(key, len(key) - suffix)
        else:
            (start,) = _BOUND.unpack_from(key, len(key) - suffix)
            end = start + cast(int, info.size_ms)
        starts.append(start)
        ends.append(end)
    return plain, starts, ends
