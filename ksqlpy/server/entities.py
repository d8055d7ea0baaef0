"""The entities `POST /ksql` answers with, one per statement, as ksqlDB shapes them: each tagged `@type` and
carrying its `statementText` and `warnings`. A statement that changes the metastore answers `currentStatus`
with the command's id (`stream/`NAME`/create`), status and sequence number; listings and descriptions answer
their own entity, built from the engine's catalog rather than from the text the shell prints. INSERT VALUES
answers no entity at all, as in ksqlDB."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ksqlpy.engine import PersistentQuery, StatementResult
from ksqlpy.functions.registry import Overload
from ksqlpy.planning.catalog import DataSource
from ksqlpy.planning.plan import QueryPlan
from ksqlpy.runtime.app import status_text
from ksqlpy.schema import Column, Namespace
from ksqlpy.server.service import KsqlService
from ksqlpy.syntax import ast
from ksqlpy.types import ArrayType, DecimalType, MapType, SqlType, StructType

Entity = dict[str, Any]


@dataclass
class EntityContext:
    """What building an entity needs beyond the statement and its result."""

    service: KsqlService
    host: str  # this server as ksqlDB names hosts: host:port
    properties: Mapping[str, Any]  # the request's property overrides
    next_sequence: Callable[[], int]  # numbers the commands (statements that change the metastore)


def entity_for(statement: ast.Statement, result: StatementResult, context: EntityContext) -> Entity | None:
    """The entity answering one executed statement, or None for a statement ksqlDB answers without one."""
    if isinstance(statement, ast.InsertValues):
        return None
    build = _BUILDERS.get(type(statement), _current_status)
    entity = build(statement, result, context)
    return {"@type": entity.pop("@type"), "statementText": statement_text(statement), **entity, "warnings": []}


def statement_text(statement: ast.Statement) -> str:
    """A statement's text as ksqlDB echoes it: as written, with its terminating semicolon."""
    text = getattr(statement, "text", "").strip()
    return text if text.endswith(";") else f"{text};"


def command_id(statement: ast.Statement) -> str:
    """ksqlDB's command id: `<entity>/<name>/<action>` (TERMINATE names the query id as it is)."""
    match statement:
        case ast.CreateSource() | ast.CreateAsSelect():
            return f"{statement.kind.lower()}/`{statement.name}`/create"
        case ast.DropSource():
            return f"{statement.kind.lower()}/`{statement.name}`/drop"
        case ast.AlterSource():
            return f"{statement.kind.lower()}/`{statement.name}`/alter"
        case ast.InsertInto():
            return f"stream/`{statement.target}`/create"
        case ast.Terminate():
            return f"terminate/{statement.query_id or 'ALL'}/execute"
        case ast.CreateType() | ast.DropType():
            return f"type/`{statement.name}`/{'create' if isinstance(statement, ast.CreateType) else 'drop'}"
    return f"statement/`{type(statement).__name__}`/execute"


def _current_status(statement: ast.Statement, result: StatementResult, context: EntityContext) -> Entity:
    status: Entity = {"status": "SUCCESS", "message": result.message, "queryId": result.query_id}
    return {"@type": "currentStatus", "commandId": command_id(statement), "commandStatus": status,
            "commandSequenceNumber": context.next_sequence()}


# -- schemas


def schema_info(sql_type: SqlType) -> Entity:
    """A SQL type as ksqlDB's SchemaInfo: its type name, a struct's fields, an array's or map's member schema."""
    info: Entity = {"type": type_name(sql_type), "fields": None, "memberSchema": None}
    match sql_type:
        case StructType():
            info["fields"] = [{"name": name, "schema": schema_info(member)} for name, member in sql_type.fields]
        case ArrayType():
            info["memberSchema"] = schema_info(sql_type.element)
        case MapType():
            info["memberSchema"] = schema_info(sql_type.value)
        case DecimalType():
            info["parameters"] = {"precision": sql_type.precision, "scale": sql_type.scale}
    return info


def type_name(sql_type: SqlType) -> str:
    return str(sql_type).split("<", 1)[0].split("(", 1)[0]


