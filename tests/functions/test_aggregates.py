"""The built-in aggregate functions: ksqlDB's types and NULL rules, and the Aggregator contract that the
aggregate operator relies on (add_each agrees with add, undo takes rows back, merge combines sessions)."""

from __future__ import annotations

import copy
import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ksqlpy.driver import InMemoryDriver
from ksqlpy.errors import EvaluationError, StatementError
from ksqlpy.functions.aggregate import Aggregator
from ksqlpy.functions.builtins.collections import equality_key
from ksqlpy.functions.registry import FunctionRegistry
from ksqlpy.types import (
    BIGINT,
    BOOLEAN,
    BYTES,
    DATE,
    DOUBLE,
    INTEGER,
    STRING,
    TIME,
    TIMESTAMP,
    ArrayType,
    DecimalType,
    MapType,
    SqlType,
    StructType,
)

REGISTRY = FunctionRegistry.with_builtins()


def bind(name: str, arg_types: Sequence[SqlType], literals: Sequence[Any] = ()) -> Aggregator:
    bound = REGISTRY.resolve(name, list(arg_types), "aggregate")
    aggregator = bound.overload.impl(bound.arg_types, bound.return_type, list(literals))
    assert isinstance(aggregator, Aggregator)
    return aggregator


def columns_for(aggregator: Aggregator, columns: Sequence[Sequence[Any]], first_offset: int = 0) -> list[list[Any]]:
    """The columns as the operator passes them: the input offsets appended when the aggregator asks for them."""
    rows = len(columns[0]) if columns else 0
    offsets = [list(range(first_offset, first_offset + rows))] if aggregator.needs_sequence else []
    return [list(c) for c in columns] + offsets


def running(aggregator: Aggregator, *columns: Sequence[Any]) -> list[Any]:
    """The result after each row, one add() per row (the operator's view of a stream of single records)."""
    accumulator = aggregator.initial()
    results = []
    for row, values in enumerate(zip(*columns, strict=True)):
        accumulator = aggregator.add(accumulator, columns_for(aggregator, [[v] for v in values], row))
        results.append(aggregator.result(accumulator))
    return results


def total(aggregator: Aggregator, *columns: Sequence[Any]) -> Any:
    return aggregator.result(aggregator.add(aggregator.initial(), columns_for(aggregator, columns)))


# --------------------------------------------------------------------------- types and overloads


@pytest.mark.parametrize(("name", "args", "arg_types", "returns"), [
    ("COUNT", [], [], BIGINT),
    ("COUNT", [MapType(STRING, INTEGER)], [MapType(STRING, INTEGER)], BIGINT),
    ("SUM", [INTEGER], [INTEGER], INTEGER),
    ("SUM", [BIGINT], [BIGINT], BIGINT),
    ("SUM", [DOUBLE], [DOUBLE], DOUBLE),
    ("SUM", [DecimalType(4, 1)], [DecimalType(4, 1)], DecimalType(4, 1)),
    ("SUM_LIST", [ArrayType(INTEGER)], [ArrayType(INTEGER)], INTEGER),
    ("AVG", [INTEGER], [INTEGER], DOUBLE),
    ("AVG", [DecimalType(4, 1)], [DOUBLE], DOUBLE),
    ("MIN", [STRING], [STRING], STRING),
    ("MAX", [DecimalType(4, 2)], [DecimalType(4, 2)], DecimalType(4, 2)),
    ("MAX", [TIMESTAMP], [TIMESTAMP], TIMESTAMP),
    ("MIN", [BYTES], [BYTES], BYTES),
    ("TOPK", [BIGINT, INTEGER], [BIGINT, INTEGER], ArrayType(BIGINT)),
    ("TOPK", [DOUBLE, STRING, INTEGER], [DOUBLE, STRING, INTEGER],
     ArrayType(StructType((("sort_col", DOUBLE), ("col0", STRING))))),
    ("TOPKDISTINCT", [TIME, INTEGER], [TIME, INTEGER], ArrayType(TIME)),
    ("COLLECT_LIST", [StructType((("A", STRING),))], [StructType((("A", STRING),))],
     ArrayType(StructType((("A", STRING),)))),
    ("COLLECT_SET", [DATE], [DATE], ArrayType(DATE)),
    ("COUNT_DISTINCT", [STRING], [STRING], BIGINT),
    ("HISTOGRAM", [STRING], [STRING], MapType(STRING, BIGINT)),
    ("ATTR", [ArrayType(INTEGER)], [ArrayType(INTEGER)], ArrayType(INTEGER)),
    ("CORRELATION", [BIGINT, INTEGER], [DOUBLE, DOUBLE], DOUBLE),
    ("STDDEV_SAMP", [INTEGER], [INTEGER], DOUBLE),
    ("STDDEV_SAMPLE", [DOUBLE], [DOUBLE], DOUBLE),
    ("EARLIEST_BY_OFFSET", [STRING], [STRING], STRING),
    ("EARLIEST_BY_OFFSET", [STRING, BOOLEAN], [STRING, BOOLEAN], STRING),
    ("LATEST_BY_OFFSET", [INTEGER, INTEGER], [INTEGER, INTEGER], ArrayType(INTEGER)),
    ("LATEST_BY_OFFSET", [INTEGER, INTEGER, BOOLEAN], [INTEGER, INTEGER, BOOLEAN], ArrayType(INTEGER)),
])
def test_overloads_resolve_to_ksqldb_types(name: str, args: list[SqlType], arg_types: list[SqlType],
                                           returns: SqlType) -> None:
    bound = REGISTRY.resolve(name, args, "aggregate")
    assert (bound.arg_types, bound.return_type) == (arg_types, returns)
    assert bound.overload.kind == "aggregate"


