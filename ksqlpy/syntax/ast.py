"""The abstract syntax tree: what the parser produces from statement text, before any name or type is resolved.

Identifiers are already normalised here: unquoted ones upper-cased, back-quoted ones kept as written.
Every node may carry its source position (1-based line and column) for error messages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields, replace
from typing import Any

from ksqlpy.types import SqlType


@dataclass(frozen=True)
class Position:
    line: int
    column: int

    def __str__(self) -> str:
        return f"line {self.line}:{self.column}"


@dataclass(frozen=True)
class NamedType(SqlType):
    """A user type from CREATE TYPE, referenced by name; the planner replaces it with its definition."""

    name: str

    def __str__(self) -> str:
        return self.name


# --------------------------------------------------------------------------- expressions


@dataclass(frozen=True)
class Expr:
    """Base of expression nodes. `pos` is excluded from equality so trees compare by meaning."""


def _pos() -> Any:
    return field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Literal(Expr):
    """A constant. `value` follows the value conventions of ksqlpy.types for `type`.

    Integer literals are INTEGER when they fit 32 bits, else BIGINT; `1.50` is DECIMAL(3, 2);
    `1.5E3` is DOUBLE; NULL is Literal(None, NULL).
    """

    value: Any
    type: SqlType
    pos: Position | None = _pos()


@dataclass(frozen=True)
class ColumnRef(Expr):
    """`name` or `source.name`; pseudo columns (ROWTIME, ROWPARTITION, ROWOFFSET) are column refs too."""

    name: str
    source: str | None = None
    pos: Position | None = _pos()


@dataclass(frozen=True)
class Dereference(Expr):
    """Struct field access `base->field`."""

    base: Expr
    field: str
    pos: Position | None = _pos()


@dataclass(frozen=True)
class Subscript(Expr):
    """`base[index]`: 1-based array index (negative counts from the end) or map key."""

    base: Expr
    index: Expr
    pos: Position | None = _pos()


@dataclass(frozen=True)
class UnaryOp(Expr):
    op: str  # '-', '+', 'NOT'
    operand: Expr
    pos: Position | None = _pos()


@dataclass(frozen=True)
class BinaryOp(Expr):
    op: str  # '=', '<>', '<', '<=', '>', '>=', 'IS DISTINCT FROM', 'IS NOT DISTINCT FROM'
    left: Expr
    right: Expr
    pos: Position | None = _pos()


@dataclass(frozen=True)
class Chain(Expr):
    """`operands[0] operators[0] operands[1] operators[1] ...`, evaluated left to right: a run of two or more
    operands joined by the left-associative operators of one precedence level ('OR'; 'AND'; '||';
    '+' '-'; '*' '/' '%').

    One node however long the run, so a generated `a = 1 OR a = 2 OR ...` of a thousand terms nests no
    deeper than two terms, and nothing walks it recursively per term.
    """

    operands: tuple[Expr, ...]
    operators: tuple[str, ...]
    pos: Position | None = _pos()


@dataclass(frozen=True)
class IsNull(Expr):
    operand: Expr
    negated: bool = False
    pos: Position | None = _pos()


@dataclass(frozen=True)
class Between(Expr):
    operand: Expr
    low: Expr
    high: Expr
    negated: bool = False
    pos: Position | None = _pos()


@dataclass(frozen=True)
class InList(Expr):
    operand: Expr
    items: tuple[Expr, ...]
    negated: bool = False
    pos: Position | None = _pos()


@dataclass(frozen=True)
class Like(Expr):
    operand: Expr
    pattern: Expr
    escape: str | None = None
    negated: bool = False
    pos: Position | None = _pos()


@dataclass(frozen=True)
class Case(Expr):
    """Searched CASE (operand None) or simple CASE (WHEN values compared to operand)."""

    operand: Expr | None
    whens: tuple[tuple[Expr, Expr], ...]
    default: Expr | None = None
    pos: Position | None = _pos()


@dataclass(frozen=True)
class Cast(Expr):
    operand: Expr
    type: SqlType
    pos: Position | None = _pos()


@dataclass(frozen=True)
class FunctionCall(Expr):
    """`NAME(args)`; COUNT(*) has star=True and no args. Names are upper-cased."""

    name: str
    args: tuple[Expr, ...] = ()
    star: bool = False
    distinct: bool = False
    pos: Position | None = _pos()


@dataclass(frozen=True)
class Lambda(Expr):
    """`(x, y) => body` or `x => body`; parameters are upper-cased like identifiers."""

    params: tuple[str, ...]
    body: Expr
    pos: Position | None = _pos()


@dataclass(frozen=True)
class ArrayConstructor(Expr):
    """`ARRAY[a, b, ...]`."""

    items: tuple[Expr, ...]
    pos: Position | None = _pos()


@dataclass(frozen=True)
class MapConstructor(Expr):
    """`MAP(k1 := v1, k2 := v2, ...)`."""

    entries: tuple[tuple[Expr, Expr], ...]
    pos: Position | None = _pos()


@dataclass(frozen=True)
class StructConstructor(Expr):
    """`STRUCT(name1 := v1, name2 := v2, ...)`; field names normalised like identifiers."""

    fields: tuple[tuple[str, Expr], ...]
    pos: Position | None = _pos()


@dataclass(frozen=True)
class IntervalUnitExpr(Expr):
    """A bare time unit used as a function argument, e.g. `TIMESTAMPADD(SECONDS, 5, ts)`."""

    unit: str  # normalised: MILLISECONDS, SECONDS, MINUTES, HOURS, DAYS (plural, upper case)
    pos: Position | None = _pos()
    # the word as written, which is also a column's name when a column is called SECOND
    written: str = field(default="", compare=False)


# --------------------------------------------------------------------------- queries


@dataclass(frozen=True)
class SelectItem:
    """One item of a select list: an expression with optional alias, or `*` / `source.*` (expr None)."""

    expr: Expr | None
    alias: str | None = None
    star_source: str | None = None  # for `s.*`
    pos: Position | None = _pos()

    @property
    def is_star(self) -> bool:
        return self.expr is None


@dataclass(frozen=True)
class Relation:
    """Base of FROM-clause relations."""


@dataclass(frozen=True)
class SourceRef(Relation):
    name: str
    alias: str | None = None
    pos: Position | None = _pos()


@dataclass(frozen=True)
class WithinSpec:
    before_ms: int
    after_ms: int
    grace_ms: int | None = None


@dataclass(frozen=True)
class Join(Relation):
    left: Relation
    right: SourceRef
    join_type: str  # 'INNER', 'LEFT', 'RIGHT', 'FULL'
    criteria: Expr
    within: WithinSpec | None = None
    pos: Position | None = _pos()


@dataclass(frozen=True)
class WindowSpec:
    kind: str  # 'TUMBLING', 'HOPPING', 'SESSION'
    size_ms: int
    advance_ms: int | None = None
    grace_ms: int | None = None
    retention_ms: int | None = None


@dataclass(frozen=True)
class Query:
    select: tuple[SelectItem, ...]
    from_: Relation
    where: Expr | None = None
    window: WindowSpec | None = None
    group_by: tuple[Expr, ...] = ()
    partition_by: tuple[Expr, ...] = ()
    having: Expr | None = None
    emit: str | None = None  # 'CHANGES', 'FINAL' or None (pull query / persistent query body)
    limit: int | None = None


def transform(expr: Expr, rewrite: Callable[[Expr], Expr | None]) -> Expr:
    """`expr` with every subtree that `rewrite` returns a replacement for replaced (outermost first);
    where it returns None the node is kept and its children are visited."""
    replacement = rewrite(expr)
    if replacement is not None:
        return replacement
    changes = {f.name: _transform_value(getattr(expr, f.name), rewrite) for f in fields(expr) if f.name != "pos"}
    changed = {name: value for name, value in changes.items() if value is not getattr(expr, name)}
    return replace(expr, **changed) if changed else expr


def _transform_value(value: Any, rewrite: Callable[[Expr], Expr | None]) -> Any:
    if isinstance(value, Expr):
        return transform(value, rewrite)
    if isinstance(value, tuple):
        items = tuple(_transform_value(item, rewrite) for item in value)
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    return value


def children(expr: Expr) -> Iterator[Expr]:
    """The expressions directly below `expr`."""
    pending: list[Any] = [getattr(expr, f.name) for f in fields(expr) if f.name != "pos"]
    while pending:
        value = pending.pop(0)
        if isinstance(value, Expr):
            yield value
        elif isinstance(value, tuple):
            pending[:0] = value


def subexpressions(expr: Expr, descend: Callable[[Expr], bool] = lambda _: True) -> Iterator[Expr]:
    """`expr` and every expression below it, parents before children; below a node only if `descend` says so."""
    pending: list[Expr] = [expr]
    while pending:
        node = pending.pop()
        yield node
        if descend(node):
            pending.extend(reversed(list(children(node))))


# --------------------------------------------------------------------------- statements


@dataclass(frozen=True)
class Statement:
    """Base of statements; `text` is the statement's own source text (without the trailing ';')."""


