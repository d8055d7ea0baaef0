"""Pull queries: what a pull query may contain, which keys it pins, a table's current rows, and its answer.

A table's current rows are its topic compacted: the last record of each (partition, key bytes) — a windowed
key per window, as the window travels in the key bytes — with keys whose last record is a tombstone left
out. TableState keeps them in state stores, so a backend can keep them up to date record by record. When
the WHERE pins every key column with `=` or `IN`, only those keys are fetched; the query's own pipeline
(its whole WHERE and projection) then runs once over the records fetched, so the answer never depends on
that shortcut.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ksqlpy.errors import KsqlError, StatementError
from ksqlpy.execution.expressions import CompiledExpression
from ksqlpy.execution.pipeline import Pipeline, Record, RecordBatch, key_serde
from ksqlpy.planning.catalog import DataSource
from ksqlpy.planning.expressions import Const, InputRef, Op, TypedExpr, cast_to, render
from ksqlpy.planning.plan import FilterStep, QueryPlan
from ksqlpy.schema import Column, LogicalSchema, Namespace
from ksqlpy.state.base import StoreProvider
from ksqlpy.syntax import ast
from ksqlpy.types import STRING

# What ksqlDB adds to each refusal: where pull and push queries are explained, and how to ask for a push query.
PULL_QUERY_HELP = " See https://cnfl.io/queries for more info.\nAdd EMIT CHANGES if you intended to issue a push query."
TABLE_SCAN_PROPERTY = "ksql.query.pull.table.scan.enabled"
TABLE_SCAN_DISABLED = ("Query requires table scan to be enabled. Table scans can be enabled by setting "
                       f"{TABLE_SCAN_PROPERTY}=true")
SESSION_TABLE_SCAN = "Table scan unsupported on session tables"
# Where a row sits in the topic says nothing about a table's current row: ksqlDB refuses these in pull queries.
DISALLOWED_COLUMNS = ("ROWPARTITION", "ROWOFFSET")
STORE_NAME = "current"
WINDOW_BOUND_COLUMNS = ("WINDOWSTART", "WINDOWEND")
# The comparisons ksqlDB accepts on window bounds, and the names its messages give comparisons.
WINDOW_BOUND_COMPARISONS = {"=": "EQUAL", ">": "GREATER_THAN", ">=": "GREATER_THAN_OR_EQUAL", "<": "LESS_THAN",
                            "<=": "LESS_THAN_OR_EQUAL"}
COMPARISON_NAMES = {**WINDOW_BOUND_COMPARISONS, "<>": "NOT_EQUAL", "IS DISTINCT FROM": "IS_DISTINCT_FROM",
                    "IS NOT DISTINCT FROM": "IS_NOT_DISTINCT_FROM"}
# How ksqlDB ends a refusal of a pull query's WHERE clause (its typos included).
WHERE_CLAUSE_HELP = (
    "\nPull queries require a WHERE clause that:"
    "\n - includes a key equality expression, e.g. `SELECT * FROM X WHERE <key-column> = Y;`."
    "\n - in the case of a multi-column key, is a conjunction of equality expressions that cover all key columns."
    "\n - to support range expressions, e.g.,  SELECT * FROM X WHERE <key-column> < Y;`, range scans need to be "
    "enabled by setting ksql.query.pull.range.scan.enabled=true"
    "\n - (optionally) limits the time bounds of the windowed table."
    f"\n\t Bounds on [{', '.join(WINDOW_BOUND_COLUMNS)}] are supported"
    f"\n\t Supported operators are [{', '.join(WINDOW_BOUND_COMPARISONS.values())}]"
    f"\nIf more flexible queries are needed, , table scans can be enabled by setting {TABLE_SCAN_PROPERTY}=true."
)


def check_pull_query(query: ast.Query) -> None:
    """Refuse the clauses and columns a pull query may not contain, with ksqlDB's messages, in ksqlDB's order."""
    refusals = [
        (not isinstance(query.from_, ast.SourceRef), "JOIN clauses."),
        (query.window is not None, "WINDOW clauses."),
        (bool(query.group_by), "GROUP BY clauses."),
        (bool(query.partition_by), "PARTITION BY clauses."),
        (query.having is not None, "HAVING clauses."),
        *((bool(names), f"the following columns in {clause} clauses: {', '.join(names)}\n")
          for clause, names in [("SELECT", _disallowed_columns(item.expr for item in query.select if item.expr)),
                                ("WHERE", _disallowed_columns([query.where] if query.where else []))]),
    ]
    for refused, what in refusals:
        if refused:
            raise StatementError(f"Pull queries don't support {what}{PULL_QUERY_HELP}")


def _disallowed_columns(expressions: Iterable[ast.Expr]) -> list[str]:
    named = (node.name.upper() for expr in expressions for node in ast.subexpressions(expr)
             if isinstance(node, ast.ColumnRef))
    return list(dict.fromkeys(f"`{name}`" for name in named if name in DISALLOWED_COLUMNS))


RANGE_SCAN_PROPERTY = "ksql.query.pull.range.scan.enabled"
PULL_LIMIT_PROPERTY = "ksql.query.pull.limit.clause.enabled"
PULL_LIMIT_DISABLED = ("LIMIT clause in pull queries is currently disabled. You can enable them by setting "
                       f"{PULL_LIMIT_PROPERTY}=true.{PULL_QUERY_HELP}")
KEY_COMPARED_TWICE = ("A comparison condition on the key column cannot be combined with other comparisons such as an "
                      "IN predicate")
KEY_NOT_RESOLVABLE = "A comparison must be between a key column and a resolvable expression."
KEY_RANGES = ("<", "<=", ">", ">=")
MAX_DISJUNCTS = 256  # a WHERE clause whose OR'ed form is larger is left to a table scan


def check_like_columns(where: ast.Expr | None, schema: LogicalSchema) -> None:
    """Refuse, with ksqlDB's pull-query message, LIKE on a column that is not a string."""
    for node in ast.subexpressions(where) if where is not None else ():
        if isinstance(node, ast.Like) and isinstance(node.operand, ast.ColumnRef):
            column = schema.find(node.operand.name)
            if column is not None and column.type != STRING:
                raise StatementError(f"The column type for Like condition must be VARCHAR. The column type is "
                                     f"{column.type}")


