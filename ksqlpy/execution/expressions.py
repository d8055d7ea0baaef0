"""Compiles typed expressions into Python functions that evaluate a whole batch column at once.

Each expression becomes generated source for one list comprehension over the input columns it reads,
so a batch costs one tight loop per expression and no tree walking per row. SQL NULL semantics are
inlined. If any row raises (a failing function, a division by zero), the batch is re-evaluated row by
row for that expression only: the failing rows yield NULL and are reported through `on_error`, exactly
as ksqlDB nulls the failing column and logs the record to the processing log.

User-defined functions are looked up once per batch, so a reloaded module takes over at the next batch.
A vectorized UDF is hoisted out of the row loop: its arguments are evaluated as columns, it is called
once for the batch, and its result is one more input column of the loop. Whatever a UDF raises, SystemExit
included, is a failure of that row (see is_udf_failure), and whatever it returns is held to its declared
SQL type a column at a time (ksqlpy.execution.udf_results). When the call is the whole expression its
output column is checked, and fixed in place if need be; a call inside a larger expression has its
results gathered into a column as the loop runs, checked once after it, and a batch where one does not
fit is re-run row by row. Each user function's rows, failures and time are counted once per batch in its
Overload.stats, and a model function's numeric results in its model version's score distribution.
"""

from __future__ import annotations

import math
import re
import traceback
from collections.abc import Callable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from itertools import chain, compress
from time import perf_counter
from typing import Any

from ksqlpy.errors import StatementError, UdfError
from ksqlpy.execution.casts import DECIMAL_CONTEXT, converter, to_decimal
from ksqlpy.execution.udf_results import ResultType, UdfResultTypeError
from ksqlpy.functions.registry import Overload
from ksqlpy.functions.udf import is_udf_failure
from ksqlpy.planning.expressions import ChainValue, Const, InputRef, LambdaVar, Op, TypedExpr
from ksqlpy.types import BIGINT, BOOLEAN, DOUBLE, INTEGER, ArrayType, DecimalType, SqlType, StructType

ErrorHandler = Callable[[int, BaseException], None]
Column = Sequence[Any]
BatchEvaluator = Callable[[Sequence[Column], int, ErrorHandler], list[Any]]

_ARITHMETIC = {"add": "+", "sub": "-", "mul": "*"}
_COMPARISON = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
_PLAIN_LITERALS = (bool, int, str)


# --------------------------------------------------------------------------- run-time helpers


def _int_div(a: int, b: int) -> int:
    quotient = abs(a) // abs(b)  # Java truncates toward zero
    return quotient if (a >= 0) == (b >= 0) else -quotient


def _int_mod(a: int, b: int) -> int:
    return a - b * _int_div(a, b)


def _double_div(a: float, b: float) -> float:
    if b == 0.0:
        if a == 0.0 or a != a:
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def _double_mod(a: float, b: float) -> float:
    return math.nan if b == 0.0 else math.fmod(a, b)


def _decimal_div(a: Decimal, b: Decimal, target: DecimalType) -> Decimal:
    quotient = DECIMAL_CONTEXT.divide(a, b)
    return quotient.quantize(Decimal(1).scaleb(-target.scale), rounding=ROUND_HALF_UP, context=DECIMAL_CONTEXT)


def _array_element(array: list[Any], index: int) -> Any:
    """ksqlDB arrays are 1-based; negative indexes count from the end; out of range is NULL."""
    if index > 0:
        return array[index - 1] if index <= len(array) else None
    if index < 0 and -index <= len(array):
        return array[index]
    return None


_LIKE_CACHE: dict[tuple[str, str | None], re.Pattern[str]] = {}


def like_pattern(pattern: str, escape: str | None) -> re.Pattern[str]:
    key = (pattern, escape)
    compiled = _LIKE_CACHE.get(key)
    if compiled is None:
        parts: list[str] = []
        chars = iter(pattern)
        for char in chars:
            if escape is not None and char == escape:
                parts.append(re.escape(next(chars, "")))
            elif char == "%":
                parts.append(".*")
            elif char == "_":
                parts.append(".")
            else:
                parts.append(re.escape(char))
        compiled = re.compile("".join(parts), re.DOTALL)
        _LIKE_CACHE[key] = compiled
    return compiled


def _like(value: str, pattern: str, escape: str | None) -> bool:
    return like_pattern(pattern, escape).fullmatch(value) is not None


