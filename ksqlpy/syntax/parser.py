"""Turns ksqlDB statement text into the AST of ksqlpy.syntax.ast, reporting syntax errors as ParseError."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

from lark import Lark, Token, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError
from lark.lexer import PatternStr
from lark.tree import Meta
from lark.visitors import Transformer_NonRecursive

from ksqlpy import types
from ksqlpy.errors import ParseError
from ksqlpy.syntax import ast

__all__ = ["MAX_NESTING", "parse", "parse_expression", "parse_type"]

_GRAMMAR_PATH = Path(__file__).with_name("ksql.lark")

INT_MAX = 2**31 - 1
BIGINT_MAX = 2**63 - 1

# How deep expressions and types may nest. Typing, code generation and Python's own compiler (at most 200
# nested brackets in generated source, up to 3 per level) recurse once or more per level, so this keeps every
# later stage well inside Python's limits; it is checked on the parse tree, before anything recurses.
MAX_NESTING = 50

# The parse-tree rules that add a level of nesting: one per operator, call, lambda, CASE, CAST, constructor,
# field access, subscript, parameterised type and join. A chain (`a OR b OR c`, `a + b - c`) is one flat
# node, so it is one level however many operands it joins.
_NESTING_RULES = frozenset({
    "chain", "unary", "not_", "comparison", "is_null", "is_distinct_from", "between", "in_list", "like",
    "subscript", "dereference", "select_struct_all", "case", "cast", "array_constructor", "map_constructor",
    "struct_constructor", "function_call", "count_star", "distinct_function_call", "lambda_single",
    "lambda_multi", "array_type", "map_type", "struct_type", "join",
})

# Numbers in messages are cut to this many characters: a literal may have thousands of digits.
_SHOWN_NUMBER_LENGTH = 24

_MS_PER_UNIT = {
    "MILLISECONDS": 1,
    "SECONDS": 1_000,
    "MINUTES": 60_000,
    "HOURS": 3_600_000,
    "DAYS": 86_400_000,
}

# How terminals that stand for a class of tokens read in "expecting ..." messages.
_TERMINAL_DESCRIPTIONS = {
    "IDENT": "identifier",
    "DIGIT_IDENT": "identifier",
    "BACKQUOTED_IDENT": "identifier",
    "DOUBLEQUOTED_IDENT": "identifier",
    "STRING": "string",
    "INT_NUM": "integer",
    "DECIMAL_NUM": "decimal",
    "FLOAT_NUM": "double",
    "$END": "<EOF>",
}


class _IdentifiersEverywhere:
    """A pass-through post-lexer that makes the contextual lexer try IDENT in every parser state.

    Without it, a state that accepts the keyword BY but no identifier would lex `BYE` as BY followed by E;
    with it, whole words are read first and only then recognised as keywords.
    """

    always_accept = ("IDENT",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        return stream


@functools.cache
def _lark() -> Lark:
    # cache=True stores the LALR tables on disk, which cuts the build from ~0.7 s to ~0.06 s.
    return Lark(
        _GRAMMAR_PATH.read_text(encoding="utf-8"),
        parser="lalr",
        start=["script", "expression_only", "type_only"],
        propagate_positions=True,
        maybe_placeholders=True,
        postlex=_IdentifiersEverywhere(),
        cache=True,
    )


# --------------------------------------------------------------------------- public API


def parse(text: str) -> list[ast.Statement]:
    """Parse a script of ';'-separated statements (the last ';' may be missing)."""
    statements: list[ast.Statement] = _run(text, "script")
    return statements


def parse_expression(text: str) -> ast.Expr:
    expression: ast.Expr = _run(text, "expression_only")
    return expression


def parse_type(text: str) -> types.SqlType:
    sql_type: types.SqlType = _run(text, "type_only")
    return sql_type


def keywords() -> list[str]:
    """The grammar's keywords, upper-case and sorted (for completion in the shell)."""
    return sorted({
        terminal.pattern.value.upper()
        for terminal in _terminals_by_name().values()
        if isinstance(terminal.pattern, PatternStr) and terminal.pattern.value.isalpha()
    })


def _run(text: str, start: str) -> Any:
    try:
        tree = _lark().parse(text, start=start)
    except UnexpectedInput as error:
        raise _syntax_error(error, text) from None
    _check_nesting(tree)
    builder = _AstBuilder(text)
    try:
        result = builder.transform(tree)
    except VisitError as error:
        if isinstance(error.orig_exc, ParseError):
            raise error.orig_exc from None
        raise
    builder.reject_invalid_numbers()
    return result


