"""The function registry: one catalogue of scalar, aggregate and table functions, built-in and user-defined alike.

A function is a name with one or more overloads. An overload declares parameter *type patterns*
(concrete SQL types, generics such as ``T`` or ``ARRAY<T>``, ``ANY``, ``ANY_DECIMAL``, lambdas) and a
return type (a pattern, or a callable computing it from the argument types). Resolution picks the
overload that needs the fewest implicit widenings and tells the planner which type each argument must
be cast to; the executor then calls the implementation with values of exactly those types.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ksqlpy.counters import FunctionStats
from ksqlpy.errors import StatementError
from ksqlpy.types import (
    BIGINT,
    DATE,
    DOUBLE,
    INTEGER,
    NULL,
    STRING,
    TIME,
    TIMESTAMP,
    ArrayType,
    DecimalType,
    MapType,
    SqlType,
    StructType,
    common_numeric_type,
    decimal_for_integral,
    is_numeric,
    widens_to,
)

F = TypeVar("F", bound=Callable[..., Any])


# --------------------------------------------------------------------------- type patterns


@dataclass(frozen=True)
class Generic(SqlType):
    """A type variable: binds to the argument's type; every use in one signature must agree."""

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class AnyType(SqlType):
    """Matches any type without binding anything."""

    def __str__(self) -> str:
        return "ANY"


@dataclass(frozen=True)
class AnyDecimal(SqlType):
    """Matches any DECIMAL(p, s); integral arguments widen to their exact DECIMAL."""

    def __str__(self) -> str:
        return "DECIMAL"


@dataclass(frozen=True)
class AnyStruct(SqlType):
    """Matches any STRUCT."""

    def __str__(self) -> str:
        return "STRUCT"


@dataclass(frozen=True)
class LambdaPattern(SqlType):
    """A lambda parameter: `params` are the lambda's argument patterns, `returns` its body's."""

    params: tuple[SqlType, ...]
    returns: SqlType

    def __str__(self) -> str:
        return f"LAMBDA ({', '.join(map(str, self.params))}) => {self.returns}"


T = Generic("T")
U = Generic("U")
K = Generic("K")
V = Generic("V")
ANY = AnyType()
ANY_DECIMAL = AnyDecimal()
ANY_STRUCT = AnyStruct()


@dataclass(frozen=True)
class LambdaArg:
    """What the planner passes for a lambda argument: its arity and a way to type its body."""

    arity: int
    body_type: Callable[[list[SqlType]], SqlType]


ReturnSpec = SqlType | Callable[[list[SqlType]], SqlType]


# --------------------------------------------------------------------------- declarations


@dataclass
class Overload:
    """One signature of a function and its implementation."""

    name: str
    params: tuple[SqlType, ...]
    returns: ReturnSpec
    impl: Callable[..., Any]
    kind: str = "scalar"  # 'scalar', 'aggregate', 'table'
    variadic: bool = False  # the last parameter before the literal ones may repeat zero or more times
    null_on_null: bool = True  # any NULL argument gives NULL without calling impl
    factory: bool = False  # impl(arg_types, return_type) returns the real implementation
    vectorized: bool = False  # impl takes and returns whole columns
    description: str = ""
    category: str = ""
    source: str = "internal"  # or the file a user function was loaded from
    author: str = "ksqlpy"
    version: str = ""
    param_names: tuple[str, ...] = ()
    model: Any = None  # a user function's ksqlpy.functions.udf.Model, loaded once per process
    # The name as ksqlDB declares it, which its messages show ('greatest', but 'COALESCE'); "" means lower case.
    declared_name: str = ""
    # How many trailing parameters take literal constants only (TOPK's k); an aggregate receives their values.
    literals: int = 0
    # Its calls, failures and time (and a model's scores), for the metrics; a reload keeps the running overload's.
    stats: FunctionStats = field(default_factory=FunctionStats, compare=False, repr=False)

    @property
    def shown_name(self) -> str:
        return self.declared_name or self.name.lower()

    @property
    def user_defined(self) -> bool:
        return self.source != "internal"

    @property
    def variadic_index(self) -> int:
        """Where the repeatable parameter of a variadic overload is: the last one, or the last before the literals."""
        return len(self.params) - 1 - self.literals

    def signature_key(self) -> tuple[Any, ...]:
        """What a compiled query depends on: a replacement with the same key can take over its calls."""
        return (self.name, self.kind, self.params, self.returns, self.variadic, self.vectorized, self.null_on_null)

    def signature_text(self) -> str:
        params = [str(p) for p in self.params]
        if self.variadic and params:
            params[self.variadic_index] += "..."
        return f"{self.name}({', '.join(params)})"


