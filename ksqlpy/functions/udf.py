"""The public UDF API: @udf, @udaf, @udtf and model(), turning decorated Python code into registry overloads.

A decorator only records a declaration on the decorated object; the loader (ksqlpy.functions.loader)
collects declarations from a module and registers them with the module's file as their source. SQL types
come from explicit `params=` / `returns=` (SQL type text such as "DOUBLE" or "ARRAY<STRING>") or from
the Python type hints.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import logging
import re
import threading
import traceback
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from ksqlpy.errors import KsqlError, UdfError
from ksqlpy.functions.aggregate import Aggregator, Columns
from ksqlpy.functions.registry import ANY, Overload
from ksqlpy.functions.registry import Generic as TypeVariable
from ksqlpy.types import (
    BIGINT,
    BOOLEAN,
    BYTES,
    DOUBLE,
    INTEGER,
    STRING,
    ArrayType,
    MapType,
    SqlType,
)

logger = logging.getLogger(__name__)

DECLARATIONS_ATTRIBUTE = "__ksqlpy_functions__"
F = TypeVar("F")
M = TypeVar("M")
TypeSpec = str | SqlType


class UdfDeclarationError(KsqlError):
    """A decorator's arguments or type hints do not describe a valid SQL signature."""


def is_udf_failure(error: BaseException) -> bool:
    """Whether an exception escaping user code (a UDF call, a UDF module's import, a model load) is that
    code's failure, handled like any other: every exception is, SystemExit and GeneratorExit included,
    except a KeyboardInterrupt on the main thread, which is the user's Ctrl-C and must stop what runs there.
    Python delivers signals on the main thread only, so on any other thread user code raised it itself.
    """
    return not isinstance(error, KeyboardInterrupt) or threading.current_thread() is not threading.main_thread()


# --------------------------------------------------------------------------- models


class Model(Generic[M]):
    """A model a UDF loads once per process: lazily, in the background when a query using it starts.

    `load(path)` builds the object (this is where heavy imports such as TensorFlow belong); `warmup`, when
    given, runs once on the loaded object so the first real batch does not pay for graph tracing.
    """

    def __init__(
        self,
        name: str,
        path: str | Path,
        load: Callable[[Path], M],
        warmup: Callable[[M], object] | None = None,
    ) -> None:
        self.name = name
        self.path = Path(path)
        self._load = load
        self._warmup = warmup
        self._lock = threading.Lock()
        self._loaded: M | None = None
        self._error: BaseException | None = None

    @property
    def loaded(self) -> bool:
        return self._loaded is not None

    @property
    def version(self) -> str:
        """The artifact's file or directory name (models/anomaly/v1 is version v1), which a new version changes."""
        return self.path.name

    def get(self) -> M:
        """The loaded model (loading it now if nothing has yet); a failed load raises each time it is asked."""
        loaded = self._loaded
        if loaded is not None:
            return loaded
        with self._lock:
            if self._loaded is None:
                self._error = None
                try:
                    model = self._load(self.path)
                    if self._warmup is not None:
                        self._warmup(model)
                except BaseException as error:
                    if not is_udf_failure(error):
                        raise
                    self._error = error
                    raise KsqlError(f"Model {self.name} could not be loaded from {self.path}: {error}") from error
                self._loaded = model
            return self._loaded

    def prepare(self) -> None:
        """Start loading in a background thread, so the first batch does not wait for it (if it can help it)."""
        if self._loaded is None and not self._lock.locked():
            threading.Thread(target=self._prepare_quietly, name=f"ksqlpy-model-{self.name}", daemon=True).start()

    def _prepare_quietly(self) -> None:
        try:
            self.get()
        except KsqlError as error:
            logger.error("%s", error)

    def sha256(self) -> str:
        return artifact_sha256(self.path)

    def describe(self) -> dict[str, str]:
        return {"Model": self.name, "Model path": str(self.path), "Model sha256": self.sha256()}