def _check_nesting(tree: Tree[Token]) -> None:
    """Reject a tree nested deeper than MAX_NESTING, naming where the first level too many starts."""
    pending: list[tuple[Tree[Token], int]] = [(tree, 0)]
    while pending:
        node, depth = pending.pop()
        if node.data in _NESTING_RULES:
            depth += 1
            if depth > MAX_NESTING:
                line, column = (1, 1) if node.meta.empty else (node.meta.line, node.meta.column)
                raise ParseError(f"Nested too deeply: expressions and types may nest at most {MAX_NESTING} levels "
                                 "(each operator, function call, CASE, CAST, constructor, field access, subscript "
                                 "and type parameter is one level)", line, column)
        # reversed, so the first too-deep place in the text is the one reported
        pending.extend((child, depth) for child in reversed(node.children) if isinstance(child, Tree))


# --------------------------------------------------------------------------- error messages


def _syntax_error(error: UnexpectedInput, text: str) -> ParseError:
    if isinstance(error, UnexpectedToken):
        token = error.token
        expected = _describe_terminals(error.accepts or error.expected)
        if token.type == "$END":
            line, column = _end_position(text)
            found = "<EOF>"
        else:
            line, column = token.line or 1, token.column or 1
            found = str(token)
        if len(expected) == 1:
            # Like ANTLR (and so ksqlDB): when exactly one token fits, name it as the missing one.
            return _syntax_error_at(f"missing {expected[0]} at '{found}'", line, column, expected)
        return _syntax_error_at(f"mismatched input '{found}' expecting one of: {', '.join(expected)}", line,
                                column, expected)
    if isinstance(error, UnexpectedCharacters):
        # A lexical error: no token could start here, so there is no meaningful "expecting" list.
        character = text[error.pos_in_stream or 0]
        detail = (f"unterminated quoted text starting with {character}" if character in "'`\""
                  else f"unexpected character {character!r}")
        return _syntax_error_at(detail, error.line, error.column)
    return _syntax_error_at(str(error), getattr(error, "line", 1), getattr(error, "column", 1))


def _syntax_error_at(detail: str, line: int, column: int, expected: list[str] | None = None) -> ParseError:
    # ksqlDB's layout: "line 2:74: Syntax Error" then the detail on its own line.
    return ParseError(f"Syntax Error\n{detail}", line, column, expected)


def _describe_terminals(names: set[str] | frozenset[str]) -> list[str]:
    descriptions = {_describe_terminal(name) for name in names}
    # Keywords first, then punctuation, then token classes such as 'identifier'.
    return sorted(descriptions, key=lambda d: (0 if d.isupper() else 1 if d.startswith("'") else 2, d))


def _describe_terminal(name: str) -> str:
    if name in _TERMINAL_DESCRIPTIONS:
        return _TERMINAL_DESCRIPTIONS[name]
    terminal = _terminals_by_name().get(name)
    if terminal is not None and isinstance(terminal.pattern, PatternStr):
        value = terminal.pattern.value
        return value.upper() if value.isalpha() else f"'{value}'"
    return name


@functools.cache
def _terminals_by_name() -> dict[str, Any]:
    return {terminal.name: terminal for terminal in _lark().terminals}


def _end_position(text: str) -> tuple[int, int]:
    content = text.rstrip()
    line = content.count("\n") + 1
    return line, len(content) - (content.rfind("\n") + 1) + 1


# --------------------------------------------------------------------------- tree -> AST


class _WindowOption(NamedTuple):
    kind: str  # 'retention' or 'grace'
    ms: int


@dataclass(frozen=True)
class _InvalidNumber(ast.Expr):
    """Stands in for a literal that is out of range unless a unary minus turns out to rescue it."""

    kind: str  # 'integer' or 'double'
    text: str
    message: str
    pos: ast.Position | None = None


def _position(meta: Meta) -> ast.Position | None:
    return None if meta.empty else ast.Position(meta.line, meta.column)


def _token_position(token: Token) -> ast.Position:
    return ast.Position(token.line or 1, token.column or 1)


def _shortened(number: str) -> str:
    if len(number) <= _SHOWN_NUMBER_LENGTH:
        return number
    return f"{number[:_SHOWN_NUMBER_LENGTH]}... ({len(number)} characters)"


def _bounded_int(token: Token, maximum: int, what: str) -> int:
    """An unsigned integer token that must not exceed `maximum`; never converts thousands of digits."""
    digits = token.lstrip("0")
    if len(digits) > len(str(maximum)) or int(digits or "0") > maximum:
        position = _token_position(token)
        raise ParseError(f"{what} must be at most {maximum}, got {_shortened(token)}", position.line,
                         position.column)
    return int(digits or "0")