def field_info(column: Column) -> Entity:
    """A column as ksqlDB's FieldInfo: key and header columns say so in `type`."""
    info: Entity = {"name": column.name, "schema": schema_info(column.type)}
    if column.namespace is Namespace.KEY:
        info["type"] = "KEY"
    elif column.namespace is Namespace.HEADERS:
        info["type"] = "HEADER"
        if column.header_key is not None:
            info["headerKey"] = column.header_key
    return info


# -- sources and queries


def source_summary(source: DataSource) -> Entity:
    """A stream or table as SHOW STREAMS / SHOW TABLES lists it."""
    return {"type": source.kind, "name": source.name, "topic": source.topic, "keyFormat": source.key.format,
            "valueFormat": source.value.format, "isWindowed": source.is_windowed}


def query_state(query: PersistentQuery, context: EntityContext) -> str:
    status = context.service.query_status().get(query.query_id)
    return query.state if status is None else status.state


def running_query(query: PersistentQuery, context: EntityContext) -> Entity:
    """A persistent query as SHOW QUERIES and a source description's read/write queries list it."""
    state = query_state(query, context)
    return {"queryString": query.statement_text, "sinks": [query.sink.name], "sinkKafkaTopics": [query.sink.topic],
            "id": query.query_id, "statusCount": {state: 1}, "queryType": "PERSISTENT", "state": state}


def _queries(ids: Iterable[str], context: EntityContext) -> list[PersistentQuery]:
    queries = context.service.engine.queries
    return [queries[query_id] for query_id in sorted(ids) if query_id in queries]


def source_description(source: DataSource, extended: bool, context: EntityContext) -> Entity:
    """A stream or table as DESCRIBE answers it (ksqlDB's SourceDescription)."""
    statistics = ""
    if extended:
        statuses = context.service.query_status()
        statistics = "\n".join(f"{query_id}: {status_text(statuses[query_id])}"
                               for query_id in sorted(source.writers) if query_id in statuses)
    dependents = {query.sink.name for query in _queries(source.readers, context)}
    return {
        "name": source.name,
        "windowType": source.window.kind if source.window is not None else None,
        "readQueries": [running_query(q, context) for q in _queries(source.readers, context)],
        "writeQueries": [running_query(q, context) for q in _queries(source.writers, context)],
        "fields": [field_info(column) for column in source.schema.columns],
        "type": source.kind,
        "timestamp": source.timestamp_column or "",
        "statistics": statistics,
        "errorStats": "",
        "extended": extended,
        "keyFormat": source.key.format,
        "valueFormat": source.value.format,
        "topic": source.topic,
        "partitions": source.partitions,
        "replication": 1,
        "statement": source.statement_text,
        "queryOffsetSummaries": [],
        "sourceConstraints": sorted(dependents - {source.name}),
    }


def query_description(query_id: str, plan: QueryPlan, statement: str, state: str | None,
                      context: EntityContext) -> Entity:
    """A query as EXPLAIN answers it (ksqlDB's QueryDescription)."""
    window = plan.sink.window if plan.sink is not None else None
    return {
        "id": query_id,
        "statementText": statement,
        "windowType": window.kind if window is not None else None,
        "fields": [field_info(column) for column in plan.output.columns],
        "sources": sorted({step.source.name for step in plan.sources}),
        "sinks": [plan.sink.name] if plan.sink is not None else [],
        "topology": plan.describe(),
        "executionPlan": plan.describe(),
        "overriddenProperties": dict(plan.properties),
        "ksqlHostQueryStatus": {context.host: state} if state is not None else {},
        "queryType": "PERSISTENT" if plan.sink is not None else "PUSH",
        "queryErrors": [],
        "tasksMetadata": [],
        "state": state,
    }


def persistent_query_description(query: PersistentQuery, context: EntityContext) -> Entity:
    return query_description(query.query_id, query.plan, query.statement_text, query_state(query, context),
                             context)


# -- functions


def function_info(overload: Overload) -> Entity:
    """One signature of a function as DESCRIBE FUNCTION lists it."""
    names = list(overload.param_names) + [""] * (len(overload.params) - len(overload.param_names))
    arguments = [{"name": name, "type": str(param), "description": "",
                  "isVariadic": overload.variadic and index == overload.variadic_index}
                 for index, (name, param) in enumerate(zip(names, overload.params, strict=True))]
    returns = str(overload.returns) if isinstance(overload.returns, SqlType) else "depends on arguments"
    return {"arguments": arguments, "returnType": returns, "description": overload.description}


