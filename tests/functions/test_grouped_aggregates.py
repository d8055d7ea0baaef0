"""add_each_grouped (many groups folded in one call, rows interleaved) agrees with add_each run group by group."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ksqlpy.functions.aggregate import Aggregator
from ksqlpy.functions.registry import FunctionRegistry
from ksqlpy.types import BIGINT, DOUBLE, INTEGER, SqlType

REGISTRY = FunctionRegistry.with_builtins()
CALLS: list[tuple[str, list[SqlType]]] = [
    ("COUNT", []), ("COUNT", [DOUBLE]), ("AVG", [DOUBLE]), ("AVG", [INTEGER]), ("SUM", [BIGINT]), ("MAX", [DOUBLE]),
]


def bind(name: str, arg_types: Sequence[SqlType]) -> Aggregator:
    bound = REGISTRY.resolve(name, list(arg_types), "aggregate")
    aggregator = bound.overload.impl(bound.arg_types, bound.return_type, [])
    assert isinstance(aggregator, Aggregator)
    return aggregator


def group_by_group(aggregator: Aggregator, accumulators: list[Any], columns: list[list[Any]],
                   group_of: list[int]) -> tuple[list[Any], list[Any]]:
    updated: list[Any] = []
    results: list[Any] = [None] * len(group_of)
    for group, accumulator in enumerate(accumulators):
        rows = [row for row, of in enumerate(group_of) if of == group]
        accumulator, running = aggregator.add_each(accumulator, [[column[r] for r in rows] for column in columns])
        updated.append(accumulator)
        for row, result in zip(rows, running, strict=True):
            results[row] = result
    return updated, results


def same(left: Any, right: Any) -> bool:
    if isinstance(left, float) and isinstance(right, float):
        return left == right or (math.isnan(left) and math.isnan(right))
    if isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
        return len(left) == len(right) and all(same(a, b) for a, b in zip(left, right, strict=True))
    return bool(left == right)


@pytest.mark.parametrize(("name", "arg_types"), CALLS, ids=[f"{n}({','.join(map(str, a))})" for n, a in CALLS])
@settings(max_examples=60, deadline=None, derandomize=True)
@given(rows=st.lists(st.tuples(st.integers(0, 4), st.one_of(st.none(), st.integers(-1000, 1000))), min_size=1,
                    max_size=30),
       seed_rows=st.integers(0, 3))
def test_grouped_fold_matches_folding_each_group(name: str, arg_types: list[SqlType],
                                                 rows: list[tuple[int, int | None]], seed_rows: int) -> None:
    aggregator = bind(name, arg_types)
    as_double = arg_types == [DOUBLE]
    groups = sorted({group for group, _ in rows})
    group_of = [groups.index(group) for group, _ in rows]  # groups numbered as the operator numbers them
    values = [None if v is None else (v / 8 if as_double else v) for _, v in rows]
    columns = [values] if arg_types else []
    if aggregator.needs_sequence:
        columns.append(list(range(len(values))))
    # groups that have seen rows before start from an accumulator of their own
    seeded = [aggregator.add(aggregator.initial(), [column[:seed_rows] for column in columns])
              if seed_rows and columns and index % 2 else aggregator.initial() for index in range(len(groups))]

    grouped = aggregator.add_each_grouped(list(seeded), columns, group_of)

    assert same(grouped, group_by_group(aggregator, list(seeded), columns, group_of))
