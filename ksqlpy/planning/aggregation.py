"""Planning GROUP BY queries: aggregate calls, group keys, HAVING and windows -> aggregate steps.

A GROUP BY query becomes, as in ksqlDB: a select computing the group key and the aggregates' arguments;
an aggregate step (windowed or not) producing a table keyed by the group; an optional suppress step
(EMIT FINAL); a table filter for HAVING; and the final select. The SELECT and HAVING expressions are
rewritten over the aggregate's output: each aggregate call and each GROUP BY expression becomes a
reference to its column, and any source column left over is an expression ksqlDB refuses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ksqlpy.errors import StatementError
from ksqlpy.functions.registry import STRING_LITERAL, FunctionRegistry
from ksqlpy.planning.catalog import PSEUDO_COLUMNS, WINDOW_BOUND_COLUMNS
from ksqlpy.planning.expressions import (
    ExpressionTyper,
    InputRef,
    Scope,
    ScopeColumn,
    TypedExpr,
    cast_to,
    render,
    same_expression,
)
from ksqlpy.planning.naming import SelectNames
from ksqlpy.planning.plan import (
    AggregateCall,
    AggregateStep,
    FilterStep,
    GroupByStep,
    ProjectStep,
    Step,
    SuppressStep,
)
from ksqlpy.schema import Column, Namespace
from ksqlpy.syntax import ast
from ksqlpy.types import BIGINT, NULL, STRING, SqlType

AGGREGATE_COLUMN_PREFIX = "KSQL_AGG_VARIABLE_"


def uses_aggregation(query: ast.Query, registry: FunctionRegistry) -> bool:
    return bool(query.group_by) or query.window is not None or query.having is not None or bool(
        _aggregate_calls(query, registry)
    )


def _aggregate_calls(query: ast.Query, registry: FunctionRegistry) -> list[ast.FunctionCall]:
    """The distinct aggregate calls of the SELECT list and HAVING, in order of appearance."""
    found: list[ast.FunctionCall] = []
    roots = [item.expr for item in query.select if item.expr is not None]
    roots += [query.having] if query.having is not None else []
    for root in roots:
        for node in ast.subexpressions(root):
            if isinstance(node, ast.FunctionCall) and registry.kind_of(node.name) == "aggregate" \
                    and node not in found:
                found.append(node)
    return found


def _outside_aggregates(expr: ast.Expr, registry: FunctionRegistry) -> list[ast.Expr]:
    """The nodes of `expr` that are not inside an aggregate call."""
    return [node for node in ast.subexpressions(expr, lambda node: not _is_aggregate(node, registry))
            if not _is_aggregate(node, registry)]


def _is_aggregate(node: ast.Expr, registry: FunctionRegistry) -> bool:
    return isinstance(node, ast.FunctionCall) and registry.kind_of(node.name) == "aggregate"


def _unqualified(expr: ast.Expr) -> ast.Expr:
    """`expr` with source qualifiers dropped, so `T.ID` and `ID` group alike (one source in scope)."""

    def strip(node: ast.Expr) -> ast.Expr | None:
        if isinstance(node, ast.ColumnRef) and node.source is not None:
            return ast.ColumnRef(node.name, None, node.pos)
        return None

    return ast.transform(expr, strip)


def _listed(names: Sequence[str]) -> str:
    """`A`, `A and B`, `A, B and C`: how ksqlDB lists names in its messages."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


