"""Built-in aggregate functions: ksqlDB's catalogue as Aggregators that fold whole column slices.

Type and NULL rules follow ksqlDB: NULL inputs are skipped except by COLLECT_LIST, COLLECT_SET, ATTR and
the *_BY_OFFSET functions when told not to ignore them; SUM keeps its argument's type (INT and BIGINT wrap
around as Java's do, a DECIMAL that outgrows its precision fails); AVG, STDDEV_* and CORRELATION give
DOUBLE. Doubles are added one after another, as Java does, never with compensated summation.
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from decimal import Context, Decimal
from functools import partial, reduce
from itertools import accumulate
from operator import add, is_not, itemgetter, mul, sub, truediv
from typing import Any, ClassVar

from ksqlpy.errors import EvaluationError, StatementError
from ksqlpy.functions.aggregate import Aggregator, Columns
from ksqlpy.functions.builtins.collections import _distinct, equality_key, natural_order_key
from ksqlpy.functions.registry import ANY, ANY_DECIMAL, ReturnSpec, T, aggregate_function
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

_not_none = partial(is_not, None)
_EXACT = Context(prec=1000)
_ORDERED_TYPES: tuple[SqlType, ...] = (INTEGER, BIGINT, DOUBLE, ANY_DECIMAL, STRING, BYTES, DATE, TIME, TIMESTAMP)
# Running MIN/MAX over a slice at least this long is one numpy pass (measured: builtins win below about 40 rows)
NUMPY_SLICE = 48
_NUMPY_ORDERED = (INTEGER, BIGINT, DOUBLE, DATE, TIME, TIMESTAMP)
HISTOGRAM_LIMIT = 1000
COLLECTION_LIMIT = 1000  # ksqlDB's default for ksql.functions.collect_list.limit and collect_set.limit
TOPK_STRUCT_COLUMNS = 4  # TOPK(sort, col0, ..., col3, k): the most extra columns a call may carry


def _present(column: Sequence[Any]) -> Sequence[Any]:
    """The column without its NULLs (the column itself when it has none, the common case)."""
    return list(filter(_not_none, column)) if None in column else column


def _same_type(arg_types: list[SqlType]) -> SqlType:
    return arg_types[0]


def _array_of_first(arg_types: list[SqlType]) -> SqlType:
    return ArrayType(arg_types[0])


def _returning(pattern: SqlType) -> ReturnSpec:
    """The return type of an overload taking `pattern` first: the type itself (which DESCRIBE FUNCTION shows),
    except for DECIMAL, whose precision and scale come from the argument."""
    return _same_type if pattern == ANY_DECIMAL else pattern


def _array_returning(pattern: SqlType) -> ReturnSpec:
    return _array_of_first if pattern == ANY_DECIMAL else ArrayType(pattern)


def _java_divide(numerator: float, denominator: float) -> float:
    """Java's double division: x/0 is an infinity (NaN for 0/0 or NaN/0) where Python raises."""
    if denominator:
        return numerator / denominator
    if numerator == 0 or math.isnan(numerator):
        return math.nan
    return math.copysign(math.inf, numerator) * math.copysign(1.0, denominator)


def _java_sqrt(value: float) -> float:
    return math.sqrt(value) if value >= 0 else math.nan


# --------------------------------------------------------------------------- numbers


class Arithmetic:
    """Adding and taking back values of one numeric SQL type the way ksqlDB's Java aggregates do."""

    def __init__(self, sql_type: SqlType) -> None:
        self.sql_type = sql_type
        self.bits = 32 if sql_type == INTEGER else 64 if sql_type == BIGINT else 0
        self.zero: Any = 0 if self.bits else 0.0 if sql_type == DOUBLE else Decimal(0).scaleb(
            -sql_type.scale if isinstance(sql_type, DecimalType) else 0)
        self.plus: Callable[[Any, Any], Any] = _EXACT.add if isinstance(sql_type, DecimalType) else add
        self.minus: Callable[[Any, Any], Any] = _EXACT.subtract if isinstance(sql_type, DecimalType) else sub

    def total(self, start: Any, values: Sequence[Any]) -> Any:
        if self.bits:
            return self.fit(sum(values, start))
        return self.fit(reduce(self.plus, values, start))

    def taken_back(self, start: Any, values: Sequence[Any]) -> Any:
        if self.bits:
            return self.fit(start - sum(values))
        return self.fit(reduce(self.minus, values, start))

    def running(self, start: Any, column: Sequence[Any]) -> list[Any]:
        """The total after each row of `column` (a NULL row leaves it as it was)."""
        values = column if None not in column else [self.zero if v is None else v for v in column]
        totals = list(accumulate(values, self.plus, initial=start))[1:]
        if totals and (self.bits or isinstance(self.sql_type, DecimalType)):
            highest, lowest = max(totals), min(totals)
            if self.fit(highest) != highest or self.fit(lowest) != lowest:  # some total wrapped around
                return [self.fit(t) for t in totals]
        return totals

    def fit(self, value: Any) -> Any:
        """The value as the SQL type holds it: integers wrap around, a DECIMAL that outgrew its precision fails."""
        if self.bits:
            half = 1 << (self.bits - 1)
            return value if -half <= value < half else ((value + half) % (1 << self.bits)) - half
        if isinstance(self.sql_type, DecimalType) and value and (
                value.adjusted() + 1 > self.sql_type.precision - self.sql_type.scale):
            raise EvaluationError(f"Numeric field overflow: {value} does not fit {self.sql_type}")
        return value