@pytest.mark.parametrize(("name", "args"), [
    ("SUM", [STRING]),
    ("AVG", [BOOLEAN]),
    ("MIN", [BOOLEAN]),
    ("MAX", [MapType(STRING, INTEGER)]),
    ("TOPK", [BOOLEAN, INTEGER]),
    ("HISTOGRAM", [INTEGER]),
    ("STDDEV_SAMP", [STRING]),
])
def test_unsupported_argument_types_are_refused(name: str, args: list[SqlType]) -> None:
    with pytest.raises(StatementError, match="does not accept parameters"):
        REGISTRY.resolve(name, args, "aggregate")


def test_literal_parameters_are_declared_and_checked() -> None:
    assert REGISTRY.resolve("TOPK", [INTEGER, INTEGER], "aggregate").overload.literals == 1
    assert REGISTRY.resolve("LATEST_BY_OFFSET", [INTEGER, INTEGER, BOOLEAN], "aggregate").overload.literals == 2
    assert REGISTRY.resolve("SUM", [INTEGER], "aggregate").overload.literals == 0
    with pytest.raises(StatementError, match="positive INTEGER"):
        bind("TOPK", [INTEGER, INTEGER], [0])
    with pytest.raises(StatementError, match="positive INTEGER"):
        bind("EARLIEST_BY_OFFSET", [INTEGER, INTEGER], [-1])
    with pytest.raises(StatementError, match="cannot be ordered"):
        bind("TOPK", [MapType(STRING, INTEGER), STRING, INTEGER], [2])


def test_table_capable_aggregates_are_exactly_the_undoable_ones() -> None:
    undoable = {name for name in REGISTRY.names() for o in REGISTRY.overloads(name)
                if o.kind == "aggregate" and getattr(o.impl, "undoable", False)}
    assert undoable == {"COUNT", "SUM", "SUM_LIST", "AVG", "COLLECT_LIST", "HISTOGRAM", "ATTR", "CORRELATION",
                        "STDDEV_SAMP", "STDDEV_SAMPLE"}
    with pytest.raises(StatementError, match="cannot undo"):
        bind("MAX", [INTEGER]).undo(5, [[5]])


# --------------------------------------------------------------------------- semantics, per function


def test_count_counts_rows_or_non_null_values() -> None:
    assert running(bind("COUNT", []), ) == []
    assert bind("COUNT", []).add_each(3, [[10, 11, 12]]) == (6, [4, 5, 6])  # the offsets column stands for the rows
    assert running(bind("COUNT", [STRING]), ["a", None, "b"]) == [1, 1, 2]
    assert total(bind("COUNT", [STRING]), [None, None]) == 0