def _text() -> Any:
    return field(default="", compare=False, repr=False)


@dataclass(frozen=True)
class ColumnDef:
    name: str
    type: SqlType
    key: bool = False  # KEY (streams) or PRIMARY KEY (tables)
    primary_key: bool = False
    headers: bool = False  # HEADERS or HEADER('k')
    header_key: str | None = None
    pos: Position | None = _pos()


@dataclass(frozen=True)
class CreateSource(Statement):
    """CREATE [OR REPLACE] [SOURCE] STREAM|TABLE [IF NOT EXISTS] name (cols) WITH (props).

    Property names are upper-cased; values are Python str/int/float/bool as written.
    """

    kind: str  # 'STREAM' or 'TABLE'
    name: str
    columns: tuple[ColumnDef, ...]
    properties: dict[str, Any]
    or_replace: bool = False
    if_not_exists: bool = False
    is_source: bool = False
    text: str = _text()
    pos: Position | None = _pos()


@dataclass(frozen=True)
class CreateAsSelect(Statement):
    kind: str  # 'STREAM' or 'TABLE'
    name: str
    query: Query
    properties: dict[str, Any]
    or_replace: bool = False
    if_not_exists: bool = False
    text: str = _text()
    pos: Position | None = _pos()


@dataclass(frozen=True)
class InsertInto(Statement):
    target: str
    query: Query
    properties: dict[str, Any] = field(default_factory=dict)
    text: str = _text()
    pos: Position | None = _pos()