# --------------------------------------------------------------------------- COUNT


@aggregate_function("COUNT", params=[], returns=BIGINT, description="Counts the rows (COUNT(*)).")
class CountRows(Aggregator):
    """COUNT(*). It has no column arguments, so it asks for the rows' input positions just to see the rows."""

    primitive_intermediate = True
    undoable = True
    needs_sequence = True

    def initial(self) -> int:
        return 0

    def add(self, accumulator: int, columns: Columns) -> int:
        return accumulator + len(columns[-1])

    def add_each(self, accumulator: int, columns: Columns) -> tuple[int, list[Any]]:
        rows = len(columns[-1])
        return accumulator + rows, list(range(accumulator + 1, accumulator + rows + 1))

    def add_each_grouped(self, accumulators: Sequence[Any], columns: Columns,
                         group_of: Sequence[int]) -> tuple[list[Any], list[Any]]:
        counts = list(accumulators)
        results: list[Any] = []
        append = results.append
        for group in group_of:
            count = counts[group] + 1
            counts[group] = count
            append(count)
        return counts, results

    def undo(self, accumulator: int, columns: Columns) -> int:
        return accumulator - len(columns[-1])

    def merge(self, earlier: int, later: int) -> int:
        return earlier + later

    def result(self, accumulator: int) -> int:
        return accumulator


@aggregate_function("COUNT", params=[ANY], returns=BIGINT, description="Counts the rows where the argument is not NULL.")
class CountValues(CountRows):
    needs_sequence = False

    def add(self, accumulator: int, columns: Columns) -> int:
        column = columns[0]
        return accumulator + len(column) - column.count(None)

    def add_each(self, accumulator: int, columns: Columns) -> tuple[int, list[Any]]:
        column = columns[0]
        if None not in column:
            return super().add_each(accumulator, columns)
        counts = list(accumulate(map(_not_none, column), initial=accumulator))[1:]
        return counts[-1], counts

    def add_each_grouped(self, accumulators: Sequence[Any], columns: Columns,
                         group_of: Sequence[int]) -> tuple[list[Any], list[Any]]:
        if None not in columns[0]:  # every row counts, as for COUNT(*)
            return super().add_each_grouped(accumulators, columns, group_of)
        return Aggregator.add_each_grouped(self, accumulators, columns, group_of)

    def undo(self, accumulator: int, columns: Columns) -> int:
        column = columns[0]
        return accumulator - len(column) + column.count(None)


# --------------------------------------------------------------------------- SUM, SUM_LIST, AVG


@aggregate_function("SUM", params=[INTEGER], returns=INTEGER, description="Sums the column values.")
@aggregate_function("SUM", params=[BIGINT], returns=BIGINT, description="Sums the column values.")
@aggregate_function("SUM", params=[DOUBLE], returns=DOUBLE, description="Sums the column values.")
@aggregate_function("SUM", params=[ANY_DECIMAL], returns=_same_type, description="Sums the column values.")
class Sum(Aggregator):
    primitive_intermediate = True
    undoable = True

    def __init__(self, arg_types: Sequence[SqlType], return_type: SqlType, literals: Sequence[Any]) -> None:
        super().__init__(arg_types, return_type, literals)
        self.arithmetic = Arithmetic(return_type)

    def initial(self) -> Any:
        return self.arithmetic.zero

    def add(self, accumulator: Any, columns: Columns) -> Any:
        return self.arithmetic.total(accumulator, _present(columns[0]))

    def add_each(self, accumulator: Any, columns: Columns) -> tuple[Any, list[Any]]:
        totals = self.arithmetic.running(accumulator, columns[0])
        return (totals[-1] if totals else accumulator), totals

    def undo(self, accumulator: Any, columns: Columns) -> Any:
        return self.arithmetic.taken_back(accumulator, _present(columns[0]))

    def merge(self, earlier: Any, later: Any) -> Any:
        return self.arithmetic.fit(self.arithmetic.plus(earlier, later))

    def result(self, accumulator: Any) -> Any:
        return accumulator