def _describe_function(statement: ast.Statement, result: StatementResult, context: EntityContext) -> Entity:
    assert isinstance(statement, ast.DescribeFunction)
    overloads = context.service.engine.registry.overloads(statement.name)
    first = overloads[0]  # the engine refused a name with no overloads
    return {"@type": "describe_function", "name": first.name, "description": first.description,
            "author": first.author, "version": first.version, "path": first.source,
            "functions": [function_info(overload) for overload in overloads], "type": first.kind.upper()}


# -- statements


def property_scope(name: str) -> str:
    return "STREAMS" if name.startswith("ksql.streams.") or not name.startswith("ksql.") else "KSQL"


def _show(statement: ast.Statement, result: StatementResult, context: EntityContext) -> Entity:
    assert isinstance(statement, ast.Show)
    engine = context.service.engine
    what = statement.what
    if what in ("STREAMS", "TABLES"):
        sources = sorted((s for s in engine.catalog.sources.values() if s.kind == what[:-1]), key=lambda s: s.name)
        if statement.extended:
            return {"@type": "source_descriptions",
                    "sourceDescriptions": [source_description(s, True, context) for s in sources]}
        return {"@type": what.lower(), what.lower(): [source_summary(s) for s in sources]}
    if what == "TOPICS":
        return {"@type": "kafka_topics",
                "topics": [{"name": topic, "replicaInfo": [1] * int(partitions)} for topic, partitions in result.rows]}
    if what == "QUERIES":
        if statement.extended:
            return {"@type": "query_descriptions", "queryDescriptions":
                    [persistent_query_description(q, context) for q in engine.queries.values()]}
        return {"@type": "queries", "queries": [running_query(q, context) for q in engine.queries.values()]}
    if what == "PROPERTIES":
        # the engine listed them with the request's overrides, which are gone once the statement has run
        properties = [{"name": name, "scope": property_scope(name), "value": value} for name, value in result.rows]
        return {"@type": "properties", "properties": properties,
                "overwrittenProperties": sorted(context.properties), "defaultProperties": []}
    if what == "FUNCTIONS":
        functions = []
        for name in engine.registry.names():
            first = engine.registry.overloads(name)[0]
            functions.append({"name": name, "type": first.kind.upper(), "category": first.category or "OTHER"})
        return {"@type": "function_names", "functions": functions}
    if what == "TYPES":
        return {"@type": "type_list",
                "types": {name: schema_info(sql_type) for name, sql_type in sorted(engine.catalog.types.items())}}
    return {"@type": "generic_listing", "columns": result.columns, "rows": result.rows}


def _describe(statement: ast.Statement, result: StatementResult, context: EntityContext) -> Entity:
    assert isinstance(statement, ast.Describe)
    catalog = context.service.engine.catalog
    if statement.all_sources:
        kind = statement.name[:-1]
        sources = sorted((s for s in catalog.sources.values() if s.kind == kind), key=lambda s: s.name)
        return {"@type": "source_descriptions",
                "sourceDescriptions": [source_description(s, statement.extended, context) for s in sources]}
    return {"@type": "sourceDescription",
            "sourceDescription": source_description(catalog.get(statement.name), statement.extended, context)}


def _explain(statement: ast.Statement, result: StatementResult, context: EntityContext) -> Entity:
    assert isinstance(statement, ast.Explain)
    engine = context.service.engine
    if statement.query_id is not None:
        return {"@type": "queryDescription",
                "queryDescription": persistent_query_description(engine.queries[statement.query_id], context)}
    inner = statement.statement
    assert isinstance(inner, ast.CreateAsSelect | ast.InsertInto | ast.SelectStatement)  # as the engine checked
    sink = inner.name if isinstance(inner, ast.CreateAsSelect) else None
    plan = engine._planner().plan(inner.query, sink)  # the engine keeps no plan of a statement it only explains
    return {"@type": "queryDescription", "queryDescription": query_description("", plan, inner.text, None, context)}


_BUILDERS: dict[type[ast.Statement], Callable[[ast.Statement, StatementResult, EntityContext], Entity]] = {
    ast.Show: _show,
    ast.Describe: _describe,
    ast.DescribeFunction: _describe_function,
    ast.Explain: _explain,
}