def test_sum_keeps_the_argument_type_and_skips_nulls() -> None:
    assert running(bind("SUM", [INTEGER]), [1, None, 2]) == [1, 1, 3]
    assert total(bind("SUM", [INTEGER]), [2**31 - 1, 1]) == -(2**31)  # Java int arithmetic wraps around
    assert total(bind("SUM", [BIGINT]), [2**63 - 1, 2]) == -(2**63) + 1
    assert total(bind("SUM", [DOUBLE]), [0.1, 0.2, 0.3]) == (0.1 + 0.2) + 0.3  # added in order, as Java does
    assert total(bind("SUM", [DOUBLE]), [None]) == 0.0
    decimals = bind("SUM", [DecimalType(4, 1)])
    assert total(decimals, [Decimal("5.4"), Decimal("100.1"), None]) == Decimal("105.5")
    assert str(decimals.result(decimals.initial())) == "0.0"
    with pytest.raises(EvaluationError, match="Numeric field overflow"):
        total(decimals, [Decimal("999.9"), Decimal("0.1")])
    with pytest.raises(EvaluationError, match="Numeric field overflow"):
        decimals.add_each(decimals.initial(), [[Decimal("999.9"), Decimal("0.1"), Decimal("-5.0")]])


def test_sum_list_adds_the_elements_of_each_array() -> None:
    assert running(bind("SUM_LIST", [ArrayType(BIGINT)]), [[1, 2], None, [None, 4]]) == [3, 3, 7]


def test_avg_is_a_double_and_zero_for_no_values() -> None:
    average = bind("AVG", [BIGINT])
    assert running(average, [None, 1, 2, None]) == [0.0, 1.0, 1.5, 1.5]
    assert total(average, [2**63 - 1, -1]) == float(2**63 - 2) / 2
    assert total(bind("AVG", [INTEGER]), [2**31 - 1, 1]) == float(-(2**31)) / 2  # the INT sum wraps, as in ksqlDB


def test_min_and_max_ignore_nulls_and_follow_java_order() -> None:
    assert running(bind("MAX", [INTEGER]), [None, 5, None, 3, 9]) == [None, 5, 5, 5, 9]
    assert running(bind("MIN", [STRING]), ["B", "A", None, "C"]) == ["B", "A", "A", "A"]
    # Java compares UTF-16 code units: U+FFFD sorts above U+1F600 (a surrogate pair starting 0xD83D)
    assert total(bind("MAX", [STRING]), ["\U0001F600", "\uFFFD"]) == "\uFFFD"
    # BYTES compare as signed bytes: 0x80 is below 0x01
    assert total(bind("MIN", [BYTES]), [b"\x01", b"\x80"]) == b"\x80"
    # Double.compareTo: NaN above everything, -0.0 below 0.0
    assert math.isnan(total(bind("MAX", [DOUBLE]), [1.0, math.nan, 2.0]))
    assert total(bind("MIN", [DOUBLE]), [1.0, math.nan, 2.0]) == 1.0
    assert math.copysign(1.0, total(bind("MIN", [DOUBLE]), [0.0, -0.0])) == -1.0
    assert total(bind("MIN", [DecimalType(4, 2)]), [Decimal("21.79"), Decimal("-1.79")]) == Decimal("-1.79")
    assert total(bind("MIN", [INTEGER]), [None, None]) is None


def test_topk_keeps_the_k_greatest_earlier_rows_first_among_equals() -> None:
    topk = bind("TOPK", [INTEGER, INTEGER], [3])
    assert running(topk, [0, 100, None, 99, 7, 100]) == [
        [0], [100, 0], [100, 0], [100, 99, 0], [100, 99, 7], [100, 100, 99]]
    distinct = bind("TOPKDISTINCT", [DOUBLE, INTEGER], [2])
    assert running(distinct, [1.0, 5.0, 5.0, 3.0]) == [[1.0], [5.0, 1.0], [5.0, 1.0], [5.0, 3.0]]
    rows = bind("TOPK", [BIGINT, STRING, INTEGER], [2])
    assert running(rows, [5, 9, None, 9], ["a", "b", "c", None])[-1] == [
        {"sort_col": 9, "col0": "b"}, {"sort_col": 9, "col0": None}]


