"""Typed expressions: AST expressions resolved against a scope of columns, every node carrying its SQL type.

The typer checks names and types once, at plan time, and inserts the implicit widenings ksqlDB applies
(INTEGER -> BIGINT -> DECIMAL -> DOUBLE) as explicit casts, so the executor never has to guess.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ksqlpy.errors import KsqlError, StatementError
from ksqlpy.functions.registry import STRING_LITERAL, FunctionRegistry, LambdaArg
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

    ops: arithmetic 'add' 'sub' 'mul' 'div' 'mod' 'neg'; 'concat' (two or more operands); comparison 'eq'
    'ne' 'lt' 'le' 'gt' 'ge'; logic 'and' 'or' (two or more operands) 'not'; 'is_null' 'is_not_null';
    'between' (operand, low, high); 'in' (operand, items...); 'like' (operand, pattern; detail = escape);
    'case' (cond, result, ..., [default]; detail = has_default); 'cast' (operand; target = self.type);
    'deref' (detail = field); 'subscript'; 'array'; 'map' (k, v, k, v ...); 'struct' (detail = field
    names); 'call' (detail = BoundFunction); 'lambda' (body; detail = parameter names); 'chain' (step,
    step, ...: a run of arithmetic, each step after the first reading the one before it through
    ChainValue; its value is the last step's).
    """

    op: str
    args: tuple[TypedExpr, ...]
    detail: Any = field(default=None, compare=False)


@dataclass(frozen=True)
class ChainValue(TypedExpr):
    """In a step of an Op 'chain', the value of the step before it.

    A run like `a + b - c + ...` is typed step by step, each step with ksqlDB's widening and result type,
    as if nested; the steps are kept side by side, so a run of a thousand terms is no deeper than one.
    """


def same_expression(left: TypedExpr, right: TypedExpr) -> bool:
    """Whether two typed expressions compute the same thing; unlike ==, this compares `Op.detail` too
    (the field a dereference reads, the function a call runs)."""
    return _identity(left) == _identity(right)


def _identity(expr: TypedExpr) -> Any:
    if not isinstance(expr, Op):
        return expr
    detail = expr.detail
    if expr.op == "call":
        detail = (detail.overload.name, tuple(detail.arg_types))
    return (expr.op, expr.type, detail, tuple(_identity(a) for a in expr.args))


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

    def check_source(self, source: str) -> None:
        if source not in self.aliases:
            raise StatementError(f"'{source}' is not a valid stream/table name or alias.")

    def resolve(self, name: str, source: str | None) -> ScopeColumn | None:
        if source is not None:
            self.check_source(source)
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


def render(expr: ast.Expr, qualifier: str | None = None) -> str:
    """Text of an AST expression in ksqlDB's style, for messages and generated column names.

    With a `qualifier`, unqualified column references are written as `qualifier.NAME`.
    """
    return _Renderer(qualifier).render(expr)


class _Renderer:
    def __init__(self, qualifier: str | None = None) -> None:
        self.qualifier = qualifier

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
            source = e.source or self.qualifier
            return f"{source}.{e.name}" if source else e.name
        if isinstance(e, ast.Dereference):
            return f"{self.render(e.base)}->{e.field}"
        if isinstance(e, ast.Subscript):
            return f"{self.render(e.base)}[{self.render(e.index)}]"
        if isinstance(e, ast.UnaryOp):
            return f"(NOT {self.render(e.operand)})" if e.op == "NOT" else f"{e.op}{self.render(e.operand)}"
        if isinstance(e, ast.BinaryOp):
            return f"({self.render(e.left)} {e.op} {self.render(e.right)})"
        if isinstance(e, ast.Chain):
            # bracketed as the nested binary operations it stands for: ((a + b) - c)
            steps = "".join(f" {op} {self.render(operand)})" for op, operand in zip(e.operators, e.operands[1:],
                                                                                     strict=True))
            return "(" * len(e.operators) + self.render(e.operands[0]) + steps
        if isinstance(e, ast.FunctionCall):
            inner = "*" if e.star else ", ".join(self.render(a) for a in e.args)
            return f"{e.name}({inner})"
        if isinstance(e, ast.Cast):
            return f"CAST({self.render(e.operand)} AS {e.type})"
        if isinstance(e, ast.IsNull):
            return f"({self.render(e.operand)} IS {'NOT ' if e.negated else ''}NULL)"
        if isinstance(e, ast.ArrayConstructor):
            return f"ARRAY[{', '.join(self.render(i) for i in e.items)}]"
        if isinstance(e, ast.MapConstructor):
            return f"MAP({', '.join(f'{self.render(k)}:={self.render(v)}' for k, v in e.entries)})"
        if isinstance(e, ast.StructConstructor):
            return f"STRUCT({', '.join(f'{name}:={self.render(v)}' for name, v in e.fields)})"
        return type(e).__name__.upper()


