"""`POST /ksql`: run a request's statements in order and answer with one entity per statement.

The body is `{"ksql": "...;", "streamsProperties": {...}}`. A statement that fails stops the request: the
answer is a `statement_error` naming that statement and carrying the entities of those before it, which
took effect. SELECT and PRINT belong to `/query` (40002); RUN SCRIPT would read a file on the server's
disk, so it is refused over REST. SET and UNSET change the properties of the rest of the request only and
answer no entity, as in ksqlDB. `commandSequenceNumber` asks ksqlDB to wait for earlier commands; here every
command has finished by the time its request is answered, so it is only checked to be a number.
`sessionVariables` are substituted for their `${name}` references before the text is parsed.
Each command's status is kept for `GET /status`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ksqlpy.errors import KsqlError, ParseError
from ksqlpy.server.app import ServerState, json_response, read_json
from ksqlpy.server.entities import Entity, EntityContext, entity_for, statement_text
from ksqlpy.server.errors import BAD_REQUEST, BAD_STATEMENT, QUERY_ENDPOINT, ServerError
from ksqlpy.syntax import ast
from ksqlpy.syntax.parser import parse

QUERY_ENDPOINT_MESSAGE = ("The following statement types should be issued to the websocket endpoint '/query':\n"
                          "\t* PRINT\n\t* SELECT")


def request_properties(body: Mapping[str, Any]) -> dict[str, Any]:
    """The request's property overrides (`streamsProperties`, or `properties` as /query-stream names them)."""
    properties = body.get("streamsProperties", body.get("properties")) or {}
    if not isinstance(properties, dict):
        raise ServerError(BAD_REQUEST, "streamsProperties must be a JSON object")
    return properties


VARIABLE_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def substitute_variables(text: Any, body: Mapping[str, Any]) -> Any:
    """The request's text with each `${name}` of its sessionVariables (names in any case) replaced by the value;
    a reference to an unknown variable is left for the parser to refuse."""
    variables = body.get("sessionVariables") or {}
    if not isinstance(variables, dict):
        raise ServerError(BAD_REQUEST, "sessionVariables must be a JSON object")
    if not isinstance(text, str) or not variables:
        return text
    by_name = {str(name).upper(): value for name, value in variables.items()}

    def value_of(reference: re.Match[str]) -> str:
        value = by_name.get(reference.group(1).upper())
        if value is None:
            return reference.group(0)
        return str(value).lower() if isinstance(value, bool) else str(value)

    return VARIABLE_REFERENCE.sub(value_of, text)


def parse_request_statements(text: Any) -> list[ast.Statement]:
    if not isinstance(text, str) or not text.strip():
        raise ServerError(BAD_REQUEST, "The request has no statements: send {\"ksql\": \"...;\"}")
    try:
        return parse(text)
    except ParseError as error:
        raise ServerError(BAD_STATEMENT, str(error), text) from error


def command_sequence_number(body: Mapping[str, Any]) -> int | None:
    number = body.get("commandSequenceNumber")
    if number is not None and (not isinstance(number, int) or isinstance(number, bool)):
        raise ServerError(BAD_REQUEST, "commandSequenceNumber must be a number")
    return number


def run_statements(state: ServerState, statements: list[ast.Statement], properties: Mapping[str, Any]) -> list[Entity]:
    """Execute each statement in turn; the first that fails raises a statement error with the entities so far."""
    entities: list[Entity] = []
    scoped = dict(properties)
    context = EntityContext(state.service, urlsplit(state.config.url).netloc, scoped, state.next_command)
    for statement in statements:
        text = statement_text(statement)
        if isinstance(statement, ast.SelectStatement | ast.Print):
            raise ServerError(QUERY_ENDPOINT, QUERY_ENDPOINT_MESSAGE, text, entities)
        if isinstance(statement, ast.RunScript):
            raise ServerError(BAD_STATEMENT, "RUN SCRIPT cannot be used over the REST API: it reads a file on the "
                              "server. Send the script's statements instead.", text, entities)
        if isinstance(statement, ast.SetProperty):
            scoped[statement.name] = statement.value
            continue
        if isinstance(statement, ast.UnsetProperty):
            scoped.pop(statement.name, None)
            continue
        try:
            result = state.service.execute(statement, scoped)
            entity = entity_for(statement, result, context)
        except KsqlError as error:
            raise ServerError(BAD_STATEMENT, str(error), text, entities) from error
        if entity is None:
            continue
        if entity["@type"] == "currentStatus":
            with state.lock:
                state.command_statuses[entity["commandId"]] = entity["commandStatus"]
        entities.append(entity)
    return entities


def routes(state: ServerState) -> list[BaseRoute]:
    async def ksql(request: Request) -> Response:
        body = await read_json(request, state.config.max_request_bytes)
        if not isinstance(body, dict):
            raise ServerError(BAD_REQUEST, "The request body must be a JSON object")
        statements = parse_request_statements(substitute_variables(body.get("ksql"), body))
        properties = request_properties(body)
        command_sequence_number(body)
        entities = await run_in_threadpool(run_statements, state, statements, properties)
        return json_response(request, entities)

    return [Route("/ksql", ksql, methods=["POST"])]