def _in_list(value: Any, items: tuple[Any, ...]) -> bool:
    return value in items


def _guarded(on_error: ErrorHandler, row: int, function: Callable[..., Any], *args: Any) -> Any:
    try:
        return function(*args)
    except Exception as error:
        on_error(row, error)
        return None


def udf_error(overload: Overload, error: BaseException) -> UdfError:
    overload.stats.failed()  # every failing row of a user function comes through here, once
    # A result of the wrong type is ksqlpy's finding, not something the UDF raised: its frames are ksqlpy's own.
    trace = "" if isinstance(error, UdfResultTypeError) else "".join(traceback.format_exception(error, chain=False))
    try:
        return UdfError(overload.name, error, trace)
    except Exception:  # the exception's own message fails to render: say so rather than fail the query
        return UdfError(overload.name, RuntimeError(f"{type(error).__name__} whose message cannot be shown"), trace)


def _fitted(result: ResultType, overload: Overload, column: list[Any], on_error: ErrorHandler,
            rows: Sequence[int] | None = None) -> list[Any]:
    """A user function's result column held to its declared type; a value that does not fit is NULL and
    reported as the function's failure on its row (`rows[i]` for the column's i-th value, or i itself)."""
    def wrong(index: int, error: BaseException) -> None:
        on_error(index if rows is None else rows[index], udf_error(overload, error))

    return result.column(column, wrong)


def _scores_results(sql_type: SqlType) -> bool:
    """Whether a function's results of this type, when a model stands behind it, form a score distribution."""
    return sql_type in (DOUBLE, INTEGER, BIGINT) or isinstance(sql_type, DecimalType)


def _observe_scores(overload: Overload, results: Sequence[Any]) -> None:
    """A batch of a model function's results, counted towards its model version's score distribution."""
    model = overload.model
    if model is not None:
        overload.stats.scored((model.name, model.version), results)


def _guarded_udf(on_error: ErrorHandler, row: int, overload: Overload, result: ResultType,
                 function: Callable[..., Any], *args: Any) -> Any:
    try:
        return result.convert(function(*args))
    except BaseException as error:
        if not is_udf_failure(error):
            raise
        on_error(row, udf_error(overload, error))
        return None


# numpy dtypes of the columns a vectorized UDF receives; other SQL types arrive as lists
_NUMPY_DTYPES: dict[SqlType, str] = {DOUBLE: "float64", BIGINT: "int64", INTEGER: "int64", BOOLEAN: "bool"}


def _left_to_numpy(arg: TypedExpr) -> TypedExpr:
    """An argument without its INTEGER/BIGINT -> DOUBLE widening, which numpy does while building the array."""
    if isinstance(arg, Op) and arg.op == "cast" and arg.type == DOUBLE and arg.args[0].type in (INTEGER, BIGINT):
        return arg.args[0]
    return arg


