"""The planner: DDL statements -> validated data sources, queries -> typed logical plans."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from ksqlpy.errors import StatementError
from ksqlpy.functions.registry import FunctionRegistry
from ksqlpy.planning.aggregation import AggregationPlanner, uses_aggregation
from ksqlpy.planning.catalog import PSEUDO_COLUMNS, WINDOW_BOUND_COLUMNS, Catalog, DataSource, SerdeSpec
from ksqlpy.planning.expressions import (
    ExpressionTyper,
    InputRef,
    Scope,
    ScopeColumn,
    TypedExpr,
    render,
    same_expression,
)
from ksqlpy.planning.joins import (
    ColumnResolver,
    JoinPlanner,
    Leaf,
    Relation,
    contains_map,
    joined_sources,
    key_missing_message,
    source_columns,
    star_columns,
    window_bounds_used,
)
from ksqlpy.planning.naming import SelectNames
from ksqlpy.planning.plan import FilterStep, ProjectStep, QueryPlan, SourceStep, Step
from ksqlpy.schema import Column, LogicalSchema, Namespace
from ksqlpy.serialization.base import FormatOptions
from ksqlpy.serialization.formats import serde_for
from ksqlpy.serialization.windowed import WINDOW_KINDS, WindowInfo
from ksqlpy.syntax import ast
from ksqlpy.types import (
    BIGINT,
    BYTES,
    STRING,
    TIMESTAMP,
    ArrayType,
    MapType,
    SqlType,
    StructType,
)

HEADERS_TYPE = ArrayType(StructType((("KEY", STRING), ("VALUE", BYTES))))
_SOURCE_PROPERTIES = {
    "KAFKA_TOPIC",
    "VALUE_FORMAT",
    "KEY_FORMAT",
    "FORMAT",
    "PARTITIONS",
    "REPLICAS",
    "TIMESTAMP",
    "TIMESTAMP_FORMAT",
    "VALUE_DELIMITER",
    "KEY_DELIMITER",
    "WRAP_SINGLE_VALUE",
    "KEY_SCHEMA_ID",
    "VALUE_SCHEMA_ID",
    "KEY_SCHEMA_FULL_NAME",
    "VALUE_SCHEMA_FULL_NAME",
    "VALUE_AVRO_SCHEMA_FULL_NAME",
    "WINDOW_TYPE",
    "WINDOW_SIZE",
    "RETENTION_MS",
    "SOURCE_CONNECTOR",
}
# WITH properties that configure the key or value format, with the config name ksqlDB's checks report
_FORMAT_CONFIGS = {
    "VALUE_DELIMITER": ("VALUE", "delimiter"),
    "KEY_DELIMITER": ("KEY", "delimiter"),
    "VALUE_SCHEMA_FULL_NAME": ("VALUE", "fullSchemaName"),
    "VALUE_AVRO_SCHEMA_FULL_NAME": ("VALUE", "fullSchemaName"),
    "KEY_SCHEMA_FULL_NAME": ("KEY", "fullSchemaName"),
}
_FORMATS_WITH_CONFIG = {"delimiter": {"DELIMITED"}, "fullSchemaName": {"AVRO", "PROTOBUF", "JSON_SR"}}
DEFAULT_KEY_FORMAT_PROPERTY = "ksql.persistence.default.format.key"
DEFAULT_VALUE_FORMAT_PROPERTY = "ksql.persistence.default.format.value"
OUTPUT_TOPIC_PREFIX_PROPERTY = "ksql.output.topic.name.prefix"
WRAP_SINGLE_VALUES_PROPERTY = "ksql.persistence.wrap.single.values"
KNOWN_FORMATS = ("JSON", "DELIMITED", "KAFKA", "NONE", "AVRO", "JSON_SR", "PROTOBUF", "PROTOBUF_NOSR")


# --------------------------------------------------------------------------- DDL


def _check_known_properties(properties: Mapping[str, Any]) -> None:
    unknown = sorted(set(properties) - _SOURCE_PROPERTIES)
    if unknown:
        raise StatementError(f"Invalid config variable(s) in the WITH clause: {','.join(unknown)}")


def _delimiter(raw: Any, name: str) -> str:
    text = str(raw)
    special = {"TAB": "\t", "SPACE": " "}
    if text.upper() in special:
        return special[text.upper()]
    if text.strip() == "":
        raise StatementError(
            f"Failed to prepare statement: Configuration {name} is invalid: Delimiter cannot be empty, if you "
            "meant to have a tab or space for delimiter, please use the special values 'TAB' or 'SPACE'"
            "\nExample valid value: ';'"
        )
    if len(text) != 1:
        raise StatementError(
            f"Failed to prepare statement: Configuration {name} is invalid: Delimiter must be a single "
            f"character or TAB or SPACE\nExample valid value: ';'"
        )
    return text


def resolve_formats(
    properties: Mapping[str, Any], session: Mapping[str, Any], inherited: tuple[SerdeSpec, SerdeSpec] | None = None
) -> tuple[SerdeSpec, SerdeSpec]:
    """KEY_FORMAT / VALUE_FORMAT / FORMAT and the delimiter/wrapping options, with ksqlDB's defaults."""
    fmt = properties.get("FORMAT")
    if fmt is not None and "KEY_FORMAT" in properties:
        raise StatementError(
            "Cannot supply both 'KEY_FORMAT' and 'FORMAT' properties, as 'FORMAT' sets both key and value "
            "formats. Either use just 'FORMAT', or use 'KEY_FORMAT' and 'VALUE_FORMAT'."
        )
    if fmt is not None and "VALUE_FORMAT" in properties:
        raise StatementError(
            "Cannot supply both 'VALUE_FORMAT' and 'FORMAT' properties, as 'FORMAT' sets both key and value "
            "formats. Either use just 'FORMAT', or use 'KEY_FORMAT' and 'VALUE_FORMAT'."
        )
    key_format = properties.get("KEY_FORMAT", fmt)
    value_format = properties.get("VALUE_FORMAT", fmt)
    if key_format is None:
        key_format = inherited[0].format if inherited else session.get(DEFAULT_KEY_FORMAT_PROPERTY, "KAFKA")
    if value_format is None:
        value_format = inherited[1].format if inherited else session.get(DEFAULT_VALUE_FORMAT_PROPERTY)
    if value_format is None:
        raise StatementError(
            "Statement is missing the 'VALUE_FORMAT' property from the WITH clause. Either provide one or set a "
            "default via the 'ksql.persistence.default.format.value' config."
        )
    key_format, value_format = str(key_format).upper(), str(value_format).upper()
    for name in (key_format, value_format):
        if name not in KNOWN_FORMATS:
            raise StatementError(f"Unknown format: {name}")
    value_options = FormatOptions(
        delimiter=_delimiter(properties["VALUE_DELIMITER"], "VALUE_DELIMITER")
        if "VALUE_DELIMITER" in properties
        else (inherited[1].options.delimiter if inherited and inherited[1].format == value_format else ","),
        wrap_single_value=_wrap_single_value(properties, value_format, session),
    )
    key_options = FormatOptions(
        delimiter=_delimiter(properties["KEY_DELIMITER"], "KEY_DELIMITER") if "KEY_DELIMITER" in properties else ",",
        wrap_single_value=False,
        is_key=True,
    )
    for side, fmt_name in (("VALUE", value_format), ("KEY", key_format)):
        unsupported = sorted(
            {config for prop, (prop_side, config) in _FORMAT_CONFIGS.items()
             if prop in properties and prop_side == side and fmt_name not in _FORMATS_WITH_CONFIG[config]}
        )
        if unsupported:
            raise StatementError(f"{fmt_name} does not support the following configs: [{', '.join(unsupported)}]")
    return SerdeSpec(key_format, key_options), SerdeSpec(value_format, value_options)