@aggregate_function("SUM_LIST", params=[ArrayType(INTEGER)], returns=INTEGER,
                    description="Sums the elements of the arrays.")
@aggregate_function("SUM_LIST", params=[ArrayType(BIGINT)], returns=BIGINT,
                    description="Sums the elements of the arrays.")
@aggregate_function("SUM_LIST", params=[ArrayType(DOUBLE)], returns=DOUBLE,
                    description="Sums the elements of the arrays.")
class SumList(Sum):
    def _elements(self, columns: Columns) -> list[Any]:
        return [element for array in _present(columns[0]) for element in array if element is not None]

    def add(self, accumulator: Any, columns: Columns) -> Any:
        return self.arithmetic.total(accumulator, self._elements(columns))

    def add_each(self, accumulator: Any, columns: Columns) -> tuple[Any, list[Any]]:
        return Aggregator.add_each(self, accumulator, columns)

    def undo(self, accumulator: Any, columns: Columns) -> Any:
        return self.arithmetic.taken_back(accumulator, self._elements(columns))


@aggregate_function("AVG", params=[INTEGER], returns=DOUBLE, description="Averages the column values (0.0 for none).")
@aggregate_function("AVG", params=[BIGINT], returns=DOUBLE, description="Averages the column values (0.0 for none).")
@aggregate_function("AVG", params=[DOUBLE], returns=DOUBLE, description="Averages the column values (0.0 for none).")
class Average(Aggregator):
    """AVG: [sum in the argument's type, count of non-NULL values]; the sum of INTs wraps at 32 bits as ksqlDB's does."""

    undoable = True

    def __init__(self, arg_types: Sequence[SqlType], return_type: SqlType, literals: Sequence[Any]) -> None:
        super().__init__(arg_types, return_type, literals)
        self.arithmetic = Arithmetic(self.arg_types[0])

    def initial(self) -> list[Any]:
        return [self.arithmetic.zero, 0]

    def add(self, accumulator: list[Any], columns: Columns) -> list[Any]:
        values = _present(columns[0])
        return [self.arithmetic.total(accumulator[0], values), accumulator[1] + len(values)]

    def add_each(self, accumulator: list[Any], columns: Columns) -> tuple[list[Any], list[Any]]:
        column = columns[0]
        totals = self.arithmetic.running(accumulator[0], column)
        if not totals:
            return accumulator, []
        if None not in column:  # no NULL, so no count of zero: the division needs no guard
            counts: Sequence[int] = range(accumulator[1] + 1, accumulator[1] + len(column) + 1)
            sums = totals if self.arithmetic.sql_type == DOUBLE else map(float, totals)
            return [totals[-1], counts[-1]], list(map(truediv, sums, counts))
        counts = list(accumulate(map(_not_none, column), initial=accumulator[1]))[1:]
        return [totals[-1], counts[-1]], list(map(_average, totals, counts))

    def add_each_grouped(self, accumulators: Sequence[Any], columns: Columns,
                         group_of: Sequence[int]) -> tuple[list[Any], list[Any]]:
        column = columns[0]
        if self.arithmetic.sql_type != DOUBLE or None in column:  # sums that wrap or skip: group by group
            return super().add_each_grouped(accumulators, columns, group_of)
        # Doubles added one after another as Java does, in one pass over the rows
        totals = [accumulator[0] for accumulator in accumulators]
        counts = [accumulator[1] for accumulator in accumulators]
        results: list[Any] = []
        append = results.append
        for group, value in zip(group_of, column, strict=True):
            total = totals[group] + value
            count = counts[group] + 1
            totals[group] = total
            counts[group] = count
            append(total / count)
        return [[total, count] for total, count in zip(totals, counts, strict=True)], results

    def undo(self, accumulator: list[Any], columns: Columns) -> list[Any]:
        values = _present(columns[0])
        return [self.arithmetic.taken_back(accumulator[0], values), accumulator[1] - len(values)]

    def merge(self, earlier: list[Any], later: list[Any]) -> list[Any]:
        return [self.arithmetic.fit(self.arithmetic.plus(earlier[0], later[0])), earlier[1] + later[1]]

    def result(self, accumulator: list[Any]) -> float:
        return _average(*accumulator)


