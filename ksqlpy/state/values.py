"""How state values become bytes, on local disk and in changelog topics, and back.

Values are plain data (None, bool, int, float, str, bytes, Decimal, tuples, lists, dicts, sets, and the
date and time types), serialized with pickle (protocol 5): it round-trips them exactly (tuples stay tuples,
Decimal keeps its scale) at C speed. Bytes this process wrote itself to its own state directory are read
back with plain pickle. Bytes read from a changelog topic came over the network, and anyone able to write
to the topic could have put them there: they are read with an unpickler that builds plain data only and
refuses any other class, so loading them can never run code.
"""

from __future__ import annotations

import datetime
import decimal
import io
import pickle
from typing import Any

PICKLE_PROTOCOL = 5
_PLAIN_CLASSES: dict[tuple[str, str], type] = {
    ("decimal", "Decimal"): decimal.Decimal,
    ("datetime", "datetime"): datetime.datetime,
    ("datetime", "date"): datetime.date,
    ("datetime", "time"): datetime.time,
    ("datetime", "timedelta"): datetime.timedelta,
    ("datetime", "timezone"): datetime.timezone,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
}


class UnsafeStateValue(ValueError):
    """Changelog bytes that are not plain data."""


class _PlainDataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        found = _PLAIN_CLASSES.get((module, name))
        if found is None:
            raise UnsafeStateValue(f"a state value may hold only plain data, not {module}.{name}")
        return found


def encode(value: Any) -> bytes:
    return pickle.dumps(value, PICKLE_PROTOCOL)


def decode(data: bytes) -> Any:
    """Bytes this process wrote to its own state directory."""
    return pickle.loads(data)


def decode_received(data: bytes) -> Any:
    """Bytes read from a changelog topic; raises UnsafeStateValue (or pickle's own errors) for anything else
    than plain data."""
    return _PlainDataUnpickler(io.BytesIO(data)).load()
