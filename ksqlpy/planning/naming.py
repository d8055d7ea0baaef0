"""How ksqlDB names a query's output columns, and which names it keeps for itself."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

from ksqlpy.errors import StatementError
from ksqlpy.planning.catalog import PSEUDO_COLUMNS, WINDOW_BOUND_COLUMNS
from ksqlpy.planning.expressions import TypedExpr
from ksqlpy.syntax import ast
from ksqlpy.types import NULL


class SelectNames:
    """Names for a SELECT list's expressions: the alias; a column's own name; a struct field's name (made
    unique); else the next KSQL_COL_<n> that no column, alias or earlier name holds. Reserved names are
    refused with ksqlDB's messages; a persistent query may not select the pseudo columns or the window bounds
    as they are (they would clash with its sink's own), a transient query may."""

    def __init__(self, select: Sequence[ast.SelectItem], taken: Iterable[str], persistent: bool) -> None:
        self.taken = set(taken) | {item.alias for item in select if item.alias} | {
            item.expr.name for item in select if item.alias is None and isinstance(item.expr, ast.ColumnRef)
        }
        self.persistent = persistent
        self._generated = (f"KSQL_COL_{n}" for n in itertools.count() if f"KSQL_COL_{n}" not in self.taken)

    def name(self, item: ast.SelectItem, typed: TypedExpr) -> str:
        """The name of `item` (an expression, not a star), whose typed form is `typed`."""
        if typed.type == NULL:
            raise StatementError(
                "Can't infer a type of null. Please explicitly cast it to a required type, e.g. CAST(null AS "
                "VARCHAR)."
            )
        expr = item.expr
        if item.alias is not None:
            name = item.alias
            if name in PSEUDO_COLUMNS or name in WINDOW_BOUND_COLUMNS:
                raise StatementError(f"`{name}` is a reserved column name. You cannot use it as an alias for a column.")
        elif isinstance(expr, ast.ColumnRef):
            name = expr.name
            if self.persistent and (name in PSEUDO_COLUMNS or name in WINDOW_BOUND_COLUMNS):
                raise StatementError(f"Reserved column name in select: `{name}`. Please remove or alias the column.")
        elif isinstance(expr, ast.Dereference):
            name = unique_name(expr.field, self.taken)
        else:
            name = next(self._generated)
        self.taken.add(name)
        return name


def unique_name(name: str, taken: set[str]) -> str:
    """`name`, or `name_1`, `name_2`, … whichever is not taken yet."""
    candidate, suffix = name, 0
    while candidate in taken:
        suffix += 1
        candidate = f"{name}_{suffix}"
    return candidate