def _average(total: Any, count: int) -> float:
    return float(total) / count if count else 0.0


# --------------------------------------------------------------------------- MIN, MAX


class Ordering:
    """Java's natural order for one SQL type, with plain Python comparison wherever that already agrees."""

    def __init__(self, sql_type: SqlType) -> None:
        key = natural_order_key(sql_type)
        if key is None:
            raise StatementError(f"Values of type {sql_type} cannot be ordered")
        self.sql_type = sql_type
        self.key: Callable[[Any], Any] | None = key if sql_type in (DOUBLE, STRING, BYTES) else None

    def needs_key(self, values: Sequence[Any]) -> bool:
        """Whether Python's own order may differ from Java's for these (non-NULL) values: NaN and -0.0 for
        doubles, characters beyond U+FFFF for strings (Java compares UTF-16 units), always for bytes (signed)."""
        if self.key is None:
            return False
        if self.sql_type == DOUBLE:
            return any(map(math.isnan, values)) or 0.0 in values
        if self.sql_type == STRING:
            return not all(map(str.isascii, values))
        return True

    def pick(self, choose: Callable[..., Any], values: Sequence[Any]) -> Any:
        return choose(values, key=self.key) if self.needs_key(values) else choose(values)


class Extreme(Aggregator):
    """MIN or MAX: the accumulator is the extreme value so far, or None."""

    primitive_intermediate = True
    choose: ClassVar[Callable[..., Any]]

    def __init__(self, arg_types: Sequence[SqlType], return_type: SqlType, literals: Sequence[Any]) -> None:
        super().__init__(arg_types, return_type, literals)
        self.ordering = Ordering(self.arg_types[0])

    def initial(self) -> Any:
        return None

    def add(self, accumulator: Any, columns: Columns) -> Any:
        values = _present(columns[0])
        if not values:
            return accumulator
        return self.ordering.pick(type(self).choose, values if accumulator is None else [accumulator, *values])

    def add_each(self, accumulator: Any, columns: Columns) -> tuple[Any, list[Any]]:
        column = columns[0]
        choose = type(self).choose
        values = _present(column)
        step: Callable[[Any, Any], Any] = choose
        if values is column and len(column) >= NUMPY_SLICE and self.arg_types[0] in _NUMPY_ORDERED \
                and not self.ordering.needs_key(values):
            running = self._numpy_running(column if accumulator is None else [accumulator, *column])
            if accumulator is not None:
                del running[0]
            return running[-1], running
        if values is not column or self.ordering.needs_key(values):
            def step(best: Any, value: Any) -> Any:
                if value is None:
                    return best
                return value if best is None else self.ordering.pick(choose, [best, value])

        # accumulate() takes initial=None for "no initial value", which is what a None accumulator means here
        running = list(accumulate(column, step, initial=accumulator))
        if accumulator is not None:
            del running[0]
        return (running[-1] if running else accumulator), running

    def _numpy_running(self, values: Sequence[Any]) -> list[Any]:
        import numpy

        ufunc = numpy.minimum if type(self).choose is min else numpy.maximum
        running: list[Any] = ufunc.accumulate(numpy.array(values)).tolist()
        return running

    def merge(self, earlier: Any, later: Any) -> Any:
        return self.add(earlier, [[later]])

    def result(self, accumulator: Any) -> Any:
        return accumulator


Form = tuple[list[SqlType], ReturnSpec, int, str]  # parameters, return type, literal parameters, description


def _declared(name: str, forms: list[Form]) -> Callable[[type[Aggregator]], type[Aggregator]]:
    """A class decorator declaring the aggregator as `name` with each of `forms`."""

    def declare(cls: type[Aggregator]) -> type[Aggregator]:
        for params, returns, literals, description in forms:
            aggregate_function(name, params=params, returns=returns, literals=literals, description=description)(cls)
        return cls

    return declare


def _extreme_forms(what: str) -> list[Form]:
    return [([t], _returning(t), 0, f"Returns the {what} value of the column; NULLs are ignored.") for t in _ORDERED_TYPES]


@_declared("MIN", _extreme_forms("minimum"))
class Min(Extreme):
    choose = min


@_declared("MAX", _extreme_forms("maximum"))
class Max(Extreme):
    choose = max


# --------------------------------------------------------------------------- TOPK, TOPKDISTINCT