# Kafka's rule for topic names: 1 to 249 of these characters, and neither "." nor "..".
_TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]{1,249}")
_MAX_PARTITIONS = 2**31 - 1


def topic_property(properties: Mapping[str, Any], default: str | None = None) -> str:
    """The KAFKA_TOPIC property (or the default topic name), checked to be a name Kafka accepts."""
    topic = properties.get("KAFKA_TOPIC", default)
    if not isinstance(topic, str) or not _TOPIC_NAME.fullmatch(topic) or topic in (".", ".."):
        raise StatementError(f"Invalid topic name {str(topic)[:260]!r}: a Kafka topic name has 1 to 249 characters, "
                             "each a letter, a digit, '.', '_' or '-'")
    return topic


def partitions_property(properties: Mapping[str, Any], default: int) -> int:
    """The PARTITIONS property (or `default`): a whole number of partitions, written bare or quoted."""
    raw = properties.get("PARTITIONS", default)
    text = str(raw).strip()
    count = int(text) if not isinstance(raw, (bool, float)) and text.isdigit() and len(text) <= 10 else 0
    if not 1 <= count <= _MAX_PARTITIONS:
        raise StatementError(f"Invalid value for PARTITIONS: {text[:40]}: a topic has 1 to {_MAX_PARTITIONS} "
                             "partitions")
    return count


def check_wrap_single_value(properties: Mapping[str, Any], schema: LogicalSchema) -> None:
    """An explicit WRAP_SINGLE_VALUE only makes sense when the value has exactly one column."""
    if "WRAP_SINGLE_VALUE" in properties and len(schema.value) != 1:
        raise StatementError("'WRAP_SINGLE_VALUE' is only valid for single-field value schemas")


