"""What the HTTP layer asks of the engine and its runtime, behind one small interface: run a statement, plan
and run a transient (pull or push) query, and report the server's identity and its queries' health.

`AppService` serves it from a KsqlpyApp (Kafka: statements recorded in the command topic, push queries read
from the broker). Every call that touches the engine's catalog holds one lock: the engine is not thread-safe,
and HTTP requests arrive on many threads. A push query is planned under the lock and then streams without it.
"""

from __future__ import annotations

import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ksqlpy.engine import Engine, StatementResult
from ksqlpy.planning.catalog import DataSource
from ksqlpy.planning.plan import QueryPlan, query_property
from ksqlpy.server.cluster import Cluster, HostStatus
from ksqlpy.syntax import ast

if TYPE_CHECKING:
    from ksqlpy.runtime.app import KsqlpyApp
    from ksqlpy.runtime.worker import QueryStatus


@dataclass
class TransientQuery:
    """A planned SELECT: pull (answered once from a table's rows) or push (EMIT CHANGES, streamed)."""

    query_id: str
    plan: QueryPlan
    is_pull: bool

    @classmethod
    def of(cls, statement: ast.SelectStatement, plan: QueryPlan, properties: Mapping[str, Any]) -> TransientQuery:
        """The query with an id as ksqlDB names it: a push query that only follows, from now on, what a
        persistent query writes is a scalable push query (`SCALABLE_PUSH_QUERY_…`); the others are
        `transient_<SOURCE>_…`."""
        is_pull = statement.query.emit is None
        source = plan.source.source
        scalable = not is_pull and bool(source.writers) and not plan.is_stateful and len(plan.sources) == 1 \
            and query_property(properties, "auto.offset.reset", "latest") == "latest"
        suffix = uuid.uuid4().int % 10**18
        return cls(f"SCALABLE_PUSH_QUERY_{suffix}" if scalable else f"transient_{source.name}_{suffix}", plan, is_pull)


class KsqlService(Protocol):
    """The engine and runtime as the server sees them."""

    @property
    def engine(self) -> Engine: ...

    @property
    def service_id(self) -> str: ...

    @property
    def kafka_cluster_id(self) -> str: ...

    def execute(self, statement: ast.Statement, properties: Mapping[str, Any]) -> StatementResult:
        """Run one statement (not a SELECT) with request-scoped property overrides."""
        ...

    def plan_query(self, statement: ast.SelectStatement, properties: Mapping[str, Any]) -> TransientQuery: ...

    def pull(self, query: TransientQuery) -> list[list[Any]]: ...

    def push(self, query: TransientQuery, properties: Mapping[str, Any], cancel: threading.Event,
             ready: threading.Event | None = None) -> Iterator[list[Any]]:
        """The push query's rows as they arrive, until its LIMIT or `cancel`; the iterator's close() frees it."""
        ...

    def print_topic(self, statement: ast.Print, cancel: threading.Event, ready: threading.Event) -> Iterator[str]:
        """PRINT's lines as the topic's records arrive, until its LIMIT or `cancel`; `ready` is set once the
        topic is found."""
        ...

    def insert_target(self, name: str) -> DataSource:
        """The stream or table rows may be inserted into, as INSERT VALUES finds it."""
        ...

    def insert_row(self, target: DataSource, values: Mapping[str, Any]) -> None:
        """Write one row (values by column name) to the target, as INSERT VALUES does."""
        ...

    def query_status(self) -> Mapping[str, QueryStatus]: ...

    def is_healthy(self) -> bool: ...

    def join_cluster(self, url: str, describe_self: Callable[[], HostStatus]) -> Cluster | None:
        """Membership of the service's cluster, started (None where servers cannot share a service id)."""
        ...


class EngineService(ABC):
    """What every KsqlService does the same way over its engine, under one lock: request-scoped properties,
    statements, planning, pull queries and inserts. `_written` runs after anything that writes records."""

    def __init__(self) -> None:
        self.lock = threading.RLock()

    @property
    @abstractmethod
    def engine(self) -> Engine: ...

    @contextmanager
    def _overrides(self, properties: Mapping[str, Any]) -> Iterator[None]:
        """The request's streamsProperties over the server's, for the statements of that request only."""
        engine = self.engine
        saved = dict(engine.properties)
        engine.properties.update(properties)
        try:
            yield
        finally:
            engine.properties.clear()
            engine.properties.update(saved)

    def execute(self, statement: ast.Statement, properties: Mapping[str, Any]) -> StatementResult:
        with self.lock, self._overrides(properties):
            result = self._run_statement(statement)
            self._written()
            return result

    def _run_statement(self, statement: ast.Statement) -> StatementResult:
        return self.engine.execute_statement(statement)

    @abstractmethod
    def _written(self) -> None:
        """Records were written (the in-memory engine then runs its queries over them)."""

    def plan_query(self, statement: ast.SelectStatement, properties: Mapping[str, Any]) -> TransientQuery:
        with self.lock, self._overrides(properties):
            plan = self.engine.plan_transient(statement)
            return TransientQuery.of(statement, plan, self.engine.properties)

    def pull(self, query: TransientQuery) -> list[list[Any]]:
        with self.lock:
            return self.engine.pull_rows(query.plan, query.query_id)

    def insert_target(self, name: str) -> DataSource:
        with self.lock:
            return self.engine.insert_target(name)

    def insert_row(self, target: DataSource, values: Mapping[str, Any]) -> None:
        with self.lock:
            self.engine.insert_row(target, values)
            self._written()


class AppService(EngineService):
    """KsqlService over a started KsqlpyApp."""

    def __init__(self, app: KsqlpyApp) -> None:
        super().__init__()
        self.app = app
        # A statement sent to any server of the service id takes effect in every one.
        app.follow_commands(self.lock)

    @property
    def engine(self) -> Engine:
        return self.app.engine

    @property
    def service_id(self) -> str:
        return self.app.config.service_id

    @property
    def kafka_cluster_id(self) -> str:
        return self.app.backend.cluster_id()

    def _run_statement(self, statement: ast.Statement) -> StatementResult:
        return self.app.execute_statement(statement)  # recorded in the command topic

    def _written(self) -> None:
        """Nothing to do: the queries' workers read what was written from the broker."""

    def push(self, query: TransientQuery, properties: Mapping[str, Any], cancel: threading.Event,
             ready: threading.Event | None = None) -> Iterator[list[Any]]:
        with self.lock:
            pipeline = self.engine.transient_pipeline(query.plan, query.query_id)
            merged = {**self.engine.properties, **properties}
        try:
            yield from self.app.backend.push_query(query.plan, pipeline, merged, query.plan.limit, cancel, ready)
        finally:
            with self.lock:
                self.engine.transient_state.drop_query(query.query_id)

    def print_topic(self, statement: ast.Print, cancel: threading.Event, ready: threading.Event) -> Iterator[str]:
        from ksqlpy.runtime.tools import print_topic

        if self.app.backend.topic_partitions(statement.topic) is not None:
            ready.set()  # else print_topic says the topic is missing before its first line
        yield from print_topic(self.app.clients, statement.topic, statement.from_beginning, statement.interval,
                               statement.limit, cancel=cancel)

    def query_status(self) -> Mapping[str, QueryStatus]:
        return self.app.backend.query_status()

    def is_healthy(self) -> bool:
        return self.app.backend.is_reachable()

    def join_cluster(self, url: str, describe_self: Callable[[], HostStatus]) -> Cluster | None:
        return Cluster(self.app.clients, self.service_id, url, describe_self).start()