class VectorizedCall:
    """One call of a vectorized UDF per batch: argument columns in, one result column out.

    Rows with a NULL argument are left out of the call and give NULL. If the call raises, the rows are
    retried one at a time, so only the failing rows are NULL (and reported).
    """

    def __init__(self, call: Op, hoisted: bool = True) -> None:
        """A call that is not `hoisted` (inside a lambda body) is made per row through call_row."""
        import numpy  # loaded with the first vectorized UDF, not with the shell

        self.numpy = numpy
        self.overload: Overload = call.detail.overload
        self.args = [CompiledExpression(_left_to_numpy(arg)) for arg in call.args] if hoisted else []
        self.arg_dtypes = [_NUMPY_DTYPES.get(arg.type) for arg in call.args]
        self.result = ResultType(call.type)
        self.scores = _scores_results(call.type)
        # The last batch's input and result: expressions of one step that share this call share its result.
        self._last: tuple[Sequence[Column], list[Any]] | None = None

    def evaluate(self, columns: Sequence[Column], size: int, on_error: ErrorHandler) -> list[Any]:
        if self._last is not None and self._last[0] is columns:
            return self._last[1]
        result = self._evaluate(columns, size, on_error)
        self._last = (columns, result)
        return result

    def _evaluate(self, columns: Sequence[Column], size: int, on_error: ErrorHandler) -> list[Any]:
        function = self.overload.impl  # the current version: a reload takes over at a batch boundary
        values = [arg.evaluate(columns, size, on_error) for arg in self.args]
        complete = [True] * size
        for column in values:
            if None in column:
                complete = [c and v is not None for c, v in zip(complete, column, strict=True)]
        rows = [i for i, c in enumerate(complete) if c] if False in complete else range(size)
        if len(rows) != size:
            values = [list(compress(column, complete)) for column in values]
        if not rows:
            return [None] * size
        started = perf_counter()
        try:
            results = self._call(function, values, len(rows))
        except BaseException as error:
            if not is_udf_failure(error):
                raise
            results = [self._call_one(function, values, index, row, on_error) for index, row in enumerate(rows)]
        self.overload.stats.called(len(rows), perf_counter() - started)
        results = _fitted(self.result, self.overload, results, on_error, rows)
        if len(rows) == size:
            return results
        out: list[Any] = [None] * size
        for row, result in zip(rows, results, strict=True):
            out[row] = result
        return out

    def _call(self, function: Callable[..., Any], values: list[list[Any]], count: int) -> list[Any]:
        arrays = [
            values[i] if dtype is None else self.numpy.asarray(values[i], dtype=dtype)
            for i, dtype in enumerate(self.arg_dtypes)
        ]
        result = returned = function(*arrays)
        if isinstance(result, self.numpy.ndarray):
            if result.ndim != 1:
                raise ValueError(f"returned an array of shape {result.shape}; expected one value per row")
            if self.result.sql_type == DOUBLE and result.dtype.kind in "iu":
                result = result.astype("float64")  # integers widen to DOUBLE: converted here at C speed
            result = result.tolist()  # any other mismatch is left to self.result's check
        else:
            result = list(result)
        if len(result) != count:
            raise ValueError(f"returned {len(result)} values for {count} rows")
        if self.scores:  # as returned: a numpy array is counted without a conversion
            _observe_scores(self.overload, returned)
        return result

    def call_row(self, *args: Any) -> Any:
        """The function on one row of arguments (a call inside a lambda body cannot be hoisted); the caller
        checks the result's type, as for a row UDF."""
        return self._call(self.overload.impl, [[arg] for arg in args], 1)[0]

    def _call_one(self, function: Callable[..., Any], values: list[list[Any]], index: int, row: int,
                  on_error: ErrorHandler) -> Any:
        try:
            return self._call(function, [[column[index]] for column in values], 1)[0]
        except BaseException as error:
            if not is_udf_failure(error):
                raise
            on_error(row, udf_error(self.overload, error))
            return None


class TableCall:
    """A table function in a select list: each row's call returns a list, and each element becomes a row.

    A failing call (or a NULL argument, for functions that are NULL on NULL) gives no rows; a user
    function's elements of the wrong type are NULL.
    """

    def __init__(self, call: Op) -> None:
        self.overload: Overload = call.detail.overload
        # A built-in is bound once; a user function is looked up per batch, so a reload takes over.
        self.builtin = None if self.overload.user_defined else call.detail.implementation()
        self.args = compile_expressions(call.args)
        self.element = ResultType(call.type)

    def evaluate(self, columns: Sequence[Column], size: int, on_error: ErrorHandler) -> list[list[Any]]:
        function = self.builtin or self.overload.impl
        values = [arg.evaluate(columns, size, on_error) for arg in self.args]
        started = perf_counter()
        results = self._call(function, values, size, on_error)
        self.overload.stats.called(size, perf_counter() - started)
        return results

    def _call(self, function: Callable[..., Any], values: list[list[Any]], size: int,
              on_error: ErrorHandler) -> list[list[Any]]:
        results: list[list[Any]] = []
        for row, args in enumerate(zip(*values, strict=True) if values else [()] * size):
            if self.overload.null_on_null and None in args:
                results.append([])
                continue
            try:
                results.append(list(function(*args) or ()))
            except BaseException as error:
                if not is_udf_failure(error):
                    raise
                on_error(row, udf_error(self.overload, error) if self.overload.user_defined else error)
                results.append([])
        if self.builtin is None and not self.element.fits(list(chain.from_iterable(results))):
            return [_fitted(self.element, self.overload, elements, on_error, [row] * len(elements))
                    for row, elements in enumerate(results)]
        return results


# Steps of a chain folded into one Python expression at most, which Python's compiler nests once per step.
_MAX_FOLDED_STEPS = 16


