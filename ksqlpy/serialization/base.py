"""The serde interface: how a record's key or value bytes map to the values of a list of columns.

A format (JSON, DELIMITED, KAFKA, NONE; later AVRO/PROTOBUF) is looked up by name and bound to the
columns it carries, giving a RecordSerde. Deserialising checks and coerces every value to its column's
SQL type (see ksqlpy.types for the Python value conventions) and raises SerdeError with a readable
reason for anything that does not fit; the caller sends that record to the processing log.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ksqlpy.errors import SerdeError
from ksqlpy.schema import Column


@dataclass(frozen=True)
class FormatOptions:
    """Per-source serde settings from the WITH clause."""

    delimiter: str = ","  # VALUE_DELIMITER / KEY_DELIMITER for DELIMITED ('TAB' and 'SPACE' already mapped)
    wrap_single_value: bool = True  # WRAP_SINGLE_VALUE; keys are never wrapped when single-column
    is_key: bool = False


@dataclass
class DecodedColumns:
    """Many payloads decoded column-wise: rows that failed are in `errors` (their column entries are None)."""

    columns: list[list[Any]]
    present: list[bool]  # False where the payload was None (a tombstone value, or no key)
    errors: dict[int, SerdeError]


def presence(payloads: Sequence[bytes | None]) -> list[bool]:
    """Which payloads are not None; a batch without any None is answered at C speed."""
    if None not in payloads:
        return [True] * len(payloads)
    return [p is not None for p in payloads]


class RecordSerde(ABC):
    """A format bound to the columns of a record's key or value."""

    format_name: str

    def __init__(self, columns: Sequence[Column], options: FormatOptions) -> None:
        self.columns = tuple(columns)
        self.options = options

    @abstractmethod
    def deserialize(self, payload: bytes | None) -> list[Any] | None:
        """Bytes -> one value per column, in column order. None payload -> None (tombstone / no key)."""

    @abstractmethod
    def serialize(self, values: Sequence[Any] | None) -> bytes | None:
        """One value per column -> bytes. None -> None."""

    def deserialize_batch(self, payloads: Sequence[bytes | None]) -> list[list[Any] | SerdeError | None]:
        """Many payloads at once; a payload that fails yields its SerdeError in place, the rest go on."""
        out: list[list[Any] | SerdeError | None] = []
        for payload in payloads:
            try:
                out.append(self.deserialize(payload))
            except SerdeError as error:
                out.append(error)
        return out

    def serialize_batch(self, rows: Sequence[Sequence[Any] | None]) -> list[bytes | None]:
        return [self.serialize(row) for row in rows]

    def deserialize_columns(self, payloads: Sequence[bytes | None]) -> DecodedColumns:
        """Many payloads at once, as one list per column; formats override this with faster paths."""
        width = len(self.columns)
        columns: list[list[Any]] = [[] for _ in range(width)]
        present: list[bool] = []
        errors: dict[int, SerdeError] = {}
        nulls = [None] * width
        for index, row in enumerate(self.deserialize_batch(payloads)):
            if isinstance(row, SerdeError):
                errors[index] = row
                row = None
            present.append(row is not None)
            for column, value in zip(columns, row if row is not None else nulls, strict=True):
                column.append(value)
        return DecodedColumns(columns, present, errors)

    def serialize_columns(self, columns: Sequence[Sequence[Any]], size: int) -> list[bytes | None]:
        """One payload per row of the given columns (one per serde column)."""
        if not columns:
            return [self.serialize(()) for _ in range(size)]
        return [self.serialize(row) for row in zip(*columns, strict=True)]

    def project(self, indexes: Sequence[int]) -> RecordSerde | None:
        """A serde that reads only the columns at `indexes` (in that order), or None when the format must
        read every column anyway. Lets a query skip decoding fields it never uses."""
        return None

    # The test runners speak in the logical form that ksqlDB's test files use: a JSON document for
    # JSON, the text line for DELIMITED, a plain scalar for KAFKA (bytes as base64 text).

    @abstractmethod
    def from_logical(self, logical: Any) -> bytes | None:
        """A record as written in a test file -> the bytes a producer would have sent."""

    @abstractmethod
    def to_logical(self, payload: bytes | None) -> Any:
        """Bytes this serde wrote -> the logical form a test file compares against."""