def _wrap_single_value(properties: Mapping[str, Any], value_format: str, session: Mapping[str, Any]) -> bool:
    """WRAP_SINGLE_VALUE from the WITH clause, else the session default; never inherited from a source."""
    if "WRAP_SINGLE_VALUE" not in properties:
        default = session.get(WRAP_SINGLE_VALUES_PROPERTY)
        if default is None or value_format not in ("JSON",):
            return True
        return str(default).lower() == "true"
    raw = properties["WRAP_SINGLE_VALUE"]
    wrap = raw if isinstance(raw, bool) else str(raw).lower() == "true"
    if value_format in ("DELIMITED", "KAFKA") and wrap:
        raise StatementError(f"Format '{value_format}' does not support 'WRAP_SINGLE_VALUE' set to 'true'.")
    return wrap


def resolve_type(t: SqlType, catalog: Catalog) -> SqlType:
    """Replace user type names (CREATE TYPE) with their definitions."""
    if isinstance(t, ast.NamedType):
        found = catalog.types.get(t.name)
        if found is None:
            raise StatementError(f"Unknown type: {t.name}")
        return found
    if isinstance(t, ArrayType):
        return ArrayType(resolve_type(t.element, catalog))
    if isinstance(t, MapType):
        return MapType(resolve_type(t.key, catalog), resolve_type(t.value, catalog))
    if isinstance(t, StructType):
        return StructType(tuple((n, resolve_type(ft, catalog)) for n, ft in t.fields))
    return t


def validate_serdes(schema: LogicalSchema, key: SerdeSpec, value: SerdeSpec) -> None:
    """Fail at statement time when a format cannot carry the columns given to it."""
    for column in schema.key:
        if contains_map(column.type):
            raise StatementError(
                "Map keys, including types that contain maps, are not supported as they may lead to unexpected "
                f"behavior due to inconsistent serialization. Key column name: `{column.name}`. Column type: "
                f"{column.type}. See https://github.com/confluentinc/ksql/issues/6621 for more."
            )
    try:
        serde_for(key.format if schema.key else "NONE", schema.key, key.options)
    except StatementError as error:
        if key.format in ("JSON", "KAFKA", "DELIMITED", "NONE"):
            columns = ", ".join(f"{c}" for c in schema.key)
            raise StatementError(
                f"Key format does not support schema.\nformat: {key.format}\nschema: Persistence{{columns=[{columns}], "
                f"features=[]}}\nreason: {error}"
            ) from error
        raise
    serde_for(value.format, schema.value, value.options)


def build_source(statement: ast.CreateSource, catalog: Catalog, session: Mapping[str, Any]) -> DataSource:
    props = statement.properties
    _check_known_properties(props)
    if "KAFKA_TOPIC" not in props:
        raise StatementError("Missing required property \"KAFKA_TOPIC\" which has no default value.")
    window = window_property(props)
    if statement.or_replace and statement.is_source:
        raise StatementError(
            f"Cannot add {statement.kind.lower()} '{statement.name}': CREATE OR REPLACE is not supported on "
            f"source {statement.kind.lower()}s."
        )
    key_spec, value_spec = resolve_formats(props, session)
    columns: list[Column] = []
    seen: set[str] = set()
    for definition in statement.columns:
        check_column_name(definition.name)
        if definition.name in seen:
            raise StatementError(f"Duplicate column names: {definition.name}")
        seen.add(definition.name)
        if definition.primary_key and statement.kind == "STREAM":
            raise StatementError(
                f"{_located(definition.pos)}Column `{definition.name}` is a 'PRIMARY KEY' column: please use 'KEY' "
                "for streams."
            )
        if definition.key and not definition.primary_key and statement.kind == "TABLE":
            raise StatementError(
                f"{_located(definition.pos)}Column `{definition.name}` is a 'KEY' column: please use 'PRIMARY KEY' "
                "for tables."
            )
        column_type = resolve_type(definition.type, catalog)
        namespace = Namespace.VALUE
        if definition.key or definition.primary_key:
            namespace = Namespace.KEY
        elif definition.headers:
            namespace = Namespace.HEADERS
            _check_header_type(definition, column_type)
        columns.append(Column(definition.name, column_type, namespace, definition.header_key))
    if statement.kind == "TABLE" and not any(c.namespace is Namespace.KEY for c in columns):
        raise StatementError("Tables require a PRIMARY KEY. Please define the PRIMARY KEY.")
    # key columns first, then value, then headers: the order every batch follows
    ordered = sorted(columns, key=lambda c: {Namespace.KEY: 0, Namespace.VALUE: 1, Namespace.HEADERS: 2}[c.namespace])
    schema = LogicalSchema.of(ordered)
    if window is not None and not schema.key:
        raise StatementError("Windowed sources require a key column.")
    check_wrap_single_value(props, schema)
    validate_serdes(schema, key_spec, value_spec)
    timestamp_column = _timestamp_column(props, schema)
    partitions = partitions_property(props, 1)
    return DataSource(
        name=statement.name,
        kind=statement.kind,
        schema=schema,
        topic=topic_property(props),
        key=key_spec,
        value=value_spec,
        timestamp_column=timestamp_column,
        timestamp_format=props.get("TIMESTAMP_FORMAT"),
        partitions=partitions,
        statement_text=statement.text,
        is_source=statement.is_source,
        window=window,
    )


