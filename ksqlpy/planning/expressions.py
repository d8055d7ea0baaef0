"""Typed expressions: AST expressions resolved against a scope of columns, every node carrying its SQL type.

The typer checks names and types once, at plan time, and inserts the implicit widenings ksqlDB applies
(INTEGER -> BIGINT -> DECIMAL -> DOUBLE) as explicit casts, so the executor never has to guess.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ksqlpy.errors import KsqlError, StatementError
from ksqlpy.functions.registry import FunctionRegistry, LambdaArg
from ksqlpy.syntax import ast
from ksqlpy.types import (
    BIGINT,
    BOOLEAN,
    BYTES,
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


@dataclass(frozen=True)
class TypedExpr:
    type: SqlType


@dataclass(frozen=True)
class Const(TypedExpr):
    value: Any


@dataclass(frozen=True)
class InputRef(TypedExpr):
    """A column of the operator's input batch, by position."""

    index: int
    name: str


@dataclass(frozen=True)
class LambdaVar(TypedExpr):
    name: str


@dataclass(frozen=True)
class Op(TypedExpr):
    """Every non-leaf node: `op` names the operation, `args` its operands, `detail` op-specific data.

    ops: arithmetic 'add' 'sub' 'mul' 'div' 'mod' 'neg'; 'concat'; comparison 'eq' 'ne' 'lt' 'le' 'gt'
    'ge'; logic 'and' 'or' 'not'; 'is_null' 'is_not_null'; 'between' (operand, low, high);
    'in' (operand, items...); 'like' (operand, pattern; detail = escape); 'case' (cond, result, ...,
    [default]; detail = has_default); 'cast' (operand; target = self.type); 'deref' (detail = field);
    'subscript'; 'array'; 'map' (k, v, k, v ...); 'struct' (detail = field names); 'call' (detail =
    BoundFunction); 'lambda' (body; detail = parameter names).
    """

    op: str
    args: tuple[TypedExpr, ...]
    detail: Any = field(default=None, compare=False)


def cast_to(expr: TypedExpr, target: SqlType) -> TypedExpr:
    if expr.type == target:
        return expr
    if isinstance(expr, Const) and expr.value is None:
        return Const(target, None)
    return Op(target, "cast", (expr,))


# --------------------------------------------------------------------------- scope


@dataclass(frozen=True)
class ScopeColumn:
    index: int
    name: str
    type: SqlType
    source: str | None = None  # the source name or alias qualifying it


class Scope:
    """The columns an expression may reference: the input batch's columns, optionally qualified."""

    def __init__(self, columns: Sequence[ScopeColumn], aliases: Sequence[str] = ()) -> None:
        self.columns = list(columns)
        self.aliases = set(aliases)

    def resolve(self, name: str, source: str | None) -> ScopeColumn | None:
        if source is not None and source not in self.aliases:
            raise StatementError(f"'{source}' is not a valid stream/table name or alias.")
        matches = [c for c in self.columns if c.name == name and (source is None or c.source == source)]
        if len({c.index for c in matches}) > 1 and source is None:
            sources = ", ".join(sorted(str(c.source) for c in matches))
            raise StatementError(f"Column '{name}' is ambiguous. Could be any of: {sources}")
        return matches[0] if matches else None


# --------------------------------------------------------------------------- the typer