class AggregationPlanner:
    """Plans one GROUP BY query above `input` (its source, filtered by WHERE)."""

    def __init__(
        self,
        query: ast.Query,
        input_step: Step,
        scope: Scope,
        registry: FunctionRegistry,
        source_name: str,
        source_keys: Sequence[str],
        sink_name: str | None,
        sink_kind: str | None,
        value_format: str,
    ) -> None:
        """`value_format` is the source's, which ksqlDB also uses for the aggregate's internal state."""
        self.query = query
        self.value_format = value_format
        self.input = input_step
        self.scope = scope
        self.registry = registry
        self.source_name = source_name
        self.source_keys = list(source_keys)
        self.sink_name = sink_name
        self.sink_kind = sink_kind

    def plan(self) -> ProjectStep:
        query = self.query
        calls = _aggregate_calls(query, self.registry)
        self._check_clauses(calls)
        group_nodes = [_unqualified(node) for node in query.group_by]
        group_typer = ExpressionTyper(self.scope, self.registry, "GROUP BY")
        group_exprs = [group_typer.type(node) for node in group_nodes]
        key_names = self._key_names(group_nodes)
        argument_exprs: list[TypedExpr] = []
        aggregates = [self._aggregate(call, argument_exprs, len(group_exprs)) for call in calls]
        self._check_table_aggregates(aggregates)
        self._check_intermediate_types(aggregates)
        pre_columns = tuple(
            [Column(name, typed.type, Namespace.KEY) for name, typed in zip(key_names, group_exprs, strict=True)]
            + [Column(f"KSQL_INTERNAL_COL_{i}", typed.type) for i, typed in enumerate(argument_exprs)]
        )
        pre = ProjectStep(self.input, tuple(group_exprs + argument_exprs), pre_columns)
        aggregate_columns = tuple(
            [Column(name, typed.type, Namespace.KEY) for name, typed in zip(key_names, group_exprs, strict=True)]
            + [Column(f"{AGGREGATE_COLUMN_PREFIX}{i}", call.function.return_type) for i, call in enumerate(aggregates)]
        )
        rekeyed = [n.name if isinstance(n, ast.ColumnRef) else None for n in group_nodes] != self.source_keys
        grouped = GroupByStep(pre, len(group_exprs), rekeyed)
        aggregate_step = AggregateStep(grouped, tuple(aggregates), query.window, aggregate_columns)
        step: Step = aggregate_step
        if query.emit == "FINAL":
            step = SuppressStep(aggregate_step)
        post_scope = self._post_scope(aggregate_columns, query.window is not None)
        replacements = {node: ast.ColumnRef(name) for node, name in zip(group_nodes, key_names, strict=True)}
        replacements.update({call: ast.ColumnRef(f"{AGGREGATE_COLUMN_PREFIX}{i}") for i, call in enumerate(calls)})
        if query.having is not None:
            having = self._rewritten(query.having, replacements, post_scope, "HAVING")
            try:
                predicate = ExpressionTyper(post_scope, self.registry, "HAVING").type_boolean(having, "HAVING")
            except StatementError as error:
                # name the aggregates as written, not by the columns they became
                message = str(error)
                for index in reversed(range(len(calls))):
                    message = message.replace(f"{AGGREGATE_COLUMN_PREFIX}{index}", self._call_text(calls[index]))
                raise StatementError(f"Error in HAVING expression: {message}") from error
            step = FilterStep(step, predicate)
        return self._project(step, post_scope, replacements, [t.type for t in group_exprs])

    # -- checks

    def _check_clauses(self, calls: list[ast.FunctionCall]) -> None:
        query = self.query
        for item in query.select:
            for node in ast.subexpressions(item.expr) if item.expr is not None else ():
                if isinstance(node, ast.FunctionCall) and not self.registry.exists(node.name):
                    raise StatementError(f"Can't find any functions with the name '{node.name}'")
            if (query.window is None and self.sink_name is not None and item.alias is None
                    and isinstance(item.expr, ast.ColumnRef) and item.expr.name in WINDOW_BOUND_COLUMNS):
                raise StatementError(f"Reserved column name in select: `{item.expr.name}`. Please remove or alias "
                                     "the column.")
        if query.window is not None and not query.group_by and not calls:
            raise StatementError("WINDOW clause requires a GROUP BY clause.")
        if query.emit == "FINAL" and query.window is None:
            raise StatementError("EMIT FINAL is only supported for windowed aggregations.")
        if not query.group_by:
            if query.having is not None:
                raise StatementError("HAVING clause requires a GROUP BY clause.")
            outside = [render(item.expr) for item in query.select if item.expr is not None and any(
                isinstance(node, ast.ColumnRef) for node in _outside_aggregates(item.expr, self.registry))]
            if outside:
                raise StatementError("Non-aggregate SELECT expression(s) not part of GROUP BY: "
                                     f"{', '.join(outside)}\nEither add the column(s) to the GROUP BY or remove "
                                     "them from the SELECT.")
            kind = f"CREATE {self.sink_kind} AS SELECT" if self.sink_kind else "SELECT"
            shown = ", ".join(self._call_text(c) for c in calls)
            raise StatementError(f"{kind} statement does not support aggregate function [{shown}] without a "
                                 "GROUP BY clause.")
        if not calls:
            raise StatementError("GROUP BY requires aggregate functions in either the SELECT or HAVING clause.")
        if query.partition_by:
            raise StatementError("PARTITION BY and GROUP BY in the same query are not supported.")
        seen: list[ast.Expr] = []
        for node in query.group_by:
            for inner in ast.subexpressions(node):
                if isinstance(inner, ast.FunctionCall) and self.registry.kind_of(inner.name) == "aggregate":
                    raise StatementError(f"GROUP BY does not support aggregate functions: {inner.name} is an "
                                         "aggregate function.")
                if isinstance(inner, ast.ColumnRef) and inner.name in WINDOW_BOUND_COLUMNS:
                    self._window_bounds_misused(inner.name)
            if _unqualified(node) in seen:
                raise StatementError(f"Duplicate GROUP BY expression: {render(node, self.source_name)}")
            seen.append(_unqualified(node))
        for clause in (query.where, query.having):
            for inner in ast.subexpressions(clause) if clause is not None else ():
                if isinstance(inner, ast.ColumnRef) and inner.name in WINDOW_BOUND_COLUMNS:
                    self._window_bounds_misused(inner.name)
        if query.window is None:
            for item in query.select:
                for inner in ast.subexpressions(item.expr) if item.expr is not None else ():
                    if isinstance(inner, ast.ColumnRef) and inner.name in WINDOW_BOUND_COLUMNS:
                        self._window_bounds_misused(inner.name)

    def _window_bounds_misused(self, name: str) -> None:
        if self.scope.resolve(name, None) is None:
            raise StatementError(f"Window bounds column {name} can only be used in the SELECT clause of windowed "
                                 "aggregations")

    def _check_table_aggregates(self, aggregates: list[AggregateCall]) -> None:
        if not self.input.is_table:
            return
        # in the order the query calls them, as ksqlDB lists them
        refused = list(dict.fromkeys(call.overload.name for call in aggregates if not _undoable(call)))
        if refused:
            raise StatementError(f"The aggregation functions {_listed(refused)} cannot be applied to a table "
                                 "source, only to a stream source.")

    def _check_intermediate_types(self, aggregates: list[AggregateCall]) -> None:
        if self.value_format in ("DELIMITED", "KAFKA") and not all(
            getattr(call.overload.impl, "primitive_intermediate", False) for call in aggregates
        ):
            raise StatementError("One of the functions used in the statement has an intermediate type that the value "
                                 "format can not handle. Please remove the function or change the format.")

    # -- aggregate calls

    @staticmethod
    def _call_text(call: ast.FunctionCall) -> str:
        # ksqlDB turns COUNT(*) into COUNT(ROWTIME) before anything reports it
        return f"{call.name}(ROWTIME)" if call.star else render(call)

    def _aggregate(self, call: ast.FunctionCall, arguments: list[TypedExpr], offset: int) -> AggregateCall:
        typer = ExpressionTyper(self.scope, self.registry)
        for node in call.args:
            for inner in ast.subexpressions(node):
                if isinstance(inner, ast.FunctionCall) and self.registry.kind_of(inner.name) == "aggregate":
                    raise StatementError(f"Aggregate functions can not be nested: {render(call)}")
        typed = [typer.type(_unqualified(node)) for node in call.args]
        specs: list[SqlType | Any] = [
            STRING_LITERAL if isinstance(node, ast.Literal) and t.type == STRING else t.type
            for node, t in zip(call.args, typed, strict=True)
        ]
        bound = self.registry.resolve(call.name, specs, "aggregate")
        literal_count = bound.overload.literals
        column_count = len(call.args) - literal_count
        literals: list[Any] = []
        for node in call.args[column_count:]:
            if not isinstance(node, ast.Literal):
                raise StatementError(f"Parameter {render(node)} of {call.name} must be a literal: {render(call)}")
            literals.append(node.value)
        positions: list[int] = []
        for expr, target in zip(typed[:column_count], bound.arg_types[:column_count], strict=True):
            argument = expr if target == NULL else cast_to(expr, target)
            match = next((i for i, known in enumerate(arguments) if same_expression(known, argument)), None)
            if match is None:
                arguments.append(argument)
                match = len(arguments) - 1
            positions.append(offset + match)
        return AggregateCall(bound, tuple(positions), tuple(literals), self._call_text(call))

    # -- naming and the final projection

    def _key_names(self, group_nodes: list[ast.Expr]) -> list[str]:
        """A column's own name for GROUP BY on a column; else the alias the SELECT gives the same
        expression; else KSQL_COL_<n>."""
        names: list[str] = []
        for position, node in enumerate(group_nodes):
            if isinstance(node, ast.ColumnRef):
                names.append(node.name)
                continue
            alias = next((item.alias for item in self.query.select
                          if item.alias and item.expr is not None and _unqualified(item.expr) == node), None)
            names.append(alias or f"KSQL_COL_{position}")
        return names

    @staticmethod
    def _post_scope(columns: tuple[Column, ...], windowed: bool) -> Scope:
        visible = [ScopeColumn(i, c.name, c.type) for i, c in enumerate(columns)]
        if windowed:
            # the aggregate's output rows carry ROWTIME, ROWPARTITION, ROWOFFSET, WINDOWSTART, WINDOWEND after
            # its columns, as a source's rows do
            width = len(columns)
            visible += [ScopeColumn(width + 3 + i, name, BIGINT) for i, name in enumerate(WINDOW_BOUND_COLUMNS)]
        return Scope(visible)

    def _rewritten(self, node: ast.Expr, replacements: Mapping[ast.Expr, ast.ColumnRef], post_scope: Scope,
                   clause: str) -> ast.Expr:
        rewritten = ast.transform(_unqualified(node), replacements.get)
        leftovers = [inner.name for inner in ast.subexpressions(rewritten)
                     if isinstance(inner, ast.ColumnRef) and post_scope.resolve(inner.name, None) is None]
        if leftovers and clause == "HAVING":
            raise StatementError(f"Non-aggregate HAVING expression not part of GROUP BY: {', '.join(leftovers)}")
        return rewritten

    def _project(
        self,
        step: Step,
        post_scope: Scope,
        replacements: Mapping[ast.Expr, ast.ColumnRef],
        key_types: list[SqlType],
    ) -> ProjectStep:
        typer = ExpressionTyper(post_scope, self.registry)
        names = SelectNames(self.query.select, (), persistent=self.sink_name is not None)
        items: list[tuple[str, TypedExpr]] = []
        refused: list[str] = []
        for item in self._expanded_select():
            assert item.expr is not None
            rewritten = self._rewritten(item.expr, replacements, post_scope, "SELECT")
            if any(isinstance(inner, ast.ColumnRef) and post_scope.resolve(inner.name, None) is None
                   for inner in ast.subexpressions(rewritten)):
                refused.append(render(item.expr))
                continue
            typed = typer.type(rewritten)
            items.append((names.name(item, typed), typed))
        if refused:
            raise StatementError(f"Non-aggregate SELECT expression(s) not part of GROUP BY: {', '.join(refused)}\n"
                                 "Either add the column(s) to the GROUP BY or remove them from the SELECT.")
        return self._assign_keys(step, items, key_types)

    def _expanded_select(self) -> list[ast.SelectItem]:
        """The SELECT list with `*` replaced by the source's columns."""
        items: list[ast.SelectItem] = []
        for item in self.query.select:
            if not item.is_star:
                items.append(item)
                continue
            names = dict.fromkeys(c.name for c in self.scope.columns
                                  if c.name not in PSEUDO_COLUMNS and c.name not in WINDOW_BOUND_COLUMNS)
            items += [ast.SelectItem(ast.ColumnRef(name)) for name in names]
        return items

    def _assign_keys(self, step: Step, items: list[tuple[str, TypedExpr]], key_types: list[SqlType]) -> ProjectStep:
        """The GROUP BY columns selected as they are form the output key, under the name the SELECT gives them."""
        keys: list[tuple[str, TypedExpr]] = []
        used: set[int] = set()
        missing: list[str] = []
        for position, key_type in enumerate(key_types):
            matches = [i for i, (_, typed) in enumerate(items) if _reads_column(typed, position, key_type)]
            if not matches:
                missing.append(render(self.query.group_by[position]))
                continue
            if len(matches) > 1 and self.sink_name is not None:
                raise StatementError(f"The projection contains a key column (`{items[matches[0]][0]}`) more than "
                                     f"once, aliased as: {' and '.join(items[i][0] for i in matches)}.")
            used.add(matches[0])
            keys.append(items[matches[0]])
        if missing and self.sink_name is not None:
            plural = "s" if len(missing) > 1 else ""
            raise StatementError(f"The query used to build `{self.sink_name}` must include the grouping "
                                 f"expression{plural} {_listed(missing)} in its projection (eg, SELECT "
                                 f"{', '.join(missing)}...).")
        values = [item for i, item in enumerate(items) if i not in used]
        if not values and self.sink_name is not None:
            raise StatementError("The projection contains no value columns.")
        columns = [Column(n, t.type, Namespace.KEY) for n, t in keys] + [Column(n, t.type) for n, t in values]
        key_names = {name for name, _ in keys}
        clash = next((c for c in columns[len(keys):] if c.name in key_names), None)
        if clash is not None:
            raise StatementError(f"Duplicate value columns found in schema: `{clash.name}` {clash.type}")
        names = [c.name for c in columns]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise StatementError(f"Duplicate column names: {', '.join(duplicates)}")
        if self.sink_name is None:  # ksqlDB answers a transient query's columns in the order they are selected
            columns = [Column(n, t.type, Namespace.KEY if i in used else Namespace.VALUE)
                       for i, (n, t) in enumerate(items)]
            return ProjectStep(step, tuple(t for _, t in items), tuple(columns))
        return ProjectStep(step, tuple(t for _, t in keys + values), tuple(columns))


def _reads_column(typed: TypedExpr, index: int, column_type: SqlType) -> bool:
    return isinstance(typed, InputRef) and typed.index == index and typed.type == column_type


def _undoable(call: AggregateCall) -> bool:
    implementation = call.overload.impl
    return bool(getattr(implementation, "undoable", False))