def artifact_sha256(path: Path) -> str:
    """A digest of a model artifact: the file, or every file under the directory in path order."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if file.exists():
            digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def model(
    name: str,
    path: str | Path,
    load: Callable[[Path], M],
    warmup: Callable[[M], object] | None = None,
) -> Model[M]:
    """Declare a model for UDFs to share (see Model)."""
    return Model(name, path, load, warmup)


# --------------------------------------------------------------------------- type hints -> SQL types

_SCALAR_HINTS: dict[Any, SqlType] = {
    int: BIGINT,
    float: DOUBLE,
    str: STRING,
    bool: BOOLEAN,
    bytes: BYTES,
}
_NUMPY_KINDS: dict[str, SqlType] = {"f": DOUBLE, "i": BIGINT, "u": BIGINT, "b": BOOLEAN}


def sql_type_of(spec: TypeSpec) -> SqlType:
    if isinstance(spec, SqlType):
        return spec
    from ksqlpy.syntax.parser import parse_type  # the grammar loads on first use only

    try:
        return parse_type(spec)
    except KsqlError as error:
        raise UdfDeclarationError(f"Not a SQL type: {spec!r} ({error})") from error


def _strip_optional(hint: Any) -> Any:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(members) == 1:
            return members[0]
    return hint


def _numpy_element_type(hint: Any) -> SqlType | None:
    """DOUBLE for NDArray[np.float64] and the like; None when the hint is not a typed numpy array."""
    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if origin is None or getattr(origin, "__module__", "") != "numpy" or len(args) != 2:
        return None
    dtype_args = typing.get_args(args[1])
    if not dtype_args:
        return None
    import numpy

    try:
        kind = numpy.dtype(dtype_args[0]).kind
    except TypeError:
        return None
    return _NUMPY_KINDS.get(kind)


def sql_type_of_hint(hint: Any, vectorized: bool, where: str) -> SqlType:
    """The SQL type a Python hint stands for; a vectorized UDF's hints describe whole columns."""
    hint = _strip_optional(hint)
    # A type variable is a generic parameter (every use in one signature binds the same type); Any matches anything.
    if isinstance(hint, TypeVar):
        return TypeVariable(hint.__name__)
    if hint is Any:
        return ANY
    if vectorized:
        element = _numpy_element_type(hint)
        if element is not None:
            return element
        origin = typing.get_origin(hint)
        if origin in (list, Sequence, typing.Sequence) and typing.get_args(hint):
            return sql_type_of_hint(typing.get_args(hint)[0], False, where)
    if hint in _SCALAR_HINTS:
        return _SCALAR_HINTS[hint]
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (list, Sequence, typing.Sequence) and len(args) == 1:
        return ArrayType(sql_type_of_hint(args[0], False, where))
    if origin in (dict, Mapping, typing.Mapping) and len(args) == 2:
        return MapType(sql_type_of_hint(args[0], False, where), sql_type_of_hint(args[1], False, where))
    if hint is Decimal:
        raise UdfDeclarationError(f"{where}: a Decimal needs its precision and scale: declare it, e.g. 'DECIMAL(10, 2)'")
    raise UdfDeclarationError(
        f"{where}: cannot derive a SQL type from the hint {hint!r}; declare it with params=/returns= (e.g. 'DOUBLE')"
    )


# --------------------------------------------------------------------------- signatures


@dataclass(frozen=True)
class _Parameters:
    types: tuple[SqlType, ...]
    names: tuple[str, ...]
    variadic: bool


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception as error:  # unresolvable forward references and the like
        raise UdfDeclarationError(f"{fn.__qualname__}: cannot read its type hints: {error}") from error