class ExpressionTyper:
    """Turns AST expressions into typed expressions over one scope."""

    def __init__(self, scope: Scope, registry: FunctionRegistry, clause: str = "SELECT") -> None:
        self.scope = scope
        self.registry = registry
        self.clause = clause
        self._lambda_vars: list[dict[str, SqlType]] = []
        # (node id, lambda parameter types in scope) -> (the node, kept alive so its id stays its own; the
        # typed node or the error typing it raised)
        self._typed: dict[tuple[int, Any], tuple[ast.Expr, TypedExpr | KsqlError]] = {}

    def type_boolean(self, expr: ast.Expr, what: str) -> TypedExpr:
        typed = self.type(expr)
        if typed.type not in (BOOLEAN, NULL):
            raise StatementError(
                f"Type error in {what} expression: Should evaluate to boolean but is {render(expr)} ({typed.type}) instead."
            )
        return cast_to(typed, BOOLEAN)

    def type(self, e: ast.Expr) -> TypedExpr:
        """The typed form of `e`. Each node is typed once per set of lambda parameter types: overload
        resolution types a lambda body once per candidate and list coercion types constructor items again,
        which would otherwise take time exponential in how deeply lambdas and constructors nest."""
        key = (id(e), tuple(tuple(frame.items()) for frame in self._lambda_vars))
        known = self._typed.get(key)
        if known is None:
            try:
                known = e, self._type(e)
            except KsqlError as error:
                known = e, error
            self._typed[key] = known
        if isinstance(known[1], KsqlError):
            raise known[1]
        return known[1]

    def _type(self, e: ast.Expr) -> TypedExpr:
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
        if isinstance(e, ast.Chain):
            return self._chain(e)
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
            # A column named like a unit (SECOND) is the column, as in ksqlDB, whose grammar tries an expression first.
            if e.written and self.scope.resolve(e.written, None) is not None:
                return self._column(ast.ColumnRef(e.written, pos=e.pos))
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
        if e.op in _COMPARISON_OPS:
            return self._comparison(e.op, e.left, e.right)
        left, right = self._comparable(self.type(e.left), self.type(e.right), "eq", e.left, e.right)
        distinct = Op(BOOLEAN, "distinct", (left, right))
        return distinct if e.op == "IS DISTINCT FROM" else Op(BOOLEAN, "not", (distinct,))

    def _chain(self, e: ast.Chain) -> TypedExpr:
        """AND, OR and || are associative, so their runs are one n-ary operation; a run of arithmetic keeps
        ksqlDB's typing of each step, as if it were nested, in one flat 'chain'."""
        operator = e.operators[0]  # the grammar gives AND, OR and || runs of their own
        operands = [self.type(node) for node in e.operands]
        if operator in ("AND", "OR"):
            for operand, node in zip(operands, e.operands, strict=True):
                if operand.type not in (BOOLEAN, NULL):
                    raise StatementError(f"{operator} operand {render(node)} must be BOOLEAN, got {operand.type}")
            return Op(BOOLEAN, operator.lower(), tuple(cast_to(operand, BOOLEAN) for operand in operands))
        if operator == "||":
            return Op(STRING, "concat", tuple(cast_to(operand, STRING) for operand in operands))
        steps: list[TypedExpr] = []
        for index, (symbol, right) in enumerate(zip(e.operators, operands[1:], strict=True)):
            left = ChainValue(steps[-1].type) if steps else operands[0]
            steps.append(self._arithmetic(_ARITHMETIC_OPS[symbol], left, right, e, index))
        return steps[0] if len(steps) == 1 else Op(steps[-1].type, "chain", tuple(steps))

    @staticmethod
    def _arithmetic(op: str, left: TypedExpr, right: TypedExpr, chain: ast.Chain, index: int) -> TypedExpr:
        """Step `index` of `chain`: the value so far (`left`) combined with the next operand (`right`)."""
        if op == "add" and STRING in (left.type, right.type) and {left.type, right.type} <= {STRING, NULL}:
            return Op(STRING, "concat", (cast_to(left, STRING), cast_to(right, STRING)))
        if NULL in (left.type, right.type) or not is_numeric(left.type) or not is_numeric(right.type):
            shown = ast.Chain(chain.operands[:index + 2], chain.operators[:index + 1])
            if NULL in (left.type, right.type):
                names = " and ".join("null" if t == NULL else str(t) for t in (left.type, right.type))
                raise StatementError(f"Error processing expression: {render(shown)}. Arithmetic on types {names} "
                                     "are not supported.")
            raise StatementError(
                f"Error processing expression: {render(shown)}. Unsupported arithmetic types. {left.type} {right.type}"
            )
        common = common_numeric_type(left.type, right.type)
        result = _decimal_result(op, left.type, right.type) if isinstance(common, DecimalType) else common
        operand_type = common
        if isinstance(common, DecimalType):
            left_dec, right_dec = decimal_for_integral(left.type), decimal_for_integral(right.type)
            return Op(result, op, (cast_to(left, left_dec), cast_to(right, right_dec)))
        return Op(result, op, (cast_to(left, operand_type), cast_to(right, operand_type)))

    def _comparison(self, symbol: str, left_node: ast.Expr, right_node: ast.Expr) -> TypedExpr:
        left, right = self.type(left_node), self.type(right_node)
        if NULL in (left.type, right.type):  # always unknown: ksqlDB points at IS NULL instead
            prefix = "Error in WHERE expression: " if self.clause == "WHERE" else ""
            raise StatementError(f"{prefix}Comparison with NULL not supported: {left.type} {symbol} {right.type}\n"
                                 "Use 'IS NULL' or 'IS NOT NULL' instead.")
        return self._compared(_COMPARISON_OPS[symbol], left_node, right_node)

    def _compared(self, op: str, left_node: ast.Expr, right_node: ast.Expr) -> TypedExpr:
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
        _, coerced = self._coerce_list([e.operand, *e.items])
        in_list = Op(BOOLEAN, "in", tuple(coerced))
        return Op(BOOLEAN, "not", (in_list,)) if e.negated else in_list

    # -- implicit coercion of expression lists (IN lists, ARRAY[...] and MAP(...) constructors)

    def _coerce_list(self, nodes: Sequence[ast.Expr]) -> tuple[SqlType, list[TypedExpr]]:
        """ksqlDB's coercion of a list of expressions to one common type, resolved left to right.

        Numbers widen to the widest numeric type; a string literal is read as the type reached so far
        (numbers by their own literal type, so '2147483648' widens INTEGER to BIGINT); any other literal
        becomes its text when the type is STRING; ARRAY, MAP and STRUCT constructors are coerced element
        by element, and STRUCT constructors contribute fields the type does not have yet.
        """
        typed = [self.type(node) for node in nodes]
        common: SqlType = NULL
        for node, item in zip(nodes, typed, strict=True):
            try:
                common = self._common_type(common, node, item)
            except _Mismatch as error:
                raise StatementError(
                    f"operator does not exist: {common} = {item.type} ({render(node)})\n"
                    "Hint: You might need to add explicit type casts."
                ) from error
        return common, [self._coerce_item(node, item, common) for node, item in zip(nodes, typed, strict=True)]

    def _common_type(self, target: SqlType, node: ast.Expr, item: TypedExpr) -> SqlType:
        source = item.type
        if source == NULL:
            return target
        if target == NULL:
            return source
        if isinstance(node, ast.Literal) and source == STRING and target != STRING:
            return self._string_literal_type(target, str(node.value))[0]
        if isinstance(node, ast.Literal) and target == STRING:
            return STRING
        if is_numeric(source) and is_numeric(target):
            return common_numeric_type(target, source)
        if isinstance(node, _CONSTRUCTORS):
            return self._constructor_common_type(target, node)
        if widens_to(source, target):
            return target
        if widens_to(target, source):
            return source
        if isinstance(source, StructType) and isinstance(target, StructType):
            return _merge_struct_types(target, source)
        raise _Mismatch

    def _constructor_common_type(self, target: SqlType, node: ast.Expr) -> SqlType:
        if isinstance(node, ast.ArrayConstructor) and isinstance(target, ArrayType):
            element = target.element
            for item in node.items:
                element = self._common_type(element, item, self.type(item))
            return ArrayType(element)
        if isinstance(node, ast.MapConstructor) and isinstance(target, MapType):
            key, value = target.key, target.value
            for key_node, value_node in node.entries:
                key = self._common_type(key, key_node, self.type(key_node))
                value = self._common_type(value, value_node, self.type(value_node))
            return MapType(key, value)
        if isinstance(node, ast.StructConstructor) and isinstance(target, StructType):
            fields = dict(target.fields)
            for name, value_node in node.fields:
                fields[name] = self._common_type(fields.get(name, NULL), value_node, self.type(value_node))
            return StructType(tuple(fields.items()))
        raise _Mismatch

    def _string_literal_type(self, target: SqlType, text: str) -> tuple[SqlType, Any]:
        """The type and value a string literal takes where `target` is expected (or a wider numeric type)."""
        from ksqlpy.execution.casts import converter, parse_lenient_boolean

        shown = "DECIMAL" if isinstance(target, DecimalType) else str(target)
        invalid = StatementError(f'invalid input syntax for type {shown}: "{text}".')
        if is_numeric(target):
            number = _numeric_literal(text)
            if number is None:
                raise invalid
            return common_numeric_type(target, number.type), number
        if target == BOOLEAN:
            value = parse_lenient_boolean(text)
            if value is None:
                raise invalid
            return BOOLEAN, Const(BOOLEAN, value)
        if target in _TEMPORAL:
            try:
                return target, Const(target, converter(STRING, target)(text))
            except KsqlError as error:
                raise invalid from error
        raise _Mismatch

    def _coerce_item(self, node: ast.Expr, item: TypedExpr, target: SqlType) -> TypedExpr:
        """Convert one list item, typed as `item`, to the list's common type."""
        from ksqlpy.execution.casts import converter

        if item.type == target or item.type == NULL:
            return cast_to(item, target)
        if isinstance(node, ast.Literal) and item.type == STRING and target != STRING:
            literal = self._string_literal_type(target, str(node.value))[1]
            try:
                return Const(target, converter(literal.type, target)(literal.value))
            except ArithmeticError as error:  # decimal.InvalidOperation: more digits than arithmetic keeps
                raise StatementError(f"The number {render(node)[:40]} does not fit {target}") from error
        if isinstance(node, ast.Literal) and target == STRING:
            return Const(STRING, converter(item.type, STRING)(node.value))
        if isinstance(node, ast.ArrayConstructor) and isinstance(target, ArrayType):
            items = tuple(self._coerce_item(i, self.type(i), target.element) for i in node.items)
            return Op(target, "array", items)
        if isinstance(node, ast.MapConstructor) and isinstance(target, MapType):
            entries: list[TypedExpr] = []
            for key_node, value_node in node.entries:
                entries.append(self._coerce_item(key_node, self.type(key_node), target.key))
                entries.append(self._coerce_item(value_node, self.type(value_node), target.value))
            return Op(target, "map", tuple(entries))
        if isinstance(node, ast.StructConstructor) and isinstance(target, StructType):
            values = tuple(
                self._coerce_item(value, self.type(value), target.field(name) or NULL) for name, value in node.fields
            )
            return Op(target, "struct", values, tuple(name for name, _ in node.fields))
        return cast_to(item, target)

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
            conditions = [self._compared("eq", e.operand, value) for value, _ in e.whens]
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
        element, items = self._coerce_list(e.items)
        if items and element == NULL:
            raise StatementError(
                "Cannot construct an array with all NULL elements "
                "(see https://github.com/confluentinc/ksql/issues/4239). As a workaround, you may cast a "
                "NULL value to the desired type."
            )
        return Op(ArrayType(element if items else STRING), "array", tuple(items))

    def _map(self, e: ast.MapConstructor) -> TypedExpr:
        if not e.entries:
            raise StatementError(
                "Map constructor cannot be empty. Please supply at least one key value pair "
                "(see https://github.com/confluentinc/ksql/issues/4239)."
            )
        key_type, keys = self._coerce_list([k for k, _ in e.entries])
        value_type, values = self._coerce_list([v for _, v in e.entries])
        if key_type == NULL:
            raise StatementError("Cannot construct a map with all NULL keys")
        if value_type == NULL:
            raise StatementError("Cannot construct a map with all NULL values")
        args: list[TypedExpr] = []
        for k, v in zip(keys, values, strict=True):
            args += [k, v]
        return Op(MapType(key_type, value_type), "map", tuple(args))

    # -- functions

    def table_call(self, e: ast.FunctionCall) -> TypedExpr:
        """A table function at the top of a select item: one input row becomes one output row per element."""
        return self._call(e, "table")

    def _call(self, e: ast.FunctionCall, expected_kind: str = "scalar") -> TypedExpr:
        kind = self.registry.kind_of(e.name)
        if kind is not None and kind != expected_kind:
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
                is_text = isinstance(arg, ast.Literal) and typed.type == STRING
                arg_specs.append(STRING_LITERAL if is_text else typed.type)
        bound = self.registry.resolve(e.name, arg_specs, expected_kind)
        args: list[TypedExpr] = []
        for i, (arg, maybe_typed) in enumerate(zip(e.args, typed_args, strict=True)):
            if maybe_typed is None:
                assert isinstance(arg, ast.Lambda)
                args.append(self._lambda(arg, bound.lambda_param_types[i]))
            elif bound.arg_types[i] == NULL:
                args.append(maybe_typed)
            elif arg_specs[i] == STRING_LITERAL and bound.arg_types[i] in _TEMPORAL:
                assert isinstance(maybe_typed, Const)
                args.append(self._temporal_literal(str(maybe_typed.value), bound.arg_types[i]))
            else:
                args.append(cast_to(maybe_typed, bound.arg_types[i]))
        return Op(bound.return_type, "call" if expected_kind == "scalar" else "tablecall", tuple(args), bound)

    @staticmethod
    def _temporal_literal(text: str, target: SqlType) -> Const:
        """A string literal read as the DATE, TIME or TIMESTAMP a function parameter expects."""
        from ksqlpy.execution.casts import converter

        try:
            return Const(target, converter(STRING, target)(text))
        except KsqlError as error:
            raise StatementError(f"Cannot coerce '{text}' to {target}: {error}") from error

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