# java.util.concurrent.TimeUnit, whose names ksqlDB's WINDOW_SIZE accepts (singular too), in nanoseconds
_DURATION_UNIT_NANOS = {
    "NANOSECONDS": 1,
    "MICROSECONDS": 1_000,
    "MILLISECONDS": 1_000_000,
    "SECONDS": 1_000_000_000,
    "MINUTES": 60_000_000_000,
    "HOURS": 3_600_000_000_000,
    "DAYS": 86_400_000_000_000,
}
_JAVA_LONG = re.compile(r"[+-]?[0-9]+")
_JAVA_LONG_MIN, _JAVA_LONG_MAX = -(2**63), 2**63 - 1


def window_property(properties: Mapping[str, Any]) -> WindowInfo | None:
    """WINDOW_TYPE and WINDOW_SIZE: how the keys of a source over an already windowed topic are windowed."""
    raw_type = properties.get("WINDOW_TYPE")
    kind: str | None = None
    if raw_type is not None:
        kind = str(raw_type).strip().upper()
        if kind not in WINDOW_KINDS:
            raise StatementError(
                f"Error in WITH clause property 'WINDOW_TYPE': Unknown window type: '{str(raw_type).strip()}' "
                f"\nValid values are: {', '.join(WINDOW_KINDS)}"
            )
    raw_size = properties.get("WINDOW_SIZE")
    size_ms = None if raw_size is None else _window_size_ms(str(raw_size).strip())
    if kind is not None and kind != "SESSION" and size_ms is None:
        raise StatementError(
            f"{kind} windows require 'WINDOW_SIZE' to be provided in the WITH clause. "
            "For example: 'WINDOW_SIZE'='10 SECONDS'"
        )
    if (kind is None or kind == "SESSION") and size_ms is not None:
        # ksqlDB words a WINDOW_SIZE without any WINDOW_TYPE the same way
        raise StatementError("'WINDOW_SIZE' should not be set for SESSION windows.")
    return None if kind is None else WindowInfo(kind, size_ms)


def _window_size_ms(text: str) -> int:
    """A WINDOW_SIZE such as '10 SECONDS' in milliseconds, parsed as ksqlDB's DurationParser does."""
    try:
        parts = re.split(r"\s", text)
        while parts and not parts[-1]:  # Java's String.split drops trailing empty strings
            parts.pop()
        if len(parts) != 2:
            raise ValueError(f"Expected 2 tokens, got: {len(parts)}")
        amount_text, unit_text = parts
        if not _JAVA_LONG.fullmatch(amount_text) or not _JAVA_LONG_MIN <= int(amount_text) <= _JAVA_LONG_MAX:
            raise ValueError(f"Not numeric: '{amount_text}'")
        unit = unit_text.upper()
        nanos_per_unit = _DURATION_UNIT_NANOS.get(unit if unit.endswith("S") else unit + "S")
        if nanos_per_unit is None:
            raise ValueError(
                f"Unknown time unit: '{unit}'\nSupported time units are: {', '.join(_DURATION_UNIT_NANOS)}"
            )
    except ValueError as error:
        raise StatementError(
            f"Error in WITH clause property 'WINDOW_SIZE': Invalid duration: '{text}'. {error}"
            "\nExample valid value: '10 SECONDS'"
        ) from error
    nanos = min(max(int(amount_text) * nanos_per_unit, _JAVA_LONG_MIN), _JAVA_LONG_MAX)  # TimeUnit.toNanos saturates
    return nanos // 1_000_000


def _located(pos: ast.Position | None) -> str:
    """The prefix ksqlDB puts on errors it finds while building the statement from its syntax tree."""
    return f"Line: {pos.line}, Col: {pos.column}: " if pos is not None else ""


def check_column_name(name: str) -> None:
    if name in PSEUDO_COLUMNS or name in WINDOW_BOUND_COLUMNS:
        raise StatementError(f"'{name}' is a reserved column name. You cannot use it as a name for a column.")