_COMPARISON_OPS = {"=": "eq", "<>": "ne", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
_COMPARISON_NAMES = {
    "eq": "EQUAL",
    "ne": "NOT_EQUAL",
    "lt": "LESS_THAN",
    "le": "LESS_THAN_OR_EQUAL",
    "gt": "GREATER_THAN",
    "ge": "GREATER_THAN_OR_EQUAL",
}
_ARITHMETIC_OPS = {"+": "add", "-": "sub", "*": "mul", "/": "div", "%": "mod"}
_TEMPORAL = (TIMESTAMP, DATE, TIME)


def render(expr: ast.Expr) -> str:
    """Text of an AST expression in ksqlDB's style, for messages and generated column names."""
    return _Renderer().render(expr)


class _Renderer:
    def render(self, e: ast.Expr) -> str:
        if isinstance(e, ast.Literal):
            if e.value is None:
                return "null"
            if e.type == STRING:
                return "'" + str(e.value).replace("'", "''") + "'"
            if e.type == BOOLEAN:
                return "true" if e.value else "false"
            return str(e.value)
        if isinstance(e, ast.ColumnRef):
            return f"{e.source}.{e.name}" if e.source else e.name
        if isinstance(e, ast.Dereference):
            return f"{self.render(e.base)}->{e.field}"
        if isinstance(e, ast.Subscript):
            return f"{self.render(e.base)}[{self.render(e.index)}]"
        if isinstance(e, ast.UnaryOp):
            return f"(NOT {self.render(e.operand)})" if e.op == "NOT" else f"{e.op}{self.render(e.operand)}"
        if isinstance(e, ast.BinaryOp):
            return f"({self.render(e.left)} {e.op} {self.render(e.right)})"
        if isinstance(e, ast.FunctionCall):
            inner = "*" if e.star else ", ".join(self.render(a) for a in e.args)
            return f"{e.name}({inner})"
        if isinstance(e, ast.Cast):
            return f"CAST({self.render(e.operand)} AS {e.type})"
        if isinstance(e, ast.IsNull):
            return f"({self.render(e.operand)} IS {'NOT ' if e.negated else ''}NULL)"
        return type(e).__name__.upper()


class ExpressionTyper:
    """Turns AST expressions into typed expressions over one scope."""

    def __init__(self, scope: Scope, registry: FunctionRegistry, clause: str = "SELECT") -> None:
        self.scope = scope
        self.registry = registry
        self.clause = clause
        self._lambda_vars: list[dict[str, SqlType]] = []

    def type_boolean(self, expr: ast.Expr, what: str) -> TypedExpr:
        typed = self.type(expr)
        if typed.type not in (BOOLEAN, NULL):
            raise StatementError(
                f"Type error in {what} expression: Should evaluate to boolean but is {render(expr)} ({typed.type}) instead."
            )
        return cast_to(typed, BOOLEAN)

    def type(self, e: ast.Expr) -> TypedExpr:
        if isinstance(e, ast.Literal):
            return Const(e.type, e.value)
        if isinstance(e, ast.ColumnRef):
            return self._column(e)
        if isinstance(e, ast.Dereference):
            return self._dereference(e)
        if isinstance(e, ast.Subscript):
            return self._subscript(e)
        if isinstance(e, ast.UnaryOp):
            return self._unary(e)
        if isinstance(e, ast.BinaryOp):
            return self._binary(e)
        if isinstance(e, ast.IsNull):
            return Op(BOOLEAN, "is_not_null" if e.negated else "is_null", (self.type(e.operand),))
        if isinstance(e, ast.Between):
            return self._between(e)
        if isinstance(e, ast.InList):
            return self._in(e)
        if isinstance(e, ast.Like):
            return self._like(e)
        if isinstance(e, ast.Case):
            return self._case(e)
        if isinstance(e, ast.Cast):
            return self._cast(e)
        if isinstance(e, ast.FunctionCall):
            return self._call(e)
        if isinstance(e, ast.ArrayConstructor):
            return self._array(e)
        if isinstance(e, ast.MapConstructor):
            return self._map(e)
        if isinstance(e, ast.StructConstructor):
            fields = tuple((name, self.type(value)) for name, value in e.fields)
            struct_type = StructType(tuple((name, typed.type) for name, typed in fields))
            return Op(struct_type, "struct", tuple(t for _, t in fields), tuple(n for n, _ in fields))
        if isinstance(e, ast.IntervalUnitExpr):
            return Const(STRING, e.unit)
        if isinstance(e, ast.Lambda):
            raise StatementError("Lambda expressions are only allowed as function arguments")
        raise StatementError(f"Unsupported expression: {type(e).__name__}")

    # -- leaves

    def _column(self, e: ast.ColumnRef) -> TypedExpr:
        if e.source is None:
            for frame in reversed(self._lambda_vars):
                if e.name in frame:
                    return LambdaVar(frame[e.name], e.name)
        column = self.scope.resolve(e.name, e.source)
        if column is None:
            shown = f"{e.source}.{e.name}" if e.source else e.name
            raise StatementError(f"{self.clause} column '{shown}' cannot be resolved.")
        return InputRef(column.type, column.index, column.name)

    def _dereference(self, e: ast.Dereference) -> TypedExpr:
        base = self.type(e.base)
        if not isinstance(base.type, StructType):
            raise StatementError(f"Expected STRUCT type for dereference of {render(e.base)}, got {base.type}")
        field_type = base.type.field(e.field)
        if field_type is None:
            raise StatementError(f"Could not find field '{e.field}' in '{render(e.base)}'.")
        return Op(field_type, "deref", (base,), e.field)

    def _subscript(self, e: ast.Subscript) -> TypedExpr:
        base = self.type(e.base)
        index = self.type(e.index)
        if isinstance(base.type, ArrayType):
            if index.type not in (INTEGER, BIGINT, NULL):
                raise StatementError(f"Array index must be INTEGER, got {index.type}")
            return Op(base.type.element, "subscript", (base, cast_to(index, INTEGER)))
        if isinstance(base.type, MapType):
            return Op(base.type.value, "subscript", (base, self._coerce(index, base.type.key, render(e.index))))
        raise StatementError(f"Subscript expression is only valid on ARRAY or MAP types, got {base.type}")

    # -- operators

    def _unary(self, e: ast.UnaryOp) -> TypedExpr:
        operand = self.type(e.operand)
        if e.op == "NOT":
            if operand.type not in (BOOLEAN, NULL):
                raise StatementError(f"NOT operand must be BOOLEAN, got {operand.type}")
            return Op(BOOLEAN, "not", (cast_to(operand, BOOLEAN),))
        if not is_numeric(operand.type):
            raise StatementError(f"Unary {e.op} is only valid on numeric types, got {operand.type}")
        if e.op == "+":
            return operand
        if isinstance(operand, Const) and operand.value is not None:
            return Const(operand.type, -operand.value)
        return Op(operand.type, "neg", (operand,))

    def _binary(self, e: ast.BinaryOp) -> TypedExpr:
        if e.op in ("AND", "OR"):
            left, right = self.type(e.left), self.type(e.right)
            for side, node in ((left, e.left), (right, e.right)):
                if side.type not in (BOOLEAN, NULL):
                    raise StatementError(f"{e.op} operand {render(node)} must be BOOLEAN, got {side.type}")
            return Op(BOOLEAN, e.op.lower(), (cast_to(left, BOOLEAN), cast_to(right, BOOLEAN)))
        if e.op in _COMPARISON_OPS:
            return self._comparison(_COMPARISON_OPS[e.op], e.left, e.right)
        if e.op in ("IS DISTINCT FROM", "IS NOT DISTINCT FROM"):
            left, right = self._comparable(self.type(e.left), self.type(e.right), "eq", e.left, e.right)
            distinct = Op(BOOLEAN, "distinct", (left, right))
            return distinct if e.op == "IS DISTINCT FROM" else Op(BOOLEAN, "not", (distinct,))
        if e.op == "||":
            left, right = self.type(e.left), self.type(e.right)
            return Op(STRING, "concat", (cast_to(left, STRING), cast_to(right, STRING)))
        return self._arithmetic(_ARITHMETIC_OPS[e.op], e)

    def _arithmetic(self, op: str, e: ast.BinaryOp) -> TypedExpr:
        left, right = self.type(e.left), self.type(e.right)
        if op == "add" and STRING in (left.type, right.type) and {left.type, right.type} <= {STRING, NULL}:
            return Op(STRING, "concat", (cast_to(left, STRING), cast_to(right, STRING)))
        if not (is_numeric(left.type) or left.type == NULL) or not (is_numeric(right.type) or right.type == NULL):
            raise StatementError(
                f"Error processing expression: {render(e)}. Unsupported arithmetic types. {left.type} {right.type}"
            )
        common = common_numeric_type(left.type, right.type)
        if common == NULL:
            common = INTEGER
        result = _decimal_result(op, left.type, right.type) if isinstance(common, DecimalType) else common
        operand_type = common
        if isinstance(common, DecimalType):
            left_dec, right_dec = decimal_for_integral(left.type), decimal_for_integral(right.type)
            return Op(result, op, (cast_to(left, left_dec), cast_to(right, right_dec)))
        return Op(result, op, (cast_to(left, operand_type), cast_to(right, operand_type)))

    def _comparison(self, op: str, left_node: ast.Expr, right_node: ast.Expr) -> TypedExpr:
        left, right = self.type(left_node), self.type(right_node)
        left, right = self._comparable(left, right, op, left_node, right_node)
        return Op(BOOLEAN, op, (left, right))

    def _comparable(
        self, left: TypedExpr, right: TypedExpr, op: str, left_node: ast.Expr, right_node: ast.Expr
    ) -> tuple[TypedExpr, TypedExpr]:
        lt, rt = left.type, right.type
        if lt == NULL or rt == NULL or (lt == rt and _orderable(lt, op)):
            return left, right
        if is_numeric(lt) and is_numeric(rt):
            common = common_numeric_type(lt, rt)
            return cast_to(left, common), cast_to(right, common)
        if _is_rowtime(left) and rt == STRING and isinstance(right, Const):
            return left, _timestamp_literal(right)
        if _is_rowtime(right) and lt == STRING and isinstance(left, Const):
            return _timestamp_literal(left), right
        if lt in _TEMPORAL and rt == STRING and isinstance(right, Const):
            return left, cast_to(right, lt)
        if rt in _TEMPORAL and lt == STRING and isinstance(left, Const):
            return cast_to(left, rt), right
        if lt in (TIMESTAMP, DATE) and rt in (TIMESTAMP, DATE):
            return cast_to(left, TIMESTAMP), cast_to(right, TIMESTAMP)
        prefix = "Error in WHERE expression: " if self.clause == "WHERE" else ""
        raise StatementError(
            f"{prefix}Cannot compare {render(left_node)} ({lt}) to {render(right_node)} ({rt}) "
            f"with {_COMPARISON_NAMES[op]}."
        )

    def _between(self, e: ast.Between) -> TypedExpr:
        operand, low, high = self.type(e.operand), self.type(e.low), self.type(e.high)
        operand, low = self._comparable(operand, low, "ge", e.operand, e.low)
        operand, high = self._comparable(operand, high, "le", e.operand, e.high)
        operand, low = self._comparable(operand, low, "ge", e.operand, e.low)
        between = Op(BOOLEAN, "between", (operand, low, high))
        return Op(BOOLEAN, "not", (between,)) if e.negated else between

    def _in(self, e: ast.InList) -> TypedExpr:
        operand = self.type(e.operand)
        items = [self._in_item(operand.type, self.type(node), node) for node in e.items]
        target = operand.type
        for item in items:
            if target == NULL:
                target = item.type
            elif is_numeric(target) and is_numeric(item.type):
                target = common_numeric_type(target, item.type)
            elif item.type != NULL and item.type != target and widens_to(target, item.type):
                target = item.type
        args = (cast_to(operand, target), *(cast_to(i, target) for i in items))
        in_list = Op(BOOLEAN, "in", args)
        return Op(BOOLEAN, "not", (in_list,)) if e.negated else in_list

    def _in_item(self, target: SqlType, item: TypedExpr, node: ast.Expr) -> TypedExpr:
        """Check one IN-list item against the operand's type; string literals are read as that type."""
        if item.type == NULL or target == NULL or item.type == target:
            return item
        if (is_numeric(target) and is_numeric(item.type)) or widens_to(item.type, target) or widens_to(target, item.type):
            return item
        if isinstance(item, Const) and item.type == STRING and castable(STRING, target):
            from ksqlpy.execution.casts import converter

            try:
                return Const(target, converter(STRING, target)(item.value))
            except (KsqlError, ValueError, ArithmeticError) as error:
                type_name = "DECIMAL" if isinstance(target, DecimalType) else str(target)
                raise StatementError(f'invalid input syntax for type {type_name}: "{item.value}".') from error
        if isinstance(item, Op) and item.op in ("array", "map", "struct") and type(target) is type(item.type):
            children = self._container_targets(target, item)
            if children is not None:
                args = tuple(cast_to(self._in_item(t, a, node), t) for a, t in zip(item.args, children, strict=True))
                return Op(target, item.op, args, item.detail)
        raise StatementError(
            f"operator does not exist: {target} = {item.type} ({render(node)})\n"
            "Hint: You might need to add explicit type casts."
        )

    @staticmethod
    def _container_targets(target: SqlType, item: Op) -> list[SqlType] | None:
        if isinstance(target, ArrayType):
            return [target.element] * len(item.args)
        if isinstance(target, MapType):
            return [target.key, target.value] * (len(item.args) // 2)
        assert isinstance(target, StructType)
        fields = dict(target.fields)
        if set(item.detail) - set(fields):
            return None
        return [fields[name] for name in item.detail]

    def _like(self, e: ast.Like) -> TypedExpr:
        operand, pattern = self.type(e.operand), self.type(e.pattern)
        for side, node in ((operand, e.operand), (pattern, e.pattern)):
            if side.type not in (STRING, NULL):
                raise StatementError(f"LIKE operands must be STRING, got {render(node)} ({side.type})")
        like = Op(BOOLEAN, "like", (cast_to(operand, STRING), cast_to(pattern, STRING)), e.escape)
        return Op(BOOLEAN, "not", (like,)) if e.negated else like

    def _case(self, e: ast.Case) -> TypedExpr:
        conditions: list[TypedExpr] = []
        if e.operand is None:
            conditions = [self.type_boolean(cond, "CASE WHEN") for cond, _ in e.whens]
        else:
            conditions = [self._comparison("eq", e.operand, value) for value, _ in e.whens]
        results = [self.type(result) for _, result in e.whens]
        default = self.type(e.default) if e.default is not None else None
        branch_types = [r.type for r in results] + ([default.type] if default is not None else [])
        result_type = _unify_branches(branch_types)
        if result_type == NULL:
            raise StatementError("Invalid Case expression. All case branches have NULL type")
        args: list[TypedExpr] = []
        for cond, result in zip(conditions, results, strict=True):
            args += [cond, cast_to(result, result_type)]
        if default is not None:
            args.append(cast_to(default, result_type))
        return Op(result_type, "case", tuple(args), default is not None)

    def _cast(self, e: ast.Cast) -> TypedExpr:
        operand = self.type(e.operand)
        if not castable(operand.type, e.type):
            raise StatementError(f"Cast of {operand.type} to {e.type} is not supported")
        if operand.type == e.type:
            return operand
        return Op(e.type, "cast", (operand,))

    def _coerce(self, expr: TypedExpr, target: SqlType, shown: str) -> TypedExpr:
        if widens_to(expr.type, target):
            return cast_to(expr, target)
        raise StatementError(f"Expected {target} but got {shown} ({expr.type})")

    # -- constructors

    def _array(self, e: ast.ArrayConstructor) -> TypedExpr:
        items = [self.type(i) for i in e.items]
        if items and all(i.type == NULL for i in items):
            raise StatementError(
                "Cannot construct an array with all NULL elements "
                "(see https://github.com/confluentinc/ksql/issues/4239). As a workaround, you may cast a "
                "NULL value to the desired type."
            )
        element = _unify_branches([i.type for i in items]) if items else STRING
        return Op(ArrayType(element), "array", tuple(cast_to(i, element) for i in items))

    def _map(self, e: ast.MapConstructor) -> TypedExpr:
        if not e.entries:
            raise StatementError(
                "Map constructor cannot be empty. Please supply at least one key value pair "
                "(see https://github.com/confluentinc/ksql/issues/4239)."
            )
        keys = [self.type(k) for k, _ in e.entries]
        values = [self.type(v) for _, v in e.entries]
        if all(k.type == NULL for k in keys):
            raise StatementError("Cannot construct a map with all NULL keys")
        if all(v.type == NULL for v in values):
            raise StatementError("Cannot construct a map with all NULL values")
        key_type, value_type = _unify_branches([k.type for k in keys]), _unify_branches([v.type for v in values])
        args: list[TypedExpr] = []
        for k, v in zip(keys, values, strict=True):
            args += [cast_to(k, key_type), cast_to(v, value_type)]
        return Op(MapType(key_type, value_type), "map", tuple(args))

    # -- functions

    def _call(self, e: ast.FunctionCall) -> TypedExpr:
        kind = self.registry.kind_of(e.name)
        if kind is not None and kind != "scalar":
            raise StatementError(f"{kind.capitalize()} function {e.name} is not allowed here: {render(e)}")
        typed_args: list[TypedExpr | None] = []
        arg_specs: list[SqlType | LambdaArg] = []
        for arg in e.args:
            if isinstance(arg, ast.Lambda):
                typed_args.append(None)
                arg_specs.append(LambdaArg(len(arg.params), self._lambda_typer(arg)))
            else:
                typed = self.type(arg)
                typed_args.append(typed)
                arg_specs.append(typed.type)
        bound = self.registry.resolve(e.name, arg_specs)
        args: list[TypedExpr] = []
        for i, (arg, maybe_typed) in enumerate(zip(e.args, typed_args, strict=True)):
            if maybe_typed is None:
                assert isinstance(arg, ast.Lambda)
                args.append(self._lambda(arg, bound.lambda_param_types[i]))
            elif bound.arg_types[i] == NULL:
                args.append(maybe_typed)
            else:
                args.append(cast_to(maybe_typed, bound.arg_types[i]))
        return Op(bound.return_type, "call", tuple(args), bound)

    def _lambda_typer(self, e: ast.Lambda) -> Callable[[list[SqlType]], SqlType]:
        def body_type(param_types: list[SqlType]) -> SqlType:
            return self._lambda(e, param_types).args[0].type

        return body_type

    def _lambda(self, e: ast.Lambda, param_types: list[SqlType]) -> Op:
        self._lambda_vars.append(dict(zip(e.params, param_types, strict=True)))
        try:
            body = self.type(e.body)
        finally:
            self._lambda_vars.pop()
        return Op(body.type, "lambda", (body,), e.params)


def _is_rowtime(expr: TypedExpr) -> bool:
    return isinstance(expr, InputRef) and expr.name == "ROWTIME"


def _timestamp_literal(text: TypedExpr) -> TypedExpr:
    """ksqlDB compares ROWTIME with a string literal by reading the string as a (possibly partial) timestamp."""
    from ksqlpy.execution.casts import parse_partial_timestamp

    assert isinstance(text, Const)
    try:
        return Const(BIGINT, parse_partial_timestamp(str(text.value)))
    except KsqlError as error:
        raise StatementError(f"Failed to parse timestamp '{text.value}': {error}") from error


def _decimal_result(op: str, left: SqlType, right: SqlType) -> DecimalType:
    """ksqlDB's (SQL Server's) rules for the precision and scale of DECIMAL arithmetic."""
    a, b = decimal_for_integral(left), decimal_for_integral(right)
    p1, s1, p2, s2 = a.precision, a.scale, b.precision, b.scale
    if op in ("add", "sub"):
        scale = max(s1, s2)
        precision = max(p1 - s1, p2 - s2) + scale + 1
    elif op == "mul":
        precision, scale = p1 + p2 + 1, s1 + s2
    elif op == "div":
        scale = max(6, s1 + p2 + 1)
        precision = p1 - s1 + s2 + scale
    else:  # mod
        scale = max(s1, s2)
        precision = min(p1 - s1, p2 - s2) + scale
    return DecimalType(min(precision, 38), min(scale, 38))


def _unify_branches(types: Sequence[SqlType]) -> SqlType:
    result: SqlType = NULL
    for t in types:
        if t == NULL:
            continue
        if result == NULL:
            result = t
        elif result != t:
            if is_numeric(result) and is_numeric(t):
                result = common_numeric_type(result, t)
            elif widens_to(t, result):
                continue
            elif widens_to(result, t):
                result = t
            else:
                raise StatementError(f"Invalid expression: all branches must have the same type; got {result} and {t}")
    return result


def _orderable(t: SqlType, op: str) -> bool:
    return op in ("eq", "ne") or not isinstance(t, (ArrayType, MapType, StructType))


def castable(source: SqlType, target: SqlType) -> bool:
    """ksqlDB's explicit CAST rules."""
    if source in (target, NULL):
        return True
    if target == STRING:
        return True
    if source == STRING:
        return target in (BOOLEAN, INTEGER, BIGINT, DOUBLE, TIMESTAMP, DATE, TIME, BYTES) or isinstance(
            target, DecimalType
        )
    if is_numeric(source) and is_numeric(target):
        return True
    if source == TIMESTAMP and target in (DATE, TIME):
        return True
    if source == DATE and target == TIMESTAMP:
        return True
    if isinstance(source, ArrayType) and isinstance(target, ArrayType):
        return castable(source.element, target.element)
    if isinstance(source, MapType) and isinstance(target, MapType):
        return castable(source.key, target.key) and castable(source.value, target.value)
    if isinstance(source, StructType) and isinstance(target, StructType):
        return all(
            (sf := source.field(name)) is None or castable(sf, ftype) for name, ftype in target.fields
        )
    return source == BYTES and target == BYTES
