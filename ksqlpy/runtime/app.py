"""The ksqlpy application: broker (embedded or configured) -> clients -> Kafka backend -> engine, with the
command log replayed at start-up and every successful DDL/DML statement appended to it.

`ksqlpy run` and `ksqlpy shell` are thin front ends over KsqlpyApp.
"""

from __future__ import annotations

import gc
import itertools
import logging
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TextIO, TypeVar

from ksqlpy.engine import Engine, PersistentQuery, StatementResult
from ksqlpy.errors import KsqlError
from ksqlpy.functions.loader import LoadResult, UdfLoader
from ksqlpy.functions.registry import FunctionRegistry
from ksqlpy.planning.plan import FilterStep
from ksqlpy.runtime.command_log import COMMAND_TOPIC_CONFIG, Command, CommandLog, command_key, is_recorded
from ksqlpy.runtime.config import RuntimeConfig
from ksqlpy.runtime.process_id import ProcessId
from ksqlpy.runtime.signals import stop_on_signals
from ksqlpy.secrets import mask_statement
from ksqlpy.syntax import ast
from ksqlpy.syntax.parser import parse

if TYPE_CHECKING:
    from ksqlpy.runtime.backend import KafkaBackend
    from ksqlpy.runtime.broker import EmbeddedBroker
    from ksqlpy.runtime.clients import KafkaClients
    from ksqlpy.runtime.worker import QueryStatus
    from ksqlpy.state.rocksdb import RocksDBStoreProvider
    from ksqlpy.types import SqlType

log = logging.getLogger(__name__)
MB = 1024 * 1024
T = TypeVar("T")

PROGRESS_INTERVAL_S = 1.0
FOLLOW_POLL_S = 0.5


class StreamSink(Protocol):
    """Where streamed output goes as it arrives: a push query's header and rows, PRINT's lines."""

    def header(self, columns: list[str], types: list[SqlType]) -> None: ...

    def row(self, values: list[Any]) -> None: ...

    def line(self, text: str) -> None: ...

    def cancelled(self) -> None:
        """Ctrl-C ended the stream (a terminal has echoed ^C where the output stopped)."""


class CollectingSink:
    """Keeps streamed output for the StatementResult when the caller gave no sink of its own."""

    def __init__(self) -> None:
        self.rows: list[list[Any]] = []
        self.lines: list[str] = []

    def header(self, columns: list[str], types: list[SqlType]) -> None:
        pass

    def row(self, values: list[Any]) -> None:
        self.rows.append(values)

    def line(self, text: str) -> None:
        self.lines.append(text)

    def cancelled(self) -> None:
        pass