class _Mismatch(Exception):
    """An item of a coerced list whose type cannot meet the list's type; reported for the whole item."""


_CONSTRUCTORS = (ast.ArrayConstructor, ast.MapConstructor, ast.StructConstructor)
_INTEGER_TEXT = re.compile(r"[+-]?\d+")
_DECIMAL_TEXT = re.compile(r"[+-]?(\d+\.\d*|\.\d+)")
_DOUBLE_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")
_BIGINT_DIGITS = len(str(2**63))


def _merge_struct_types(target: StructType, source: StructType) -> StructType:
    """The struct type holding both: shared fields must agree (up to widening), the others are added."""
    fields = dict(target.fields)
    for name, field_type in source.fields:
        known = fields.get(name)
        if known is None or widens_to(field_type, known):
            fields.setdefault(name, field_type)
        elif widens_to(known, field_type):
            fields[name] = field_type
        else:
            raise _Mismatch
    return StructType(tuple(fields.items()))


def _numeric_literal(text: str) -> Const | None:
    """A number written in a string, typed as the same text would be typed as a SQL literal."""
    text = text.strip()
    # more digits than any BIGINT has (int() refuses over 4300) make the text a DECIMAL, like a wide BIGINT
    if _INTEGER_TEXT.fullmatch(text) and len(text.lstrip("+-").lstrip("0")) <= _BIGINT_DIGITS:
        value = int(text)
        if -(2**31) <= value < 2**31:
            return Const(INTEGER, value)
        if -(2**63) <= value < 2**63:
            return Const(BIGINT, value)
    if _INTEGER_TEXT.fullmatch(text):
        text += ".0"
    if _DECIMAL_TEXT.fullmatch(text):
        exact = Decimal(text)
        digits, exponent = exact.as_tuple()[1:]
        assert isinstance(exponent, int)
        scale = max(-exponent, 0)
        return Const(DecimalType(max(len(digits), scale, 1), scale), exact)
    if _DOUBLE_TEXT.fullmatch(text):
        return Const(DOUBLE, float(text))
    return None


def _is_rowtime(expr: TypedExpr) -> bool:
    """ROWTIME and the window bounds: BIGINT times that ksqlDB compares with timestamp strings."""
    return isinstance(expr, InputRef) and expr.name in ("ROWTIME", "WINDOWSTART", "WINDOWEND")


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