@dataclass
class BoundFunction:
    """An overload resolved against concrete argument types."""

    overload: Overload
    arg_types: list[SqlType]  # the type each argument must be cast to before the call
    return_type: SqlType
    lambda_param_types: dict[int, list[SqlType]]  # argument index -> types of the lambda's parameters

    def implementation(self) -> Callable[..., Any]:
        if self.overload.factory:
            return self.overload.impl(self.arg_types, self.return_type)
        return self.overload.impl


_BUILTIN_DECLARATIONS: list[Overload] = []


def scalar_function(
    name: str,
    *,
    params: Sequence[SqlType],
    returns: ReturnSpec,
    description: str = "",
    category: str = "",
    variadic: bool = False,
    null_on_null: bool = True,
    factory: bool = False,
    declared_name: str = "",
    kind: str = "scalar",
    literals: int = 0,
) -> Callable[[F], F]:
    """Declare a built-in scalar function overload (user UDFs use ksqlpy's public @udf instead)."""

    def register(fn: F) -> F:
        _BUILTIN_DECLARATIONS.append(
            Overload(
                name=name.upper(),
                params=tuple(params),
                returns=returns,
                impl=fn,
                kind=kind,
                variadic=variadic,
                null_on_null=null_on_null,
                factory=factory,
                description=description,
                category=category,
                declared_name=declared_name,
                literals=literals,
            )
        )
        return fn

    return register


def aggregate_function(
    name: str,
    *,
    params: Sequence[SqlType],
    returns: ReturnSpec,
    literals: int = 0,
    description: str = "",
    category: str = "AGGREGATE",
) -> Callable[[F], F]:
    """Declare a built-in aggregate overload on its Aggregator class: `impl(arg_types, return_type, literal
    values)` builds the aggregator for a call; the last `literals` parameters must be given literal constants."""
    return scalar_function(name, params=params, returns=returns, description=description, category=category,
                           null_on_null=False, kind="aggregate", literals=literals)


def table_function(
    name: str, *, params: Sequence[SqlType], returns: ReturnSpec, description: str = "", category: str = ""
) -> Callable[[F], F]:
    """Declare a built-in table function overload: it returns a list per row, one output row per element."""
    return scalar_function(name, params=params, returns=returns, description=description, category=category,
                           kind="table")


# --------------------------------------------------------------------------- unification


class _NoMatch(Exception):
    pass


@dataclass(frozen=True)
class StringLiteralArg(SqlType):
    """A string literal argument: a STRING that may also be read as a DATE, TIME or TIMESTAMP parameter."""

    def __str__(self) -> str:
        return "STRING"


STRING_LITERAL = StringLiteralArg()
_TEMPORAL = (DATE, TIME, TIMESTAMP)


def _unify(pattern: SqlType, actual: SqlType, bindings: dict[str, SqlType]) -> tuple[SqlType, int]:
    """Match `actual` against `pattern`; returns the concrete parameter type and the widening cost."""
    if isinstance(actual, StringLiteralArg):
        if pattern in _TEMPORAL:
            return pattern, 1
        actual = STRING
    if isinstance(pattern, AnyType):
        return actual, 0
    if isinstance(pattern, Generic):
        bound = bindings.get(pattern.name)
        if bound is None or bound == NULL:
            bindings[pattern.name] = actual
            return actual, 0
        if actual in (NULL, bound):
            return bound, 0
        if is_numeric(actual) and is_numeric(bound):
            common = common_numeric_type(bound, actual)
            bindings[pattern.name] = common
            return common, 1
        widened = _widen_complex(bound, actual)
        if widened is not None:
            bindings[pattern.name] = widened
            return widened, 1
        raise _NoMatch
    if actual == NULL:
        return _instantiate(pattern, bindings, allow_unbound=True), 0
    if isinstance(pattern, AnyDecimal):
        if isinstance(actual, DecimalType):
            return actual, 0
        if actual in (INTEGER, BIGINT):
            return decimal_for_integral(actual), 1
        raise _NoMatch
    if isinstance(pattern, AnyStruct):
        if isinstance(actual, StructType):
            return actual, 0
        raise _NoMatch
    if isinstance(pattern, ArrayType):
        if not isinstance(actual, ArrayType):
            raise _NoMatch
        element, cost = _unify(pattern.element, actual.element, bindings)
        return ArrayType(element), cost
    if isinstance(pattern, MapType):
        if not isinstance(actual, MapType):
            raise _NoMatch
        key, key_cost = _unify(pattern.key, actual.key, bindings)
        value, value_cost = _unify(pattern.value, actual.value, bindings)
        return MapType(key, value), key_cost + value_cost
    if isinstance(pattern, DecimalType) and isinstance(actual, DecimalType):
        return pattern, 0 if pattern == actual else 1
    if pattern == actual:
        return pattern, 0
    if widens_to(actual, pattern):
        return pattern, _widening_cost(actual, pattern)
    raise _NoMatch


