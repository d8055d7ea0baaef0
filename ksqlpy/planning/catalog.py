"""The metastore: streams, tables and user types known to an engine, with the topic and formats behind each."""

from __future__ import annotations

from dataclasses import dataclass, field

from ksqlpy.errors import StatementError
from ksqlpy.schema import LogicalSchema
from ksqlpy.serialization.base import FormatOptions
from ksqlpy.serialization.windowed import WindowInfo
from ksqlpy.types import SqlType

PSEUDO_COLUMNS = ("ROWTIME", "ROWPARTITION", "ROWOFFSET")
WINDOW_BOUND_COLUMNS = ("WINDOWSTART", "WINDOWEND")


@dataclass(frozen=True)
class SerdeSpec:
    """How one side (key or value) of a source's records is serialised."""

    format: str
    options: FormatOptions = field(default_factory=FormatOptions)


@dataclass
class DataSource:
    name: str
    kind: str  # 'STREAM' or 'TABLE'
    schema: LogicalSchema
    topic: str
    key: SerdeSpec
    value: SerdeSpec
    timestamp_column: str | None = None
    timestamp_format: str | None = None
    partitions: int = 1
    statement_text: str = ""
    is_source: bool = False  # CREATE SOURCE STREAM/TABLE: read-only
    is_derived: bool = False  # the sink of CREATE ... AS SELECT: its schema follows the query
    # Query ids writing into this source (CSAS / INSERT INTO) and reading from it.
    writers: set[str] = field(default_factory=set)
    readers: set[str] = field(default_factory=set)
    window: WindowInfo | None = None  # WINDOW_TYPE sources and windowed aggregations: keys carry window bounds

    @property
    def kind_word(self) -> str:
        return "stream" if self.kind == "STREAM" else "table"

    @property
    def is_windowed(self) -> bool:
        return self.window is not None


class Catalog:
    def __init__(self) -> None:
        self.sources: dict[str, DataSource] = {}
        self.types: dict[str, SqlType] = {}

    def get(self, name: str) -> DataSource:
        source = self.sources.get(name)
        if source is None:
            raise StatementError(f"{name} does not exist.")
        return source

    def find(self, name: str) -> DataSource | None:
        return self.sources.get(name)

    def sources_on_topic(self, topic: str) -> list[DataSource]:
        return [s for s in self.sources.values() if s.topic == topic]

    def add(self, source: DataSource, replace: bool = False) -> None:
        existing = self.sources.get(source.name)
        if existing is not None and not replace:
            raise StatementError(
                f"Cannot add {source.kind_word} '{source.name}': A {existing.kind_word} "
                f"with the same name already exists"
            )
        self.sources[source.name] = source

    def drop(self, name: str) -> DataSource:
        return self.sources.pop(name)