def test_collect_list_and_set_keep_nulls_and_arrival_order() -> None:
    assert total(bind("COLLECT_LIST", [STRING]), ["b", None, "a", "b"]) == ["b", None, "a", "b"]
    maps = bind("COLLECT_SET", [MapType(STRING, INTEGER)])
    assert total(maps, [{"x": 1, "y": 2}, {"y": 2, "x": 1}, None, {"x": 1}, None]) == [
        {"x": 1, "y": 2}, None, {"x": 1}]
    collected = bind("COLLECT_LIST", [INTEGER])
    assert collected.result(collected.undo([1, 2, 1], [[1]])) == [2, 1]  # the first occurrence goes, as in Java


def test_count_distinct_counts_distinct_non_null_values() -> None:
    assert running(bind("COUNT_DISTINCT", [STRING]), ["a", "b", None, "a"]) == [1, 2, 2, 2]


def test_histogram_counts_strings_up_to_its_limit() -> None:
    histogram = bind("HISTOGRAM", [STRING])
    assert running(histogram, ["foo", "bar", None, "foo"])[-1] == {"foo": 2, "bar": 1}
    assert histogram.result(histogram.undo({"foo": 2, "bar": 1}, [["bar", "foo"]])) == {"foo": 1}
    many = total(histogram, [str(i) for i in range(1005)] + ["0"])
    assert len(many) == 1000 and many["0"] == 2 and "1000" not in many


def test_attr_is_the_one_value_all_rows_share() -> None:
    attr = bind("ATTR", [STRING])
    assert running(attr, ["1", "1", None, "1"]) == ["1", "1", None, None]
    accumulator = attr.add(attr.initial(), [["1", "1"]])
    accumulator = attr.undo(accumulator, [["1", "1"]])
    assert attr.result(accumulator) is None
    accumulator = attr.add(accumulator, [["2", "3"]])
    assert attr.result(accumulator) is None
    assert attr.result(attr.undo(accumulator, [["3"]])) == "2"


def test_correlation_skips_rows_with_a_null() -> None:
    points = [(2.0, 1.0), (4.0, 3.5), (None, 1.0), (5.0, 4.0), (1.0, None), (7.0, 9.5)]
    xs, ys = zip(*points, strict=True)
    results = running(bind("CORRELATION", [DOUBLE, DOUBLE]), xs, ys)
    assert math.isnan(results[0])
    assert results[1] == pytest.approx(1.0)
    complete = [(x, y) for x, y in points if x is not None and y is not None]
    expected = statistics.correlation([x for x, _ in complete], [y for _, y in complete])
    assert results[-1] == pytest.approx(expected, rel=1e-12)


def test_stddev_samp_is_the_variance_and_stddev_sample_its_root() -> None:
    values = [3, 8, None, 1, 12]
    variance = running(bind("STDDEV_SAMP", [INTEGER]), values)
    assert variance[:3] == [0.0, statistics.variance([3, 8]), statistics.variance([3, 8])]
    assert variance[-1] == pytest.approx(statistics.variance([3, 8, 1, 12]), rel=1e-12)
    assert total(bind("STDDEV_SAMPLE", [DOUBLE]), [3.0, 8.0, 1.0, 12.0]) == pytest.approx(
        statistics.stdev([3.0, 8.0, 1.0, 12.0]), rel=1e-12)
    assert total(bind("STDDEV_SAMPLE", [DOUBLE]), [None]) == 0.0


@pytest.mark.parametrize(("name", "literals", "values", "expected"), [
    ("EARLIEST_BY_OFFSET", [], [None, 12, None, 13], [None, 12, 12, 12]),
    ("EARLIEST_BY_OFFSET", [False], [None, 12, 13], [None, None, None]),
    ("EARLIEST_BY_OFFSET", [2], [None, 12, None, 13, 14], [[], [12], [12], [12, 13], [12, 13]]),
    ("EARLIEST_BY_OFFSET", [2, False], [12, None, 13], [[12], [12, None], [12, None]]),
    ("LATEST_BY_OFFSET", [], [12, None, 13], [12, 12, 13]),
    ("LATEST_BY_OFFSET", [False], [12, None, 13], [12, None, 13]),
    ("LATEST_BY_OFFSET", [2], [12, None, 13, 14], [[12], [12], [12, 13], [13, 14]]),
    ("LATEST_BY_OFFSET", [2, False], [None, None, 13], [[None], [None, None], [None, 13]]),
])
def test_by_offset_forms_and_their_null_rules(name: str, literals: list[Any], values: list[Any],
                                              expected: list[Any]) -> None:
    arg_types = [INTEGER] + [INTEGER if isinstance(v, int) and not isinstance(v, bool) else BOOLEAN for v in literals]
    aggregator = bind(name, arg_types, literals)
    assert running(aggregator, values) == expected
    assert aggregator.add_each(aggregator.initial(), columns_for(aggregator, [values]))[1] == expected