def _check_header_type(definition: ast.ColumnDef, column_type: SqlType) -> None:
    if definition.header_key is not None:
        if column_type != BYTES:
            raise StatementError(
                f"Invalid type for HEADER('{definition.header_key}') column: expected BYTES, got {column_type}"
            )
    elif column_type != HEADERS_TYPE:
        raise StatementError(f"Invalid type for HEADERS column: expected {HEADERS_TYPE}, got {column_type}")


def _timestamp_column(props: Mapping[str, Any], schema: LogicalSchema) -> str | None:
    return timestamp_column(props, {c.name: c.type for c in schema})


def timestamp_column(props: Mapping[str, Any], column_types: Mapping[str, SqlType]) -> str | None:
    """The column named by the TIMESTAMP property, checked to exist and to hold a timestamp."""
    raw = props.get("TIMESTAMP")
    if raw is None:
        return None
    name = str(raw).upper() if not str(raw).startswith("`") else str(raw).strip("`")
    column_type = column_types.get(name)
    if column_type is None:
        raise StatementError(f"The TIMESTAMP column set in the WITH clause does not exist in the schema: '{name}'")
    if column_type not in (BIGINT, TIMESTAMP) and not (column_type == STRING and "TIMESTAMP_FORMAT" in props):
        raise StatementError(
            f"Timestamp column, `{name}`, should be LONG(INT64), TIMESTAMP, or a String with a timestamp_format "
            "specified."
        )
    if column_type == STRING:
        _check_timestamp_format(props["TIMESTAMP_FORMAT"])
    return name


def _check_timestamp_format(pattern: Any) -> None:
    """A bad pattern is the statement's error, rather than every record's."""
    from ksqlpy.functions.builtins.datetime import date_time_pattern

    try:
        if not isinstance(pattern, str) or not pattern:
            raise ValueError("expected a date-time pattern such as 'yyyy-MM-dd HH:mm:ss'")
        date_time_pattern(pattern)
    except ValueError as error:
        raise StatementError(f"Invalid TIMESTAMP_FORMAT {pattern!r}: {error}") from error


# --------------------------------------------------------------------------- queries