def _k(literals: Sequence[Any]) -> int:
    k = literals[-1]
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise StatementError(f"The k of TOPK must be a positive INTEGER literal, not {k!r}")
    return k


class TopK(Aggregator):
    """TOPK(col, k): the k greatest values, greatest first; among equal values the earlier row comes first."""

    def __init__(self, arg_types: Sequence[SqlType], return_type: SqlType, literals: Sequence[Any]) -> None:
        super().__init__(arg_types, return_type, literals)
        self.k = _k(literals)
        self.ordering = Ordering(self.arg_types[0])

    def initial(self) -> list[Any]:
        return []

    def _entries(self, columns: Columns) -> list[Any]:
        return list(_present(columns[0]))

    def _sort_values(self, entries: list[Any]) -> list[Any]:
        return entries

    def _ranked(self, entries: list[Any]) -> list[Any]:
        # sorted() is stable with reverse=True too, so the earlier of equal entries stays ahead
        key = self.ordering.key if self.ordering.needs_key(self._sort_values(entries)) else None
        return sorted(entries, key=self._entry_key(key), reverse=True)[: self.k]

    def _entry_key(self, key: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
        return key

    def add(self, accumulator: list[Any], columns: Columns) -> list[Any]:
        entries = self._entries(columns)
        return self._ranked([*accumulator, *entries]) if entries else accumulator

    def merge(self, earlier: list[Any], later: list[Any]) -> list[Any]:
        return self._ranked([*earlier, *later])

    def result(self, accumulator: list[Any]) -> list[Any]:
        return list(accumulator)


def _topk_struct_type(arg_types: list[SqlType]) -> SqlType:
    fields = [("sort_col", arg_types[0])] + [(f"col{i}", t) for i, t in enumerate(arg_types[1:-1])]
    return ArrayType(StructType(tuple(fields)))


class TopKStruct(TopK):
    """TOPK(sort, col0, ..., k): the rows with the k greatest sort values, as STRUCT<sort_col, col0, ...>."""

    def _entries(self, columns: Columns) -> list[Any]:
        return [list(row) for row in zip(*columns, strict=True) if row[0] is not None]

    def _sort_values(self, entries: list[Any]) -> list[Any]:
        return [entry[0] for entry in entries]

    def _entry_key(self, key: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
        first = itemgetter(0)
        return first if key is None else (lambda entry: key(entry[0]))

    def result(self, accumulator: list[Any]) -> list[Any]:
        names = ["sort_col"] + [f"col{i}" for i in range(len(self.arg_types) - 2)]
        return [dict(zip(names, entry, strict=True)) for entry in accumulator]


class TopKDistinct(TopK):
    """TOPKDISTINCT(col, k): the k greatest distinct values, greatest first."""

    def _ranked(self, entries: list[Any]) -> list[Any]:
        return super()._ranked(_distinct(entries))


_declared("TOPK", [([t, INTEGER], _array_returning(t), 1, "Returns the k greatest values of the column; NULLs are "
                                                     "ignored.") for t in _ORDERED_TYPES])(TopK)
_declared("TOPKDISTINCT", [([t, INTEGER], _array_returning(t), 1, "Returns the k greatest distinct values of the column; "
                                                             "NULLs are ignored.") for t in _ORDERED_TYPES])(TopKDistinct)
_declared("TOPK", [([T, *[ANY] * extra, INTEGER], _topk_struct_type, 1,
                    "Returns the rows with the k greatest values of the first column, with the other columns, as "
                    "STRUCTs (sort_col, col0, ...); rows whose first column is NULL are ignored.")
                   for extra in range(1, TOPK_STRUCT_COLUMNS + 1)])(TopKStruct)


# --------------------------------------------------------------------------- collections


@aggregate_function("COLLECT_LIST", params=[T], returns=ArrayType(T),
                    description="Returns an array of all the values of the column, NULLs included, in arrival order.")
class CollectList(Aggregator):
    undoable = True
    # ksqlDB's property capping the collection, and its default; later values are dropped
    limit_property: str | None = "ksql.functions.collect_list.limit"
    limit = COLLECTION_LIMIT

    def configure(self, properties: Mapping[str, Any]) -> None:
        if self.limit_property is not None and self.limit_property in properties:
            self.limit = int(str(properties[self.limit_property]))

    def initial(self) -> list[Any]:
        return []

    def add(self, accumulator: list[Any], columns: Columns) -> list[Any]:
        if len(accumulator) >= self.limit:
            return accumulator
        return [*accumulator, *columns[0][: self.limit - len(accumulator)]]

    def undo(self, accumulator: list[Any], columns: Columns) -> list[Any]:
        kept = list(accumulator)
        for value in columns[0]:
            key = equality_key(value)
            index = next((i for i, v in enumerate(kept) if equality_key(v) == key), None)
            if index is not None:
                del kept[index]
        return kept

    def merge(self, earlier: list[Any], later: list[Any]) -> list[Any]:
        return [*earlier, *later]

    def result(self, accumulator: list[Any]) -> list[Any]:
        return list(accumulator)


@aggregate_function("COLLECT_SET", params=[T], returns=ArrayType(T),
                    description="Returns an array of the distinct values of the column, NULL included, "
                                "in order of first arrival.")
class CollectSet(CollectList):
    undoable = False
    limit_property: str | None = "ksql.functions.collect_set.limit"

    def add(self, accumulator: list[Any], columns: Columns) -> list[Any]:
        added = _distinct(columns[0], set(map(equality_key, accumulator)))[: max(0, self.limit - len(accumulator))]
        return [*accumulator, *added] if added else accumulator

    def undo(self, accumulator: list[Any], columns: Columns) -> list[Any]:
        return Aggregator.undo(self, accumulator, columns)

    def merge(self, earlier: list[Any], later: list[Any]) -> list[Any]:
        return self.add(earlier, [later])


@aggregate_function("COUNT_DISTINCT", params=[T], returns=BIGINT,
                    description="Returns the number of distinct non-NULL values of the column (ksqlDB estimates it "
                                "with HyperLogLog; this count is exact).")
class CountDistinct(CollectSet):
    limit_property = None
    limit = sys.maxsize
    def add(self, accumulator: list[Any], columns: Columns) -> list[Any]:
        return super().add(accumulator, [_present(columns[0])])

    def result(self, accumulator: list[Any]) -> int:  # type: ignore[override]
        return len(accumulator)


@aggregate_function("HISTOGRAM", params=[STRING], returns=MapType(STRING, BIGINT),
                    description="Returns a map of each distinct string value of the column to the number of times it "
                                f"occurs, for at most {HISTOGRAM_LIMIT} distinct values; NULLs are ignored.")
class Histogram(Aggregator):
    undoable = True

    def initial(self) -> dict[str, int]:
        return {}

    def add(self, accumulator: dict[str, int], columns: Columns) -> dict[str, int]:
        return self._counted(accumulator, Counter(_present(columns[0])).items())

    def _counted(self, accumulator: dict[str, int], counts: Any) -> dict[str, int]:
        histogram = dict(accumulator)
        for value, count in counts:
            if value in histogram:
                histogram[value] += count
            elif len(histogram) < HISTOGRAM_LIMIT:
                histogram[value] = count
        return histogram

    def undo(self, accumulator: dict[str, int], columns: Columns) -> dict[str, int]:
        histogram = dict(accumulator)
        for value, count in Counter(_present(columns[0])).items():
            left = histogram.get(value, 0) - count
            if left > 0:
                histogram[value] = left
            else:
                histogram.pop(value, None)
        return histogram

    def merge(self, earlier: dict[str, int], later: dict[str, int]) -> dict[str, int]:
        return self._counted(earlier, later.items())

    def result(self, accumulator: dict[str, int]) -> dict[str, int]:
        return dict(accumulator)


@aggregate_function("ATTR", params=[T], returns=T,
                    description="Returns the value of the column if every row has the same one (NULL counts as a "
                                "value), else NULL.")
class Attr(Aggregator):
    """The accumulator is [[value, count], ...] for each distinct value, so a table row's value can be taken back."""

    undoable = True

    def initial(self) -> list[list[Any]]:
        return []

    def _changed(self, accumulator: list[list[Any]], values: Sequence[Any], sign: int) -> list[list[Any]]:
        entries = {equality_key(value): [value, count] for value, count in accumulator}
        for value in values:
            entry = entries.setdefault(equality_key(value), [value, 0])
            entry[1] += sign
        return [entry for entry in entries.values() if entry[1] > 0]

    def add(self, accumulator: list[list[Any]], columns: Columns) -> list[list[Any]]:
        return self._changed(accumulator, columns[0], 1)

    def undo(self, accumulator: list[list[Any]], columns: Columns) -> list[list[Any]]:
        return self._changed(accumulator, columns[0], -1)

    def merge(self, earlier: list[list[Any]], later: list[list[Any]]) -> list[list[Any]]:
        return self._changed(earlier, [v for v, count in later for _ in range(count)], 1)

    def result(self, accumulator: list[list[Any]]) -> Any:
        return accumulator[0][0] if len(accumulator) == 1 else None


# --------------------------------------------------------------------------- statistics


@aggregate_function("CORRELATION", params=[DOUBLE, DOUBLE], returns=DOUBLE,
                    description="Returns the Pearson correlation of the two columns over the rows where neither is "
                                "NULL (NaN for fewer than two).")
class Correlation(Aggregator):
    """The accumulator is [n, sum x, sum y, sum x², sum y², sum xy]."""

    undoable = True

    def initial(self) -> list[Any]:
        return [0, 0.0, 0.0, 0.0, 0.0, 0.0]

    def _moved(self, accumulator: list[Any], columns: Columns, step: Callable[[Any, Any], Any]) -> list[Any]:
        xs, ys = columns[0], columns[1]
        if None in xs or None in ys:
            pairs = [(x, y) for x, y in zip(xs, ys, strict=True) if x is not None and y is not None]
            xs, ys = [x for x, _ in pairs], [y for _, y in pairs]
        n, sx, sy, sxx, syy, sxy = accumulator
        return [step(n, len(xs)), reduce(step, xs, sx), reduce(step, ys, sy), reduce(step, map(mul, xs, xs), sxx),
                reduce(step, map(mul, ys, ys), syy), reduce(step, map(mul, xs, ys), sxy)]

    def add(self, accumulator: list[Any], columns: Columns) -> list[Any]:
        return self._moved(accumulator, columns, add)

    def undo(self, accumulator: list[Any], columns: Columns) -> list[Any]:
        return self._moved(accumulator, columns, sub)

    def merge(self, earlier: list[Any], later: list[Any]) -> list[Any]:
        return list(map(add, earlier, later))

    def result(self, accumulator: list[Any]) -> float:
        n, sx, sy, sxx, syy, sxy = accumulator
        spread = _java_sqrt(n * sxx - sx * sx) * _java_sqrt(n * syy - sy * sy)
        return _java_divide(n * sxy - sx * sy, spread)


@aggregate_function("STDDEV_SAMP", params=[INTEGER], returns=DOUBLE,
                    description="Returns the sample variance of the column (ksqlDB's STDDEV_SAMP is the square of "
                                "the standard deviation; see STDDEV_SAMPLE).")
@aggregate_function("STDDEV_SAMP", params=[BIGINT], returns=DOUBLE,
                    description="Returns the sample variance of the column (ksqlDB's STDDEV_SAMP is the square of "
                                "the standard deviation; see STDDEV_SAMPLE).")
@aggregate_function("STDDEV_SAMP", params=[DOUBLE], returns=DOUBLE,
                    description="Returns the sample variance of the column (ksqlDB's STDDEV_SAMP is the square of "
                                "the standard deviation; see STDDEV_SAMPLE).")
class SampleVariance(Aggregator):
    """[count, sum, M2] updated with Youngs and Cramer's recurrence, as ksqlDB does (the same digits)."""

    undoable = True

    def initial(self) -> list[Any]:
        return [0, 0, 0.0]

    def add(self, accumulator: list[Any], columns: Columns) -> list[Any]:
        count, total, m2 = accumulator
        for value in _present(columns[0]):
            count += 1
            total += value
            if count > 1:
                t = float(count * value - total)
                m2 += t * t / (count * (count - 1))
        return [count, total, m2]

    def undo(self, accumulator: list[Any], columns: Columns) -> list[Any]:
        count, total, m2 = accumulator
        for value in _present(columns[0]):
            if count > 1:
                t = float(count * value - total)
                m2 -= t * t / (count * (count - 1))
            else:
                m2 = 0.0
            count -= 1
            total -= value
        return [count, total, m2]

    def merge(self, earlier: list[Any], later: list[Any]) -> list[Any]:
        (n1, s1, m1), (n2, s2, m2) = earlier, later
        if not n1 or not n2:
            return list(later if not n1 else earlier)
        t = (n2 / n1) * s1 - s2
        return [n1 + n2, s1 + s2, m1 + m2 + n1 / (n2 * (n1 + n2)) * t * t]

    def result(self, accumulator: list[Any]) -> float:
        count, _, m2 = accumulator
        # taking rows back can leave rounding residue below zero, where no variance is
        return max(m2, 0.0) / (count - 1) if count > 1 else 0.0


@aggregate_function("STDDEV_SAMPLE", params=[INTEGER], returns=DOUBLE,
                    description="Returns the sample standard deviation of the column.")
@aggregate_function("STDDEV_SAMPLE", params=[BIGINT], returns=DOUBLE,
                    description="Returns the sample standard deviation of the column.")
@aggregate_function("STDDEV_SAMPLE", params=[DOUBLE], returns=DOUBLE,
                    description="Returns the sample standard deviation of the column.")
class SampleStandardDeviation(SampleVariance):
    def result(self, accumulator: list[Any]) -> float:
        return math.sqrt(super().result(accumulator))


# --------------------------------------------------------------------------- EARLIEST/LATEST_BY_OFFSET


class ByOffset(Aggregator):
    """EARLIEST_BY_OFFSET / LATEST_BY_OFFSET. The accumulator is [[offset, value], ...] in offset order, at most n
    entries; the one-value forms keep one and give its value (NULL when there is none), the n forms an array."""

    needs_sequence = True
    latest: ClassVar[bool]

    def __init__(self, arg_types: Sequence[SqlType], return_type: SqlType, literals: Sequence[Any]) -> None:
        super().__init__(arg_types, return_type, literals)
        self.ignore_nulls = bool(literals[-1]) if literals and self.arg_types[-1] == BOOLEAN else True
        self.as_array = len(self.arg_types) > 1 and self.arg_types[1] != BOOLEAN
        self.n = literals[0] if self.as_array else 1
        if not isinstance(self.n, int) or self.n < 1:
            raise StatementError(f"The number of values to keep must be a positive INTEGER literal, not {self.n!r}")

    def initial(self) -> list[list[Any]]:
        return []

    def _entries(self, columns: Columns) -> list[list[Any]]:
        values, offsets = columns[0], columns[-1]
        rows: Sequence[int] = range(len(values))
        if self.ignore_nulls and None in values:
            rows = [i for i, value in enumerate(values) if value is not None]
        kept = rows[-self.n:] if self.latest else rows[: self.n]
        return [[offsets[i], values[i]] for i in kept]

    def _combined(self, accumulator: list[list[Any]], entries: list[list[Any]]) -> list[list[Any]]:
        if not entries:
            return accumulator
        if self.latest and accumulator and entries[0][0] > accumulator[-1][0]:
            return [*accumulator, *entries][-self.n:]
        if not self.latest and len(accumulator) >= self.n and entries[0][0] > accumulator[-1][0]:
            return accumulator
        ordered = sorted([*accumulator, *entries], key=itemgetter(0))
        return ordered[-self.n:] if self.latest else ordered[: self.n]

    def add(self, accumulator: list[list[Any]], columns: Columns) -> list[list[Any]]:
        return self._combined(accumulator, self._entries(columns))

    def add_each(self, accumulator: list[list[Any]], columns: Columns) -> tuple[list[list[Any]], list[Any]]:
        values, offsets = columns[0], columns[-1]
        if not values:
            return accumulator, []
        if accumulator and offsets[0] < accumulator[-1][0]:  # rows older than what is held: no prefix shortcut
            return super().add_each(accumulator, columns)
        held = [value for _, value in accumulator]
        running: list[Any] = []
        for value in values:
            if value is not None or not self.ignore_nulls:
                if self.latest:
                    held = [*held, value][-self.n:]
                elif len(held) < self.n:
                    held = [*held, value]
            running.append(list(held) if self.as_array else (held[0] if held else None))
        return self.add(accumulator, columns), running

    def merge(self, earlier: list[list[Any]], later: list[list[Any]]) -> list[list[Any]]:
        return self._combined(earlier, later)

    def result(self, accumulator: list[list[Any]]) -> Any:
        if self.as_array:
            return [value for _, value in accumulator]
        return accumulator[0][1] if accumulator else None


def _by_offset_forms(which: str) -> list[Form]:
    return [
        ([T], T, 0, f"Returns the {which} value of the column by offset, ignoring NULLs."),
        ([T, BOOLEAN], T, 1, f"Returns the {which} value of the column by offset; NULLs are ignored when "
                                      "the second argument is true."),
        ([T, INTEGER], ArrayType(T), 1, f"Returns the {which} n values of the column by offset, ignoring NULLs."),
        ([T, INTEGER, BOOLEAN], ArrayType(T), 2, f"Returns the {which} n values of the column by offset; NULLs "
                                                    "are ignored when the third argument is true."),
    ]


@_declared("EARLIEST_BY_OFFSET", _by_offset_forms("earliest"))
class EarliestByOffset(ByOffset):
    latest = False


@_declared("LATEST_BY_OFFSET", _by_offset_forms("latest"))
class LatestByOffset(ByOffset):
    latest = True