def _parameters(
    fn: Callable[..., Any],
    params: Sequence[TypeSpec] | Mapping[str, TypeSpec] | None,
    vectorized: bool,
    skip: int = 0,
) -> _Parameters:
    """The SQL parameters of `fn`; `skip` leading parameters are not SQL arguments (self, an accumulator)."""
    where = fn.__qualname__
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    parameters = [p for p in list(inspect.signature(fn).parameters.values())[skip:]
                  if p.kind in positional or p.kind is inspect.Parameter.VAR_POSITIONAL]
    variadic = bool(parameters) and parameters[-1].kind is inspect.Parameter.VAR_POSITIONAL
    names = tuple(p.name for p in parameters)
    if params is None:
        hints = _hints(fn)
        return _Parameters(
            tuple(sql_type_of_hint(hints[name], vectorized, f"{where}, parameter {name}") if name in hints
                  else _missing_hint(where, name) for name in names),
            names,
            variadic,
        )
    if isinstance(params, Mapping):
        names, specs = tuple(params), list(params.values())
    else:
        specs = list(params)
    types_ = tuple(sql_type_of(s) for s in specs)
    if variadic:
        # Explicit types for a *args function fix its arity; a list names them after the *args parameter.
        if not isinstance(params, Mapping):
            names = tuple(f"{names[-1]}{i}" for i in range(1, len(types_) + 1))
        return _Parameters(types_, names, False)
    if len(names) != len(types_):
        raise UdfDeclarationError(f"{where}: params= declares {len(types_)} types for {len(names)} parameters")
    return _Parameters(types_, names, False)


def _return_type(fn: Callable[..., Any], returns: TypeSpec | None, vectorized: bool) -> SqlType:
    if returns is not None:
        return sql_type_of(returns)
    hints = _hints(fn)
    if "return" not in hints:
        raise UdfDeclarationError(f"{fn.__qualname__}: declare its SQL return type with returns= or a return type hint")
    return sql_type_of_hint(hints["return"], vectorized, f"{fn.__qualname__}, return value")


def _missing_hint(where: str, name: str) -> SqlType:
    raise UdfDeclarationError(f"{where}: parameter {name} has no type hint; add one or declare params=")


def _declare(target: Any, overload: Overload) -> None:
    declarations: list[Overload] = list(getattr(target, DECLARATIONS_ATTRIBUTE, []))
    declarations.append(overload)
    setattr(target, DECLARATIONS_ATTRIBUTE, declarations)


def declarations_of(target: Any) -> list[Overload]:
    return list(getattr(target, DECLARATIONS_ATTRIBUTE, []))


def _metadata(target: Any, description: str, author: str, version: str, model: Model[Any] | None) -> dict[str, Any]:
    return {
        "description": description or (inspect.getdoc(target) or "").split("\n\n")[0],
        "author": author or "unknown",
        "version": version,
        "model": model,
        "category": "user",
    }


# --------------------------------------------------------------------------- decorators


def _function_decorator(
    fn: Callable[..., Any] | None,
    kind: str,
    name: str | None,
    params: Sequence[TypeSpec] | Mapping[str, TypeSpec] | None,
    returns: TypeSpec | None,
    metadata: tuple[str, str, str, Model[Any] | None],
    vectorized: bool = False,
    null_on_null: bool = True,
) -> Any:
    """Declare `fn` (or, without it, return a decorator that does) as a scalar or table function."""

    def declare(function: Callable[..., Any]) -> Callable[..., Any]:
        parameters = _parameters(function, params, vectorized)
        return_type = _return_type(function, returns, vectorized)
        if kind == "table" and returns is None:
            if not isinstance(return_type, ArrayType):
                raise UdfDeclarationError(f"{function.__qualname__}: a table function returns a list, e.g. -> list[str]")
            return_type = return_type.element
        _declare(function, Overload(
            name=(name or function.__name__).upper(),
            declared_name=name or "",
            params=parameters.types,
            returns=return_type,
            impl=function,
            kind=kind,
            variadic=parameters.variadic,
            null_on_null=null_on_null or vectorized,
            vectorized=vectorized,
            param_names=parameters.names,
            **_metadata(function, *metadata),
        ))
        return function

    return declare(fn) if fn is not None else declare


def udf(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    vectorized: bool = False,
    params: Sequence[TypeSpec] | Mapping[str, TypeSpec] | None = None,
    returns: TypeSpec | None = None,
    description: str = "",
    author: str = "",
    version: str = "",
    model: Model[Any] | None = None,
    null_on_null: bool = True,
) -> Any:
    """A scalar function. Row UDFs are called per row with Python values; with `vectorized=True` the function
    is called once per batch with one column per argument (numpy arrays for numeric and boolean types,
    lists otherwise) and returns one column. With `null_on_null` (the default) a row with a NULL argument
    gives NULL without a call."""
    return _function_decorator(fn, "scalar", name, params, returns, (description, author, version, model),
                               vectorized, null_on_null)