def _widening_cost(source: SqlType, target: SqlType) -> int:
    if target == DOUBLE and source in (INTEGER, BIGINT):
        return 3
    return 2 if isinstance(target, DecimalType) else 1


def _widen_complex(bound: SqlType, actual: SqlType) -> SqlType | None:
    if widens_to(actual, bound):
        return bound
    if widens_to(bound, actual):
        return actual
    if isinstance(bound, ArrayType) and isinstance(actual, ArrayType):
        element = _widen_complex(bound.element, actual.element)
        return ArrayType(element) if element is not None else None
    return None


def _instantiate(pattern: SqlType, bindings: dict[str, SqlType], allow_unbound: bool = False) -> SqlType:
    if isinstance(pattern, Generic):
        bound = bindings.get(pattern.name)
        if bound is None:
            if allow_unbound:
                return NULL
            raise _NoMatch
        return bound
    if isinstance(pattern, ArrayType):
        return ArrayType(_instantiate(pattern.element, bindings, allow_unbound))
    if isinstance(pattern, MapType):
        return MapType(
            _instantiate(pattern.key, bindings, allow_unbound), _instantiate(pattern.value, bindings, allow_unbound)
        )
    if isinstance(pattern, (AnyType, AnyDecimal, AnyStruct)):
        return NULL if allow_unbound else pattern
    return pattern


def _expand_params(overload: Overload, count: int) -> list[SqlType] | None:
    params = list(overload.params)
    if overload.variadic:
        if count < len(params) - 1:
            return None
        at = overload.variadic_index
        return params[:at] + [params[at]] * (count - len(params) + 1) + params[at + 1:]
    return params if count == len(params) else None


def _try_bind(overload: Overload, args: Sequence[SqlType | LambdaArg]) -> tuple[BoundFunction, int] | None:
    params = _expand_params(overload, len(args))
    if params is None:
        return None
    bindings: dict[str, SqlType] = {}
    concrete: list[SqlType | None] = [None] * len(args)
    cost = 0
    try:
        for i, (pattern, arg) in enumerate(zip(params, args, strict=True)):
            if isinstance(pattern, LambdaPattern) != isinstance(arg, LambdaArg):
                return None
            if isinstance(arg, LambdaArg):
                continue
            concrete[i], arg_cost = _unify(pattern, arg, bindings)
            cost += arg_cost
        lambda_params: dict[int, list[SqlType]] = {}
        for i, (pattern, arg) in enumerate(zip(params, args, strict=True)):
            if not isinstance(arg, LambdaArg):
                continue
            assert isinstance(pattern, LambdaPattern)
            if arg.arity != len(pattern.params):
                return None
            param_types = [_instantiate(p, bindings) for p in pattern.params]
            body = arg.body_type(param_types)
            _unify(pattern.returns, body, bindings)
            lambda_params[i] = param_types
            concrete[i] = body
        # a second pass fixes arguments whose generic widened after they were matched
        final = [
            c if isinstance(args[i], LambdaArg) else _instantiate(_reconcile(params[i], c), bindings, True)
            for i, c in enumerate(concrete)
        ]
        arg_types = [t if t is not None else NULL for t in final]
        if callable(overload.returns) and not isinstance(overload.returns, SqlType):
            return_type = overload.returns(arg_types)
        else:
            return_type = _instantiate(overload.returns, bindings, allow_unbound=True)
    except _NoMatch:
        return None
    return BoundFunction(overload, arg_types, return_type, lambda_params), cost


