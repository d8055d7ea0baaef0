"""The engine: executes parsed statements against a catalog, planning queries and handing them to a backend.

The backend is where topics and running queries live: the in-memory driver (ksqlpy.driver) for tests,
the Kafka runtime in production. The engine itself never touches records except for INSERT VALUES.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ksqlpy.errors import KsqlError, StatementError
from ksqlpy.execution.expressions import CompiledExpression
from ksqlpy.execution.pipeline import Pipeline, ProcessingLogger, Record, key_serde, value_serde
from ksqlpy.execution.pull import (
    PULL_LIMIT_DISABLED,
    PULL_LIMIT_PROPERTY,
    RANGE_SCAN_PROPERTY,
    TABLE_SCAN_PROPERTY,
    KeyLookup,
    check_key_values,
    check_like_columns,
    check_pull_query,
    check_table_scan,
    check_window_bounds,
    is_key_range_scan,
    key_lookup,
    pull_rows,
)
from ksqlpy.functions.registry import FunctionRegistry
from ksqlpy.planning.catalog import Catalog, DataSource, SerdeSpec
from ksqlpy.planning.expressions import ExpressionTyper, Scope, cast_to, castable, render
from ksqlpy.planning.plan import QueryPlan
from ksqlpy.planning.planner import (
    OUTPUT_TOPIC_PREFIX_PROPERTY,
    QueryPlanner,
    build_source,
    check_column_name,
    check_wrap_single_value,
    partitions_property,
    resolve_formats,
    resolve_type,
    timestamp_column,
    topic_property,
    validate_serdes,
)
from ksqlpy.schema import Column, LogicalSchema, Namespace
from ksqlpy.secrets import mask, mask_statement
from ksqlpy.serialization.base import FormatOptions
from ksqlpy.state.base import StoreProvider
from ksqlpy.state.memory import InMemoryStoreProvider
from ksqlpy.syntax import ast
from ksqlpy.syntax.parser import parse
from ksqlpy.types import BIGINT, STRING, SqlType, StructType, widens_to

# How many RUN SCRIPTs may run inside one another (each script a different file: none may run itself).
MAX_SCRIPT_NESTING = 16


@dataclass
class StatementResult:
    """What a statement returns to the user: a message, and for listings a table."""

    statement: str
    message: str = ""
    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    query_id: str | None = None


@dataclass
class PersistentQuery:
    query_id: str
    plan: QueryPlan
    pipeline: Pipeline
    sink: DataSource
    statement_text: str
    state: str = "RUNNING"


class Backend(Protocol):
    """Where topics and persistent queries live."""

    def create_topic(self, name: str, partitions: int) -> None: ...

    def topic_partitions(self, name: str) -> int | None: ...

    def delete_topic(self, name: str) -> None: ...

    def list_topics(self) -> dict[str, int]: ...

    def write(self, topic: str, records: list[Record]) -> None: ...

    def topic_records(self, topic: str) -> list[Record]:
        """Every record the topic holds now, raw (a windowed key with its window), in offset order per
        partition."""
        ...

    def table_records(self, topic: str, lookup: KeyLookup | None) -> list[Record]:
        """The current records of the table on `topic` (the latest per partition and key bytes, deleted keys
        left out) as of now, from a materialization kept up to date incrementally: every one, or only those
        of the looked-up keys."""
        ...

    def forget_table(self, topic: str) -> None:
        """Drop what table_records keeps for `topic`: its table was dropped."""
        ...

    def start_query(self, query: PersistentQuery) -> None: ...

    def stop_query(self, query_id: str) -> None: ...

    def delete_internal_topics(self, query_id: str) -> None:
        """Delete the topics a query kept its state in, once it is terminated."""

    def processing_logger(self, query_id: str, topic: str) -> ProcessingLogger: ...


class Engine:
    def __init__(
        self,
        backend: Backend,
        properties: Mapping[str, Any] | None = None,
        registry: FunctionRegistry | None = None,
        default_cache_bytes: int | None = None,
        durable_state: StoreProvider | None = None,
    ) -> None:
        """`default_cache_bytes`: the record cache size of stateful queries that set none (ksqlDB's 10 MB
        when None; the in-memory driver turns caching off, as ksqlDB's tests do)."""
        self.backend = backend
        self.default_cache_bytes = default_cache_bytes
        # Persistent queries keep state in `durable_state` when given, committed by the backend that runs them
        # (with its input offsets and output); transient ones (push and pull queries) always in memory.
        self.state: StoreProvider = durable_state or InMemoryStoreProvider()
        self.durable = durable_state is not None
        self.transient_state = InMemoryStoreProvider()
        self.registry = registry or FunctionRegistry.with_builtins()
        self.catalog = Catalog()
        self.properties: dict[str, Any] = dict(properties or {})
        self.queries: dict[str, PersistentQuery] = {}
        self._query_counter = itertools.count()
        self._running_scripts: list[Path] = []

    # -- entry points

    def execute(self, text: str) -> list[StatementResult]:
        """Parse and execute a script; stops at (and raises) the first failing statement."""
        return [self.execute_statement(statement) for statement in parse(text)]

    def execute_statement(self, statement: ast.Statement) -> StatementResult:
        handler: Callable[[Any], StatementResult] | None = getattr(
            self, f"_execute_{type(statement).__name__}", None
        )
        if handler is None:
            raise StatementError(f"Statement not supported: {type(statement).__name__}")
        return handler(statement)

    # -- DDL

    def _name_taken(self, statement: ast.CreateSource | ast.CreateAsSelect) -> StatementResult | None:
        """The no-op result of CREATE ... IF NOT EXISTS on a taken name; an error unless OR REPLACE."""
        existing = self.catalog.find(statement.name)
        if existing is None or statement.or_replace:
            return None
        if statement.if_not_exists:
            return StatementResult(statement.text, f"{existing.kind.title()} {statement.name} already exists.")
        raise StatementError(
            f"Cannot add {statement.kind.lower()} '{statement.name}': A {existing.kind_word} with the same "
            "name already exists"
        )

    def _execute_CreateSource(self, statement: ast.CreateSource) -> StatementResult:
        already = self._name_taken(statement)
        if already is not None:
            return already
        source = build_source(statement, self.catalog, self.properties)
        partitions = self.backend.topic_partitions(source.topic)
        if partitions is None:
            self.backend.create_topic(source.topic, source.partitions)
        else:
            source.partitions = partitions
        self.catalog.add(source, replace=statement.or_replace)
        return StatementResult(statement.text, f"{statement.kind.title()} created")

    def _execute_CreateAsSelect(self, statement: ast.CreateAsSelect) -> StatementResult:
        already = self._name_taken(statement)
        if already is not None:
            return already
        if statement.query.limit is not None:
            raise StatementError(f"CREATE {statement.kind} AS SELECT statements don't support LIMIT clause.")
        plan = self._planner().plan(statement.query, statement.name, statement.properties, statement.kind)
        input_source = plan.source.source
        check_result_kind(statement.kind, plan)
        sink = self._sink_source(statement, plan, input_source)
        query_id = f"{'CTAS' if statement.kind == 'TABLE' else 'CSAS'}_{statement.name}_{next(self._query_counter)}"
        self.catalog.add(sink, replace=statement.or_replace)
        self._start(query_id, plan, sink, statement.text)
        return StatementResult(statement.text, f"Created query with ID {query_id}", query_id=query_id)

    def _sink_source(self, statement: ast.CreateAsSelect, plan: QueryPlan, input_source: DataSource) -> DataSource:
        props = statement.properties
        key_spec, value_spec = resolve_formats(props, self.properties, (input_source.key, input_source.value))
        if plan.output.key and key_spec.format == "NONE" and "KEY_FORMAT" not in props and "FORMAT" not in props:
            # a keyless source's NONE key format is not inherited by a query that gives its output a key
            key_spec = SerdeSpec(str(self.properties.get("ksql.persistence.default.format.key", "KAFKA")).upper(),
                                 FormatOptions(wrap_single_value=False, is_key=True))
        check_wrap_single_value(props, plan.output)
        validate_serdes(plan.output, key_spec, value_spec)
        prefix = str(self.properties.get(OUTPUT_TOPIC_PREFIX_PROPERTY, ""))
        topic = topic_property(props, prefix + statement.name)
        partitions = partitions_property(props, input_source.partitions)
        sink = DataSource(
            name=statement.name,
            kind=statement.kind,
            schema=plan.output,
            topic=topic,
            key=key_spec,
            value=value_spec,
            partitions=partitions,
            statement_text=mask_statement(statement.text),
            is_derived=True,
            window=plan.root.window,
        )
        name = timestamp_column(props, {c.name: c.type for c in plan.output})
        if name is not None:
            plan.timestamp_column = plan.output.index(name)
            sink.timestamp_column = name
            sink.timestamp_format = props.get("TIMESTAMP_FORMAT")  # queries reading the sink parse it alike
        return sink

    def _execute_InsertInto(self, statement: ast.InsertInto) -> StatementResult:
        target = self.catalog.find(statement.target)
        if target is None:
            raise StatementError(f"{statement.target} does not exist.")
        if target.kind == "TABLE":
            raise StatementError(f"INSERT INTO can only be used to insert into a stream. {target.name} is a table.")
        if target.is_source:
            raise StatementError(f"Cannot insert into read-only {target.kind_word}: {target.name}")
        if target.schema.headers:
            raise StatementError(f"Cannot insert into {target.name} because it has header columns")
        plan = self._planner().plan(statement.query, target.name)
        check_result_kind(target.kind, plan)
        expected = LogicalSchema(tuple(c for c in target.schema.columns if c.namespace is not Namespace.HEADERS))
        if [(c.name, c.type, c.namespace) for c in plan.output] != [(c.name, c.type, c.namespace) for c in expected]:
            raise StatementError(
                "Incompatible schema between results and sink.\n"
                f"Result schema is {plan.output}\nSink schema is {expected}"
            )
        query_id = f"INSERTQUERY_{next(self._query_counter)}"
        self._start(query_id, plan, target, statement.text)
        return StatementResult(statement.text, f"Created query with ID {query_id}", query_id=query_id)

    def _start(self, query_id: str, plan: QueryPlan, sink: DataSource, text: str) -> None:
        plan.sink = sink
        plan.query_id = query_id
        text = mask_statement(text)  # shown by SHOW QUERIES and EXPLAIN
        plan.statement_text = text
        plan.properties = dict(self.properties)  # the session properties in force when the query started
        source = plan.source.source
        self.backend.create_topic(sink.topic, sink.partitions)
        log = self.backend.processing_logger(query_id, source.topic)
        text_timestamp = plan.timestamp_column is not None and plan.output.columns[plan.timestamp_column].type == STRING
        pipeline = Pipeline(plan, log, sink, self._timestamp_parsers(plan),
                            self._timestamp_parser(sink) if text_timestamp else None, self.state,
                            self.default_cache_bytes, commits_state=not self.durable)
        if pipeline.udf_error_policy == "dlq":
            self.backend.create_topic(pipeline.dead_letter_topic, source.partitions)
        prepare_models(plan)
        query = PersistentQuery(query_id, plan, pipeline, sink, text)
        self.queries[query_id] = query
        source.readers.add(query_id)
        sink.writers.add(query_id)
        self.backend.start_query(query)

    def _timestamp_parsers(self, plan: QueryPlan) -> dict[str, Callable[[str], int]]:
        """How each of the query's sources with a TIMESTAMP_FORMAT reads its TIMESTAMP column, by source name."""
        return {step.source.name: parser for step in plan.sources
                if (parser := self._timestamp_parser(step.source)) is not None}

    def _timestamp_parser(self, source: DataSource) -> Callable[[str], int] | None:
        if source.timestamp_format is None:
            return None
        bound = self.registry.resolve("STRINGTOTIMESTAMP", [STRING, STRING])
        parse_with_format = bound.implementation()
        fmt = source.timestamp_format
        return lambda text: int(parse_with_format(text, fmt))

    def _planner(self) -> QueryPlanner:
        return QueryPlanner(self.catalog, self.registry, self.properties)

    # -- INSERT VALUES

    def insert_target(self, name: str) -> DataSource:
        """The stream or table `name` that rows may be inserted into (INSERT VALUES, the REST /inserts-stream)."""
        target = self.catalog.find(name)
        if target is None:
            raise StatementError(f"Cannot insert values into an unknown stream/table: `{name}`" + self._case_hint(name))
        if target.is_source:
            raise StatementError(f"Cannot insert values into read-only {target.kind_word}: {target.name}")
        return target

    def insert_row(self, target: DataSource, values: Mapping[str, Any]) -> None:
        """Write one row (values by column name; ROWTIME, when given, its timestamp) to `target`'s topic, in its
        key and value formats."""
        key = key_serde(target).serialize([values.get(c.name) for c in target.schema.key]) if target.schema.key else None
        value = value_serde(target).serialize([values.get(c.name) for c in target.schema.value])
        timestamp = int(values.get("ROWTIME") or 0)
        self.backend.write(target.topic, [Record(key, value, timestamp)])

    def _execute_InsertValues(self, statement: ast.InsertValues) -> StatementResult:
        target = self.insert_target(statement.target)
        writable = [c for c in target.schema.columns if c.namespace is not Namespace.HEADERS]
        names = list(statement.columns) if statement.columns is not None else [c.name for c in writable]
        header_names = {c.name for c in target.schema.headers}
        for name in names:
            if name in header_names:
                raise StatementError(f"Cannot insert into HEADER columns: {name}")
        if statement.columns is not None and len(names) != len(statement.values):
            raise StatementError("Failed to prepare statement: Expected number columns and values to match: "
                                 f"{len(names)}, {len(statement.values)}")
        if len(names) != len(statement.values):
            raise StatementError(
                f"Failed to prepare statement: Expected a value for each column. Expected Columns: {names}. "
                f"Got {len(statement.values)} values."
            )
        typer = ExpressionTyper(Scope([]), self.registry, "INSERT")
        values: dict[str, Any] = {}
        for name, expr in zip(names, statement.values, strict=True):
            if name in ("ROWPARTITION", "ROWOFFSET"):  # where a record lands is the broker's to say
                raise StatementError(f"Inserting into column `{name}` is not allowed.")
            column = target.schema.find(name)
            column_type = column.type if column is not None else (BIGINT if name == "ROWTIME" else None)
            if column_type is None:
                raise StatementError(f"Column name {name} does not exist.")
            typed = typer.type(expr)
            if not _inserts_as(typed.type, column_type) and not (typed.type == STRING and castable(STRING, column_type)):
                raise StatementError(f"Expected type {column_type} for field {name} but got {typed.type}")
            compiled = CompiledExpression(cast_to(typed, column_type))
            values[name] = compiled.evaluate([], 1, _raise_evaluation_error)[0]
        self.insert_row(target, values)
        return StatementResult(statement.text, "")

    def _execute_AlterSource(self, statement: ast.AlterSource) -> StatementResult:
        source = self.catalog.find(statement.name)
        kind = statement.kind.lower()
        if source is None:
            raise StatementError(f"Source {statement.name} does not exist.")
        if source.kind != statement.kind:
            raise StatementError(
                f"Incompatible data source type is {source.kind}, but statement was ALTER {statement.kind}"
            )
        if source.is_source:
            raise StatementError(
                f"Cannot alter {kind} '{source.name}': ALTER operations are not supported on source {kind}s."
            )
        if source.is_derived:
            raise StatementError("ALTER command is not supported for CREATE ... AS statements.")
        added: list[Column] = []
        for definition in statement.columns:
            if source.schema.find(definition.name) or any(c.name == definition.name for c in added):
                raise StatementError(
                    f"Cannot add column `{definition.name}` to schema. A column with the same name already exists."
                )
            check_column_name(definition.name)
            added.append(Column(definition.name, resolve_type(definition.type, self.catalog)))
        schema = LogicalSchema.of([*source.schema.key, *source.schema.value, *added, *source.schema.headers])
        validate_serdes(schema, source.key, source.value)
        # queries already running keep the schema they were planned with
        self.catalog.add(dataclasses.replace(source, schema=schema), replace=True)
        return StatementResult(statement.text, f"{source.kind.title()} {source.name} altered.")

    # -- lifecycle

    def _execute_DropSource(self, statement: ast.DropSource) -> StatementResult:
        source = self.catalog.find(statement.name)
        if source is None or source.kind != statement.kind:
            if statement.if_exists:
                return StatementResult(statement.text, f"{statement.kind.title()} {statement.name} does not exist.")
            raise StatementError(f"{statement.kind.title()} {statement.name} does not exist")
        if statement.delete_topic and source.is_source:
            raise StatementError(f"Cannot delete topic for read-only source: {source.name}")
        readers = sorted(q for q in source.readers if q in self.queries)
        writers = sorted(q for q in source.writers if q in self.queries)
        if readers or writers:
            raise StatementError(
                f"Cannot drop {source.name}.\nThe following queries read from this source: [{', '.join(readers)}].\n"
                f"The following queries write into this source: [{', '.join(writers)}].\n"
                "You need to terminate them before dropping "
                f"{source.name}."
            )
        self.catalog.drop(source.name)
        if source.kind == "TABLE":
            self.backend.forget_table(source.topic)
        if statement.delete_topic:
            self.backend.delete_topic(source.topic)
        return StatementResult(statement.text, f"Source `{source.name}` (topic: {source.topic}) was dropped.")

    def _execute_Terminate(self, statement: ast.Terminate) -> StatementResult:
        ids = list(self.queries) if statement.query_id is None else [statement.query_id]
        for query_id in ids:
            query = self.queries.pop(query_id, None)
            if query is None:
                raise StatementError(f"Unknown queryId: {query_id}")
            self.backend.stop_query(query_id)
            self.state.drop_query(query_id)
            self.backend.delete_internal_topics(query_id)
            query.plan.source.source.readers.discard(query_id)
            query.sink.writers.discard(query_id)
        return StatementResult(statement.text, "Query terminated.")

    def _execute_SetProperty(self, statement: ast.SetProperty) -> StatementResult:
        self.properties[statement.name] = statement.value
        return StatementResult(statement.text, f"Successfully changed local property '{statement.name}'.")

    def _execute_UnsetProperty(self, statement: ast.UnsetProperty) -> StatementResult:
        self.properties.pop(statement.name, None)
        return StatementResult(statement.text, f"Successfully unset local property '{statement.name}'.")

    def _execute_RunScript(self, statement: ast.RunScript) -> StatementResult:
        with self.script(statement) as script:
            results = self.execute(script)
        return StatementResult(statement.text, "\n".join(r.message for r in results if r.message))

    @contextmanager
    def script(self, statement: ast.RunScript) -> Iterator[str]:
        """The text of the file RUN SCRIPT names, while its statements run. A script that runs itself,
        directly or through others, is an error instead of endless recursion."""
        path = Path(statement.path)
        try:
            text = path.read_text(encoding="utf-8")
            resolved = path.resolve()
        except OSError as error:
            raise StatementError(f"Cannot read script {statement.path}: {error.strerror or error}") from error
        except ValueError as error:  # not UTF-8, or a NUL character in the path
            raise StatementError(f"Cannot read script {statement.path}: {error}") from error
        if resolved in self._running_scripts:
            chain = " -> ".join(str(p) for p in [*self._running_scripts[self._running_scripts.index(resolved):],
                                                 resolved])
            raise StatementError(f"RUN SCRIPT {statement.path} would run a script inside itself: {chain}")
        if len(self._running_scripts) >= MAX_SCRIPT_NESTING:
            raise StatementError(f"RUN SCRIPT {statement.path}: scripts may run inside one another at most "
                                 f"{MAX_SCRIPT_NESTING} deep")
        self._running_scripts.append(resolved)
        try:
            yield text
        finally:
            self._running_scripts.pop()

    def _execute_CreateType(self, statement: ast.CreateType) -> StatementResult:
        if statement.name in self.catalog.types:
            if statement.if_not_exists:
                return StatementResult(statement.text, "")
            raise StatementError(
                f"Cannot register custom type '{statement.name}' since it is already registered with type: "
                f"{self.catalog.types[statement.name]}"
            )
        self.catalog.types[statement.name] = resolve_type(statement.type, self.catalog)
        return StatementResult(statement.text, f"Registered custom type with name '{statement.name}'")

    def _execute_DropType(self, statement: ast.DropType) -> StatementResult:
        if self.catalog.types.pop(statement.name, None) is None and not statement.if_exists:
            raise StatementError(f"Type {statement.name} does not exist.")
        return StatementResult(statement.text, f"Dropped type '{statement.name}'")

    # -- introspection

    def _execute_Show(self, statement: ast.Show) -> StatementResult:
        what = statement.what
        if what in ("STREAMS", "TABLES"):
            kind = what[:-1]
            rows: list[list[Any]] = [
                [s.name, s.topic, s.key.format, s.value.format, s.is_windowed]
                for s in sorted(self.catalog.sources.values(), key=lambda s: s.name)
                if s.kind == kind
            ]
            return StatementResult(statement.text, columns=[f"{kind.title()} Name", "Kafka Topic", "Key Format", "Value Format",
                                                            "Windowed"], rows=rows)
        if what == "TOPICS":
            topics = self.backend.list_topics()
            return StatementResult(
                statement.text, columns=["Kafka Topic", "Partitions"], rows=[[t, n] for t, n in sorted(topics.items())]
            )
        if what == "QUERIES":
            rows = [[q.query_id, q.state, q.sink.topic, q.statement_text] for q in self.queries.values()]
            return StatementResult(statement.text, columns=["Query ID", "Status", "Sink Topic", "Query String"], rows=rows)
        if what == "FUNCTIONS":
            rows = []
            for name in self.registry.names():
                first = self.registry.overloads(name)[0]
                rows.append([name, first.category or "OTHER", first.kind.upper(),
                             first.version if first.user_defined else "", first.author if first.user_defined else "",
                             first.description])
            return StatementResult(statement.text, columns=["Function Name", "Category", "Type", "Version", "Author",
                                                            "Description"], rows=rows)
        if what == "PROPERTIES":
            rows = [[k, str(mask(k, v))] for k, v in sorted(self.properties.items())]
            return StatementResult(statement.text, columns=["Property", "Value"], rows=rows)
        if what == "TYPES":
            rows = [[n, str(t)] for n, t in sorted(self.catalog.types.items())]
            return StatementResult(statement.text, columns=["Type Name", "Schema"], rows=rows)
        raise StatementError(f"SHOW {what} is not supported")

    def _execute_Describe(self, statement: ast.Describe) -> StatementResult:
        if statement.all_sources:
            kind = statement.name[:-1]
            sources = [s for s in self.catalog.sources.values() if s.kind == kind]
        else:
            found = self.catalog.find(statement.name)
            if found is None:
                raise StatementError(f"Could not find STREAM/TABLE '{statement.name}' in the Metastore")
            sources = [found]
        rows: list[list[Any]] = []
        for source in sources:
            for column in source.schema.columns:
                suffix = {Namespace.KEY: "(key)", Namespace.HEADERS: "(headers)", Namespace.VALUE: ""}[column.namespace]
                if column.namespace == Namespace.KEY and source.window is not None:
                    suffix += f" (Window type: {source.window.kind})"
                rows.append([source.name, column.name, f"{column.type} {suffix}".strip()])
        message = "\n".join(
            f"Name: {s.name}\nType: {s.kind}\nKafka topic: {s.topic} (partitions: {s.partitions})\n"
            f"Key format: {s.key.format}\nValue format: {s.value.format}"
            + (f"\nWindow type: {s.window.kind}" if s.window is not None else "")
            + (f"\nTimestamp field: {s.timestamp_column}" if s.timestamp_column else "")
            + (f"\nWritten by: {', '.join(sorted(s.writers))}\nRead by: {', '.join(sorted(s.readers))}" if statement.extended else "")
            for s in sources
        )
        return StatementResult(statement.text, message, columns=["Source", "Field", "Type"], rows=rows)

    def _execute_DescribeFunction(self, statement: ast.DescribeFunction) -> StatementResult:
        overloads = self.registry.overloads(statement.name)
        if not overloads:
            raise StatementError(f"Can't find any functions with the name '{statement.name}'")
        first = overloads[0]
        details = {
            "Name": first.name, "Author": first.author, "Version": first.version, "Overview": first.description,
            "Type": first.kind.upper(), "Source": first.source,
        }
        for overload in overloads:
            if overload.model is not None:
                details.update(overload.model.describe())
                break
        message = "\n".join(f"{label:<12}: {value}" for label, value in details.items())
        rows = [
            [o.signature_text(), str(o.returns) if isinstance(o.returns, SqlType) else "depends on arguments",
             o.description + (f" (parameters: {', '.join(o.param_names)})" if o.param_names else "")
             + (" [vectorized]" if o.vectorized else "")]
            for o in overloads
        ]
        return StatementResult(statement.text, message, columns=["Variation", "Returns", "Description"], rows=rows)

    def _execute_Explain(self, statement: ast.Explain) -> StatementResult:
        if statement.query_id is not None:
            query = self.queries.get(statement.query_id)
            if query is None:
                raise StatementError(f"Query with id:{statement.query_id} does not exist, use SHOW QUERIES to view the full set of queries.")
            return StatementResult(statement.text, f"{query.statement_text}\n\n{query.plan.describe()}")
        inner = statement.statement
        if isinstance(inner, (ast.CreateAsSelect, ast.InsertInto, ast.SelectStatement)):
            sink = inner.name if isinstance(inner, ast.CreateAsSelect) else None
            plan = self._planner().plan(inner.query, sink)
            return StatementResult(statement.text, plan.describe())
        raise StatementError("EXPLAIN needs a query or a query id")

    def plan_transient(self, statement: ast.SelectStatement) -> QueryPlan:
        """Plan a push query (EMIT CHANGES / FINAL), whose rows the backend delivers as they come, or a pull
        query (no EMIT), answered once by pull_rows: over a table from its current rows, over a stream
        from every record its topic holds now."""
        query = statement.query
        if query.emit is not None:
            return self._planner().plan(query)
        check_pull_query(query)
        if query.limit is not None and not self._enabled(PULL_LIMIT_PROPERTY):
            raise StatementError(PULL_LIMIT_DISABLED)
        named = self.catalog.find(query.from_.name) if isinstance(query.from_, ast.SourceRef) else None
        if named is not None:
            check_like_columns(query.where, named.schema)
        try:
            plan = self._planner().plan(query)
        except StatementError as error:
            if query.where is None or "Error in WHERE expression: " not in str(error):
                raise
            raise StatementError(f"{error}\nStatement: {render(query.where)}") from error
        source = plan.source.source
        if source.kind == "TABLE":
            check_key_values(query.where, source.schema)
            lookup = key_lookup(plan)
            if source.window is not None:
                check_window_bounds(query.where, lookup)
            scans = self._enabled(TABLE_SCAN_PROPERTY)
            if not scans and query.where is not None:
                # a range of keys is read by a scan, which range scans allow
                scans = is_key_range_scan(query.where, source.schema, self._enabled(RANGE_SCAN_PROPERTY))
            check_table_scan(source, lookup, scans)
        return plan

    def _enabled(self, flag: str) -> bool:
        """Whether a boolean property that defaults to true is on."""
        return str(self.properties.get(flag, "true")).strip().lower() != "false"

    def pull_rows(self, plan: QueryPlan, query_id: str) -> list[list[Any]]:
        """A planned pull query's rows, once. Any table can be asked, a plain CREATE TABLE too (which ksqlDB
        refuses); when the WHERE pins the key, only those keys are read."""
        pipeline = self.transient_pipeline(plan, query_id)
        source = plan.source.source
        try:
            if source.kind == "TABLE":
                records = self.backend.table_records(source.topic, key_lookup(plan))
            else:
                records = self.backend.topic_records(source.topic)
            return pull_rows(pipeline, records, plan.limit)
        finally:
            self.transient_state.drop_query(query_id)

    def transient_pipeline(self, plan: QueryPlan, query_id: str) -> Pipeline:
        """The operators of a planned push query; its bad records are logged, and its state kept, under `query_id`."""
        plan.query_id = query_id
        plan.properties = dict(self.properties)  # the session's, as for a persistent query: caching, error policies
        source = plan.source.source
        log = self.backend.processing_logger(query_id, source.topic)
        prepare_models(plan)
        return Pipeline(plan, log, None, self._timestamp_parsers(plan), None, self.transient_state,
                        self.default_cache_bytes)

    def functions_in_use(self) -> dict[int, list[str]]:
        """The running persistent queries that call each function overload (keyed by the overload's id)."""
        users: dict[int, list[str]] = {}
        for query in list(self.queries.values()):
            for overload in set(map(id, query.plan.functions())):
                users.setdefault(overload, []).append(query.query_id)
        return users

    def _case_hint(self, name: str) -> str:
        """A hint naming a source that differs only in case, which only a quoted name can reach."""
        similar = sorted(s for s in self.catalog.sources if s.upper() == name.upper() and s != name)
        if not similar:
            return ""
        return f'\nDid you mean "{similar[0]}"? Hint: wrap the source name in double quotes to make it case-sensitive.'

    def source_for_topic(self, topic: str) -> DataSource | None:
        writers = [s for s in self.catalog.sources_on_topic(topic) if s.writers]
        candidates = writers or self.catalog.sources_on_topic(topic)
        return candidates[0] if candidates else None


def check_result_kind(kind: str, plan: QueryPlan) -> None:
    """CREATE STREAM needs a query producing a stream, CREATE TABLE one producing a table (ksqlDB's rule)."""
    produces = "TABLE" if plan.root.is_table else "STREAM"
    if kind != produces:
        raise StatementError(f"Invalid result type. Your SELECT query produces a {produces}. Please use CREATE "
                             f"{produces} AS SELECT statement instead.")
    if plan.source.source.window is not None and plan.source.source.kind == "TABLE":
        raise StatementError("KSQL does not support persistent queries on windowed tables.")


def _inserts_as(value: SqlType, column: SqlType) -> bool:
    """Whether INSERT VALUES takes a value of type `value` into a column of type `column`: as an implicit
    widening would, and a struct whose fields each do so into a field of the column's (the rest null)."""
    if isinstance(value, StructType) and isinstance(column, StructType):
        return all((target := column.field(name)) is not None and _inserts_as(ftype, target)
                   for name, ftype in value.fields)
    return widens_to(value, column)


def _raise_evaluation_error(_row: int, error: BaseException) -> None:
    raise KsqlError(f"Failed to insert values: {error}") from error


def prepare_models(plan: QueryPlan) -> None:
    """Start loading the models the query's UDFs declare, off the query's first batch."""
    for overload in plan.functions():
        if overload.model is not None:
            overload.model.prepare()
