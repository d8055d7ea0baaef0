"""Statement results as text: aligned tables for listings and a streaming table for push-query rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TextIO

from ksqlpy.engine import StatementResult
from ksqlpy.text import value_to_text
from ksqlpy.types import SqlType

# Streaming rows cannot be measured in advance, so their columns get at least this width.
STREAM_COLUMN_WIDTH = 12


def cell_text(value: Any, sql_type: SqlType | None = None) -> str:
    if sql_type is not None:
        return value_to_text(value, sql_type)
    return "null" if value is None else str(value)


def format_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A boxed table whose columns are as wide as their widest cell."""
    cells = [[cell_text(v) for v in row] for row in rows]
    widths = [max([len(name), *(len(row[i]) for row in cells)]) for i, name in enumerate(columns)]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    lines = [rule, _row_line(columns, widths), rule]
    lines.extend(_row_line(row, widths) for row in cells)
    lines.append(rule)
    return "\n".join(lines)


def _row_line(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "|" + "|".join(f" {cell.ljust(width)} " for cell, width in zip(cells, widths, strict=True)) + "|"


def print_result(result: StatementResult, out: TextIO) -> None:
    if result.message:
        out.write(result.message.rstrip("\n") + "\n")
    if result.columns:
        out.write(format_table(result.columns, result.rows) + "\n")
    out.flush()


class StreamingTable:
    """Streamed output as it arrives: a push query's header once, then each row in fixed-width columns;
    PRINT's lines as they are."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.widths: list[int] = []
        self.types: list[SqlType] = []

    def header(self, columns: list[str], types: list[SqlType]) -> None:
        self.widths = [max(STREAM_COLUMN_WIDTH, len(name)) for name in columns]
        self.types = types
        rule = "+" + "+".join("-" * (w + 2) for w in self.widths) + "+"
        self.out.write(f"{rule}\n{_row_line(columns, self.widths)}\n{rule}\n")
        self.out.flush()

    def row(self, values: list[Any]) -> None:
        texts = [cell_text(value, sql_type) for value, sql_type in zip(values, self.types, strict=True)]
        self.out.write(_row_line(texts, self.widths) + "\n")
        self.out.flush()

    def line(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()