def _foldable(step: TypedExpr) -> bool:
    return isinstance(step, Op) and step.op in _ARITHMETIC and step.type in (INTEGER, BIGINT, DOUBLE)


def _runs(steps: Sequence[TypedExpr]) -> list[list[TypedExpr]]:
    """A chain's steps in runs that fold into one Python expression: foldable steps of one precedence
    (+ - or *), each after the first reading the one before it as it is (no widening cast)."""
    runs: list[list[TypedExpr]] = []
    for step in steps:
        if runs and _continues(runs[-1], step):
            runs[-1].append(step)
        else:
            runs.append([step])
    return runs


def _continues(run: list[TypedExpr], step: TypedExpr) -> bool:
    first = run[0]
    return (len(run) < _MAX_FOLDED_STEPS and isinstance(first, Op) and isinstance(step, Op)
            and _foldable(first) and _foldable(step) and isinstance(step.args[0], ChainValue)
            and (step.op == "mul") == (first.op == "mul"))


def flat_map(table_columns: list[list[list[Any]]]) -> tuple[list[int], list[list[Any]]]:
    """Rows of several table functions' results zipped, the shorter padded with NULL as ksqlDB does: for
    each output row the input row it came from, and each function's output column."""
    origins: list[int] = []
    outputs: list[list[Any]] = [[] for _ in table_columns]
    for row, lists in enumerate(zip(*table_columns, strict=True)):
        length = max(map(len, lists))
        origins += [row] * length
        for output, items in zip(outputs, lists, strict=True):
            output += items
            output += [None] * (length - len(items))
    return origins, outputs


_RUNTIME: dict[str, Any] = {
    "_guarded": _guarded,
    "_guarded_udf": _guarded_udf,
    "_is_udf_failure": is_udf_failure,
    "_fitted": _fitted,
    "UdfError": UdfError,
    "_int_div": _int_div,
    "_int_mod": _int_mod,
    "_double_div": _double_div,
    "_double_mod": _double_mod,
    "_decimal_div": _decimal_div,
    "_array_element": _array_element,
    "_like": _like,
    "_in_list": _in_list,
    "_DCTX": DECIMAL_CONTEXT,
    "_to_decimal": to_decimal,
}


# --------------------------------------------------------------------------- code generation


