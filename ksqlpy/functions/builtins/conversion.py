"""Built-in conversion functions: numbers read from raw BYTES, and AS_VALUE."""

from __future__ import annotations

import struct
from typing import Any

from ksqlpy.functions.registry import T, scalar_function
from ksqlpy.types import BIGINT, BYTES, DOUBLE, INTEGER, STRING, PrimitiveType

_CATEGORY = "CONVERSIONS"
_BYTE_ORDERS = {"BIG_ENDIAN": ">", "LITTLE_ENDIAN": "<"}


def _register_from_bytes(name: str, result: PrimitiveType, layout: str) -> None:
    size = struct.calcsize(layout)

    def read(data: bytes, byte_order: str = "BIG_ENDIAN") -> Any:
        prefix = _BYTE_ORDERS.get(byte_order.upper())
        # ksqlDB documents NULL for a wrong length or an unknown byte order
        if prefix is None or len(data) != size:
            return None
        return struct.unpack(prefix + layout, data)[0]

    described = f"Reads a {result} from exactly {size} bytes"
    scalar_function(name, params=[BYTES], returns=result, category=_CATEGORY,
                    description=f"{described}, big-endian.")(read)
    scalar_function(name, params=[BYTES, STRING], returns=result, category=_CATEGORY,
                    description=f"{described} in the given byte order (BIG_ENDIAN or LITTLE_ENDIAN).")(read)


_register_from_bytes("INT_FROM_BYTES", INTEGER, "i")
_register_from_bytes("BIGINT_FROM_BYTES", BIGINT, "q")
_register_from_bytes("DOUBLE_FROM_BYTES", DOUBLE, "d")


@scalar_function(
    "AS_VALUE", params=[T], returns=T, null_on_null=False, category="OTHER",
    description="Returns its argument; used to copy a key column into the value.",
)
def as_value(value: Any) -> Any:
    return value
