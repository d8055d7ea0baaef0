"""When a stateful operator emits: every update, or the latest per key once per flush (ksqlDB's record cache)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from ksqlpy.errors import StatementError
from ksqlpy.planning.plan import query_property

# ksqlDB's names for the record cache's size; 0 turns caching off.
CACHE_PROPERTIES = ("cache.max.bytes.buffering", "statestore.cache.max.bytes")
KSQLDB_DEFAULT_CACHE_BYTES = 10_000_000


class Emission(enum.Enum):
    """EVERY_UPDATE: one output per input record (cache off, as ksqlDB's tests run).
    LATEST_PER_KEY: at most one output per key and window per flush (ksqlDB's default caching)."""

    EVERY_UPDATE = "every update"
    LATEST_PER_KEY = "latest per key"


def emission_policy(properties: Mapping[str, Any], default_cache_bytes: int | None = None) -> Emission:
    """The policy the query's record-cache size asks for; `default_cache_bytes` when it sets none (ksqlDB's
    default when that is None)."""
    size = str(KSQLDB_DEFAULT_CACHE_BYTES if default_cache_bytes is None else default_cache_bytes)
    for name in CACHE_PROPERTIES:
        size = query_property(properties, name, size)
    if not size.isdigit():
        raise StatementError(f"Invalid value for cache.max.bytes.buffering: '{size}' (expected a number of bytes)")
    return Emission.EVERY_UPDATE if int(size) == 0 else Emission.LATEST_PER_KEY
