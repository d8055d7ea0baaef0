"""Pull queries: what a pull query may contain, and its answer from a table's current rows.

A table's current rows are its topic compacted: the last record of each key (a windowed key per window, as
the window travels in the key bytes), with keys whose last record is a tombstone left out. The pull query's
own pipeline (its WHERE and projection over the table) then runs once over those rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ksqlpy.errors import StatementError
from ksqlpy.execution.pipeline import Pipeline, Record, RecordBatch
from ksqlpy.syntax import ast

# What ksqlDB adds to each refusal: where pull and push queries are explained, and how to ask for a push query.
PULL_QUERY_HELP = " See https://cnfl.io/queries for more info.\nAdd EMIT CHANGES if you intended to issue a push query."


def check_pull_query(query: ast.Query) -> None:
    """Refuse the clauses a pull query may not contain, with ksqlDB's messages, in ksqlDB's order."""
    refusals = [
        (not isinstance(query.from_, ast.SourceRef), "JOIN"),
        (query.window is not None, "WINDOW"),
        (bool(query.group_by), "GROUP BY"),
        (bool(query.partition_by), "PARTITION BY"),
        (query.having is not None, "HAVING"),
    ]
    for refused, clause in refusals:
        if refused:
            raise StatementError(f"Pull queries don't support {clause} clauses.{PULL_QUERY_HELP}")


def compacted(records: Iterable[Record]) -> list[Record]:
    """The last record per (partition, key bytes), tombstoned keys removed, in the order those records were
    written within each partition."""
    latest: dict[tuple[int, bytes | None], Record] = {}
    for record in records:
        latest[(record.partition, record.key)] = record
    current = [record for record in latest.values() if record.value is not None]
    current.sort(key=lambda record: (record.partition, record.offset))
    return current


def pull_rows(pipeline: Pipeline, records: Iterable[Record], limit: int | None) -> list[list[Any]]:
    """The pull query's rows over a table's records, at most `limit` of them."""
    current = compacted(records)
    if not current:
        return []
    columns, tombstones = pipeline.rows(RecordBatch.of(current))
    rows = [list(row) for row, tombstone in zip(zip(*columns, strict=True), tombstones, strict=True) if not tombstone]
    return rows if limit is None else rows[:limit]
