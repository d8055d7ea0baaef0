"""Status logging shared by the long-running tools (bridge, simulator, demo)."""

from __future__ import annotations

import logging
import sys

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