def test_by_offset_merges_sessions_by_offset() -> None:
    earliest = bind("EARLIEST_BY_OFFSET", [INTEGER, INTEGER, BOOLEAN], [2, False])
    first_session = earliest.add(earliest.initial(), [[None], [0]])
    later_session = earliest.add(earliest.initial(), [[1], [1]])
    bridging = earliest.add(earliest.initial(), [[None], [2]])
    merged = earliest.merge(earliest.merge(first_session, bridging), later_session)
    assert earliest.result(merged) == [None, 1]
    latest = bind("LATEST_BY_OFFSET", [INTEGER])
    # the session that started later holds the older offsets; a NULL at the newest offset is ignored
    started_first, started_later = latest.add(latest.initial(), [[7], [10]]), latest.add(latest.initial(),
                                                                                        [[3, None], [4, 11]])
    assert latest.result(latest.merge(started_first, started_later)) == 7
    assert latest.result(latest.merge(started_later, started_first)) == 7


# --------------------------------------------------------------------------- the Aggregator contract, for all


@dataclass(frozen=True)
class Case:
    name: str
    arg_types: tuple[SqlType, ...]
    columns: tuple[st.SearchStrategy[Any], ...]
    literals: tuple[Any, ...] = ()
    exact: bool = True  # integer arithmetic; with doubles, regrouped additions differ in the last bits

    def __str__(self) -> str:
        return f"{self.name}({', '.join(map(str, self.arg_types))}){list(self.literals) or ''}"


def _nullable(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | values


INTS = _nullable(st.integers(-(2**31), 2**31 - 1))
SMALL_INTS = _nullable(st.integers(-5, 5))
DOUBLES = _nullable(st.floats(-1e6, 1e6, allow_nan=False).map(lambda f: round(f, 2)))
# Sums of squares of values up to 1e6 lose more than the comparison's tolerance when a row is taken back out,
# which says nothing about undo itself
MODEST_DOUBLES = _nullable(st.floats(-1e3, 1e3, allow_nan=False).map(lambda f: round(f, 2)))
STRINGS = _nullable(st.sampled_from(["a", "b", "c", "\U0001F600", "\uFFFD"]))
DECIMALS = _nullable(st.integers(-9999, 9999).map(lambda i: Decimal(i).scaleb(-2)))
MAPS = _nullable(st.dictionaries(st.sampled_from("xy"), st.integers(0, 2), max_size=2))

CASES = [
    Case("COUNT", (), ()),
    Case("COUNT", (STRING,), (STRINGS,)),
    Case("SUM", (INTEGER,), (INTS,)),
    Case("SUM", (DOUBLE,), (DOUBLES,), exact=False),
    Case("SUM", (DecimalType(38, 2),), (DECIMALS,)),
    Case("SUM_LIST", (ArrayType(BIGINT),), (_nullable(st.lists(SMALL_INTS, max_size=3)),)),
    Case("AVG", (BIGINT,), (INTS,)),
    Case("AVG", (DOUBLE,), (DOUBLES,), exact=False),
    Case("MIN", (INTEGER,), (INTS,)),
    Case("MAX", (STRING,), (STRINGS,)),
    Case("MIN", (DOUBLE,), (_nullable(st.sampled_from([0.0, -0.0, 1.5, math.nan, -2.0])),)),
    Case("MAX", (DecimalType(6, 2),), (DECIMALS,)),
    Case("TOPK", (INTEGER, INTEGER), (SMALL_INTS,), (3,)),
    Case("TOPK", (DOUBLE, STRING, INTEGER), (DOUBLES, STRINGS), (2,)),
    Case("TOPKDISTINCT", (STRING, INTEGER), (STRINGS,), (2,)),
    Case("COLLECT_LIST", (MapType(STRING, INTEGER),), (MAPS,)),
    Case("COLLECT_SET", (MapType(STRING, INTEGER),), (MAPS,)),
    Case("COUNT_DISTINCT", (INTEGER,), (SMALL_INTS,)),
    Case("HISTOGRAM", (STRING,), (STRINGS,)),
    Case("ATTR", (INTEGER,), (_nullable(st.integers(0, 1)),)),
    Case("CORRELATION", (DOUBLE, DOUBLE), (SMALL_INTS.map(lambda i: None if i is None else float(i)),) * 2,
         exact=False),
    Case("STDDEV_SAMP", (BIGINT,), (SMALL_INTS,), exact=False),
    Case("STDDEV_SAMPLE", (DOUBLE,), (MODEST_DOUBLES,), exact=False),
    *[Case(name, (STRING, *types), (STRINGS,), literals)
      for name in ("EARLIEST_BY_OFFSET", "LATEST_BY_OFFSET")
      for types, literals in [((), ()), ((BOOLEAN,), (False,)), ((INTEGER,), (2,)), ((INTEGER, BOOLEAN), (3, False))]],
]


def same(left: Any, right: Any, exact: bool) -> bool:
    """Equal values; NaN equals NaN, and doubles may differ in the last bits unless `exact`."""
    if isinstance(left, float) and isinstance(right, float):
        if math.isnan(left) or math.isnan(right):
            return math.isnan(left) and math.isnan(right)
        return left == right and math.copysign(1, left) == math.copysign(1, right) if exact \
            else math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-6)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(same(a, b, exact) for a, b in zip(left, right, strict=True))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(same(left[k], right[k], exact) for k in left)
    return type(left) is type(right) and left == right