def check_key_values(where: ast.Expr | None, schema: LogicalSchema) -> None:
    """Refuse, as ksqlDB does, a string literal in an IN list on a key column that is not a string: a key
    lookup reads each value as the key's type, and ksqlDB will not read text as a number."""
    for node in ast.subexpressions(where) if where is not None else ():
        if isinstance(node, ast.InList) and isinstance(node.operand, ast.ColumnRef):
            column = schema.find(node.operand.name)
            if column is None or column.namespace is not Namespace.KEY or column.type == STRING:
                continue
            for item in node.items:
                if isinstance(item, ast.Literal) and item.type == STRING:
                    raise StatementError(f"{render(item)} can not be converted to the type of the key column: "
                                         f"{column.name} {column.type} KEY")


def is_key_range_scan(where: ast.Expr, schema: LogicalSchema, ranges_enabled: bool) -> bool:
    """Whether a pull query's WHERE, on a table whose scans are off, is answerable: each OR'ed disjunct must
    pin every key column once (`=` or `IN`), or its single key column with one range bound when range scans
    are on (answered by a scan that stops at the bound's side). Refuses, with ksqlDB's messages, what
    ksqlDB refuses instead of asking for table scans; False when the query needs a table scan after all."""
    keys = schema.key
    disjuncts = _disjunctive_form(where)
    if disjuncts is None:
        return False
    ranged = False
    for disjunct in disjuncts:
        compared: dict[str, str] = {}
        for conjunct in disjunct:
            found = _key_condition(conjunct, keys)
            if found is None:
                if isinstance(conjunct, ast.Like) and not isinstance(conjunct.operand, ast.ColumnRef):
                    raise StatementError("Like condition must be between strings")
                continue
            column, comparison = found
            if column in compared:
                raise StatementError(KEY_COMPARED_TWICE)
            compared[column] = comparison
        if not compared:
            shown = disjunct[0] if len(disjunct) == 1 else ast.Chain(tuple(disjunct), ("AND",) * (len(disjunct) - 1))
            raise StatementError(f"WHERE clause missing key column for disjunct: {render(shown)}")
        if len(keys) > 1 and not compared.keys() >= {c.name for c in keys}:
            raise StatementError("Multi-column sources must specify every key in the WHERE clause.")
        for comparison in compared.values():
            if comparison in ("=", "IN"):
                continue
            if comparison not in KEY_RANGES:
                raise _invalid_where(f"Bound on key columns '[{', '.join(map(str, keys))}]' must currently be '='")
            ranged = True
    return not ranged or (ranges_enabled and len(keys) == 1 and len(disjuncts) == 1)