def udtf(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    params: Sequence[TypeSpec] | Mapping[str, TypeSpec] | None = None,
    returns: TypeSpec | None = None,
    description: str = "",
    author: str = "",
    version: str = "",
    model: Model[Any] | None = None,
) -> Any:
    """A table function: called per row, it returns a list, and each element becomes an output row.
    `returns` is the element type (a `list[X]` return hint gives X)."""
    return _function_decorator(fn, "table", name, params, returns, (description, author, version, model))


AGGREGATE_METHODS = ("init", "add", "merge", "result")
_IMMUTABLE_SCALARS = (type(None), bool, int, float, str, bytes, Decimal)
# a numpy dtype for the SQL types whose columns add_batch receives as arrays (lists otherwise)
_ARRAY_DTYPES: dict[SqlType, str] = {DOUBLE: "float64", BIGINT: "int64", INTEGER: "int64", BOOLEAN: "bool"}
# the module name the loader gives each load of a file ("ksqlpy_udfs.<stem>_<n>."), which differs every load
_LOADED_MODULE = re.compile(r"ksqlpy_udfs\.\w+?_\d+\.")


def _private_copy(value: Any) -> Any:
    """`value` safe to hand to user code that may mutate it: immutable values as they are, the rest deep-copied."""
    if isinstance(value, _IMMUTABLE_SCALARS):
        return value
    if type(value) is tuple and all(isinstance(v, _IMMUTABLE_SCALARS) for v in value):
        return value
    return copy.deepcopy(value)


def accumulator_type_of(aggregator: Any) -> str:
    """The accumulator type of a user aggregate (its UserAggregator class), as text: the user class's `init`
    return annotation, or else the type of what `init()` returns. Classes are named without their module,
    whose name differs on every load of a file."""
    aggregate = aggregator.user_class
    hint = _hints(aggregate.init).get("return")
    if hint is None:
        hint = type(aggregate().init())
    text = hint.__qualname__ if isinstance(hint, type) else repr(hint)
    return _LOADED_MODULE.sub("", text)


class UserAggregator(Aggregator):
    """A @udaf class behind the Aggregator interface: rows are folded with the class's `add(acc, *values)`, or a
    slice at a time with `add_batch(acc, *arrays)` when it has one (numpy arrays for numeric and boolean
    columns, lists otherwise; rows with a NULL argument are left out, as for vectorized UDFs). An `undo(acc,
    *values)` makes it usable over tables. Whatever a method of the class raises becomes a UdfError."""

    user_class: ClassVar[type]
    name: ClassVar[str]

    def __init__(self, arg_types: Sequence[SqlType], return_type: SqlType, literals: Sequence[Any]) -> None:
        super().__init__(arg_types, return_type, literals)
        self.user = self._call(self.user_class)

    def _call(self, method: Callable[..., Any], *args: Any) -> Any:
        try:
            return method(*args)
        except BaseException as error:
            if not is_udf_failure(error):
                raise
            trace = "".join(traceback.format_exception(error, chain=False))
            raise UdfError(self.name, error, trace) from error

    def initial(self) -> Any:
        return self._call(self.user.init, *self.literals)

    def add(self, accumulator: Any, columns: Columns) -> Any:
        accumulator = _private_copy(accumulator)
        if hasattr(self.user, "add_batch"):
            return self._call(self.user.add_batch, accumulator, *self._arrays(columns))
        for row in zip(*columns, strict=True):
            accumulator = self._call(self.user.add, accumulator, *row)
        return accumulator

    def add_each(self, accumulator: Any, columns: Columns) -> tuple[Any, list[Any]]:
        if not hasattr(self.user, "add"):
            return super().add_each(accumulator, columns)
        accumulator = _private_copy(accumulator)
        results: list[Any] = []
        for row in zip(*columns, strict=True):
            accumulator = self._call(self.user.add, accumulator, *row)
            results.append(self.result(accumulator))
        return accumulator, results

    def _arrays(self, columns: Columns) -> list[Any]:
        import numpy

        rows = [i for i, row in enumerate(zip(*columns, strict=True)) if None not in row] if columns else []
        arrays: list[Any] = []
        for sql_type, column in zip(self.arg_types[:len(columns)], columns, strict=True):
            values = column if len(rows) == len(column) else [column[i] for i in rows]
            dtype = _ARRAY_DTYPES.get(sql_type)
            arrays.append(numpy.array(values, dtype=dtype) if dtype is not None else list(values))
        return arrays

    def undo(self, accumulator: Any, columns: Columns) -> Any:
        if not self.undoable:
            return super().undo(accumulator, columns)
        accumulator = _private_copy(accumulator)
        for row in zip(*columns, strict=True):
            accumulator = self._call(self.user.undo, accumulator, *row)
        return accumulator

    def merge(self, earlier: Any, later: Any) -> Any:
        return self._call(self.user.merge, _private_copy(earlier), _private_copy(later))

    def result(self, accumulator: Any) -> Any:
        return self._call(self.user.result, _private_copy(accumulator))


