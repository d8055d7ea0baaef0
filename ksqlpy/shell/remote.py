"""`ksqlpy shell --server` and `ksqlpy run --server`: a client of a running ksqlpy or ksqlDB server over ksqlDB's
REST API, printing its answers as the embedded shell prints its own results.

Statements go one at a time to `POST /ksql` and its entities become the embedded shell's tables and messages;
SELECT and PRINT stream from `POST /query` into the streaming table as rows arrive (Ctrl-C closes the response,
which ends the query in the server). As ksqlDB's CLI does, SET and UNSET stay in the client, which sends
the properties set with every request, and RUN SCRIPT reads its file here and sends the file's statements.
Persistent queries run in the server and outlive the client.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import getpass
import itertools
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import httpx
from prompt_toolkit import PromptSession

from ksqlpy.engine import MAX_SCRIPT_NESTING, StatementResult
from ksqlpy.errors import KsqlError
from ksqlpy.runtime.push import DELETED
from ksqlpy.shell.complete import StatementCompleter
from ksqlpy.shell.render import StreamingTable, cell_text
from ksqlpy.shell.repl import (
    HISTORY_FILE,
    MaskedHistory,
    chunk_statements,
    print_results,
    prompt_loop,
    scan_statements,
)
from ksqlpy.syntax.ast import NamedType
from ksqlpy.syntax.parser import keywords, parse_type
from ksqlpy.types import (
    BYTES,
    DATE,
    DOUBLE,
    PRIMITIVES_BY_NAME,
    STRING,
    TIME,
    TIMESTAMP,
    ArrayType,
    DecimalType,
    MapType,
    SqlType,
    StructType,
)

KSQL_JSON = "application/vnd.ksql.v1+json"
# Statements wait for the server as long as it takes (a CREATE ... AS SELECT starts a query); connecting does not.
TIMEOUT = httpx.Timeout(None, connect=10.0)

_LEADING_COMMENTS = re.compile(r"(\s|--[^\n]*(\n|$))*")
_SET = re.compile(r"SET\s+'((?:[^']|'')*)'\s*=\s*'((?:[^']|'')*)'\s*;?", re.IGNORECASE)
_RUN_SCRIPT = re.compile(r"RUN\s+SCRIPT\s+'((?:[^']|'')*)'\s*;?", re.IGNORECASE)
_UNSET = re.compile(r"UNSET\s+'((?:[^']|'')*)'\s*;?", re.IGNORECASE)
_EPOCH_DATE = datetime.date(1970, 1, 1)
_PULL_QUERY_DONE = "Query Completed"
# Everything between the items of /query's JSON array: its brackets, commas and keep-alive newlines.
_FRAMING = "[],\r\n\t "


class RemoteError(KsqlError):
    """What the server refused, or why it could not be reached, in one line."""


def statement_body(statement: str) -> str:
    """The statement without the comments before it."""
    return _LEADING_COMMENTS.sub("", statement, count=1).strip()


def first_word(statement: str) -> str:
    body = statement_body(statement)
    return body.split(None, 1)[0].upper().rstrip(";") if body else ""


class KsqlClient:
    """One server's REST API, with the properties SET in this session sent along with every request."""

    def __init__(self, url: str, auth: tuple[str, str] | None = None, verify: bool | str = True) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, auth=auth, verify=verify, timeout=TIMEOUT,
                                 headers={"Accept": KSQL_JSON})
        self.properties: dict[str, str] = {}

    def close(self) -> None:
        self.http.close()

    def info(self) -> dict[str, Any]:
        """The server's /info: its version and service id (and a check that it answers, with these credentials)."""
        return dict(self._answer(self._send(lambda: self.http.get("/info"))).get("KsqlServerInfo", {}))

    def execute(self, statement: str) -> list[dict[str, Any]]:
        """One statement through POST /ksql: the server's entities."""
        answer = self._answer(self._send(lambda: self.http.post("/ksql", json=self._body(statement))))
        if not isinstance(answer, list):
            raise RemoteError(f"the server answered /ksql with {type(answer).__name__}, not a list of entities")
        return answer

    def query(self, statement: str, sink: StreamingTable) -> str:
        """Stream a SELECT or PRINT from POST /query into `sink` until the server ends it (its final message is
        returned) or Ctrl-C closes the response ("Query terminated")."""
        try:
            with self.http.stream("POST", "/query", json=self._body(statement)) as response:
                if response.is_error:
                    response.read()
                    self._answer(response)
                if first_word(statement) == "PRINT":
                    for line in response.iter_lines():
                        if line.strip():
                            sink.line(line)
                    return ""
                return _stream_rows(query_items(response.iter_text()), sink)
        except KeyboardInterrupt:
            sink.cancelled()
            return "Query terminated"
        except httpx.TransportError as error:
            raise RemoteError(f"the query's connection to {self.url} failed: {error}") from error

    def _body(self, statement: str) -> dict[str, Any]:
        return {"ksql": statement, "streamsProperties": dict(self.properties)}

    def _send(self, request: Callable[[], Any]) -> Any:
        try:
            return request()
        except httpx.TransportError as error:
            raise RemoteError(f"cannot reach {self.url}: {error}") from error

    @staticmethod
    def _answer(response: httpx.Response) -> Any:
        """The response's JSON, or its error (ksqlDB's payload carries a message) raised as a RemoteError."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.is_error:
            message = body.get("message") if isinstance(body, dict) else None
            raise RemoteError(message or f"{response.status_code} {response.reason_phrase}: {response.text[:200]}")
        return body


def query_items(chunks: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The items of /query's chunked JSON array as each arrives whole: `[`, items separated by commas, newlines
    as keep-alives anywhere between them, `]`."""
    decoder = json.JSONDecoder(parse_float=Decimal)  # a DECIMAL keeps its digits; a DOUBLE is read back to float
    buffer = ""
    for chunk in chunks:
        buffer += chunk
        position = 0
        while True:
            while position < len(buffer) and buffer[position] in _FRAMING:
                position += 1
            if position == len(buffer):
                break
            try:
                item, position = decoder.raw_decode(buffer, position)
            except json.JSONDecodeError:
                break  # the rest of this item is still on its way
            yield item
        buffer = buffer[position:]
    if buffer.strip(_FRAMING):
        raise RemoteError(f"the server's answer ended in the middle of a row: {buffer[:200]}")