class QueryPlanner:
    def __init__(self, catalog: Catalog, registry: FunctionRegistry, session: Mapping[str, Any]) -> None:
        self.catalog = catalog
        self.registry = registry
        self.session = session

    def plan(
        self,
        query: ast.Query,
        sink_name: str | None = None,
        sink_properties: Mapping[str, Any] | None = None,
        sink_kind: str | None = None,
    ) -> QueryPlan:
        """Plan a query; `sink_name` is the stream or table (`sink_kind`) a persistent query writes to (None
        for transient ones) and `sink_properties` its WITH clause, checked against the projection."""
        if sink_name is None and query.emit is not None and not query.group_by and query.window is None \
                and query.having is None and uses_aggregation(query, self.registry):
            # a push query's aggregates without GROUP BY aggregate its whole input, as one group
            query = dataclasses.replace(query, group_by=(ast.Literal("", STRING),))
        if isinstance(query.from_, ast.Join):
            return self._plan_join(query, sink_name, sink_properties or {}, sink_kind)
        assert isinstance(query.from_, ast.SourceRef)
        source = self.catalog.find(query.from_.name)
        if source is None:
            raise StatementError(f"{query.from_.name} does not exist.")
        columns = source_columns(source)
        aliases = [source.name] + ([query.from_.alias] if query.from_.alias else [])
        scope = Scope(
            [ScopeColumn(i, c.name, c.type, a) for a in aliases for i, c in enumerate(columns)],
            aliases,
        )
        step: Step = SourceStep(source, columns)
        if query.where is not None:
            typer = ExpressionTyper(Scope(scope.columns, aliases), self.registry, "WHERE")
            step = FilterStep(step, _where(typer, query.where))
        if uses_aggregation(query, self.registry):
            root: Step = AggregationPlanner(
                query, step, scope, self.registry, source.name, [c.name for c in source.schema.key], sink_name,
                sink_kind, source.value.format,
            ).plan()
            timestamp_column(sink_properties or {}, {c.name: c.type for c in root.columns})
        else:
            if query.emit == "FINAL":
                raise StatementError("EMIT FINAL is only supported for windowed aggregations.")
            if query.partition_by and source.kind == "TABLE":
                raise StatementError(f"PARTITION BY is not supported on tables: {source.name} is a table. "
                                     "Use GROUP BY to re-key a table.")
            typer = ExpressionTyper(scope, self.registry)
            root = self._project(query, step, source, columns, typer, sink_name, sink_properties or {})
        return QueryPlan(root=root, key_changed=bool(query.partition_by), limit=query.limit)

    def _plan_join(
        self, query: ast.Query, sink_name: str | None, sink_properties: Mapping[str, Any], sink_kind: str | None,
    ) -> QueryPlan:
        """A query over joined sources: the join tree, then its clauses over the joined columns."""
        sources = joined_sources(self.catalog, query.from_)
        resolver = ColumnResolver([Leaf(alias, source, source_columns(source), 0) for alias, source in sources])
        joins = JoinPlanner(self.registry, _selected_columns(query, resolver))
        relation = joins.plan(query.from_, dict(sources))
        resolver = ColumnResolver(relation.leaves)
        scope = relation.scope()
        rewritten = _joined_query(query, relation, resolver)
        step: Step = relation.step
        if rewritten.where is not None:
            step = FilterStep(step, _where(ExpressionTyper(scope, self.registry, "WHERE"), rewritten.where))
        first = relation.leftmost
        if uses_aggregation(rewritten, self.registry):
            bound = window_bounds_used(rewritten) if rewritten.window is not None else None
            if bound is not None:
                raise StatementError(f"SELECT column '{bound}' cannot be resolved.")
            root: Step = AggregationPlanner(
                rewritten, step, scope, self.registry, first.alias, [name for name, _ in relation.keys], sink_name,
                sink_kind, first.source.value.format,
            ).plan()
            timestamp_column(sink_properties, {c.name: c.type for c in root.columns})
        else:
            if query.emit == "FINAL":
                raise StatementError("EMIT FINAL is only supported for windowed aggregations.")
            root = self._project_join(rewritten, step, relation, scope, sink_name, sink_properties)
        return QueryPlan(root=root, key_changed=bool(query.partition_by), limit=query.limit)

    def _project_join(
        self,
        query: ast.Query,
        input_step: Step,
        relation: Relation,
        scope: Scope,
        sink_name: str | None,
        sink_properties: Mapping[str, Any],
    ) -> ProjectStep:
        typer = ExpressionTyper(scope, self.registry)
        partition_typer = ExpressionTyper(scope, self.registry, "PARTITION BY")
        partition_exprs = [partition_typer.type(p) for p in query.partition_by]
        names = SelectNames(query.select, (c.name for c in relation.step.columns), persistent=sink_name is not None)
        items: list[tuple[str, TypedExpr, ast.Expr | None]] = []
        for item in query.select:  # stars are expanded by now
            items += self._selected(typer, names, item)
        timestamp_column(sink_properties, {name: typed.type for name, typed, _ in items})
        if query.partition_by:
            keys, used = partition_keys(query, items, partition_exprs, sink_name, None)
        else:
            keys, used = _join_keys(relation, items, sink_name)
        return projection(input_step, items, keys, used)

    def _project(
        self,
        query: ast.Query,
        input_step: Step,
        source: DataSource,
        columns: tuple[Column, ...],
        typer: ExpressionTyper,
        sink_name: str | None,
        sink_properties: Mapping[str, Any],
    ) -> ProjectStep:
        partition_typer = ExpressionTyper(typer.scope, self.registry, "PARTITION BY")
        partition_exprs = [partition_typer.type(p) for p in query.partition_by]
        if len(query.partition_by) > 1 and any(_is_null_literal(p) for p in query.partition_by):
            raise StatementError("Cannot PARTITION BY multiple columns including NULL")
        star_columns = list(columns[: len(source.schema.columns)])
        if source.window is not None and sink_name is None:
            # as ksqlDB shows a windowed source's rows: the key, then its window bounds, then the values
            width = len(source.schema.key)
            bounds = [c for c in columns if c.name in WINDOW_BOUND_COLUMNS]
            star_columns = star_columns[:width] + bounds + star_columns[width:]
        if query.partition_by:
            # PARTITION BY re-keys before projecting: the old key columns move to the end of the value
            star_columns.sort(key=lambda c: c.namespace is Namespace.KEY)
        names = SelectNames(query.select, (c.name for c in columns), persistent=sink_name is not None)
        items: list[tuple[str, TypedExpr, ast.Expr | None]] = []
        for item in query.select:
            if item.is_star:
                if item.star_source is not None:
                    typer.scope.check_source(item.star_source)
                for column in star_columns:
                    node = ast.ColumnRef(column.name)
                    items.append((column.name, typer.type(node), node))
                continue
            items += self._selected(typer, names, item)
        # ksqlDB checks the sink's timestamp column before which columns form the key
        timestamp_column(sink_properties, {name: typed.type for name, typed, _ in items})
        return self._assign_keys(query, input_step, source, items, partition_exprs, sink_name)

    def _selected(
        self, typer: ExpressionTyper, names: SelectNames, item: ast.SelectItem,
    ) -> list[tuple[str, TypedExpr, ast.Expr | None]]:
        """The projected columns of one select item other than `*`: (name, expression, node) each."""
        assert item.expr is not None
        if isinstance(item.expr, ast.Dereference) and item.expr.field == "*":
            return _struct_fields(typer, item.expr.base)
        typed = self._select_expression(typer, item.expr)
        return [(names.name(item, typed), typed, item.expr)]

    @staticmethod
    def _select_expression(typer: ExpressionTyper, expr: ast.Expr) -> TypedExpr:
        try:
            if isinstance(expr, ast.FunctionCall) and typer.registry.kind_of(expr.name) == "table":
                return typer.table_call(expr)
            return typer.type(expr)
        except StatementError as error:
            if str(error).startswith("Cast of"):
                raise StatementError(f"Invalid Select: {error}") from error
            raise

    def _assign_keys(
        self,
        query: ast.Query,
        input_step: Step,
        source: DataSource,
        items: list[tuple[str, TypedExpr, ast.Expr | None]],
        partition_exprs: list[TypedExpr],
        sink_name: str | None,
    ) -> ProjectStep:
        """Decide which projected columns form the output key: the PARTITION BY expressions, else the source key."""
        if query.partition_by:
            keys, used = partition_keys(query, items, partition_exprs, sink_name, source.name)
            return projection(input_step, items, keys, used)
        keys = []
        used = set()
        source_keys = [c.name for c in source.schema.key]
        for key_name in source_keys:
            match = next(
                (
                    i
                    for i, (_, _, node) in enumerate(items)
                    if isinstance(node, ast.ColumnRef) and node.name == key_name and i not in used
                ),
                None,
            )
            if match is None:
                if sink_name is None:
                    continue
                plural = "s" if len(source_keys) > 1 else ""
                raise StatementError(
                    f"The query used to build `{sink_name}` must include the key column{plural} "
                    f"{' and '.join(source_keys)} in its projection (eg, SELECT {', '.join(source_keys)}...)."
                )
            used.add(match)
            keys.append((items[match][0], items[match][1]))
            aliases = [n for n, _, node in items if isinstance(node, ast.ColumnRef) and node.name == key_name]
            if sink_name is not None and len(aliases) > 1:
                raise StatementError(
                    f"The projection contains a key column (`{key_name}`) more than once, aliased as: "
                    f"{' and '.join(aliases)}."
                )
        # ksqlDB answers a transient query's columns in the order they are selected
        return projection(input_step, items, keys, used, select_order=sink_name is None)