def _unquote(token: str) -> str:
    quote = token[0]
    return token[1:-1].replace(quote * 2, quote)


def _flag(value: Any) -> bool:
    # Optional marker rules ([or_replace], [extended], ...) transform to True, or stay None when absent.
    return value is not None


def _present(children: list[Any]) -> tuple[Any, ...]:
    """Items of an optional list: maybe_placeholders yields a lone None when the list is empty."""
    return tuple(child for child in children if child is not None)


def _decimal_type(value: Decimal) -> types.DecimalType:
    digits, exponent = value.as_tuple()[1:]
    assert isinstance(exponent, int)
    scale = max(-exponent, 0)
    # Like Java's BigDecimal: precision counts the unscaled digits, and is at least the scale (0.05 -> 2, 2).
    return types.DecimalType(max(len(digits), scale, 1), scale)


def _decimal_parameters(precision_token: Token, scale_token: Token) -> types.DecimalType:
    precision = _bounded_int(precision_token, INT_MAX, "DECIMAL precision")
    scale = _bounded_int(scale_token, INT_MAX, "DECIMAL scale")
    # ksqlDB's checks (SqlDecimal.validateParameters), at the precision's position
    problem = ("DECIMAL precision must be >= 1" if precision < 1
               else "DECIMAL precision must be >= scale" if precision < scale else None)
    if problem is not None:
        position = _token_position(precision_token)
        raise ParseError(f"{problem}: DECIMAL({precision},{scale})", position.line, position.column)
    return types.DecimalType(precision, scale)


def _property_value(value: ast.Expr) -> Any:
    if not isinstance(value, ast.Literal):
        return None  # an out-of-range number, reported once the whole parse is done
    return float(value.value) if isinstance(value.type, types.DecimalType) else value.value