def _stream_rows(items: Iterator[dict[str, Any]], sink: StreamingTable) -> str:
    types: list[SqlType | None] = []
    for item in items:
        if "header" in item:
            columns = schema_columns(item["header"].get("schema", ""))
            types = [sql_type for _name, sql_type in columns]
            sink.header([name for name, _type in columns], [STRING] * len(columns))  # cells come as text, below
        elif "row" in item:
            row = item["row"]
            deleted = bool(row.get("tombstone"))
            cells = zip(row.get("columns", []), types or itertools.repeat(None), strict=False)
            sink.row([str(DELETED) if deleted and value is None else cell_from_json(value, sql_type)
                      for value, sql_type in cells])
        elif "errorMessage" in item:
            error = item["errorMessage"]
            raise RemoteError(error.get("message", str(error)) if isinstance(error, dict) else str(error))
        elif "finalMessage" in item:
            final = str(item["finalMessage"])
            return "" if final == _PULL_QUERY_DONE else final  # the embedded shell ends a pull query silently
    return ""


def schema_columns(schema: str) -> list[tuple[str, SqlType | None]]:
    """The columns of a /query header's schema, e.g. "`K` STRING KEY, `V` STRUCT<`A` INTEGER>": each name with
    its type, or None for a type this client does not know."""
    columns: list[tuple[str, SqlType | None]] = []
    depth = 0
    start = 0
    quoted = False
    for index, char in enumerate(f"{schema},"):
        if char == "`":
            quoted = not quoted
        elif quoted:
            continue
        elif char in "<(":
            depth += 1
        elif char in ">)":
            depth -= 1
        elif char == "," and depth == 0:
            if schema[start:index].strip():
                columns.append(_column(schema[start:index].strip()))
            start = index + 1
    return columns