def rows(case: Case, size: int) -> st.SearchStrategy[list[list[Any]]]:
    if not case.columns:
        return st.just([])
    return st.lists(st.tuples(*case.columns), min_size=size, max_size=size + 12).map(
        lambda drawn: [list(column) for column in zip(*drawn, strict=True)] if drawn else [[] for _ in case.columns])


def split(columns: list[list[Any]], at: int) -> tuple[list[list[Any]], list[list[Any]]]:
    return [c[:at] for c in columns], [c[at:] for c in columns]


def with_offsets(aggregator: Aggregator, columns: list[list[Any]], count: int, first_offset: int) -> list[list[Any]]:
    offsets = [list(range(first_offset, first_offset + count))] if aggregator.needs_sequence else []
    return columns + offsets


@pytest.mark.parametrize("case", CASES, ids=str)
@settings(max_examples=60, deadline=None, derandomize=True)
@given(data=st.data())
def test_aggregator_contract(case: Case, data: st.DataObject) -> None:
    aggregator = bind(case.name, case.arg_types, case.literals)
    exact = case.exact
    base_columns = data.draw(rows(case, 0), "base rows")
    new_columns = data.draw(rows(case, 1), "new rows")
    base_count = len(base_columns[0]) if base_columns else data.draw(st.integers(0, 5), "base count")
    new_count = len(new_columns[0]) if new_columns else data.draw(st.integers(1, 8), "new count")
    base = with_offsets(aggregator, base_columns, base_count, 0)
    new = with_offsets(aggregator, new_columns, new_count, base_count)

    start = aggregator.add(aggregator.initial(), base)
    kept = copy.deepcopy(start)
    added = aggregator.add(start, new)
    each_accumulator, each_results = aggregator.add_each(start, new)
    assert same(start, kept, True), "an aggregator must not change the accumulator it is given"

    # add_each: its accumulator is add's, and each running result is the result of adding that prefix
    assert same(aggregator.result(each_accumulator), aggregator.result(added), exact)
    assert len(each_results) == new_count
    for row, result in enumerate(each_results):
        prefix = aggregator.add(start, [column[: row + 1] for column in new])
        assert same(result, aggregator.result(prefix), exact), f"running result after row {row}"

    # adding in two slices is adding once
    at = data.draw(st.integers(0, new_count), "split at")
    first, second = split(new, at)
    assert same(aggregator.result(aggregator.add(aggregator.add(start, first), second)),
                aggregator.result(added), exact)

    # merging two sessions is adding both, the earlier one first
    later = aggregator.add(aggregator.initial(), new)
    assert same(aggregator.result(aggregator.merge(start, later)), aggregator.result(added), exact)
    assert same(later, aggregator.add(aggregator.initial(), new), True)

    # results are fresh: changing one changes nothing held
    result = aggregator.result(added)
    if isinstance(result, (list, dict)):
        expected = copy.deepcopy(result)
        result.clear()
        assert same(aggregator.result(added), expected, True), "a result must not be what the accumulator holds"

    if aggregator.undoable:
        restored = aggregator.undo(added, new)
        if case.name == "COLLECT_LIST":  # the first equal value goes, so only the multiset is restored
            assert Counter(map(equality_key, aggregator.result(restored))) == Counter(
                map(equality_key, aggregator.result(start)))
        else:
            assert same(aggregator.result(restored), aggregator.result(start), exact)