class _CodeGen:
    """Builds one Python expression string per typed expression, with its constants in a namespace."""

    def __init__(
        self,
        namespace: dict[str, Any] | None = None,
        guard_calls: bool = False,
        hoisted: dict[str, tuple[str, str]] | None = None,
        shared_calls: dict[str, VectorizedCall] | None = None,
    ) -> None:
        """With `guard_calls`, a failing function call yields NULL by itself (the row-by-row recovery path);
        `hoisted` shares the batch-level vectorized calls of the fast path with the recovery path."""
        self.namespace: dict[str, Any] = namespace if namespace is not None else dict(_RUNTIME)
        self.guard_calls = guard_calls
        self.columns: set[int] = set()  # read by the row loop
        self.read_by_hoisted: set[int] = set()  # read by hoisted calls' arguments
        # name -> code binding it once per batch: the current version of each user function
        self.batch_bindings: dict[str, str] = {}
        # a vectorized call's text -> (its loop variable, code computing its column once per batch)
        self.hoisted: dict[str, tuple[str, str]] = hoisted if hoisted is not None else {}
        # vectorized calls shared by the expressions of one step, so each runs once per batch
        self.shared_calls: dict[str, VectorizedCall] = shared_calls if shared_calls is not None else {}
        # the checks a batch's gathered UDF results must pass for the fast path's output to stand
        self.result_checks: list[str] = []
        # how the fast path's output column is returned: held to a user function's type when it is one's
        self.returned = "out"
        self._temps = 0
        self._lambda_frames: list[dict[str, str]] = []
        # the variable holding the previous step's value while a step of an Op 'chain' is generated
        self._chain_value = ""
        # The whole expression: when it is a user function's call, its output column is the one to check.
        self.root: TypedExpr | None = None
        # user functions called row by row in the loop (by id), whose calls are counted per batch
        self.row_calls: dict[int, Overload] = {}
        # the user function the whole expression is a call of, when its results are a model's scores
        self.scored_root: Overload | None = None

    def constant(self, value: Any) -> str:
        name = f"k{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def temp(self) -> str:
        self._temps += 1
        return f"t{self._temps}"

    def gen(self, e: TypedExpr) -> str:
        if isinstance(e, Const):
            if e.value is None:
                return "None"
            if isinstance(e.value, _PLAIN_LITERALS) or (isinstance(e.value, float) and math.isfinite(e.value)):
                return repr(e.value)
            return self.constant(e.value)
        if isinstance(e, InputRef):
            self.columns.add(e.index)
            return f"v{e.index}"
        if isinstance(e, LambdaVar):
            for frame in reversed(self._lambda_frames):
                if e.name in frame:
                    return frame[e.name]
            raise KeyError(e.name)
        if isinstance(e, ChainValue):
            return self._chain_value
        assert isinstance(e, Op)
        method = getattr(self, f"_op_{e.op}", None)
        if method is not None:
            return method(e)
        raise NotImplementedError(e.op)

    def strict(self, args: Sequence[TypedExpr], body: Callable[[list[str]], str], when_null: str = "None") -> str:
        """`when_null` (NULL by default) if any argument is NULL, else `body` applied to the argument names."""
        names: list[str] = []
        checks: list[str] = []
        for arg in args:
            code = self.gen(arg)
            if isinstance(arg, Const) and arg.value is not None:
                names.append(code)
            elif isinstance(arg, (InputRef, LambdaVar, ChainValue)):
                names.append(code)
                checks.append(f"{code} is None")
            else:
                temp = self.temp()
                names.append(temp)
                checks.append(f"({temp} := {code}) is None")
        if not checks:
            return f"({body(names)})"
        return f"({when_null} if {' or '.join(checks)} else {body(names)})"

    # -- arithmetic and comparison

    def _arithmetic_operands(self, args: Sequence[TypedExpr], body: Callable[[list[str]], str]) -> str:
        """NULL operands give NULL, except inside a lambda body: there ksqlDB's generated Java unboxes
        them and fails, which makes the whole function call that received the lambda fail (-> NULL)."""
        if self._lambda_frames:
            return f"({body([self.gen(a) for a in args])})"
        return self.strict(args, body)

    def _arith(self, e: Op) -> str:
        result = e.type
        if isinstance(result, DecimalType):
            dec_op = {"add": "add", "sub": "subtract", "mul": "multiply", "mod": "remainder"}
            if e.op == "div":
                return self._arithmetic_operands(e.args, lambda n: f"_decimal_div({n[0]}, {n[1]}, {self.constant(result)})")
            return self._arithmetic_operands(
                e.args, lambda n: f"_to_decimal(_DCTX.{dec_op[e.op]}({n[0]}, {n[1]}), {self.constant(result)})"
            )
        if e.op == "div":
            helper = "_double_div" if result == DOUBLE else "_int_div"
            return self._arithmetic_operands(e.args, lambda n: f"{helper}({n[0]}, {n[1]})")
        if e.op == "mod":
            helper = "_double_mod" if result == DOUBLE else "_int_mod"
            return self._arithmetic_operands(e.args, lambda n: f"{helper}({n[0]}, {n[1]})")
        return self._arithmetic_operands(e.args, lambda n: f"{n[0]} {_ARITHMETIC[e.op]} {n[1]}")

    _op_add = _op_sub = _op_mul = _op_div = _op_mod = _arith

    def _op_neg(self, e: Op) -> str:
        return self._arithmetic_operands(e.args, lambda n: f"-{n[0]}")

    def _op_concat(self, e: Op) -> str:
        if len(e.args) == 2:
            return self.strict(e.args, lambda n: f"{n[0]} + {n[1]}")
        # one join rather than `a + b + c ...`, which Python's compiler would nest once per operand
        return self.strict(e.args, lambda n: f"''.join(({', '.join(n)},))")

    def _op_chain(self, e: Op) -> str:
        """Runs of steps side by side in a tuple, each run's value kept in a variable the next run reads:
        however many steps, the generated source nests no deeper than one run."""
        outer = self._chain_value  # a chain inside an operand of a step of another
        codes: list[str] = []
        runs = _runs(e.args)
        for run in runs:
            code = self._fold(run) if len(run) > 1 else self.gen(run[0])
            if run is not runs[-1]:
                self._chain_value = self.temp()
                code = f"{self._chain_value} := {code}"
            codes.append(code)
        self._chain_value = outer
        return codes[0] if len(codes) == 1 else f"({', '.join(codes)})[-1]"

    def _fold(self, run: Sequence[TypedExpr]) -> str:
        """Steps of plain + - or * on one number type as one Python expression, `a + b - c`, NULL if any
        operand is: what step-by-step evaluation gives, since these steps are NULL only on a NULL operand."""
        first, *rest = run
        assert isinstance(first, Op)
        operands = [*first.args, *(step.args[1] for step in rest if isinstance(step, Op))]
        symbols = [_ARITHMETIC[step.op] for step in run if isinstance(step, Op)]
        return self._arithmetic_operands(
            operands, lambda n: n[0] + "".join(f" {symbol} {name}" for symbol, name in zip(symbols, n[1:], strict=True)))

    def _compare(self, e: Op) -> str:
        # ksqlDB comparisons are two-valued: a NULL operand makes the comparison false
        return self.strict(e.args, lambda n: f"{n[0]} {_COMPARISON[e.op]} {n[1]}", when_null="False")

    _op_eq = _op_ne = _op_lt = _op_le = _op_gt = _op_ge = _compare

    def _op_distinct(self, e: Op) -> str:
        return f"({self.gen(e.args[0])} != {self.gen(e.args[1])})"

    def _op_between(self, e: Op) -> str:
        return self.strict(e.args, lambda n: f"{n[1]} <= {n[0]} <= {n[2]}", when_null="False")

    def _op_in(self, e: Op) -> str:
        operand, *items = e.args
        if all(isinstance(i, Const) for i in items):
            values = tuple(i.value for i in items if isinstance(i, Const))
            return self.strict([operand], lambda n: f"_in_list({n[0]}, {self.constant(values)})", "False")
        item_code = ", ".join(self.gen(i) for i in items)
        return self.strict([operand], lambda n: f"_in_list({n[0]}, ({item_code},))", "False")

    def _op_like(self, e: Op) -> str:
        operand, pattern = e.args
        if isinstance(pattern, Const) and isinstance(pattern.value, str):
            regex = self.constant(like_pattern(pattern.value, e.detail))
            return self.strict([operand], lambda n: f"{regex}.fullmatch({n[0]}) is not None")
        escape = self.constant(e.detail)
        return self.strict(e.args, lambda n: f"_like({n[0]}, {n[1]}, {escape})")

    # -- logic (three-valued)

    def _op_and(self, e: Op) -> str:
        return self._three_valued(e.args, decisive=False)

    def _op_or(self, e: Op) -> str:
        return self._three_valued(e.args, decisive=True)

    def _three_valued(self, args: Sequence[TypedExpr], decisive: bool) -> str:
        """AND (`decisive` False) or OR (True) of any number of operands, left to right and flat: the first
        operand that is `decisive` decides and the rest are not evaluated; else NULL if any operand is NULL."""
        names = [self.temp() for _ in args]
        tests = " or ".join(f"({name} := {self.gen(arg)}) is {decisive}" for name, arg in zip(names, args, strict=True))
        nulls = " or ".join(f"{name} is None" for name in names)
        return f"({decisive} if {tests} else (None if {nulls} else {not decisive}))"

    def _op_not(self, e: Op) -> str:
        return self.strict(e.args, lambda n: f"not {n[0]}")

    def _op_is_null(self, e: Op) -> str:
        return f"({self.gen(e.args[0])} is None)"

    def _op_is_not_null(self, e: Op) -> str:
        return f"({self.gen(e.args[0])} is not None)"

    def _op_case(self, e: Op) -> str:
        # One flat chain `r1 if c1 is True else r2 if c2 is True else default`: however many WHENs, it nests
        # no brackets in the generated source (Python's parser allows 200).
        args = list(e.args)
        default = self.gen(args.pop()) if e.detail else "None"
        branches = [f"{self.gen(args[i + 1])} if {self.gen(args[i])} is True" for i in range(0, len(args), 2)]
        return f"({' else '.join([*branches, default])})"

    # -- types and structure

    def _op_cast(self, e: Op) -> str:
        convert = self.constant(converter(e.args[0].type, e.type))
        return self.strict(e.args, lambda n: f"{convert}({n[0]})")

    def _op_deref(self, e: Op) -> str:
        field = repr(e.detail)
        return self.strict(e.args, lambda n: f"{n[0]}.get({field})")

    def _op_subscript(self, e: Op) -> str:
        if isinstance(e.args[0].type, ArrayType):
            return self.strict(e.args, lambda n: f"_array_element({n[0]}, {n[1]})")
        return self.strict(e.args, lambda n: f"{n[0]}.get({n[1]})")

    def _op_array(self, e: Op) -> str:
        return "[" + ", ".join(self.gen(a) for a in e.args) + "]"

    def _op_map(self, e: Op) -> str:
        codes = [self.gen(a) for a in e.args]
        return "{" + ", ".join(f"{codes[i]}: {codes[i + 1]}" for i in range(0, len(codes), 2)) + "}"

    def _op_struct(self, e: Op) -> str:
        """Every field of the struct type is present; fields the constructor leaves out are NULL."""
        given = {name: self.gen(a) for name, a in zip(e.detail, e.args, strict=True)}
        assert isinstance(e.type, StructType)
        return "{" + ", ".join(f"{name!r}: {given.get(name, 'None')}" for name, _ in e.type.fields) + "}"

    def _op_call(self, e: Op) -> str:
        bound = e.detail
        overload: Overload = bound.overload
        if overload.vectorized and not self._lambda_frames:
            return self._hoist(e)
        if not overload.user_defined:
            impl = self.constant(bound.implementation())
            if self.guard_calls:
                return self._strict_call(e, lambda names: f"_guarded(on_error, row, {impl}, {', '.join(names)})")
            return self._strict_call(e, lambda names: f"{impl}({', '.join(names)})")
        holder = self.constant(overload)
        result = self.constant(ResultType(e.type))
        self.row_calls[id(overload)] = overload
        if e is self.root and _scores_results(e.type):
            self.scored_root = overload
        if overload.vectorized:
            impl = self.constant(VectorizedCall(e, hoisted=False).call_row)  # inside a lambda: one row per call
        else:
            impl = f"f_{holder}"
            self.batch_bindings[impl] = f"{holder}.impl"
        if self.guard_calls:
            return self._strict_call(
                e, lambda names: f"_guarded_udf(on_error, row, {holder}, {result}, {impl}, {', '.join(names)})")
        if e is self.root:
            self.returned = f"_fitted({result}, {holder}, out, on_error)"
            return self._strict_call(e, lambda names: f"{impl}({', '.join(names)})")
        gathered = f"r{len(self.result_checks)}"
        self.batch_bindings[gathered] = "[]"
        self.batch_bindings[f"{gathered}_append"] = f"{gathered}.append"
        self.result_checks.append(f"{result}.fits({gathered})")
        value = self.temp()
        return self._strict_call(e, lambda names: f"({gathered}_append({value} := {impl}({', '.join(names)})) or {value})")

    def _strict_call(self, e: Op, call: Callable[[list[str]], str]) -> str:
        """`call` applied to the argument codes; NULL for a NULL argument when the function says so."""
        overload: Overload = e.detail.overload
        if overload.null_on_null:
            return self.strict(e.args, call)
        return call([self.gen(a) for a in e.args])

    def _hoist(self, e: Op) -> str:
        """The call becomes a column computed before the row loop; the loop reads it as a variable."""
        key = repr(e)
        if key not in self.hoisted:  # the same call twice in one expression runs once
            vectorized = self.shared_calls.get(key) or self.shared_calls.setdefault(key, VectorizedCall(e))
            self.read_by_hoisted.update(c for arg in vectorized.args for c in arg.input_columns)
            call = self.constant(vectorized)
            self.hoisted[key] = (f"u{len(self.hoisted)}", f"{call}.evaluate(columns, size, on_error)")
        return self.hoisted[key][0]

    def _op_lambda(self, e: Op) -> str:
        frame = {name: f"{self.temp()}_{i}" for i, name in enumerate(e.detail)}
        self._lambda_frames.append(frame)
        try:
            body = self.gen(e.args[0])
        finally:
            self._lambda_frames.pop()
        return f"(lambda {', '.join(frame.values())}: {body})"