def _reconcile(pattern: SqlType, concrete: SqlType | None) -> SqlType:
    """Keep generic patterns symbolic so the final instantiation sees their widest binding."""
    if _has_generic(pattern):
        return pattern
    return concrete if concrete is not None else pattern


def _has_generic(pattern: SqlType) -> bool:
    if isinstance(pattern, Generic):
        return True
    if isinstance(pattern, ArrayType):
        return _has_generic(pattern.element)
    if isinstance(pattern, MapType):
        return _has_generic(pattern.key) or _has_generic(pattern.value)
    return False


# --------------------------------------------------------------------------- the registry


class FunctionRegistry:
    """All functions known to one engine: the built-ins plus whatever UDFs were loaded into it."""

    def __init__(self) -> None:
        self._functions: dict[str, list[Overload]] = {}

    @classmethod
    def with_builtins(cls) -> FunctionRegistry:
        registry = cls()
        _import_builtin_modules()
        for overload in _BUILTIN_DECLARATIONS:
            registry.add(overload)
        return registry

    def add(self, overload: Overload) -> None:
        self._functions.setdefault(overload.name.upper(), []).append(overload)

    def remove_overload(self, overload: Overload) -> None:
        key = overload.name.upper()
        kept = [o for o in self._functions.get(key, []) if o is not overload]
        if kept:
            self._functions[key] = kept
        else:
            self._functions.pop(key, None)

    def names(self) -> list[str]:
        return sorted(self._functions)

    def overloads(self, name: str) -> list[Overload]:
        return list(self._functions.get(name.upper(), []))

    def exists(self, name: str) -> bool:
        return name.upper() in self._functions

    def kind_of(self, name: str) -> str | None:
        overloads = self._functions.get(name.upper())
        return overloads[0].kind if overloads else None

    def resolve(self, name: str, args: Sequence[SqlType | LambdaArg], kind: str = "scalar") -> BoundFunction:
        """The overload a call with these argument types runs, the way ksqlDB picks it.

        Overloads that take the arguments as they are win over those needing implicit casts (widening a
        number, reading a string literal (STRING_LITERAL) as a date or time). Within the winning group,
        a fixed-arity overload beats a variadic one and a concrete one beats a generic one; when that
        still leaves several, cheaper widenings win unless the overloads only differ in the type every
        argument is widened to, which ksqlDB reports as ambiguous.
        """
        overloads = [o for o in self._functions.get(name.upper(), []) if o.kind == kind]
        if not overloads:
            raise StatementError(f"Can't find any functions with the name '{name.upper()}'")
        shown_name = overloads[0].shown_name
        shown_args = ", ".join(_shown_argument(a) for a in args)
        candidates = [bound for overload in overloads if (bound := _try_bind(overload, args)) is not None]
        if not candidates:
            alternatives = "\n".join(o.signature_text() for o in overloads)
            raise StatementError(
                f"Function '{shown_name}' does not accept parameters ({shown_args}).\n"
                f"Valid alternatives are:\n{alternatives}"
            )
        exact = [c for c in candidates if c[1] == 0]
        group = exact or candidates
        best_rank = min(_preference(bound.overload) for bound, _ in group)
        preferred = [c for c in group if _preference(c[0].overload) == best_rank]
        if len(preferred) > 1:
            raise StatementError(
                f"Function '{shown_name}' cannot be resolved due to ambiguous method parameters ({shown_args})."
            )
        return preferred[0][0]


def _shown_argument(arg: SqlType | LambdaArg) -> str:
    if isinstance(arg, LambdaArg):
        return "LAMBDA"
    return "null" if arg == NULL else str(arg)


def _preference(overload: Overload) -> tuple[bool, bool]:
    """Lower is preferred: fixed arity before variadic, concrete parameters before generic ones."""
    return overload.variadic, any(_has_generic(p) for p in overload.params)


def _import_builtin_modules() -> None:
    from ksqlpy.functions import builtins

    for module in pkgutil.iter_modules(builtins.__path__):
        importlib.import_module(f"{builtins.__name__}.{module.name}")