@dataclass(frozen=True)
class InsertValues(Statement):
    target: str
    columns: tuple[str, ...] | None
    values: tuple[Expr, ...]
    text: str = _text()
    pos: Position | None = _pos()


@dataclass(frozen=True)
class SelectStatement(Statement):
    """A transient query: push (EMIT CHANGES) or pull."""

    query: Query
    text: str = _text()
    pos: Position | None = _pos()


@dataclass(frozen=True)
class Show(Statement):
    what: str  # 'STREAMS', 'TABLES', 'TOPICS', 'QUERIES', 'FUNCTIONS', 'PROPERTIES', 'TYPES'
    extended: bool = False
    text: str = _text()
    pos: Position | None = _pos()


@dataclass(frozen=True)
class Describe(Statement):
    name: str  # a source name; 'STREAMS'/'TABLES' with all_sources=True
    extended: bool = False
    all_sources: bool = False
    text: str = _text()
    pos: Position | None = _pos()


@dataclass(frozen=True)
class DescribeFunction(Statement):
    name: str
    text: str = _text()
    pos: Position | None = _pos()


@dataclass(frozen=True)
class Explain(Statement):
    """EXPLAIN <statement> or EXPLAIN <query id>."""

    statement: Statement | None = None
    query_id: str | None = None
    text: str = _text()
    pos: Position | None = _pos()


@dataclass(frozen=True)
class DropSource(Statement):
    kind: str  # 'STREAM' or 'TABLE'
    name: str
    if_exists: bool = False
    delete_topic: bool = False
    text: str = _text()
    pos: Position | None = _pos()


@dataclass(frozen=True)
class AlterSource(Statement):
    """ALTER STREAM|TABLE name ADD [COLUMN] col type [, ...]: adds value columns to a declared source."""

    kind: str  # 'STREAM' or 'TABLE'
    name: str
    columns: tuple[ColumnDef, ...]
    text: str = _text()
    pos: Position | None = _pos()


@dataclass(frozen=True)
class Terminate(Statement):
    query_id: str | None  # None means ALL
    text: str = _text()
    pos: Position | None = _pos()


@dataclass(frozen=True)
class Print(Statement):
    topic: str  # as written (topic names are case-sensitive); quotes removed
    from_beginning: bool = False
    limit: int | None = None
    interval: int | None = None
    text: str = _text()
    pos: Position | None = _pos()


@dataclass(frozen=True)
class SetProperty(Statement):
    name: str
    value: str
    text: str = _text()
    pos: Position | None = _pos()


@dataclass(frozen=True)
class UnsetProperty(Statement):
    name: str
    text: str = _text()
    pos: Position | None = _pos()


@dataclass(frozen=True)
class RunScript(Statement):
    path: str
    text: str = _text()
    pos: Position | None = _pos()


@dataclass(frozen=True)
class CreateType(Statement):
    name: str
    type: SqlType
    if_not_exists: bool = False
    text: str = _text()
    pos: Position | None = _pos()


@dataclass(frozen=True)
class DropType(Statement):
    name: str
    if_exists: bool = False
    text: str = _text()
    pos: Position | None = _pos()