def _disjunctive_form(where: ast.Expr) -> list[list[ast.Expr]] | None:
    """`where` as ksqlDB analyses it: OR'ed disjuncts, each a list of AND'ed conditions (ANDs distributed
    over ORs); None when that would take more than MAX_DISJUNCTS disjuncts."""
    if isinstance(where, ast.Chain) and set(where.operators) == {"OR"}:
        disjuncts: list[list[ast.Expr]] = []
        for operand in where.operands:
            inner = _disjunctive_form(operand)
            if inner is None or len(disjuncts) + len(inner) > MAX_DISJUNCTS:
                return None
            disjuncts += inner
        return disjuncts
    if isinstance(where, ast.Chain) and set(where.operators) == {"AND"}:
        product: list[list[ast.Expr]] = [[]]
        for operand in where.operands:
            inner = _disjunctive_form(operand)
            if inner is None or len(product) * len(inner) > MAX_DISJUNCTS:
                return None
            product = [done + more for done in product for more in inner]
        return product
    return [[where]]


def _key_condition(conjunct: ast.Expr, keys: Sequence[Column]) -> tuple[str, str] | None:
    """(key column, comparison) for a comparison or IN list on a key column, else None; refuses one whose
    other side reads a column."""
    key_names = {column.name for column in keys}
    if isinstance(conjunct, ast.InList) and not conjunct.negated:
        sides = [(conjunct.operand, conjunct.items, "IN")]
    elif isinstance(conjunct, ast.BinaryOp) and conjunct.op in COMPARISON_NAMES:
        sides = [(conjunct.left, (conjunct.right,), conjunct.op), (conjunct.right, (conjunct.left,), _flipped(conjunct.op))]
    else:
        return None
    for column, others, comparison in sides:
        if isinstance(column, ast.ColumnRef) and column.name in key_names:
            if any(isinstance(node, ast.ColumnRef) for other in others for node in ast.subexpressions(other)):
                raise StatementError(KEY_NOT_RESOLVABLE)
            return column.name, comparison
    return None


@dataclass(frozen=True)
class KeyLookup:
    """The serialized keys a pull query pins, and how many window bytes follow a key in a windowed table's
    stored keys (0 for a table without windows)."""

    keys: tuple[bytes, ...]
    window_suffix: int = 0


def key_lookup(plan: QueryPlan) -> KeyLookup | None:
    """The keys a pull query's WHERE pins with `=` or `IN (…)` on every key column, ANDed with anything
    else; None when it does not (a table scan)."""
    source = plan.source.source
    where = next((step.predicate for step in plan.steps if isinstance(step, FilterStep)), None)
    key_columns = [i for i, column in enumerate(plan.source.columns) if column.namespace == Namespace.KEY]
    if where is None or not key_columns:
        return None
    pinned: dict[int, list[Any]] = {}
    for conjunct in _conjuncts(where):
        found = _pinned_values(conjunct, key_columns)
        if found is None:
            continue
        index, values = found
        earlier = pinned.get(index)
        pinned[index] = values if earlier is None else [v for v in earlier if v in values]
    if len(pinned) != len(key_columns):
        return None
    serde = key_serde(source)
    try:
        keys = [serde.serialize(list(values)) for values in itertools.product(*(pinned[i] for i in key_columns))]
    except (KsqlError, ValueError, TypeError, OverflowError):  # a value the key format cannot hold: scan
        return None
    suffix = source.window.suffix_length if source.window is not None else 0
    return KeyLookup(tuple(dict.fromkeys(key for key in keys if key is not None)), suffix)