@v_args(meta=True)
class _AstBuilder(Transformer_NonRecursive[Token, Any]):
    """Builds AST nodes bottom-up; one instance per parse because it remembers the source text."""

    def __init__(self, source: str) -> None:
        super().__init__(visit_tokens=False)
        self._source = source
        self._invalid_numbers: list[_InvalidNumber] = []

    def reject_invalid_numbers(self) -> None:
        if self._invalid_numbers:
            bad = self._invalid_numbers[0]
            position = bad.pos or ast.Position(1, 1)
            raise ParseError(bad.message, position.line, position.column)

    def _text(self, meta: Meta) -> str:
        return self._source[meta.start_pos:meta.end_pos].strip()

    # ----------------------------------------------------------------- entry points

    def script(self, meta: Meta, children: list[Any]) -> list[ast.Statement]:
        return list(children)

    def expression_only(self, meta: Meta, children: list[Any]) -> ast.Expr:
        expression: ast.Expr = children[0]
        return expression

    def type_only(self, meta: Meta, children: list[Any]) -> types.SqlType:
        sql_type: types.SqlType = children[0]
        return sql_type

    # ----------------------------------------------------------------- identifiers and small pieces

    def ident(self, meta: Meta, children: list[Token]) -> str:
        (token,) = children
        return token.upper() if token.type in ("IDENT", "DIGIT_IDENT") else _unquote(token)

    def soft_keyword(self, meta: Meta, children: list[Token]) -> str:
        return children[0].upper()

    def print_topic(self, meta: Meta, children: list[Token]) -> str:
        (token,) = children
        # Topic names are case-sensitive: an unquoted topic is kept exactly as written.
        return str(token) if token.type == "IDENT" else _unquote(token)

    def source_kind(self, meta: Meta, children: list[Token]) -> str:
        return children[0].upper()

    def keyword_marker(self, meta: Meta, children: list[Any]) -> bool:
        """An optional keyword phrase ([OR REPLACE], [EXTENDED], ...) that is present."""
        return True

    or_replace = source_marker = if_not_exists = if_exists = extended = delete_topic = keyword_marker
    from_beginning = keyword_marker

    def column_list(self, meta: Meta, children: list[str]) -> tuple[str, ...]:
        return tuple(children)

    def limit_clause(self, meta: Meta, children: list[Token]) -> int:
        return _bounded_int(children[0], INT_MAX, "LIMIT")

    def print_interval(self, meta: Meta, children: list[Token]) -> int:
        return _bounded_int(children[-1], INT_MAX, "The PRINT interval")

    # ----------------------------------------------------------------- statements

    def create_source(self, meta: Meta, children: list[Any]) -> ast.CreateSource:
        or_replace, source, kind, if_not_exists, name, columns, properties = children
        return ast.CreateSource(
            kind=kind, name=name, columns=columns or (), properties=properties or {},
            or_replace=_flag(or_replace), if_not_exists=_flag(if_not_exists), is_source=_flag(source),
            text=self._text(meta), pos=_position(meta),
        )

    def create_as_select(self, meta: Meta, children: list[Any]) -> ast.CreateAsSelect:
        or_replace, kind, if_not_exists, name, properties, query = children
        return ast.CreateAsSelect(
            kind=kind, name=name, query=query, properties=properties or {},
            or_replace=_flag(or_replace), if_not_exists=_flag(if_not_exists),
            text=self._text(meta), pos=_position(meta),
        )

    def insert_into(self, meta: Meta, children: list[Any]) -> ast.InsertInto:
        target, properties, query = children
        return ast.InsertInto(target=target, query=query, properties=properties or {},
                              text=self._text(meta), pos=_position(meta))

    def insert_values(self, meta: Meta, children: list[Any]) -> ast.InsertValues:
        target, columns, *values = children
        return ast.InsertValues(target=target, columns=columns, values=_present(values),
                                text=self._text(meta), pos=_position(meta))

    def select_statement(self, meta: Meta, children: list[Any]) -> ast.SelectStatement:
        return ast.SelectStatement(query=children[0], text=self._text(meta), pos=_position(meta))

    def show(self, meta: Meta, children: list[Any]) -> ast.Show:
        what, extended = children
        return ast.Show(what=what, extended=_flag(extended), text=self._text(meta), pos=_position(meta))

    def show_subject(self, meta: Meta, children: list[Token]) -> str:
        # SHOW ALL TOPICS lists the same thing as SHOW TOPICS here (there are no hidden internal topics).
        return children[-1].upper()

    def describe_source(self, meta: Meta, children: list[Any]) -> ast.Describe:
        name, extended = children
        return ast.Describe(name=name, extended=_flag(extended), text=self._text(meta), pos=_position(meta))

    def describe_extended_source(self, meta: Meta, children: list[Any]) -> ast.Describe:
        """The older form DESCRIBE EXTENDED name, which ksqlDB still accepts."""
        return ast.Describe(name=children[-1], extended=True, text=self._text(meta), pos=_position(meta))

    def describe_all(self, meta: Meta, children: list[Any]) -> ast.Describe:
        subject, extended = children
        return ast.Describe(name=subject, extended=_flag(extended), all_sources=True,
                            text=self._text(meta), pos=_position(meta))

    def all_sources_subject(self, meta: Meta, children: list[Token]) -> str:
        return children[0].upper()

    def describe_function(self, meta: Meta, children: list[Any]) -> ast.DescribeFunction:
        return ast.DescribeFunction(name=children[0], text=self._text(meta), pos=_position(meta))

    def explain_statement(self, meta: Meta, children: list[Any]) -> ast.Explain:
        return ast.Explain(statement=children[0], text=self._text(meta), pos=_position(meta))

    def explain_query_id(self, meta: Meta, children: list[Any]) -> ast.Explain:
        return ast.Explain(query_id=children[0], text=self._text(meta), pos=_position(meta))

    def drop_source(self, meta: Meta, children: list[Any]) -> ast.DropSource:
        kind, if_exists, name, delete_topic = children
        return ast.DropSource(kind=kind, name=name, if_exists=_flag(if_exists), delete_topic=_flag(delete_topic),
                              text=self._text(meta), pos=_position(meta))

    def alter_source(self, meta: Meta, children: list[Any]) -> ast.AlterSource:
        kind, name, *columns = children
        return ast.AlterSource(kind=kind, name=name, columns=tuple(columns), text=self._text(meta),
                               pos=_position(meta))

    def alter_option(self, meta: Meta, children: list[Any]) -> ast.ColumnDef:
        name, sql_type = children
        return ast.ColumnDef(name=name, type=sql_type, pos=_position(meta))

    def terminate_query(self, meta: Meta, children: list[Any]) -> ast.Terminate:
        return ast.Terminate(query_id=children[0], text=self._text(meta), pos=_position(meta))

    def terminate_all(self, meta: Meta, children: list[Any]) -> ast.Terminate:
        return ast.Terminate(query_id=None, text=self._text(meta), pos=_position(meta))

    def print_statement(self, meta: Meta, children: list[Any]) -> ast.Print:
        topic, from_beginning, interval, limit = children
        return ast.Print(topic=topic, from_beginning=_flag(from_beginning), limit=limit, interval=interval,
                         text=self._text(meta), pos=_position(meta))

    def set_property(self, meta: Meta, children: list[Token]) -> ast.SetProperty:
        name, value = children
        return ast.SetProperty(name=_unquote(name), value=_unquote(value), text=self._text(meta),
                               pos=_position(meta))

    def unset_property(self, meta: Meta, children: list[Token]) -> ast.UnsetProperty:
        return ast.UnsetProperty(name=_unquote(children[0]), text=self._text(meta), pos=_position(meta))

    def run_script(self, meta: Meta, children: list[Token]) -> ast.RunScript:
        return ast.RunScript(path=_unquote(children[0]), text=self._text(meta), pos=_position(meta))

    def create_type(self, meta: Meta, children: list[Any]) -> ast.CreateType:
        if_not_exists, name, sql_type = children
        return ast.CreateType(name=name, type=sql_type, if_not_exists=_flag(if_not_exists),
                              text=self._text(meta), pos=_position(meta))

    def drop_type(self, meta: Meta, children: list[Any]) -> ast.DropType:
        if_exists, name = children
        return ast.DropType(name=name, if_exists=_flag(if_exists), text=self._text(meta), pos=_position(meta))

    # ----------------------------------------------------------------- column definitions and properties

    def table_elements(self, meta: Meta, children: list[ast.ColumnDef]) -> tuple[ast.ColumnDef, ...]:
        return tuple(children)

    def column_def(self, meta: Meta, children: list[Any]) -> ast.ColumnDef:
        name, sql_type, constraint = children
        return ast.ColumnDef(name=name, type=sql_type, pos=_position(meta), **(constraint or {}))

    def key_constraint(self, meta: Meta, children: list[Any]) -> dict[str, Any]:
        return {"key": True}

    def primary_key_constraint(self, meta: Meta, children: list[Any]) -> dict[str, Any]:
        return {"key": True, "primary_key": True}

    def headers_constraint(self, meta: Meta, children: list[Any]) -> dict[str, Any]:
        return {"headers": True}

    def header_constraint(self, meta: Meta, children: list[Token]) -> dict[str, Any]:
        return {"headers": True, "header_key": _unquote(children[0])}

    def with_clause(self, meta: Meta, children: list[tuple[str, Any]]) -> dict[str, Any]:
        return dict(children)

    def table_property(self, meta: Meta, children: list[Any]) -> tuple[str, Any]:
        name, value = children
        if isinstance(name, Token):  # a quoted property name: 'kafka_topic'='t'
            name = _unquote(name)
        return name.upper(), _property_value(value)

    def negative_property(self, meta: Meta, children: list[Any]) -> ast.Expr:
        return self._negate_literal(children[0], _position(meta))

    # ----------------------------------------------------------------- queries

    def query(self, meta: Meta, children: list[Any]) -> ast.Query:
        select, relation, window, where, group_by, partition_by, having, emit, limit = children
        return ast.Query(select=select, from_=relation, where=where, window=window, group_by=group_by or (),
                         partition_by=partition_by or (), having=having, emit=emit, limit=limit)

    def select_list(self, meta: Meta, children: list[ast.SelectItem]) -> tuple[ast.SelectItem, ...]:
        return tuple(children)

    def select_all(self, meta: Meta, children: list[Any]) -> ast.SelectItem:
        return ast.SelectItem(expr=None, pos=_position(meta))

    def select_source_all(self, meta: Meta, children: list[str]) -> ast.SelectItem:
        return ast.SelectItem(expr=None, star_source=children[0], pos=_position(meta))

    def select_struct_all(self, meta: Meta, children: list[ast.Expr]) -> ast.SelectItem:
        # `s->*` expands every field of a struct; it travels as a dereference of the field '*'.
        return ast.SelectItem(expr=ast.Dereference(children[0], "*", pos=_position(meta)), pos=_position(meta))

    def select_expr(self, meta: Meta, children: list[Any]) -> ast.SelectItem:
        alias = children[1] if len(children) > 1 else None
        return ast.SelectItem(expr=children[0], alias=alias, pos=_position(meta))

    def aliased_relation(self, meta: Meta, children: list[str]) -> ast.SourceRef:
        alias = children[1] if len(children) > 1 else None
        return ast.SourceRef(name=children[0], alias=alias, pos=_position(meta))

    def join(self, meta: Meta, children: list[Any]) -> ast.Join:
        left, join_type, right, within, criteria = children
        return ast.Join(left=left, right=right, join_type=join_type or "INNER", criteria=criteria, within=within,
                        pos=_position(meta))

    def join_type(self, meta: Meta, children: list[Token]) -> str:
        return children[0].upper()

    def within_symmetric(self, meta: Meta, children: list[Any]) -> ast.WithinSpec:
        size, grace = children
        return ast.WithinSpec(before_ms=size, after_ms=size, grace_ms=grace.ms if grace else None)

    def within_asymmetric(self, meta: Meta, children: list[Any]) -> ast.WithinSpec:
        before, after, grace = children
        return ast.WithinSpec(before_ms=before, after_ms=after, grace_ms=grace.ms if grace else None)

    def window_clause(self, meta: Meta, children: list[Any]) -> ast.WindowSpec:
        spec: ast.WindowSpec = children[-1]
        return spec

    def tumbling(self, meta: Meta, children: list[Any]) -> ast.WindowSpec:
        size, *options = children
        return self._window("TUMBLING", size, None, options)

    def hopping(self, meta: Meta, children: list[Any]) -> ast.WindowSpec:
        size, advance, *options = children
        return self._window("HOPPING", size, advance, options)

    def session(self, meta: Meta, children: list[Any]) -> ast.WindowSpec:
        gap, *options = children
        return self._window("SESSION", gap, None, options)

    @staticmethod
    def _window(kind: str, size: int, advance: int | None, options: list[_WindowOption]) -> ast.WindowSpec:
        settings = {option.kind: option.ms for option in options}
        return ast.WindowSpec(kind=kind, size_ms=size, advance_ms=advance, grace_ms=settings.get("grace"),
                              retention_ms=settings.get("retention"))

    def retention_clause(self, meta: Meta, children: list[int]) -> _WindowOption:
        return _WindowOption("retention", children[0])

    def grace_clause(self, meta: Meta, children: list[int]) -> _WindowOption:
        return _WindowOption("grace", children[0])

    def duration(self, meta: Meta, children: list[Any]) -> int:
        amount, unit = children
        return _bounded_int(amount, BIGINT_MAX // _MS_PER_UNIT[unit], f"A duration in {unit}") * _MS_PER_UNIT[unit]

    def time_unit(self, meta: Meta, children: list[Token]) -> str:
        unit = children[0].upper()
        return unit if unit.endswith("S") else unit + "S"

    def where_clause(self, meta: Meta, children: list[ast.Expr]) -> ast.Expr:
        return children[0]

    having_clause = where_clause

    def group_by_clause(self, meta: Meta, children: list[ast.Expr]) -> tuple[ast.Expr, ...]:
        return tuple(children)

    partition_by_clause = group_by_clause

    def empty_partition_by(self, meta: Meta, children: list[Any]) -> tuple[ast.Expr, ...]:
        position = _position(meta) or ast.Position(1, 1)
        raise ParseError("PARTITION BY requires at least one expression", position.line, position.column)

    def emit_clause(self, meta: Meta, children: list[Token]) -> str:
        return children[1].upper()

    # ----------------------------------------------------------------- expressions

    def chain(self, meta: Meta, children: list[Any]) -> ast.Chain:
        return ast.Chain(tuple(children[::2]), tuple(operator.upper() for operator in children[1::2]),
                         pos=_position(meta))

    def unary(self, meta: Meta, children: list[Any]) -> ast.Expr:
        operator, operand = children
        if operator == "-":
            if isinstance(operand, ast.Literal | _InvalidNumber):
                return self._negate_literal(operand, _position(meta))
            return ast.UnaryOp("-", operand, pos=_position(meta))
        if isinstance(operand, ast.Literal) and types.is_numeric(operand.type):
            return operand
        return ast.UnaryOp("+", operand, pos=_position(meta))

    def not_(self, meta: Meta, children: list[Any]) -> ast.UnaryOp:
        return ast.UnaryOp("NOT", children[-1], pos=_position(meta))

    def comparison(self, meta: Meta, children: list[Any]) -> ast.BinaryOp:
        left, operator, right = children
        return ast.BinaryOp(operator, left, right, pos=_position(meta))

    def comparison_operator(self, meta: Meta, children: list[Token]) -> str:
        operator = str(children[0])
        return "<>" if operator == "!=" else operator

    def is_null(self, meta: Meta, children: list[Any]) -> ast.IsNull:
        operand, negation = children
        return ast.IsNull(operand, negated=_flag(negation), pos=_position(meta))

    def is_distinct_from(self, meta: Meta, children: list[Any]) -> ast.BinaryOp:
        left, negation, right = children
        operator = "IS NOT DISTINCT FROM" if negation else "IS DISTINCT FROM"
        return ast.BinaryOp(operator, left, right, pos=_position(meta))

    def between(self, meta: Meta, children: list[Any]) -> ast.Between:
        operand, negation, low, high = children
        return ast.Between(operand, low, high, negated=_flag(negation), pos=_position(meta))

    def in_list(self, meta: Meta, children: list[Any]) -> ast.InList:
        operand, negation, *items = children
        return ast.InList(operand, tuple(items), negated=_flag(negation), pos=_position(meta))

    def like(self, meta: Meta, children: list[Any]) -> ast.Like:
        operand, negation, pattern, escape = children
        return ast.Like(operand, pattern, escape=_unquote(escape) if escape else None, negated=_flag(negation),
                        pos=_position(meta))

    def subscript(self, meta: Meta, children: list[ast.Expr]) -> ast.Subscript:
        return ast.Subscript(children[0], children[1], pos=_position(meta))

    def dereference(self, meta: Meta, children: list[Any]) -> ast.Dereference:
        return ast.Dereference(children[0], children[1], pos=_position(meta))

    def case(self, meta: Meta, children: list[Any]) -> ast.Case:
        operand, *whens, default = children
        return ast.Case(operand, tuple(whens), default, pos=_position(meta))

    def when_clause(self, meta: Meta, children: list[ast.Expr]) -> tuple[ast.Expr, ast.Expr]:
        return children[0], children[1]

    def cast(self, meta: Meta, children: list[Any]) -> ast.Cast:
        return ast.Cast(children[0], children[1], pos=_position(meta))

    def array_constructor(self, meta: Meta, children: list[Any]) -> ast.ArrayConstructor:
        return ast.ArrayConstructor(_present(children), pos=_position(meta))

    def map_constructor(self, meta: Meta, children: list[Any]) -> ast.MapConstructor:
        return ast.MapConstructor(_present(children), pos=_position(meta))

    def struct_constructor(self, meta: Meta, children: list[Any]) -> ast.StructConstructor:
        return ast.StructConstructor(_present(children), pos=_position(meta))

    def map_entry(self, meta: Meta, children: list[ast.Expr]) -> tuple[ast.Expr, ast.Expr]:
        return children[0], children[1]

    def struct_entry(self, meta: Meta, children: list[Any]) -> tuple[str, ast.Expr]:
        return children[0], children[1]

    def column_ref(self, meta: Meta, children: list[str]) -> ast.ColumnRef:
        return ast.ColumnRef(children[0], pos=_position(meta))

    def qualified_column_ref(self, meta: Meta, children: list[str]) -> ast.ColumnRef:
        return ast.ColumnRef(children[1], source=children[0], pos=_position(meta))

    def function_call(self, meta: Meta, children: list[Any]) -> ast.FunctionCall:
        name, *args = children
        return ast.FunctionCall(name, _present(args), pos=_position(meta))

    def count_star(self, meta: Meta, children: list[str]) -> ast.FunctionCall:
        return ast.FunctionCall(children[0], star=True, pos=_position(meta))

    def distinct_function_call(self, meta: Meta, children: list[Any]) -> ast.FunctionCall:
        name, *args = children
        return ast.FunctionCall(name, tuple(args), distinct=True, pos=_position(meta))

    def interval_unit(self, meta: Meta, children: list[str]) -> ast.IntervalUnitExpr:
        return ast.IntervalUnitExpr(children[0], pos=_position(meta), written=self._text(meta).upper())

    def lambda_single(self, meta: Meta, children: list[ast.Expr]) -> ast.Lambda:
        parameter, body = children
        # The grammar takes any expression before '=>' (to stay LALR); only a bare name is a parameter.
        if not isinstance(parameter, ast.ColumnRef) or parameter.source is not None:
            position = getattr(parameter, "pos", None) or _position(meta) or ast.Position(1, 1)
            raise _syntax_error_at("a lambda parameter must be a plain identifier", position.line,
                                   position.column)
        return ast.Lambda((parameter.name,), body, pos=_position(meta))

    def lambda_multi(self, meta: Meta, children: list[Any]) -> ast.Lambda:
        *parameters, body = children
        return ast.Lambda(tuple(parameters), body, pos=_position(meta))

    # ----------------------------------------------------------------- literals

    def null(self, meta: Meta, children: list[Any]) -> ast.Literal:
        return ast.Literal(None, types.NULL, pos=_position(meta))

    def true(self, meta: Meta, children: list[Any]) -> ast.Literal:
        return ast.Literal(True, types.BOOLEAN, pos=_position(meta))

    def false(self, meta: Meta, children: list[Any]) -> ast.Literal:
        return ast.Literal(False, types.BOOLEAN, pos=_position(meta))

    def string(self, meta: Meta, children: list[Token]) -> ast.Literal:
        return ast.Literal(_unquote(children[0]), types.STRING, pos=_position(meta))

    def integer(self, meta: Meta, children: list[Token]) -> ast.Expr:
        return self._number("integer", str(children[0]), _token_position(children[0]))

    def decimal(self, meta: Meta, children: list[Token]) -> ast.Expr:
        return self._number("decimal", str(children[0]), _token_position(children[0]))

    def double(self, meta: Meta, children: list[Token]) -> ast.Expr:
        return self._number("double", str(children[0]), _token_position(children[0]))

    def _number(self, kind: str, text: str, pos: ast.Position | None) -> ast.Literal | _InvalidNumber:
        """A numeric literal from its (possibly signed) text, or a placeholder remembered as invalid."""
        if kind == "integer":
            if len(text.lstrip("+-").lstrip("0")) > len(str(BIGINT_MAX)):  # int() refuses over 4300 digits
                return self._invalid(kind, text, f"Invalid numeric literal: {_shortened(text)}", pos)
            value = int(text)
            if -INT_MAX - 1 <= value <= INT_MAX:
                return ast.Literal(value, types.INTEGER, pos=pos)
            if -BIGINT_MAX - 1 <= value <= BIGINT_MAX:
                return ast.Literal(value, types.BIGINT, pos=pos)
            return self._invalid(kind, text, f"Invalid numeric literal: {_shortened(text)}", pos)
        if kind == "decimal":
            exact = Decimal(text)
            return ast.Literal(exact, _decimal_type(exact), pos=pos)
        number = float(text)
        if number in (float("inf"), float("-inf")):
            return self._invalid(kind, text, f"Number overflows DOUBLE: {_shortened(text)}", pos)
        return ast.Literal(number, types.DOUBLE, pos=pos)

    def _invalid(self, kind: str, text: str, message: str, pos: ast.Position | None) -> _InvalidNumber:
        invalid = _InvalidNumber(kind, text, message, pos)
        self._invalid_numbers.append(invalid)
        return invalid

    def _negate_literal(self, literal: ast.Literal | _InvalidNumber, pos: ast.Position | None) -> ast.Expr:
        if isinstance(literal, _InvalidNumber):
            # Re-read with the sign: -9223372036854775808 is a valid BIGINT although its digits are not.
            self._invalid_numbers.remove(literal)
            return self._number(literal.kind, "-" + literal.text, pos)
        if literal.type in (types.INTEGER, types.BIGINT):
            return self._number("integer", str(-literal.value), pos)  # -2147483648 fits INTEGER again
        if not types.is_numeric(literal.type):
            return ast.UnaryOp("-", literal, pos=pos)
        return ast.Literal(-literal.value, literal.type, pos=pos)

    # ----------------------------------------------------------------- types

    def array_type(self, meta: Meta, children: list[types.SqlType]) -> types.ArrayType:
        return types.ArrayType(children[0])

    def map_type(self, meta: Meta, children: list[types.SqlType]) -> types.MapType:
        return types.MapType(children[0], children[1])

    def struct_type(self, meta: Meta, children: list[Any]) -> types.StructType:
        return types.StructType(_present(children))

    def struct_type_field(self, meta: Meta, children: list[Any]) -> tuple[str, types.SqlType]:
        return children[0], children[1]

    def named_type(self, meta: Meta, children: list[Any]) -> types.SqlType:
        name, *parameters = children
        position = _position(meta) or ast.Position(1, 1)
        if name == "DECIMAL":
            if len(parameters) != 2:
                raise _syntax_error_at("DECIMAL needs a precision and a scale: DECIMAL(p, s)", position.line,
                                       position.column)
            return _decimal_parameters(parameters[0], parameters[1])
        if parameters:
            raise _syntax_error_at(f"type {name} takes no parameters", position.line, position.column)
        return types.PRIMITIVES_BY_NAME.get(name) or ast.NamedType(name)

    def __default__(self, data: str, children: list[Any], meta: Meta) -> Tree[Any]:
        raise AssertionError(f"grammar rule {data!r} has no AST builder")  # pragma: no cover