def _column(definition: str) -> tuple[str, SqlType | None]:
    if definition.startswith("`"):
        name, _, type_text = definition[1:].partition("`")
    else:
        name, _, type_text = definition.partition(" ")
    type_text = re.sub(r"\s+KEY$", "", type_text.strip(), flags=re.IGNORECASE)
    try:
        sql_type = parse_type(type_text)
    except KsqlError:
        return name, None
    return name, None if isinstance(sql_type, NamedType) else sql_type


def cell_from_json(value: Any, sql_type: SqlType | None) -> str:
    """A /query cell as the embedded shell shows the value: read back into the engine's form for its type; as
    JSON text when the type is unknown or the value does not fit it."""
    if sql_type is not None:
        try:
            return cell_text(from_json(value, sql_type), sql_type)
        except (ValueError, TypeError, AttributeError, ArithmeticError):
            pass
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), default=str)
    return cell_text(value)


def from_json(value: Any, sql_type: SqlType) -> Any:
    """A value as ksqlDB's REST JSON writes it (times as text, bytes as base64), in the engine's form."""
    if value is None:
        return None
    if sql_type == DOUBLE:
        return float(value)
    if isinstance(sql_type, DecimalType):
        return Decimal(str(value))
    if sql_type == TIMESTAMP:
        moment = datetime.datetime.fromisoformat(value).replace(tzinfo=datetime.UTC)
        return round(moment.timestamp() * 1000)
    if sql_type == DATE:
        return (datetime.date.fromisoformat(value) - _EPOCH_DATE).days
    if sql_type == TIME:
        clock = datetime.time.fromisoformat(value)
        return ((clock.hour * 60 + clock.minute) * 60 + clock.second) * 1000 + clock.microsecond // 1000
    if sql_type == BYTES:
        return base64.b64decode(value)
    if isinstance(sql_type, ArrayType):
        return [from_json(item, sql_type.element) for item in value]
    if isinstance(sql_type, MapType):
        return {key: from_json(item, sql_type.value) for key, item in value.items()}
    if isinstance(sql_type, StructType):
        return {name: from_json(value.get(name), field_type) for name, field_type in sql_type.fields}
    return value


# -- entities as the embedded shell shows the same statements' results


def entity_result(entity: dict[str, Any]) -> StatementResult:
    """The embedded shell's result for one /ksql entity, with the entity's warnings after its message."""
    render = _RENDERERS.get(str(entity.get("@type")), _other)
    try:
        result = render(entity)
    except (AttributeError, TypeError, KeyError, ValueError):  # a shape this client does not know
        result = _other(entity)
    warnings = [f"WARNING: {w.get('message', w)}" for w in entity.get("warnings") or [] if isinstance(w, dict)]
    if warnings:
        result.message = "\n".join(filter(None, [result.message, *warnings]))
    return result


def _text(entity: dict[str, Any]) -> str:
    return str(entity.get("statementText", ""))


def _current_status(entity: dict[str, Any]) -> StatementResult:
    status = entity.get("commandStatus") or {}
    return StatementResult(_text(entity), str(status.get("message", "")), query_id=status.get("queryId"))


def _sources(kind: str) -> Callable[[dict[str, Any]], StatementResult]:
    def render(entity: dict[str, Any]) -> StatementResult:
        rows = [[s.get("name"), s.get("topic"), s.get("keyFormat", ""), s.get("valueFormat", s.get("format", "")),
                 bool(s.get("isWindowed", False))] for s in entity.get(f"{kind.lower()}s", [])]
        return StatementResult(_text(entity), columns=[f"{kind} Name", "Kafka Topic", "Key Format", "Value Format",
                                                       "Windowed"], rows=rows)

    return render


def _queries(entity: dict[str, Any]) -> StatementResult:
    rows = []
    for query in entity.get("queries", []):
        counts = query.get("statusCount") or {}
        state = query.get("state") or ", ".join(f"{name}:{count}" for name, count in counts.items())
        rows.append([query.get("id"), state, ", ".join(query.get("sinkKafkaTopics") or []), query.get("queryString")])
    return StatementResult(_text(entity), columns=["Query ID", "Status", "Sink Topic", "Query String"], rows=rows)


