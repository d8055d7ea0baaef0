"""The entities `POST /ksql` answers with, one per statement, as ksqlDB shapes them: each tagged `@type` and
carrying its `statementText` and `warnings`. A statement that changes the metastore answers `currentStatus`
with the command's id (`stream/`NAME`/create`), status and sequence number; listings and descriptions answer
their own entity, built from the engine's catalog rather than from the text the shell prints."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ksqlpy.engine import StatementResult
from ksqlpy.planning.catalog import DataSource
from ksqlpy.server.service import KsqlService
from ksqlpy.syntax import ast

Entity = dict[str, Any]


def entity_for(statement: ast.Statement, result: StatementResult, service: KsqlService, sequence: int) -> Entity:
    """The entity answering one executed statement; `sequence` numbers the commands this server ran."""
    build = _BUILDERS.get(type(statement))
    entity = build(statement, result, service, sequence) if build is not None else \
        _current_status(statement, result, service, sequence)
    return {"@type": entity.pop("@type"), "statementText": statement_text(statement), **entity, "warnings": []}


def statement_text(statement: ast.Statement) -> str:
    """A statement's text as ksqlDB echoes it: as written, with its terminating semicolon."""
    text = getattr(statement, "text", "").strip()
    return text if text.endswith(";") else f"{text};"


def command_id(statement: ast.Statement, result: StatementResult) -> str:
    """ksqlDB's command id: `<entity>/<name>/<action>` (a query's INSERT INTO names its query id)."""
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
            return f"terminate/`{statement.query_id or 'ALL'}`/execute"
        case ast.CreateType() | ast.DropType():
            return f"type/`{statement.name}`/{'create' if isinstance(statement, ast.CreateType) else 'drop'}"
    return f"statement/`{type(statement).__name__}`/execute"


def _current_status(statement: ast.Statement, result: StatementResult, service: KsqlService,
                    sequence: int) -> Entity:
    status: Entity = {"status": "SUCCESS", "message": result.message}
    if result.query_id is not None:
        status["queryId"] = result.query_id
    return {"@type": "currentStatus", "commandId": command_id(statement, result), "commandStatus": status,
            "commandSequenceNumber": sequence}


def source_summary(source: DataSource) -> Entity:
    """A stream or table as SHOW STREAMS / SHOW TABLES lists it."""
    return {"type": source.kind, "name": source.name, "topic": source.topic, "keyFormat": source.key.format,
            "valueFormat": source.value.format, "isWindowed": source.window is not None}


def _show(statement: ast.Statement, result: StatementResult, service: KsqlService, sequence: int) -> Entity:
    assert isinstance(statement, ast.Show)
    engine = service.engine
    what = statement.what
    if what in ("STREAMS", "TABLES"):
        sources = sorted((s for s in engine.catalog.sources.values() if s.kind == what[:-1]), key=lambda s: s.name)
        return {"@type": what.lower(), what.lower(): [source_summary(s) for s in sources]}
    if what == "QUERIES":
        statuses = service.query_status()
        queries = []
        for query in engine.queries.values():
            status = statuses.get(query.query_id)
            state = query.state if status is None else status.state
            queries.append({"queryString": query.statement_text, "sinks": [query.sink.name],
                            "sinkKafkaTopics": [query.sink.topic], "id": query.query_id,
                            "statusCount": {state: 1}, "queryType": "PERSISTENT", "state": state})
        return {"@type": "queries", "queries": queries}
    if what == "PROPERTIES":
        return {"@type": "properties", "properties": {str(name): value for name, value in result.rows},
                "overwrittenProperties": [], "defaultProperties": []}
    return {"@type": "generic_listing", "columns": result.columns, "rows": result.rows}


_BUILDERS: dict[type[ast.Statement], Callable[[ast.Statement, StatementResult, KsqlService, int], Entity]] = {
    ast.Show: _show,
}