class KsqlpyApp:
    """One ksqlpy process: call start() (or use as a context manager), then execute() and run_until()."""

    def __init__(self, config: RuntimeConfig, status: TextIO | None = None) -> None:
        self.config = config
        self.status = status if status is not None else sys.stderr
        self.broker: EmbeddedBroker | None = None
        self._clients: KafkaClients | None = None
        self._backend: KafkaBackend | None = None
        self._engine: Engine | None = None
        self._command_log: CommandLog | None = None
        self.udf_loader: UdfLoader | None = None
        self.state: RocksDBStoreProvider | None = None
        self._process_id: ProcessId | None = None
        self._run_state_directory: Path | None = None  # state of this run only (see _state_directory)
        # Replayed commands not yet matched by a statement of this run: what "already recorded" means.
        self._unmatched_replayed: Counter[str] = Counter()
        self._transient_ids = itertools.count()
        self._closed = False
        self._follower: threading.Thread | None = None  # runs other processes' statements (follow_commands)
        self._stop_following = threading.Event()

    # -- lifecycle

    def start(self) -> KsqlpyApp:
        from ksqlpy.runtime.backend import KafkaBackend, KeptTopic
        from ksqlpy.runtime.clients import KafkaClients
        from ksqlpy.state.rocksdb import RocksDBSettings, RocksDBStoreProvider

        try:
            if self.config.bootstrap_servers is None:
                self._start_embedded_broker()
                self._clients = KafkaClients(self.config)
            else:
                self._clients = KafkaClients.connected(self.config)
            state_directory = self._state_directory()
            self._process_id = ProcessId.claim(state_directory)
            self._backend = KafkaBackend(self._clients, self.config, self._process_id.value)
            registry = FunctionRegistry.with_builtins()
            self.state = RocksDBStoreProvider(state_directory, RocksDBSettings.from_properties(self.config.properties))
            engine = self._engine = Engine(self._backend, self.config.properties, registry, durable_state=self.state)
            # Before replay: recovered queries may call UDFs.
            self.udf_loader = UdfLoader(registry, self.config.udf_directories, engine.functions_in_use)
            self._report_udfs(self.udf_loader.scan())
            self._command_log = CommandLog(self._clients, self.config.service_id)
            self._replay()
            self._backend.keep_topic(self._command_log.topic, KeptTopic(1, COMMAND_TOPIC_CONFIG, self._command_log.rewrite))
            self._backend.watch_topics()
            self.udf_loader.start()
        except BaseException:
            self.close()
            raise
        return self

    def _state_directory(self) -> Path:
        """Where this process keeps query state: the configured state directory, under the service id. The
        embedded broker keeps its topics in memory, so local state could never match its changelogs after a
        restart: with it, and no directory configured, state lives in a directory of this run, removed at close."""
        from ksqlpy.state.rocksdb import configured_state_directory, state_directory

        if self.broker is None or configured_state_directory(self.config.properties) is not None:
            return state_directory(self.config.properties) / self.config.service_id
        self._run_state_directory = Path(tempfile.mkdtemp(prefix="ksqlpy-state-"))
        return self._run_state_directory / self.config.service_id

    def _start_embedded_broker(self) -> None:
        from ksqlpy.runtime.broker import EmbeddedBroker

        self.broker = EmbeddedBroker()
        self.config.bootstrap_servers = self.broker.start()
        self.status.write(
            f"ksqlpy: no bootstrap servers configured; started an embedded broker at {self.config.bootstrap_servers}.\n"
            "ksqlpy: it keeps data IN MEMORY ONLY: topics, records and queries are lost when ksqlpy exits.\n"
        )
        self.status.flush()

    def _report_udfs(self, results: list[LoadResult]) -> None:
        for result in results:
            if result.error is not None:
                self.status.write(f"ksqlpy: {result}\n")
        loaded = [f for r in results if r.error is None for f in r.functions]
        if loaded:
            self.status.write(f"ksqlpy: loaded {len(loaded)} UDF(s) from {', '.join(self.config.udf_directories)}\n")
        self.status.flush()

    def _replay(self) -> None:
        """Re-execute every recorded command with the properties it ran with. Query ids come from the
        engine's counter, so each query gets the id (and consumer group) it had before and resumes from
        its committed offsets."""
        commands = self.command_log.replay()
        failures = sum(not self._apply(command) for command in commands)
        if commands:
            self.status.write(
                f"ksqlpy: recovered {len(commands)} statement(s) from {self.command_log.topic}; "
                f"{len(self.engine.queries)} persistent quer{'y' if len(self.engine.queries) == 1 else 'ies'} running"
                + (f" ({failures} recorded statement(s) did not re-apply; -v shows why).\n" if failures else ".\n")
            )
            self.status.flush()

    def _apply(self, command: Command) -> bool:
        """Run a command of the log (replayed, or appended by another process) with the properties it ran
        with; False when it fails, as a copy of a statement two processes raced to run does."""
        session = dict(self.engine.properties)
        self.engine.properties = dict(command.properties)
        try:
            for statement in parse(command.statement):
                self.engine.execute_statement(statement)
        except KsqlError as error:
            log.info("command log: %r did not re-apply: %s", command.statement, error)
            return False
        finally:
            self.engine.properties = session
            self._unmatched_replayed[command_key(command.statement, command.properties)] += 1
        return True

    def follow_commands(self, lock: threading.RLock) -> None:
        """Keep running, from now on, the statements other processes of the service id run (as ksqlDB servers
        share their command topic), each while holding `lock`, the lock around this process's own statements."""
        follower = self.command_log.follow()

        def follow() -> None:
            try:
                while not self._stop_following.is_set():
                    records = follower.new_records(FOLLOW_POLL_S)
                    if not records:
                        continue
                    with lock:
                        for offset, value in records:
                            command = self.command_log.learn(offset, value)
                            if command is not None:
                                self._apply(command)
            finally:
                follower.close()

        self._follower = threading.Thread(target=follow, name="ksqlpy-command-follower", daemon=True)
        self._follower.start()

    def close(self) -> None:
        """Stop every query cleanly (finish the batch, commit, close), then the embedded broker; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stop_following.set()
        if self._follower is not None:
            self._follower.join(10)
        try:
            if self.udf_loader is not None:
                self.udf_loader.stop()
            if self._backend is not None:
                self._backend.close()
            if self.state is not None:
                self.state.close()
            if self._process_id is not None:
                self._process_id.release()
            if self._run_state_directory is not None:
                shutil.rmtree(self._run_state_directory, ignore_errors=True)
            if self._command_log is not None:
                self._command_log.close()
        finally:
            # Clients still alive when their broker goes away log disconnections: destroy them now.
            self._backend = self._engine = self._command_log = self._clients = self.state = self._process_id = None
            self.udf_loader = None  # it holds the engine (to ask which functions are in use)
            gc.unfreeze()  # what the query workers froze (tune_garbage_collector) may be garbage now
            gc.collect()
            if self.broker is not None:
                self.broker.stop()

    def __enter__(self) -> KsqlpyApp:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise KsqlError("ksqlpy is not started")
        return self._engine

    @property
    def backend(self) -> KafkaBackend:
        if self._backend is None:
            raise KsqlError("ksqlpy is not started")
        return self._backend

    @property
    def clients(self) -> KafkaClients:
        if self._clients is None:
            raise KsqlError("ksqlpy is not started")
        return self._clients

    @property
    def command_log(self) -> CommandLog:
        if self._command_log is None:
            raise KsqlError("ksqlpy is not started")
        return self._command_log

    # -- statements

    def execute(self, text: str, sink: StreamSink | None = None) -> list[StatementResult]:
        """Run a script's statements in order; raises at the first failing one (after running those before)."""
        return list(self.execute_iter(text, sink))

    def execute_iter(self, text: str, sink: StreamSink | None = None) -> Iterator[StatementResult]:
        """Like execute(), one result at a time, so callers can show each before the next runs."""
        for statement in parse(text):
            yield self.execute_statement(statement, sink)

    def execute_statement(self, statement: ast.Statement, sink: StreamSink | None = None) -> StatementResult:
        if isinstance(statement, ast.RunScript):
            return self._run_script(statement, sink)
        if isinstance(statement, ast.SelectStatement):
            return self._transient_query(statement, sink)
        if isinstance(statement, ast.Print):
            return self._print(statement, sink)
        if not is_recorded(statement):
            result = self.engine.execute_statement(statement)
            if isinstance(statement, ast.Show) and statement.what == "QUERIES":
                self._add_query_progress(result)
            if isinstance(statement, ast.Describe) and statement.extended:
                self._add_runtime_statistics(statement, result)
            return result
        text = statement_text(statement)
        properties = dict(self.engine.properties)
        key = command_key(text, properties)
        if self._unmatched_replayed[key] > 0:
            self._unmatched_replayed[key] -= 1
            return self._already_recorded(text)
        result = self.engine.execute_statement(statement)
        self.command_log.append(text, properties)
        started = self.engine.queries.get(result.query_id or "")
        if started is not None and self.state is not None and state_kind(started) is not None:
            self.status.write(f"Note: {started.query_id} keeps its {state_kind(started)} state in "
                              f"{self.state.directory / started.query_id}, backed by changelog topics\n")
            self.status.flush()
        return result

    def _already_recorded(self, text: str) -> StatementResult:
        normalized = " ".join(mask_statement(text).split())  # as the engine keeps a query's text
        running = [q.query_id for q in self.engine.queries.values() if " ".join(q.statement_text.split()) == normalized]
        if running:
            return StatementResult(text, f"Already running as query {running[0]} (recorded in the command log).",
                                   query_id=running[0])
        return StatementResult(text, "Already recorded in the command log: not executed again.")

    def _run_script(self, statement: ast.RunScript, sink: StreamSink | None) -> StatementResult:
        with self.engine.script(statement) as script:
            results = self.execute(script, sink)
        return StatementResult(statement.text, "\n".join(r.message for r in results if r.message))

    def _transient_query(self, statement: ast.SelectStatement, sink: StreamSink | None) -> StatementResult:
        plan = self.engine.plan_transient(statement)
        query_id = f"transient_{next(self._transient_ids)}"
        columns = [c.name for c in plan.output.columns]
        collector = CollectingSink()
        target = sink if sink is not None else collector
        if statement.query.emit is None:
            # a pull query: answered once from the table's current rows, then it ends by itself
            rows = self.engine.pull_rows(plan, query_id)
            target.header(columns, [c.type for c in plan.output.columns])
            for row in rows:
                target.row(row)
            return StatementResult(statement.text, columns=columns if sink is None else [], rows=collector.rows)
        pipeline = self.engine.transient_pipeline(plan, query_id)
        target.header(columns, [c.type for c in plan.output.columns])
        try:
            streamed = _stream(self.backend.push_query(plan, pipeline, dict(self.engine.properties)), target.row,
                               target.cancelled)
        finally:
            self.engine.transient_state.drop_query(query_id)
        limit_reached = plan.limit is not None and streamed.delivered >= plan.limit
        message = "Limit Reached" if limit_reached else "Query terminated"
        return StatementResult(statement.text, message, columns=columns if sink is None else [], rows=collector.rows)

    def _print(self, statement: ast.Print, sink: StreamSink | None) -> StatementResult:
        from ksqlpy.runtime.tools import print_topic

        collector = CollectingSink()
        target = sink if sink is not None else collector
        lines = print_topic(self.clients, statement.topic, statement.from_beginning, statement.interval,
                            statement.limit)
        streamed = _stream(lines, target.line, target.cancelled)
        # As ksqlDB's CLI: a PRINT cut short by Ctrl-C says so, like a cancelled push query.
        shown = [*collector.lines, "Query terminated"] if streamed.cancelled else collector.lines
        return StatementResult(statement.text, "\n".join(shown))

    def _add_query_progress(self, result: StatementResult) -> None:
        """SHOW QUERIES with each query's live state and this process's counts from the backend."""
        statuses = self.backend.query_status()
        result.columns = [*result.columns, "Records In", "Records Out", "Lag", "Late Records"]
        for row in result.rows:
            status = statuses.get(row[0])
            if status is None:
                row.extend([None, None, None, None])
            else:
                row[1] = status.state if status.error is None else f"{status.state}: {status.error}"
                row.extend([status.records_in, status.records_out, status.total_lag, status.late_records])

    def _add_runtime_statistics(self, statement: ast.Describe, result: StatementResult) -> None:
        """DESCRIBE ... EXTENDED: the counts of the queries writing each described source, in this process."""
        statuses = self.backend.query_status()
        names = [statement.name] if not statement.all_sources else \
            [s.name for s in self.engine.catalog.sources.values() if s.kind == statement.name[:-1]]
        lines = []
        for name in names:
            source = self.engine.catalog.find(name)
            for query_id in sorted(source.writers if source is not None else ()):
                status = statuses.get(query_id)
                if status is not None:
                    lines.append(f"{name} <- {query_id}: {status_text(status)}")
        if lines and self.state is not None:
            usage = self.state.memory_usage()
            settings = self.state.settings
            lines.append(f"state stores (every query of this process): {self.state.directory}; block cache "
                         f"{usage['block cache'] / MB:.1f} of {settings.block_cache_bytes / MB:.0f} MB, write buffers "
                         f"{usage['write buffers'] / MB:.1f} of {settings.total_write_buffer_bytes / MB:.0f} MB")
        if lines:
            result.message += "\n\nLocal runtime statistics\n------------------------\n" + "\n".join(lines)

    # -- running

    def run_until(self, idle_seconds: float | None = None) -> None:
        """Block while persistent queries run: until Ctrl-C / SIGTERM, or with `idle_seconds` until every
        query holds its partitions and has read its backlog, and then no input has arrived for that long."""
        progress = ProgressLine(self.status)
        started = time.monotonic()
        with stop_on_signals() as stop:
            try:
                while not stop.wait(min(PROGRESS_INTERVAL_S, idle_seconds or PROGRESS_INTERVAL_S)):
                    progress.show(self.progress_text())
                    if idle_seconds is not None:
                        idle_since = self.backend.idle_since()
                        if idle_since is not None and time.monotonic() - max(started, idle_since) >= idle_seconds:
                            break
            except KeyboardInterrupt:  # a second Ctrl-C
                pass
            finally:
                progress.clear()

    def progress_text(self) -> str:
        parts = []
        for query_id, status in sorted(self.backend.query_status().items()):
            part = f"{query_id} in={status.records_in} out={status.records_out} lag={status.total_lag}" + (
                "" if status.late_records is None else f" late={status.late_records}")
            parts.append(part if status.error is None else f"{part} {status.state}: {status.error}")
        return " | ".join(parts) or "no persistent queries"

    def summary_lines(self) -> list[str]:
        """One line per persistent query with its totals in this process (printed when `ksqlpy run` ends)."""
        return [
            f"query {query_id}: state={status.state} records_in={status.records_in} records_out={status.records_out}"
            + ("" if status.late_records is None else f" late_records={status.late_records}")
            + ("" if status.error is None else f" error={status.error}")
            for query_id, status in sorted(self.backend.query_status().items())
        ]


