"""Statement results as text: aligned tables for listings and a streaming table for push-query rows.

On a terminal, tables fit its width: columns narrower than their share keep their width, the others share
the rest, and a cell longer than its column wraps onto more lines of the same row. Output to a pipe or file
keeps each row on one line (unless a cell holds a newline), so it stays easy to grep.
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Sequence
from itertools import zip_longest
from typing import Any, TextIO

from ksqlpy.engine import StatementResult
from ksqlpy.runtime.push import Deleted
from ksqlpy.text import value_to_text
from ksqlpy.types import SqlType

# Streaming rows cannot be measured in advance, so their columns get at least this width.
STREAM_COLUMN_WIDTH = 12
# Narrower than this, wrapped text is harder to read than a table wider than the terminal.
MIN_COLUMN_WIDTH = 6


def cell_text(value: Any, sql_type: SqlType | None = None) -> str:
    if isinstance(value, Deleted):
        return str(value)
    if sql_type is not None:
        return value_to_text(value, sql_type)
    if isinstance(value, bool):  # as ksqlDB (Java) writes them, e.g. SHOW STREAMS' Windowed column
        return "true" if value else "false"
    return "null" if value is None else str(value)


def terminal_width(out: TextIO) -> int | None:
    """The width tables must fit on `out`: the terminal's columns, or None (no limit) when not a terminal."""
    return shutil.get_terminal_size().columns if out.isatty() else None


def fit_widths(natural: Sequence[int], total_width: int | None) -> list[int]:
    """Column widths whose boxed table is at most `total_width` wide: taken narrowest first, each column gets
    its natural width or an equal share of what is left (at least MIN_COLUMN_WIDTH), whichever is smaller."""
    if total_width is None or _table_width(natural) <= total_width:
        return list(natural)
    widths = list(natural)
    remaining = total_width - _table_width([0] * len(natural))
    by_width = sorted(range(len(natural)), key=natural.__getitem__)
    for position, index in enumerate(by_width):
        share = remaining // (len(natural) - position)
        widths[index] = min(natural[index], max(MIN_COLUMN_WIDTH, share))
        remaining -= widths[index]
    return widths


def _table_width(widths: Sequence[int]) -> int:
    return sum(widths) + 3 * len(widths) + 1  # "| " before each cell, " " after it, and the closing "|"


def format_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], total_width: int | None = None) -> str:
    """A boxed table whose columns are as wide as their widest cell, narrowed (and their cells wrapped) to fit
    `total_width` when given."""
    cells = [[cell_text(v) for v in row] for row in rows]
    natural = [max(_text_width(text) for text in [name, *(row[i] for row in cells)]) for i, name in enumerate(columns)]
    widths = fit_widths(natural, total_width)
    rule = _rule(widths)
    lines = [rule, *_row_lines(columns, widths), rule]
    for row in cells:
        lines.extend(_row_lines(row, widths))
    lines.append(rule)
    return "\n".join(lines)


def _text_width(text: str) -> int:
    return max(len(line) for line in text.split("\n"))


def _rule(widths: Sequence[int]) -> str:
    return "+" + "+".join("-" * (w + 2) for w in widths) + "+"


def _row_lines(cells: Sequence[str], widths: Sequence[int], wrap: bool = True) -> list[str]:
    """One table row as as many lines as its tallest cell needs (cells longer than their column wrap, or with
    `wrap` False stick out)."""
    wrapped = [_wrap(cell, width if wrap else None) for cell, width in zip(cells, widths, strict=True)]
    return [
        "|" + "|".join(f" {part.ljust(width)} " for part, width in zip(parts, widths, strict=True)) + "|"
        for parts in zip_longest(*wrapped, fillvalue="")
    ]


def _wrap(text: str, width: int | None) -> list[str]:
    lines: list[str] = []
    for line in text.split("\n"):
        # Lines that fit are kept exactly; textwrap would drop their leading and trailing spaces.
        lines.extend([line] if width is None or len(line) <= width else textwrap.wrap(line, width))
    return lines


def print_result(result: StatementResult, out: TextIO) -> None:
    if result.message:
        out.write(result.message.rstrip("\n") + "\n")
    if result.columns:
        out.write(format_table(result.columns, result.rows, terminal_width(out)) + "\n")
    out.flush()


class StreamingTable:
    """Streamed output as it arrives: a push query's header once, then each row in fixed-width columns (on a
    terminal they share its width and long values wrap within them); PRINT's lines as they are."""

    def __init__(self, out: TextIO, total_width: int | None = None) -> None:
        self.out = out
        self.total_width = total_width if total_width is not None else terminal_width(out)
        self.widths: list[int] = []
        self.types: list[SqlType] = []

    def header(self, columns: list[str], types: list[SqlType]) -> None:
        widths = [max(STREAM_COLUMN_WIDTH, len(name)) for name in columns]
        if self.total_width is not None:  # as ksqlDB's CLI: the columns share the terminal's width
            share = (self.total_width - _table_width([0] * len(columns))) // len(columns)
            widths = [max(width, share) for width in widths]
        self.widths = fit_widths(widths, self.total_width)
        self.types = types
        rule = _rule(self.widths)
        self.out.write("\n".join([rule, *_row_lines(columns, self.widths), rule]) + "\n")
        self.out.flush()

    def row(self, values: list[Any]) -> None:
        texts = [cell_text(value, sql_type) for value, sql_type in zip(values, self.types, strict=True)]
        self.out.write("\n".join(_row_lines(texts, self.widths, wrap=self.total_width is not None)) + "\n")
        self.out.flush()

    def line(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def cancelled(self) -> None:
        # The terminal echoed ^C after the last output; "Query terminated" goes on a line of its own.
        self.out.write("\n")
        self.out.flush()