class CompiledExpression:
    """A typed expression compiled to a batch evaluator (and a one-row evaluator for error recovery)."""

    def __init__(self, expr: TypedExpr, shared_calls: dict[str, VectorizedCall] | None = None) -> None:
        """Expressions evaluated on the same columns (one step) may share `shared_calls`."""
        self.expr = expr
        self.type: SqlType = expr.type
        gen = _CodeGen(shared_calls=shared_calls)
        gen.root = expr
        body = gen.gen(expr)
        guarded = _CodeGen(dict(gen.namespace), guard_calls=True, hoisted=gen.hoisted)
        recovery_body = guarded.gen(expr)
        gen.namespace.update(guarded.namespace)
        self.input_columns = sorted(gen.columns | gen.read_by_hoisted)
        loop_inputs = [(f"v{i}", f"columns[{i}]") for i in sorted(gen.columns)] + list(gen.hoisted.values())
        self.source = _batch_function_source(body, recovery_body, loop_inputs,
                                             {**gen.batch_bindings, **guarded.batch_bindings},
                                             gen.result_checks, gen.returned)
        try:
            code = compile(self.source, "<ksqlpy expression>", "exec")
        except (SyntaxError, RecursionError, MemoryError) as error:  # Python's limits on nesting in source
            raise StatementError(f"Expression too complex to compile: {type(error).__name__}: {error}") from error
        exec(code, gen.namespace)  # generated from typed trees only, never from raw user text
        self._evaluate: BatchEvaluator = gen.namespace["evaluate"]
        self._row_calls = list(gen.row_calls.values())
        self._scored = gen.scored_root

    def evaluate(self, columns: Sequence[Column], size: int, on_error: ErrorHandler) -> list[Any]:
        if not self._row_calls:
            return self._evaluate(columns, size, on_error)
        # A row function's time is its expression's: the calls are inlined in the loop, and a clock read
        # around each would cost more than many a function does.
        started = perf_counter()
        out = self._evaluate(columns, size, on_error)
        elapsed = perf_counter() - started
        for overload in self._row_calls:
            overload.stats.called(size, elapsed)
        if self._scored is not None:
            _observe_scores(self._scored, out)
        return out


