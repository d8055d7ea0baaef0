"""Logical schemas: the named, typed columns of a stream or table, split into key, value and header columns."""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from ksqlpy.types import SqlType


class Namespace(enum.Enum):
    KEY = "KEY"
    VALUE = "VALUE"
    HEADERS = "HEADERS"


@dataclass(frozen=True)
class Column:
    name: str
    type: SqlType
    namespace: Namespace = Namespace.VALUE
    # For HEADER('k') columns: the header key; None for HEADERS (all headers as ARRAY<STRUCT<KEY, VALUE>>).
    header_key: str | None = None

    def __str__(self) -> str:
        suffix = {Namespace.KEY: " KEY", Namespace.HEADERS: " HEADERS", Namespace.VALUE: ""}[self.namespace]
        if self.namespace is Namespace.HEADERS and self.header_key is not None:
            suffix = f" HEADER('{self.header_key}')"
        return f"`{self.name}` {self.type}{suffix}"


@dataclass(frozen=True)
class LogicalSchema:
    columns: tuple[Column, ...] = field(default_factory=tuple)

    @classmethod
    def of(cls, columns: Sequence[Column]) -> LogicalSchema:
        return cls(tuple(columns))

    def __iter__(self) -> Iterator[Column]:
        return iter(self.columns)

    def __len__(self) -> int:
        return len(self.columns)

    @property
    def key(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.namespace is Namespace.KEY)

    @property
    def value(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.namespace is Namespace.VALUE)

    @property
    def headers(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.namespace is Namespace.HEADERS)

    def find(self, name: str) -> Column | None:
        for column in self.columns:
            if column.name == name:
                return column
        return None

    def index(self, name: str) -> int:
        for i, column in enumerate(self.columns):
            if column.name == name:
                return i
        raise KeyError(name)

    def __str__(self) -> str:
        return ", ".join(str(c) for c in self.columns)