def _properties(entity: dict[str, Any]) -> StatementResult:
    properties = entity.get("properties") or {}
    if isinstance(properties, list):  # ksqlDB 0.15 and later: {name, scope, value} each
        properties = {p.get("name"): p.get("value") for p in properties}
    rows = [[name, str(value)] for name, value in sorted(properties.items())]
    return StatementResult(_text(entity), columns=["Property", "Value"], rows=rows)


def _topics(entity: dict[str, Any]) -> StatementResult:
    rows = [[t.get("name"), len(t.get("replicaInfo") or [])] for t in entity.get("topics", [])]
    return StatementResult(_text(entity), columns=["Kafka Topic", "Partitions"], rows=rows)


def _function_names(entity: dict[str, Any]) -> StatementResult:
    rows = [[f.get("name"), f.get("category", ""), f.get("type", "")] for f in entity.get("functions", [])]
    return StatementResult(_text(entity), columns=["Function Name", "Category", "Type"], rows=rows)


def _describe_function(entity: dict[str, Any]) -> StatementResult:
    details = {"Name": entity.get("name"), "Author": entity.get("author", ""), "Version": entity.get("version", ""),
               "Overview": entity.get("description", ""), "Type": entity.get("type", ""),
               "Source": entity.get("path", "")}
    rows = []
    for variation in entity.get("functions", []):
        arguments = ", ".join(f"{a.get('type')}{'...' if a.get('isVariadic') else ''}"
                              for a in variation.get("arguments", []))
        rows.append([f"{entity.get('name')}({arguments})", variation.get("returnType"),
                     variation.get("description", "")])
    message = "\n".join(f"{label:<12}: {value}" for label, value in details.items())
    return StatementResult(_text(entity), message, columns=["Variation", "Returns", "Description"], rows=rows)


def _type_list(entity: dict[str, Any]) -> StatementResult:
    rows = [[name, schema_text(schema)] for name, schema in sorted((entity.get("types") or {}).items())]
    return StatementResult(_text(entity), columns=["Type Name", "Schema"], rows=rows)


def schema_text(schema: dict[str, Any]) -> str:
    """A type as ksqlDB's SchemaInfo describes it, written as a statement would (STRUCT<`A` INTEGER>)."""
    kind = str(schema.get("type"))
    if kind == "ARRAY":
        return f"ARRAY<{schema_text(schema.get('memberSchema') or {})}>"
    if kind == "MAP":
        return f"MAP<STRING, {schema_text(schema.get('memberSchema') or {})}>"
    if kind == "STRUCT":
        fields = ", ".join(f"`{f.get('name')}` {schema_text(f.get('schema') or {})}" for f in schema.get("fields") or [])
        return f"STRUCT<{fields}>"
    if kind == "DECIMAL":
        parameters = schema.get("parameters") or {}
        return f"DECIMAL({parameters.get('precision')}, {parameters.get('scale')})"
    return kind


def _describe_sources(descriptions: list[dict[str, Any]], text: str) -> StatementResult:
    rows: list[list[Any]] = []
    messages = []
    for source in descriptions:
        window = source.get("windowType")
        for field in source.get("fields", []):
            suffix = {"KEY": "(key)", "HEADER": "(headers)"}.get(str(field.get("type")), "")
            if suffix == "(key)" and window:
                suffix += f" (Window type: {window})"
            rows.append([source.get("name"), field.get("name"),
                         f"{schema_text(field.get('schema') or {})} {suffix}".strip()])
        lines = [f"Name: {source.get('name')}", f"Type: {source.get('type')}",
                 f"Kafka topic: {source.get('topic')} (partitions: {source.get('partitions')})",
                 f"Key format: {source.get('keyFormat')}", f"Value format: {source.get('valueFormat')}"]
        if window:
            lines.append(f"Window type: {window}")
        if source.get("timestamp"):
            lines.append(f"Timestamp field: {source.get('timestamp')}")
        if source.get("extended"):
            lines.append(f"Written by: {', '.join(sorted(q.get('id', '') for q in source.get('writeQueries', [])))}")
            lines.append(f"Read by: {', '.join(sorted(q.get('id', '') for q in source.get('readQueries', [])))}")
            statistics = "\n".join(filter(None, [source.get("statistics"), source.get("errorStats")]))
            if statistics:
                lines.append(f"\nLocal runtime statistics\n------------------------\n{statistics}")
        messages.append("\n".join(lines))
    return StatementResult(text, "\n".join(messages), columns=["Source", "Field", "Type"], rows=rows)


