"""The server's KsqlService over the in-memory driver, so REST-flavour conformance cases run through a real
HTTP server without Kafka: statements run on the driver's engine, persistent queries are driven to the end
of their input after each, and a push query follows its topics in the driver, taking each record written
after it started (or every record, from 'earliest')."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import Any

from ksqlpy.driver import InMemoryDriver
from ksqlpy.engine import Engine
from ksqlpy.errors import StatementError
from ksqlpy.execution.pipeline import RecordBatch
from ksqlpy.planning.plan import query_property
from ksqlpy.runtime.push import limited, push_rows
from ksqlpy.runtime.worker import RUNNING, QueryStatus
from ksqlpy.server.cluster import HostStatus
from ksqlpy.server.service import EngineService, TransientQuery
from ksqlpy.syntax import ast

POLL_INTERVAL_S = 0.02


class InMemoryService(EngineService):
    """KsqlService over an InMemoryDriver (see the module docstring). `active_push_queries` counts the push
    queries following their topics, for a caller that must write records only once one is running."""

    def __init__(self, driver: InMemoryDriver, service_id: str = "ksqlpy_in_memory_") -> None:
        super().__init__()
        self.driver = driver
        self.active_push_queries = 0
        self._service_id = service_id

    @property
    def engine(self) -> Engine:
        return self.driver.engine

    @property
    def service_id(self) -> str:
        return self._service_id

    @property
    def kafka_cluster_id(self) -> str:
        return "in-memory"

    def _written(self) -> None:
        self.driver.process()

    def push(self, query: TransientQuery, properties: Mapping[str, Any], cancel: threading.Event,
             ready: threading.Event | None = None) -> Iterator[list[Any]]:
        return limited(self._pushed_rows(query, properties, cancel, ready), query.plan.limit)

    def _pushed_rows(self, query: TransientQuery, properties: Mapping[str, Any], cancel: threading.Event,
                     ready: threading.Event | None) -> Generator[list[Any], None, None]:
        plan = query.plan
        topics = list(dict.fromkeys(plan.input_topics))
        rows_of = push_rows(plan)
        with self.lock:
            pipeline = self.engine.transient_pipeline(plan, query.query_id)
            merged = {**self.engine.properties, **properties}
            self.driver.follow(query.query_id, topics, query_property(merged, "auto.offset.reset", "latest") == "earliest")
            self.active_push_queries += 1
        if ready is not None:
            ready.set()
        try:
            while not cancel.is_set():
                with self.lock:
                    runs = self.driver.new_input(query.query_id, topics)
                    rows: list[list[Any]] = []
                    for run in runs:
                        rows += rows_of(*pipeline.rows(RecordBatch.of(run)))
                if not rows:
                    time.sleep(POLL_INTERVAL_S)
                    continue
                yield from rows
        finally:
            with self.lock:
                self.active_push_queries -= 1
                self.driver.unfollow(query.query_id)
                self.engine.transient_state.drop_query(query.query_id)

    def print_topic(self, statement: ast.Print, cancel: threading.Event, ready: threading.Event) -> Iterator[str]:
        raise StatementError("PRINT needs a Kafka broker: the in-memory service cannot print topics")

    def query_status(self) -> Mapping[str, QueryStatus]:
        return {query_id: QueryStatus(RUNNING) for query_id in self.engine.queries}

    def is_healthy(self) -> bool:
        return True

    def join_cluster(self, url: str, describe_self: Callable[[], HostStatus]) -> None:
        return None  # one in-memory engine per server: nothing to share
