"""Tab completion at the prompt: the grammar's keywords, type names, the catalog's streams, tables and
columns, and the registry's functions (built-ins and UDFs).

Names are read from the engine at each completion, so they follow CREATE/DROP statements and UDF reloads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from ksqlpy.engine import Engine
from ksqlpy.syntax.parser import keywords
from ksqlpy.types import PRIMITIVES_BY_NAME

# The identifier being typed just before the cursor.
_WORD_BEFORE_CURSOR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")
# Names the parser accepts unquoted (it upper-cases them); any other name needs backticks.
_PLAIN_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")


class StatementCompleter(Completer):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.keywords = keywords()

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterator[Completion]:
        match = _WORD_BEFORE_CURSOR.search(document.text_before_cursor)
        if match is None:
            return
        prefix = match.group().upper()
        seen: set[str] = set()
        for name, kind in self.candidates():
            if name.upper().startswith(prefix) and name not in seen:
                seen.add(name)
                yield Completion(_as_typed(name), start_position=-len(prefix), display_meta=kind)

    def candidates(self) -> Iterable[tuple[str, str]]:
        """(name, kind) pairs: names of the things a statement most likely refers to come first."""
        catalog = self.engine.catalog
        for source in sorted(catalog.sources.values(), key=lambda s: s.name):
            yield source.name, source.kind_word
        for source in sorted(catalog.sources.values(), key=lambda s: s.name):
            for column in source.schema:
                yield column.name, "column"
        for name in self.engine.registry.names():
            yield name, "function"
        for name in self.keywords:
            yield name, "keyword"
        for name in [*PRIMITIVES_BY_NAME, *sorted(catalog.types)]:
            yield name, "type"


def _as_typed(name: str) -> str:
    return name if _PLAIN_NAME.fullmatch(name) else f"`{name}`"