def _source_description(entity: dict[str, Any]) -> StatementResult:
    return _describe_sources([entity.get("sourceDescription") or {}], _text(entity))


def _source_descriptions(entity: dict[str, Any]) -> StatementResult:
    return _describe_sources(entity.get("sourceDescriptions") or [], _text(entity))


def _query_description(entity: dict[str, Any]) -> StatementResult:
    return StatementResult(_text(entity), _explained(entity.get("queryDescription") or {}))


def _query_descriptions(entity: dict[str, Any]) -> StatementResult:
    return StatementResult(_text(entity), "\n\n".join(map(_explained, entity.get("queryDescriptions") or [])))


def _explained(description: dict[str, Any]) -> str:
    """A query's text and plan; EXPLAIN of a statement (a query that does not run, so has no id) the plan only."""
    parts = [description.get("statementText") if description.get("id") else None, description.get("executionPlan")]
    return "\n\n".join(str(part) for part in parts if part)


def _warning(entity: dict[str, Any]) -> StatementResult:
    return StatementResult(_text(entity), str(entity.get("message", "")))


def _generic_listing(entity: dict[str, Any]) -> StatementResult:
    return StatementResult(_text(entity), columns=list(entity.get("columns", [])), rows=list(entity.get("rows", [])))


def _other(entity: dict[str, Any]) -> StatementResult:
    """An entity this client has no layout for: its fields as JSON."""
    fields = {name: value for name, value in entity.items() if name not in ("@type", "statementText", "warnings")}
    return StatementResult(_text(entity), json.dumps(fields, indent=2, default=str))


_RENDERERS: dict[str, Callable[[dict[str, Any]], StatementResult]] = {
    "currentStatus": _current_status,
    "streams": _sources("Stream"),
    "tables": _sources("Table"),
    "queries": _queries,
    "properties": _properties,
    "kafka_topics": _topics,
    "function_names": _function_names,
    "describe_function": _describe_function,
    "type_list": _type_list,
    "sourceDescription": _source_description,
    "source_descriptions": _source_descriptions,
    "queryDescription": _query_description,
    "query_descriptions": _query_descriptions,
    "warning_entity": _warning,
    "generic_listing": _generic_listing,
}


class RemoteCompleter(StatementCompleter):
    """Tab completion from the server: its streams, tables and functions (asked for at each completion, so they
    follow CREATE and DROP), then the grammar's keywords and type names."""

    def __init__(self, client: KsqlClient) -> None:
        self.client = client
        self.keywords = keywords()

    def candidates(self) -> Iterable[tuple[str, str]]:
        try:
            entities = self.client.execute("SHOW STREAMS; SHOW TABLES; SHOW FUNCTIONS;")
        except RemoteError:
            entities = []  # completion goes on with what the client knows by itself
        for entity in entities:
            for source in entity.get("streams", []) + entity.get("tables", []):
                yield str(source.get("name")), str(source.get("type", "")).lower()
            for function in entity.get("functions", []):
                yield str(function.get("name")), "function"
        for name in self.keywords:
            yield name, "keyword"
        for name in PRIMITIVES_BY_NAME:
            yield name, "type"


# -- running statements


def run_remote_statements(client: KsqlClient, text: str, out: TextIO, err: TextIO) -> bool:
    """Run each statement of `text` in turn and print its result; False when one failed (its error is printed
    and the rest of `text` is not run)."""
    return print_results(_results(client, text, out), out, err)


def _results(client: KsqlClient, text: str, out: TextIO, scripts: tuple[str, ...] = ()) -> Iterator[StatementResult]:
    """Each statement's results as it runs; `scripts` are the RUN SCRIPT files `text` is read from, outermost first."""
    for statement in scan_statements(text)[0]:
        yield from _run_statement(client, statement, out, scripts)