def check_table_scan(source: DataSource, lookup: KeyLookup | None, scans_enabled: bool) -> None:
    """Refuse, as ksqlDB does, a pull query that would scan a table when scans are off or the table is
    session-windowed (its sessions are found by key only)."""
    if lookup is not None:
        return
    if not scans_enabled:
        raise StatementError(TABLE_SCAN_DISABLED)
    if source.window is not None and source.window.is_session:
        raise StatementError(SESSION_TABLE_SCAN)


def check_window_bounds(where: ast.Expr | None, lookup: KeyLookup | None) -> None:
    """Refuse, with ksqlDB's messages, comparisons of a windowed table's WINDOWSTART / WINDOWEND other than
    =, <, <=, >, >=; and in a key lookup, two bounds of one kind on one of them, or `=` with another bound."""
    if where is None:
        return
    for node in ast.subexpressions(where):
        bound = _window_bound(node)
        if bound is not None and bound[1] not in WINDOW_BOUND_COMPARISONS:
            raise _invalid_where(f"Unsupported {bound[0]} bounds: {COMPARISON_NAMES[bound[1]]}")
    if lookup is None:  # ksqlDB reads the bounds of key lookups only
        return
    seen: set[tuple[str, str]] = set()
    for conjunct in _ast_conjuncts(where):
        for column, comparison, text in _bounds_in(conjunct):
            kind = "EQUAL" if comparison == "=" else "LESS_THAN" if comparison.startswith("<") else "GREATER_THAN"
            duplicate = (column, kind) in seen
            seen.add((column, kind))
            if (column, "EQUAL") in seen and any((column, k) in seen for k in ("LESS_THAN", "GREATER_THAN")):
                raise _invalid_where(f"`{text}` cannot be combined with other {column} bounds")
            if duplicate:
                raise _invalid_where(f"Duplicate {column} bounds on: {kind}")


def _invalid_where(message: str) -> StatementError:
    return StatementError(f"{message}. {PULL_QUERY_HELP}{WHERE_CLAUSE_HELP}")


def _window_bound(node: ast.Expr) -> tuple[str, str] | None:
    """(WINDOWSTART or WINDOWEND, comparison as if the column were on the left) for a comparison of a window
    bound with an expression of no column; None for anything else."""
    if not isinstance(node, ast.BinaryOp) or node.op not in COMPARISON_NAMES:
        return None
    for column, other, comparison in [(node.left, node.right, node.op), (node.right, node.left, _flipped(node.op))]:
        if (isinstance(column, ast.ColumnRef) and column.name.upper() in WINDOW_BOUND_COLUMNS
                and not any(isinstance(n, ast.ColumnRef) for n in ast.subexpressions(other))):
            return column.name.upper(), comparison
    return None


