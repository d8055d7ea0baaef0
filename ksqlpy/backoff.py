"""Retry delays that double from a first wait up to a cap: for a broker that is away, or a record to send again."""

from __future__ import annotations


def doubling_delay(attempt: int, first: float, cap: float) -> float:
    """Seconds to wait before retry number `attempt` (1, 2, ...)."""
    return float(min(cap, first * 2 ** min(attempt - 1, 32)))


class Backoff:
    """The delays of one run of retries, which starts over after reset()."""

    def __init__(self, first: float, cap: float) -> None:
        self.first = first
        self.cap = cap
        self.attempts = 0

    def next(self) -> float:
        self.attempts += 1
        return doubling_delay(self.attempts, self.first, self.cap)

    def reset(self) -> None:
        self.attempts = 0