def _run_statement(client: KsqlClient, statement: str, out: TextIO,
                   scripts: tuple[str, ...]) -> Iterator[StatementResult]:
    word = first_word(statement)
    body = statement_body(statement)
    if word == "SET" and (setting := _SET.fullmatch(body)):
        name, value = (_unquote(part) for part in setting.groups())
        client.properties[name] = value
        yield StatementResult(statement, f"Successfully changed local property '{name}'.")
    elif word == "UNSET" and (unsetting := _UNSET.fullmatch(body)):
        name = _unquote(unsetting.group(1))
        client.properties.pop(name, None)
        yield StatementResult(statement, f"Successfully unset local property '{name}'.")
    elif word == "RUN" and (script := _RUN_SCRIPT.fullmatch(body)):
        # As ksqlDB's CLI: the file is read here and its statements sent, since the server cannot read it.
        yield from _results(client, _script_text(_unquote(script.group(1)), scripts), out,
                            (*scripts, _unquote(script.group(1))))
    elif word in ("SELECT", "PRINT"):
        yield StatementResult(statement, client.query(statement, StreamingTable(out)))
    else:
        yield from map(entity_result, client.execute(statement))


def _unquote(text: str) -> str:
    return text.replace("''", "'")


def _script_text(path: str, scripts: tuple[str, ...]) -> str:
    if len(scripts) >= MAX_SCRIPT_NESTING:
        raise RemoteError(f"RUN SCRIPT {path}: scripts may run inside one another at most {MAX_SCRIPT_NESTING} deep")
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, ValueError) as error:
        raise RemoteError(f"Cannot read script {path}: {getattr(error, 'strerror', None) or error}") from error


def run_remote_shell(client: KsqlClient, stdin: TextIO | None = None, out: TextIO | None = None) -> int:
    """The shell over `client`: a prompt on a terminal, else the statements read from stdin."""
    source = stdin if stdin is not None else sys.stdin
    target = out if out is not None else sys.stdout
    info = client.info()
    if source.isatty() and target.isatty():
        target.write(f"Server: {client.url} (version {info.get('version', 'unknown')}, "
                     f"service id {info.get('ksqlServiceId', 'unknown')})\n")
        session: PromptSession[str] = PromptSession(
            history=MaskedHistory(str(HISTORY_FILE)), completer=RemoteCompleter(client),
            complete_while_typing=False)
        return prompt_loop(session, target, lambda text: run_remote_statements(client, text, target, sys.stderr))
    ok = True
    for statement in chunk_statements(source):
        ok = run_remote_statements(client, statement, target, sys.stderr) and ok
    return 0 if ok else 1


def run_remote_file(client: KsqlClient, text: str) -> int:
    """`ksqlpy run FILE --server`: submit the file's statements, stopping at the first that fails; the persistent
    queries they start keep running in the server."""
    client.info()
    if not run_remote_statements(client, text, sys.stdout, sys.stderr):
        return 1
    print(f"ksqlpy: statements submitted to {client.url}; its persistent queries keep running there.",
          file=sys.stderr, flush=True)
    return 0


# -- the command line


def add_remote_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", metavar="URL",
                        help="a running ksqlpy or ksqlDB server (http(s)://host:8088): send the statements there "
                             "instead of running them here")
    parser.add_argument("--user", metavar="USER[:PASSWORD]",
                        help="HTTP basic authentication for --server (the password is asked for when left out)")
    parser.add_argument("--ca-file", metavar="FILE", help="CA certificates to verify an https --server with")
    parser.add_argument("--insecure", action="store_true",
                        help="do not verify an https --server's certificate")


def client_from(args: argparse.Namespace) -> KsqlClient:
    """The client the remote arguments describe; asks for the password of a --user given without one."""
    auth = None
    if args.user:
        user, colon, password = args.user.partition(":")
        auth = (user, password if colon else getpass.getpass(f"Password for {user}: "))
    verify: bool | str = False if args.insecure else (args.ca_file or True)
    return KsqlClient(args.server, auth, verify)


def run_remote(args: argparse.Namespace, command: Callable[[KsqlClient], int]) -> int:
    """Run `command` with a client of the server the arguments name (nothing starts here); its exit status."""
    try:
        client = client_from(args)
        try:
            return command(client)
        finally:
            client.close()
    except RemoteError as error:
        print(f"Error: {error}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 130