def _flipped(comparison: str) -> str:
    return {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(comparison, comparison)


def _bounds_in(conjunct: ast.Expr) -> list[tuple[str, str, str]]:
    """The window bounds one conjunct sets: (column, comparison, the comparison's text); BETWEEN sets two."""
    if isinstance(conjunct, ast.Between) and not conjunct.negated:
        return [bound for low_high in [ast.BinaryOp(">=", conjunct.operand, conjunct.low),
                                       ast.BinaryOp("<=", conjunct.operand, conjunct.high)]
                for bound in _bounds_in(low_high)]
    bound = _window_bound(conjunct)
    return [] if bound is None else [(*bound, render(conjunct))]


def _ast_conjuncts(where: ast.Expr) -> Iterator[ast.Expr]:
    if isinstance(where, ast.Chain) and set(where.operators) == {"AND"}:
        for operand in where.operands:
            yield from _ast_conjuncts(operand)
    else:
        yield where


def _conjuncts(predicate: TypedExpr) -> Iterator[TypedExpr]:
    if isinstance(predicate, Op) and predicate.op == "and":
        for operand in predicate.args:
            yield from _conjuncts(operand)
    else:
        yield predicate


def _pinned_values(conjunct: TypedExpr, key_columns: Sequence[int]) -> tuple[int, list[Any]] | None:
    """(key column, the values it must equal) for `key = constant` / `key IN (constants)`, else None."""
    if not isinstance(conjunct, Op) or conjunct.op not in ("eq", "in"):
        return None
    if conjunct.op == "eq" and _is_key(conjunct.args[1], key_columns):  # `constant = key`
        column, candidates = conjunct.args[1], conjunct.args[:1]
    else:
        column, candidates = conjunct.args[0], conjunct.args[1:]
    if not _is_key(column, key_columns) or not all(map(_is_constant, candidates)):
        return None
    assert isinstance(column, InputRef)
    try:
        values = [CompiledExpression(cast_to(c, column.type)).evaluate([], 1, _raise)[0] for c in candidates]
    except Exception:  # a constant that fails to evaluate: the scan's pipeline reports it per row
        return None
    return column.index, list(dict.fromkeys(v for v in values if v is not None))


def _is_key(expr: TypedExpr, key_columns: Sequence[int]) -> bool:
    return isinstance(expr, InputRef) and expr.index in key_columns


def _is_constant(expr: TypedExpr) -> bool:
    if isinstance(expr, Const):
        return True
    return isinstance(expr, Op) and expr.op in ("cast", "neg") and all(map(_is_constant, expr.args))


def _raise(_row: int, error: BaseException) -> None:
    raise error


class TableState:
    """A table's current records: the latest record per (partition, key bytes), deleted keys removed, kept
    in one state store per partition under the key bytes, so one key's windows are a single prefix scan."""

    def __init__(self, stores: StoreProvider, name: str) -> None:
        self._stores = stores
        self._name = name
        self._partitions: set[int] = set()

    def apply(self, records: Iterable[Record]) -> None:
        """Records read from the table's topic, in offset order per partition."""
        changes: dict[int, dict[bytes, Record | None]] = {}
        for record in records:
            if record.key is not None:  # a table row needs a key: ksqlDB drops keyless records too
                changes.setdefault(record.partition, {})[record.key] = None if record.value is None else record
        for partition, latest in changes.items():
            self._partitions.add(partition)
            self._stores.store(self._name, STORE_NAME, partition).write_batch(latest)

    def records(self, lookup: KeyLookup | None) -> list[Record]:
        """The current records: every one (by partition, then key bytes), or those of the looked-up keys in
        the lookup's order."""
        stores = [self._stores.store(self._name, STORE_NAME, p) for p in sorted(self._partitions)]
        if lookup is None:
            return [record for store in stores for _, record in store.range()]
        if not lookup.window_suffix:
            return [record for key in lookup.keys for store in stores
                    if (record := store.get(key)) is not None]
        return [record for key in lookup.keys for store in stores for stored, record in store.prefix(key)
                if len(stored) == len(key) + lookup.window_suffix]

    def drop(self) -> None:
        self._stores.drop_query(self._name)
        self._partitions.clear()


def pull_rows(pipeline: Pipeline, records: Sequence[Record], limit: int | None) -> list[list[Any]]:
    """The pull query's rows over the records it reads (a table's current records, a stream's all), at most
    `limit` of them."""
    if not records:
        return []
    columns, tombstones = pipeline.rows(RecordBatch.of(list(records)))
    rows = [list(row) for row, tombstone in zip(zip(*columns, strict=True), tombstones, strict=True) if not tombstone]
    return rows if limit is None else rows[:limit]
