"""Plumbing shared by the long-running tools (bridge, simulator, demo): stop on Ctrl-C/SIGTERM, status logging."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

# librdkafka's own log lines (one per failed connection attempt) are routed here and kept quiet unless
# --verbose: the tools report an unreachable cluster once, in their own words, from the error callback.
LIBRDKAFKA_LOGGER = logging.getLogger("ksqlpy.connect.librdkafka")


def configure_logging(program: str, verbose: bool = False) -> None:
    """Status lines of ksqlpy's connectors on stderr as `PROGRAM: message`; librdkafka's only with verbose."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{program}: %(message)s"))
    connect_logger = logging.getLogger("ksqlpy.connect")
    connect_logger.handlers = [handler]
    connect_logger.propagate = False
    connect_logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    LIBRDKAFKA_LOGGER.setLevel(logging.DEBUG if verbose else logging.CRITICAL)


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by the first Ctrl-C or SIGTERM inside the block, so the loop that waits on it can
    finish cleanly; a second Ctrl-C raises KeyboardInterrupt for someone who will not wait. Outside the
    main thread (where handlers cannot be installed) only its owner sets the event."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()

    previous = {signum: signal.signal(signum, request_stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