def _batch_function_source(body: str, recovery_body: str, inputs: list[tuple[str, str]], bindings: dict[str, str],
                           result_checks: list[str], returned: str) -> str:
    """`inputs` are (row variable, code of its column) pairs; `bindings` are evaluated once per batch;
    `result_checks` must all hold after the fast loop, or the batch is re-run row by row; `returned` is the
    code returning the fast loop's output `out`."""
    lines = "".join(f"    {name} = {code}\n" for name, code in bindings.items())
    lines += "".join(f"    c{index} = {code}\n" for index, (_, code) in enumerate(inputs))
    if len(inputs) == 1 and body == inputs[0][0]:  # a bare column (or call result): copied at C speed
        return f"def evaluate(columns, size, on_error):\n{lines}    return list(c0)\n"
    if not inputs:
        loop = "for _ in range(size)"
        row = "range(size)"
        unpack = "_"
    elif len(inputs) == 1:
        loop = f"for {inputs[0][0]} in c0"
        row = "c0"
        unpack = inputs[0][0]
    else:
        unpack = ", ".join(name for name, _ in inputs)
        zipped = ", ".join(f"c{index}" for index in range(len(inputs)))
        loop = f"for {unpack} in zip({zipped})"
        row = f"zip({zipped})"
    checked = f"if {' and '.join(result_checks)}:\n            " if result_checks else ""
    return (
        "def evaluate(columns, size, on_error):\n"
        f"{lines}"
        "    try:\n"
        f"        out = [{body} {loop}]\n"
        "    except BaseException as error:\n"
        "        if not _is_udf_failure(error):\n"
        "            raise\n"
        "    else:\n"
        f"        {checked}return {returned}\n"
        "    out = []\n"
        f"    for row, {unpack_tuple(unpack)} in enumerate({row}):\n"
        "        try:\n"
        f"            out.append({recovery_body})\n"
        "        except UdfError:\n"
        "            raise  # udf.error.policy 'fail': logged once already, and it stops the query\n"
        "        except Exception as error:\n"
        "            on_error(row, error)\n"
        "            out.append(None)\n"
        "    return out\n"
    )


def unpack_tuple(names: str) -> str:
    return f"({names})" if "," in names else names


def compile_expressions(exprs: Sequence[TypedExpr]) -> list[CompiledExpression]:
    """Expressions evaluated together on one batch: a vectorized call they share runs once."""
    shared: dict[str, VectorizedCall] = {}
    return [CompiledExpression(e, shared) for e in exprs]