def test_show_and_describe_functions_present_aggregates_as_ksqldb_does() -> None:
    driver = InMemoryDriver()
    shown = {row[0]: row for row in driver.execute("SHOW FUNCTIONS;")[0].rows}
    for name in ("COUNT", "TOPK", "LATEST_BY_OFFSET", "STDDEV_SAMPLE"):
        assert shown[name][1:3] == ["AGGREGATE", "AGGREGATE"]
    assert shown["ABS"][2] == "SCALAR"
    described = driver.execute("DESCRIBE FUNCTION topk;")[0]
    assert "Type        : AGGREGATE" in described.message
    variations = {row[0]: row[1] for row in described.rows}
    assert variations["TOPK(INTEGER, INTEGER)"] == "ARRAY<INTEGER>"
    assert variations["TOPK(T, ANY, INTEGER)"] == "depends on arguments"
    assert {row[0]: row[1] for row in driver.execute("DESCRIBE FUNCTION COLLECT_LIST;")[0].rows} == {
        "COLLECT_LIST(T)": "ARRAY<T>"}


@pytest.mark.parametrize(("name", "sql_type", "values"), [
    ("MAX", BIGINT, st.integers(-(2**63), 2**63 - 1)),
    ("MIN", DOUBLE, st.floats(-1e300, 1e300, allow_nan=False).filter(bool)),
    ("MAX", TIMESTAMP, st.integers(0, 2**50)),
])
@settings(max_examples=25, deadline=None, derandomize=True)
@given(data=st.data())
def test_running_extremes_over_long_slices_match_row_by_row(name: str, sql_type: SqlType,
                                                            values: st.SearchStrategy[Any], data: st.DataObject) -> None:
    aggregator = bind(name, [sql_type])
    column = data.draw(st.lists(values, min_size=48, max_size=120), "slice")
    start = data.draw(st.one_of(st.none(), values), "accumulator")
    accumulator, results = aggregator.add_each(start, [column])
    expected, row_results = start, []
    for value in column:
        expected = aggregator.add(expected, [[value]])
        row_results.append(expected)
    assert results == row_results and accumulator == expected
    assert all(type(r) is type(column[0]) for r in results)


@pytest.mark.parametrize(("name", "values", "expected"), [
    ("COLLECT_LIST", [1, 2, 2, 3], [1, 2]),
    ("COLLECT_SET", [1, 1, 2, 3], [1, 2]),
])
def test_collections_stop_at_their_configured_limit(name: str, values: list[int], expected: list[int]) -> None:
    aggregator = bind(name, [INTEGER])
    aggregator.configure({f"ksql.functions.{name.lower()}.limit": 2})
    assert total(aggregator, values) == expected
    first, rest = values[:1], values[1:]
    assert aggregator.result(aggregator.add(aggregator.add(aggregator.initial(), [first]), [rest])) == expected


def test_collections_hold_a_thousand_values_by_default_and_count_distinct_has_no_limit() -> None:
    assert len(total(bind("COLLECT_LIST", [INTEGER]), list(range(1500)))) == 1000
    assert total(bind("COUNT_DISTINCT", [INTEGER]), list(range(1500))) == 1500