class Streamed(NamedTuple):
    delivered: int
    cancelled: bool


def _stream(items: Iterator[T], deliver: Callable[[T], None], on_cancel: Callable[[], None]) -> Streamed:
    """Deliver items until the stream ends or Ctrl-C cancels it (which cancels the query, not the caller);
    the generator is closed either way, which closes its consumer."""
    delivered = 0
    cancelled = False
    try:
        for item in items:
            deliver(item)
            delivered += 1
    except KeyboardInterrupt:
        cancelled = True
        on_cancel()
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            close()
    return Streamed(delivered, cancelled)


def state_kind(query: PersistentQuery) -> str | None:
    """What state a query keeps between records, if any: an aggregation's, or a table filter's (which rows
    passed, to delete them downstream when they stop passing)."""
    if query.plan.is_stateful:
        return "aggregation"
    if any(isinstance(step, FilterStep) and step.is_table for step in query.plan.walk()):
        return "table filter"
    return None


def status_text(status: QueryStatus) -> str:
    """A query's counts for DESCRIBE EXTENDED; late records only for a query that aggregates."""
    text = f"state: {status.state}  records-in: {status.records_in}  records-out: {status.records_out}  " \
           f"lag: {status.total_lag}"
    if status.late_records is not None:
        text += f"  late-records: {status.late_records}"
    if status.restoring:
        text += "  restoring: " + ", ".join(f"partition {p} at {n} records" for p, n in sorted(status.restoring.items()))
    return text if status.error is None else f"{text}  error: {status.error}"


def statement_text(statement: ast.Statement) -> str:
    """Every concrete statement node carries its source text; the base class does not declare it."""
    return str(getattr(statement, "text", ""))


class ProgressLine:
    """A single status line rewritten in place on a terminal; silent when the stream is not a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.enabled = stream.isatty()
        self._shown = False

    def show(self, text: str) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[2K" + text)
            self.stream.flush()
            self._shown = True

    def clear(self) -> None:
        if self._shown:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self._shown = False