def partition_keys(
    query: ast.Query,
    items: list[tuple[str, TypedExpr, ast.Expr | None]],
    partition_exprs: list[TypedExpr],
    sink_name: str | None,
    qualifier: str | None,
) -> tuple[list[tuple[str, TypedExpr]], set[int]]:
    """The PARTITION BY expressions as the output key: (name, expression) each, and the projected items
    they are (used up as key columns). `qualifier` qualifies column names in messages."""
    keys: list[tuple[str, TypedExpr]] = []
    used: set[int] = set()
    missing: list[str] = []
    for position, (typed, node) in enumerate(zip(partition_exprs, query.partition_by, strict=True)):
        if _is_null_literal(node):
            continue
        matches = [i for i, item in enumerate(items) if same_expression(item[1], typed) and i not in used]
        name = node.name if isinstance(node, ast.ColumnRef) else f"KSQL_COL_{position}"
        if not matches:
            missing.append(render(node, qualifier))
            keys.append((name, typed))
            continue
        if sink_name is not None and len(matches) > 1:
            shown = name if isinstance(node, ast.ColumnRef) else items[matches[0]][0]
            raise StatementError(
                f"The projection contains a key column (`{shown}`) more than once, aliased as: "
                f"{' and '.join(items[i][0] for i in matches)}."
            )
        used.add(matches[0])
        keys.append((items[matches[0]][0], typed))
    # `SELECT *` takes the partitioning expressions into the key by itself
    if missing and sink_name is not None and not any(item.is_star for item in query.select):
        plural = "s" if len(missing) > 1 else ""
        raise StatementError(
            f"The query used to build `{sink_name}` must include the partitioning expression{plural} "
            f"{' and '.join(missing)} in its projection (eg, SELECT {', '.join(missing)}...)."
        )
    return keys, used


def projection(
    input_step: Step,
    items: list[tuple[str, TypedExpr, ast.Expr | None]],
    keys: list[tuple[str, TypedExpr]],
    used: set[int],
    select_order: bool = False,
) -> ProjectStep:
    """The final select: the key columns, then the projected items not used as keys; or, with
    `select_order` (a transient query's rows, whose keys are all projected items), the items as selected,
    the key columns among them."""
    if select_order:
        selected = [(name, typed) for name, typed, _ in items]
        columns = [Column(n, t.type, Namespace.KEY if i in used else Namespace.VALUE)
                   for i, (n, t) in enumerate(selected)]
    else:
        selected = keys + [(name, typed) for i, (name, typed, _) in enumerate(items) if i not in used]
        columns = [Column(n, t.type, Namespace.KEY if i < len(keys) else Namespace.VALUE)
                   for i, (n, t) in enumerate(selected)]
    names = [c.name for c in columns]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise StatementError(f"Duplicate column names: {', '.join(duplicates)}")
    return ProjectStep(input_step, tuple(t for _, t in selected), tuple(columns))


