"""Planning joins: a FROM clause's JOIN tree -> JoinSteps, checked as ksqlDB checks them, and the scope the
query's other clauses read the joined columns through.

A join's output columns are its key column(s), then every column of its left input, then every column of its
right input; a source's columns are renamed `<ALIAS>_<NAME>` (pseudo columns included), an inner join's keep
their names. The key column takes the name of the first "viable" key column the projection selects: a column
that an ON equality's side is, and, in an N-way join, the viable columns of the inner join it joins on. With
none (both sides are expressions, or a FULL OUTER join, where neither side is always there) the key is the
synthetic ROWKEY. A foreign-key table-table join is keyed by the left table's primary key.

The clauses above the join are rewritten so every column reference names a joined column (`L.A` and an
unambiguous `A` become `L_A`), as ksqlDB rewrites them, which is also how its messages name them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from ksqlpy.errors import StatementError
from ksqlpy.functions.registry import FunctionRegistry
from ksqlpy.planning.catalog import PSEUDO_COLUMNS, WINDOW_BOUND_COLUMNS, Catalog, DataSource
from ksqlpy.planning.expressions import ExpressionTyper, Scope, ScopeColumn, TypedExpr, render
from ksqlpy.planning.plan import JoinStep, SourceStep, Step
from ksqlpy.schema import Column, Namespace
from ksqlpy.syntax import ast
from ksqlpy.types import BIGINT, INTEGER, ArrayType, MapType, SqlType, StructType

SYNTHETIC_KEY = "ROWKEY"
# ksqlDB's names for the join types in its messages
_TYPE_NAMES = {"INNER": "INNER", "LEFT": "LEFT", "RIGHT": "RIGHT", "FULL": "OUTER"}
_TYPE_WORDS = {"RIGHT": "right-outer", "FULL": "full-outer"}


@dataclass(frozen=True)
class Leaf:
    """One source of a join: its alias, and where its columns start in the columns of the join above it."""

    alias: str
    source: DataSource
    columns: tuple[Column, ...]
    offset: int

    def find(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    def index(self, name: str) -> int:
        return self.offset + next(i for i, c in enumerate(self.columns) if c.name == name)


@dataclass(frozen=True)
class Relation:
    """A planned FROM clause (a source, or a join of them) and what later joins and clauses need of it."""

    step: Step
    leaves: tuple[Leaf, ...]
    # the key columns: name and position (none for a lone source)
    keys: tuple[tuple[str, int], ...] = ()
    # per key column, the (alias, column) pairs the projection may select it as; empty: synthetic
    viable: tuple[tuple[tuple[str, str], ...], ...] = ()
    # the expressions (rewritten: joined column names) this relation is keyed by, for a later join on it
    key_expressions: tuple[ast.Expr, ...] = ()
    foreign_key: bool = False

    @property
    def aliases(self) -> list[str]:
        return [leaf.alias for leaf in self.leaves]

    @property
    def leftmost(self) -> Leaf:
        return self.leaves[0]

    @property
    def is_table(self) -> bool:
        return self.step.is_table

    @property
    def key_width(self) -> int:
        return len(self.keys) if self.keys else len(self.leftmost.source.schema.key)

    def scope(self) -> Scope:
        """Columns as `ALIAS.NAME`, `NAME` and `ALIAS_NAME`; a key column by its name (its source column,
        when it has the key's name, reads the key)."""
        key_index = dict(self.keys)
        columns = [ScopeColumn(index, name, self.step.columns[index].type) for name, index in self.keys]
        for leaf in self.leaves:
            for column in leaf.columns:
                joined = joined_name(leaf.alias, column.name) if len(self.leaves) > 1 else column.name
                index = key_index.get(joined, leaf.index(column.name))
                columns.append(ScopeColumn(index, column.name, column.type, leaf.alias))
                if joined != column.name and joined not in key_index:
                    columns.append(ScopeColumn(index, joined, column.type))
        return Scope(columns, self.aliases)


def joined_name(alias: str, column: str) -> str:
    return f"{alias}_{column}"


def _located(node: ast.Expr) -> str:
    pos = getattr(node, "pos", None)
    return f"Line: {pos.line}, Col: {pos.column}: " if pos is not None else ""


def _listed(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def contains_map(t: SqlType) -> bool:
    """Whether a type is or holds a MAP, which no key may."""
    if isinstance(t, MapType):
        return True
    if isinstance(t, ArrayType):
        return contains_map(t.element)
    if isinstance(t, StructType):
        return any(contains_map(ft) for _, ft in t.fields)
    return False


class ColumnResolver:
    """Resolves column references of a join's clauses to the sources they read, with ksqlDB's messages."""

    def __init__(self, leaves: Sequence[Leaf]) -> None:
        self.leaves = list(leaves)

    def resolve(self, ref: ast.ColumnRef, clause: str) -> Leaf | None:
        """The source `ref` reads; None for a name no source has (a joined column's name, or an error the
        typer reports). Messages say where `ref` is, as ksqlDB's do."""
        prefix = _located(ref)
        if ref.source is not None:
            leaf = self.check_source(ref.source)
            if leaf.find(ref.name) is None:
                raise StatementError(f"{prefix}{clause} column '{ref.source}.{ref.name}' cannot be resolved.")
            return leaf
        owners = [leaf for leaf in self.leaves if leaf.find(ref.name) is not None]
        if len(owners) > 1:
            candidates = [f"{leaf.alias}.{ref.name}" for leaf in owners]
            raise StatementError(f"Exception while preparing statement: {prefix}Column '{ref.name}' is ambiguous. "
                                 f"Could be {_listed(candidates)}.")
        return owners[0] if owners else None

    def check_source(self, alias: str) -> Leaf:
        leaf = next((leaf for leaf in self.leaves if leaf.alias == alias), None)
        if leaf is None:
            raise StatementError(f"Failed to prepare statement: '{alias}' is not a valid stream/table name or alias.")
        return leaf

    def rewrite(self, expr: ast.Expr, clause: str) -> ast.Expr:
        """`expr` with every column reference naming the joined column it reads (lambda parameters kept)."""
        parameters = {p for node in ast.subexpressions(expr) if isinstance(node, ast.Lambda) for p in node.params}

        def rename(node: ast.Expr) -> ast.Expr | None:
            if not isinstance(node, ast.ColumnRef) or (node.source is None and node.name in parameters):
                return None
            leaf = self.resolve(node, clause)
            if leaf is None:
                return None
            return ast.ColumnRef(joined_name(leaf.alias, node.name), None, node.pos)

        return ast.transform(expr, rename)

    def sources_of(self, expr: ast.Expr, clause: str) -> list[Leaf]:
        found: list[Leaf] = []
        for node in ast.subexpressions(expr):
            if isinstance(node, ast.ColumnRef):
                leaf = self.resolve(node, clause)
                if leaf is None:
                    raise StatementError(f"{_located(node)}{clause} column '{node.name}' cannot be resolved.")
                if leaf not in found:
                    found.append(leaf)
        return found

    def default_name(self, ref: ast.ColumnRef) -> str:
        """The name a selected column gets without an alias: its own where no other source has a column of
        that name, else `<ALIAS>_<NAME>`."""
        leaf = self.resolve(ref, "SELECT")
        if leaf is None:
            return ref.name
        shared = sum(1 for other in self.leaves if other.find(ref.name) is not None) > 1
        return joined_name(leaf.alias, ref.name) if shared else ref.name


@dataclass(frozen=True)
class _Equality:
    left: ast.Expr  # over the left relation
    right: ast.Expr  # over the right source
    text: str  # as ksqlDB shows it in messages: both sides qualified, in the order written
    left_typed: TypedExpr
    right_typed: TypedExpr


def joined_sources(catalog: Catalog, relation: ast.Relation) -> list[tuple[str, DataSource]]:
    """The joined sources, leftmost first, with their aliases; refused as ksqlDB refuses them: repeated, or
    of a value format joins cannot read."""
    refs: list[ast.SourceRef] = []
    while isinstance(relation, ast.Join):
        refs.insert(0, relation.right)
        relation = relation.left
    assert isinstance(relation, ast.SourceRef)
    refs.insert(0, relation)
    found: list[tuple[str, DataSource]] = []
    for ref in refs:
        source = catalog.find(ref.name)
        if source is None:
            raise StatementError(f"{ref.name} does not exist.")
        alias = ref.alias or ref.name
        if any(source.name == other.name for _, other in found):
            if len(refs) > 2:
                raise StatementError("N-way joins do not support multiple occurrences of the same source. "
                                     f"Source: '{ref.name}'")
            # Kafka Streams can join a stream to itself, under two aliases, but not a table
            if source.kind == "TABLE" or any(alias == seen for seen, _ in found):
                raise StatementError(f"Can not join '{ref.name}' to '{ref.name}': self joins are not yet "
                                     "supported.")
        found.append((alias, source))
    kafka = [alias for alias, source in found if source.value.format == "KAFKA"]
    if kafka:
        raise StatementError(f"Source(s) {', '.join(kafka)} are using the 'KAFKA' value format. This format does "
                             "not yet support JOIN.")
    return found


class JoinPlanner:
    """Plans a FROM clause with joins into a tree of JoinSteps (see the module docstring)."""

    def __init__(self, registry: FunctionRegistry, wanted: Iterable[tuple[str, str]]) -> None:
        """`wanted` are the (alias, column) pairs the query's projection selects as they are, which decide the
        key column's name."""
        self.registry = registry
        self.wanted = list(wanted)

    def plan(self, relation: ast.Relation, sources: dict[str, DataSource]) -> Relation:
        """`relation` planned over `sources` (by alias, from joined_sources)."""
        if isinstance(relation, ast.SourceRef):
            alias = relation.alias or relation.name
            source = sources[alias]
            columns = source_columns(source)
            leaf = Leaf(alias, source, columns, 0)
            keys = tuple(ast.ColumnRef(joined_name(alias, c.name)) for c in source.schema.key)
            return Relation(SourceStep(source, columns), (leaf,), key_expressions=keys)
        assert isinstance(relation, ast.Join)
        return self._join(relation, self.plan(relation.left, sources), self.plan(relation.right, sources))

    # -- one join

    def _join(self, join: ast.Join, left: Relation, right: Relation) -> Relation:
        right_leaf = right.leftmost
        shown = f"Got {left.leftmost.alias} [{_TYPE_NAMES[join.join_type]}] JOIN {right_leaf.alias}."
        resolver = ColumnResolver(left.leaves + right.leaves)
        equalities = self._equalities(join, left, right, resolver)
        if left.is_table and not right.is_table:
            raise StatementError(f"Invalid join order: table-stream joins are not supported; only stream-table "
                                 f"joins. {shown}")
        self._check_windows(left, right, equalities)
        foreign_key = False
        if not left.is_table and right.is_table:
            if join.join_type in _TYPE_WORDS:
                raise StatementError(f"Invalid join type: {_TYPE_WORDS[join.join_type]} join not supported for "
                                     f"stream-table join. {shown}")
            self._check_right_key(right, equalities, "stream-table joins require to join on the table's "
                                                     "primary key")
        elif left.is_table:
            self._check_right_key(right, equalities, "table-table joins require to join on the primary key of "
                                                     "the right input table")
            foreign_key = len(equalities) != left.key_width or not all(
                e.left in left.key_expressions for e in equalities)
            if foreign_key and len(left.leaves) > 1:
                raise StatementError("Invalid join condition: foreign-key table-table joins are not supported as "
                                     f"part of n-way joins. Got {equalities[0].text}.")
            if foreign_key and join.join_type in _TYPE_WORDS:
                raise StatementError(f"Invalid join type: {_TYPE_WORDS[join.join_type]} join not supported for "
                                     f"foreign-key table-table join. {shown}")
        self._check_within(join, left, right)
        if not foreign_key:
            self._check_partitions(left, right_leaf)
        return self._build(join, left, right, equalities, foreign_key)

    def _equalities(self, join: ast.Join, left: Relation, right: Relation, resolver: ColumnResolver) -> list[_Equality]:
        criteria = join.criteria
        parts: Sequence[ast.Expr] = [criteria]
        if isinstance(criteria, ast.Chain) and set(criteria.operators) == {"AND"}:
            parts = criteria.operands  # our extension: equalities joined by AND join on a composite key
        for node in ast.subexpressions(criteria):
            if isinstance(node, ast.ColumnRef) and node.source is not None:
                resolver.check_source(node.source)  # before any other reference is resolved, as ksqlDB does
        right_alias = right.leftmost.alias
        left_typer = ExpressionTyper(left.scope(), self.registry, "JOIN ON")
        right_typer = ExpressionTyper(right.scope(), self.registry, "JOIN ON")
        equalities: list[_Equality] = []
        for part in parts:
            if not isinstance(part, ast.BinaryOp) or part.op not in ("=", "<>", "!=", "<", "<=", ">", ">="):
                raise StatementError(f"Unsupported join expression: {render(part)}")
            sides = []
            for side in (part.left, part.right):
                used = resolver.sources_of(side, "JOIN ON")
                if len(used) != 1:
                    raise StatementError(
                        f"Invalid comparison expression '{render(side)}' in join '{render(part)}'. Each side of the "
                        "join comparision must contain references from exactly one source.")
                sides.append(used[0])
            if part.op != "=":
                raise StatementError("Only equality join criteria is supported.")
            text = f"{render(part.left, sides[0].alias)} = {render(part.right, sides[1].alias)}"
            if sides[0].alias == right_alias and sides[1].alias != right_alias:
                left_node, right_node = part.right, part.left
            elif sides[1].alias == right_alias and sides[0].alias != right_alias:
                left_node, right_node = part.left, part.right
            else:
                raise StatementError(
                    f"A join criteria is expected to reference the source ({right_alias}) in the FROM clause, "
                    f"instead the right source references {sides[1].alias} and the left source references "
                    f"{sides[0].alias}")
            left_typed = left_typer.type(left_node)
            right_typed = right_typer.type(right_node)
            written = [(part.left, sides[0]), (part.right, sides[1])]
            if left_typed.type != right_typed.type:
                types = {id(left_node): left_typed.type, id(right_node): right_typed.type}
                shown = " = ".join(f"{render(node, leaf.alias)}{{{types[id(node)]}}}" for node, leaf in written)
                raise StatementError(f"Invalid join condition: types don't match. Got {shown}.")
            equalities.append(_Equality(resolver.rewrite(left_node, "JOIN ON"), resolver.rewrite(right_node, "JOIN ON"),
                                        text, left_typed, right_typed))
        return equalities

    @staticmethod
    def _check_right_key(right: Relation, equalities: list[_Equality], requirement: str) -> None:
        keys = right.key_expressions
        if len(equalities) != len(keys) or any(e.right not in keys for e in equalities) or len(
                {e.right for e in equalities}) != len(keys):
            raise StatementError(f"Invalid join condition: {requirement}. Got {equalities[0].text}.")

    @staticmethod
    def _check_windows(left: Relation, right: Relation, equalities: list[_Equality]) -> None:
        """Windowed sources join only sources windowed alike, on their keys (the window is part of the key)."""
        pair = (left.leftmost, right.leftmost)
        kinds = [leaf.source.window.kind if leaf.source.window is not None else None for leaf in pair]
        if kinds == [None, None]:
            return
        described = "\n".join(f"`{leaf.alias}` is {f'{kind} windowed' if kind else 'not windowed'}"
                               for leaf, kind in zip(pair, kinds, strict=True))
        if None in kinds:
            raise StatementError(f"Can not join windowed source to non-windowed source.\n{described}")
        if kinds[0] != kinds[1]:
            raise StatementError(f"Incompatible windowed sources.\n{described}")
        if any(e.left not in left.key_expressions or e.right not in right.key_expressions for e in equalities):
            raise StatementError("Implicit repartitioning of windowed sources is not supported. See "
                                 "https://github.com/confluentinc/ksql/issues/4385.")

    @staticmethod
    def _check_within(join: ast.Join, left: Relation, right: Relation) -> None:
        if not left.is_table and not right.is_table:
            if join.within is None:
                raise StatementError(
                    "Stream-Stream joins must have a WITHIN clause specified. None was provided. To learn about how "
                    "to specify a WITHIN clause with a stream-stream join, please visit: "
                    "https://docs.confluent.io/current/ksql/docs/syntax-reference.html#create-stream-as-select")
            return
        if join.within is not None and left.is_table:
            raise StatementError(
                "A window definition was provided for a Table-Table join. These joins are not windowed. Please drop "
                "the window definition (i.e. the WITHIN clause) and try to execute your Table-Table join again.")
        if join.within is not None:
            raise StatementError(
                "A window definition was provided for a Stream-Table join. These joins are not windowed. Please drop "
                "the window definition (ie. the WITHIN clause) and try to execute your join again.")

    @staticmethod
    def _check_partitions(left: Relation, right: Leaf) -> None:
        first = left.leftmost
        # ksqlDB accepts a join reading a query's sink whatever partitions the sink declares: compare sources only
        derived = first.source.is_derived or right.source.is_derived
        if not derived and first.source.partitions != right.source.partitions:
            raise StatementError(
                f"Can't join `{first.alias}` with `{right.alias}` since the number of partitions don't match. "
                f"`{first.alias}` partitions = {first.source.partitions}; `{right.alias}` partitions = "
                f"{right.source.partitions}. Please repartition either one so that the number of partitions match.")

    # -- the join step

    def _build(self, join: ast.Join, left: Relation, right: Relation, equalities: list[_Equality],
               foreign_key: bool) -> Relation:
        if foreign_key:
            leaf = left.leftmost
            viable: tuple[tuple[tuple[str, str], ...], ...] = tuple(
                ((leaf.alias, c.name),) for c in leaf.source.schema.key)
            key_columns = [Column(joined_name(leaf.alias, c.name), c.type, Namespace.KEY) for c in leaf.source.schema.key]
            key_expressions: tuple[ast.Expr, ...] = tuple(
                ast.ColumnRef(joined_name(leaf.alias, c.name)) for c in leaf.source.schema.key)
        else:
            viable = tuple(self._viable(join, left, right, equality) for equality in equalities)
            key_columns = []
            taken: set[str] = set()
            for equality, candidates in zip(equalities, viable, strict=True):
                name = self._key_name(candidates, taken)
                taken.add(name)
                key_type = equality.left_typed.type
                if contains_map(key_type):
                    raise StatementError(
                        "Map keys, including types that contain maps, are not supported as they may lead to "
                        f"unexpected behavior due to inconsistent serialization. Key column name: `{name}`. Column "
                        f"type: {key_type}. See https://github.com/confluentinc/ksql/issues/6621 for more.")
                key_columns.append(Column(name, key_type, Namespace.KEY))
            key_expressions = tuple(dict.fromkeys(
                [e for equality in equalities for e in (equality.left, equality.right)]
                + [ast.ColumnRef(joined_name(a, c)) for candidates in viable for a, c in candidates]))
        width = len(key_columns)
        left_columns = _renamed(left)
        right_columns = _renamed(right)
        columns = tuple(key_columns) + left_columns + right_columns
        step = JoinStep(
            left.step, right.step, join.join_type,
            tuple(e.left_typed for e in equalities), tuple(e.right_typed for e in equalities),
            columns, join.within, foreign_key,
        )
        leaves = tuple(replace(leaf, offset=leaf.offset + width) for leaf in left.leaves) + tuple(
            replace(leaf, offset=leaf.offset + width + len(left_columns)) for leaf in right.leaves)
        keys = tuple((c.name, i) for i, c in enumerate(key_columns))
        return Relation(step, leaves, keys, viable, key_expressions, foreign_key)

    @staticmethod
    def _viable(join: ast.Join, left: Relation, right: Relation, equality: _Equality) -> tuple[tuple[str, str], ...]:
        """The columns the key of one equality may be selected as: none for a FULL OUTER join; else those of
        the inner join when joining on its key, then each side that is a column."""
        if join.join_type == "FULL":
            return ()
        found: list[tuple[str, str]] = []
        if len(left.leaves) > 1 and equality.left in left.key_expressions:
            found += [pair for candidates in left.viable for pair in candidates]
        for side in (equality.left, equality.right):
            if isinstance(side, ast.ColumnRef):
                found.append(_split(side.name, left.leaves + right.leaves))
        return tuple(dict.fromkeys(found))

    def _key_name(self, candidates: tuple[tuple[str, str], ...], taken: set[str]) -> str:
        if not candidates:
            name, suffix = SYNTHETIC_KEY, 0
            while name in taken:
                suffix += 1
                name = f"{SYNTHETIC_KEY}_{suffix}"
            return name
        chosen = next((pair for pair in candidates if pair in self.wanted), candidates[0])
        return joined_name(*chosen)


def _split(name: str, leaves: Sequence[Leaf]) -> tuple[str, str]:
    """(alias, column) of a rewritten column reference `ALIAS_COLUMN`."""
    for leaf in sorted(leaves, key=lambda leaf: -len(leaf.alias)):
        if name.startswith(leaf.alias + "_") and leaf.find(name[len(leaf.alias) + 1:]) is not None:
            return leaf.alias, name[len(leaf.alias) + 1:]
    raise AssertionError(name)


def _renamed(relation: Relation) -> tuple[Column, ...]:
    """A join input's columns as the join outputs them: a source's prefixed with its alias; all values."""
    if isinstance(relation.step, SourceStep):
        alias = relation.leftmost.alias
        return tuple(Column(joined_name(alias, c.name), c.type) for c in relation.step.columns)
    return tuple(Column(c.name, c.type) for c in relation.step.columns)


def source_columns(source: DataSource) -> tuple[Column, ...]:
    """A source's columns as its rows carry them: key, value and header columns, then the pseudo columns
    (the window bounds only over a windowed source)."""
    pseudo = [Column("ROWTIME", BIGINT), Column("ROWPARTITION", INTEGER), Column("ROWOFFSET", BIGINT)]
    if source.window is not None:
        pseudo += [Column(name, BIGINT) for name in WINDOW_BOUND_COLUMNS]
    return source.schema.columns + tuple(pseudo)


def star_columns(relation: Relation, source: str | None, partitioned: bool) -> list[str]:
    """The joined columns `*` (or `source.*`) selects: each source's key columns, window bounds (of a
    windowed source) and value columns (with PARTITION BY, as ksqlDB lays out the join's value: value columns,
    pseudo columns, then key columns), led by the synthetic key for an unqualified `*`."""
    names: list[str] = []
    if source is None and not partitioned and relation.viable and not any(relation.viable):
        names += [name for name, _ in relation.keys]
    for leaf in relation.leaves:
        if source is not None and leaf.alias != source:
            continue
        schema = leaf.source.schema
        bounds = [c for c in leaf.columns if c.name in WINDOW_BOUND_COLUMNS]  # a windowed source's key's
        ordered = list(schema.key) + bounds + [c for c in schema.columns if c.namespace is not Namespace.KEY]
        if partitioned:
            pseudo = [c for c in leaf.columns if c.name in PSEUDO_COLUMNS]
            ordered = [c for c in schema.columns if c.namespace is not Namespace.KEY] + pseudo + list(schema.key)
        names += [joined_name(leaf.alias, c.name) for c in ordered]
    return list(dict.fromkeys(names))


def window_bounds_used(query: ast.Query) -> str | None:
    """An unqualified window bound a windowed aggregation over a join selects, which ksqlDB cannot resolve."""
    for item in query.select:
        for node in ast.subexpressions(item.expr) if item.expr is not None else ():
            if isinstance(node, ast.ColumnRef) and node.source is None and node.name in WINDOW_BOUND_COLUMNS:
                return node.name
    return None


def key_missing_message(relation: Relation, sink_name: str, missing: Sequence[int]) -> str:
    """ksqlDB's message for a persistent join query whose projection leaves out the key columns at positions
    `missing`."""
    if relation.foreign_key:
        leaf = relation.leftmost
        keys = [f"`{leaf.source.schema.key[position].name}`" for position in missing]
        plural = "s" if len(keys) > 1 else ""
        return (f"Primary key column{plural} missing in projection. For foreign-key table-table joins, the "
                f"projection must include all primary key columns from the left input table (`{leaf.alias}`). "
                f"Missing column{plural}: {', '.join(keys)}.")
    candidates = [f"{alias}.{column}" for group in relation.viable for alias, column in group]
    if not candidates:
        name = relation.keys[0][0]
        return (f"Key missing from projection (ie, SELECT). See https://cnfl.io/2LV7ouS.\nThe query used to build "
                f"`{sink_name}` must include the join expression {name} in its projection (eg, SELECT {name}...).\n"
                f"{name} was added as a synthetic key column because the join criteria did not match any source "
                "column. This expression must be included in the projection and may be aliased.")
    plural = "s" if len(candidates) > 1 else ""
    return (f"The query used to build `{sink_name}` must include the join expression{plural} {_listed(candidates)} "
            f"in its projection (eg, SELECT {candidates[0]}...).")