def aggregator_for(aggregate: type, name: str) -> type[UserAggregator]:
    """The Aggregator class (one per @udaf class) that runs `aggregate` as the function `name`."""
    return type(f"{aggregate.__name__}Aggregator", (UserAggregator,), {
        "user_class": aggregate,
        "name": name,
        "undoable": callable(getattr(aggregate, "undo", None)),
        # one scalar, which a DELIMITED or KAFKA value can hold (see Aggregator.primitive_intermediate)
        "primitive_intermediate": _hints(typing.cast(Any, aggregate).init).get("return") in _SCALAR_HINTS,
        "__doc__": f"The user aggregate {aggregate.__qualname__} as an Aggregator.",
    })


def udaf(
    cls: type | None = None,
    *,
    name: str | None = None,
    params: Sequence[TypeSpec] | Mapping[str, TypeSpec] | None = None,
    returns: TypeSpec | None = None,
    description: str = "",
    author: str = "",
    version: str = "",
) -> Any:
    """An aggregate function: a class with `init() -> acc`, `add(acc, *values) -> acc` (or a vectorized
    `add_batch(acc, *arrays) -> acc` taking a group's column slices), `merge(a, b) -> acc` and
    `result(acc) -> value`, and optionally `undo(acc, *values) -> acc`, which lets it aggregate tables.
    One instance is made per query; SQL argument types come from `add`'s hints (after the accumulator), else
    `add_batch`'s, the return type from `result`'s. Parameters of `init` are trailing SQL parameters that
    take literal constants only (`MY_AGG(col, 10)`), their values passed to every `init` call; a `*values`
    parameter of `add` is variadic, repeated before them. `params=` lists the column parameters only."""

    def declare(aggregate: Any) -> Any:
        vectorized = not callable(getattr(aggregate, "add", None)) and callable(getattr(aggregate, "add_batch", None))
        missing = [m for m in AGGREGATE_METHODS if not callable(getattr(aggregate, m, None))
                   and not (m == "add" and vectorized)]
        if missing:
            raise UdfDeclarationError(f"{aggregate.__qualname__}: an aggregate needs methods {', '.join(missing)}")
        adder = aggregate.add_batch if vectorized else aggregate.add
        parameters = _parameters(adder, params, vectorized, skip=2)  # self, accumulator
        literals = _parameters(aggregate.init, None, False, skip=1)  # self
        if literals.variadic:
            raise UdfDeclarationError(f"{aggregate.__qualname__}.init: literal parameters cannot be variadic")
        function_name = (name or aggregate.__name__).upper()
        _declare(aggregate, Overload(
            name=function_name,
            params=parameters.types + literals.types,
            literals=len(literals.types),
            declared_name=name or "",
            returns=_return_type(aggregate.result, returns, False),
            impl=aggregator_for(aggregate, function_name),
            kind="aggregate",
            variadic=parameters.variadic,
            null_on_null=False,
            param_names=parameters.names + literals.names,
            **_metadata(aggregate, description, author, version, None),
        ))
        return aggregate

    return declare(cls) if cls is not None else declare