def _selected_columns(query: ast.Query, resolver: ColumnResolver) -> list[tuple[str, str]]:
    """The (alias, column) pairs the projection selects as they are, stars included, in order."""
    found: list[tuple[str, str]] = []
    for item in query.select:
        if item.is_star:
            found += [(leaf.alias, c.name) for leaf in resolver.leaves for c in leaf.columns
                      if item.star_source in (None, leaf.alias)]
        elif isinstance(item.expr, ast.ColumnRef):
            try:
                leaf = resolver.resolve(item.expr, "SELECT")
            except StatementError:
                continue  # reported when the projection is planned, after the join's own checks
            if leaf is not None:
                found.append((leaf.alias, item.expr.name))
    return found


def _joined_query(query: ast.Query, relation: Relation, resolver: ColumnResolver) -> ast.Query:
    """`query` over the joined columns: its column references renamed to them, stars expanded, and a
    selected column named as ksqlDB names it (its own name where no other source shares it)."""
    select: list[ast.SelectItem] = []
    for item in query.select:
        if item.is_star:
            if item.star_source is not None:
                resolver.check_source(item.star_source)
            for name in star_columns(relation, item.star_source, bool(query.partition_by)):
                select.append(ast.SelectItem(ast.ColumnRef(name), name))
            continue
        assert item.expr is not None
        alias = item.alias
        if isinstance(item.expr, ast.ColumnRef):
            if alias is not None and alias in PSEUDO_COLUMNS + WINDOW_BOUND_COLUMNS:
                raise StatementError(f"Reserved column name in select: `{alias}`. Please remove or alias the column.")
            alias = alias or resolver.default_name(item.expr)
        select.append(ast.SelectItem(resolver.rewrite(item.expr, "SELECT"), alias, None, item.pos))

    def clause(expr: ast.Expr | None, name: str) -> ast.Expr | None:
        return None if expr is None else resolver.rewrite(expr, name)

    return dataclasses.replace(
        query,
        select=tuple(select),
        where=clause(query.where, "WHERE"),
        group_by=tuple(resolver.rewrite(e, "GROUP BY") for e in query.group_by),
        partition_by=tuple(resolver.rewrite(e, "PARTITION BY") for e in query.partition_by),
        having=clause(query.having, "HAVING"),
    )


def _join_keys(
    relation: Relation, items: list[tuple[str, TypedExpr, ast.Expr | None]], sink_name: str | None,
) -> tuple[list[tuple[str, TypedExpr]], set[int]]:
    """The join's key columns as the projection selects them; a persistent query must select each, once."""
    keys: list[tuple[str, TypedExpr]] = []
    used: set[int] = set()
    missing: list[int] = []
    for position, (key_name, index) in enumerate(relation.keys):
        matches = [i for i, (_, typed, _) in enumerate(items)
                   if isinstance(typed, InputRef) and typed.index == index and i not in used]
        if not matches:
            missing.append(position)
            continue
        if sink_name is not None and len(matches) > 1:
            raise StatementError(f"The projection contains a key column (`{key_name}`) more than once, aliased as: "
                                 f"{' and '.join(sorted(items[i][0] for i in matches))}.")
        used.add(matches[0])
        keys.append((items[matches[0]][0], items[matches[0]][1]))
    if missing and sink_name is not None:
        raise StatementError(key_missing_message(relation, sink_name, missing))
    return keys, used


def _struct_fields(typer: ExpressionTyper, base: ast.Expr) -> list[tuple[str, TypedExpr, ast.Expr | None]]:
    """`base->*`: one column per field of a struct, named after the field."""
    struct = typer.type(base)
    if not isinstance(struct.type, StructType):
        raise StatementError(f"Expected STRUCT type for {render(base)}->*, got {struct.type}")
    fields: list[tuple[str, TypedExpr, ast.Expr | None]] = []
    for name, _ in struct.type.fields:
        node = ast.Dereference(base, name)
        fields.append((name, typer.type(node), node))
    return fields


def _is_null_literal(node: ast.Expr) -> bool:
    return isinstance(node, ast.Literal) and node.value is None


def _where(typer: ExpressionTyper, where: ast.Expr) -> TypedExpr:
    try:
        return typer.type_boolean(where, "WHERE")
    except StatementError as error:
        message = str(error)
        if message.startswith("Type error in WHERE"):
            raise
        raise StatementError(f"Invalid Predicate: {message}") from error
