"""The Prometheus metrics of one ksqlpy process, read live at scrape time from its persistent queries, user
functions, models and state stores: a CollectorRegistry per KsqlpyApp (never the global default registry,
so several apps in one process keep their own), served by the server's `GET /metrics` and by
`ksqlpy run --metrics-port`.

Hot paths keep plain numbers (ksqlpy.counters, once per batch); nothing is converted until a scrape asks.

Per query (label query_id): ksqlpy_query_records_in_total, ksqlpy_query_records_out_total,
ksqlpy_query_late_records_total (aggregations), ksqlpy_query_lag_records (per topic and partition),
ksqlpy_query_state (1 for its state, 0 for the others), ksqlpy_query_partitions,
ksqlpy_query_batch_duration_seconds (histogram), ksqlpy_query_restored_records (per partition being restored),
ksqlpy_query_state_disk_bytes, and ksqlpy_processing_log_entries_total (per query and level).
Per process: ksqlpy_state_memory_bytes and ksqlpy_state_memory_limit_bytes (per kind).
Per user function (label function): ksqlpy_function_rows_total, ksqlpy_function_errors_total,
ksqlpy_function_batch_duration_seconds (histogram). Per model function: ksqlpy_model_score (histogram,
labels model, version, function), whose shift over time is the model's drift.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from ksqlpy.counters import Histogram, ModelKey
from ksqlpy.functions.registry import FunctionRegistry

if TYPE_CHECKING:
    from ksqlpy.runtime.app import KsqlpyApp
    from ksqlpy.runtime.worker import QueryStatus

logger = logging.getLogger(__name__)

QUERY_STATES = ("RUNNING", "ERROR", "NOT_RUNNING")


def histogram_buckets(histogram: Histogram) -> list[tuple[str, float]]:
    """A histogram's counts as Prometheus' cumulative buckets, `+Inf` last."""
    buckets: list[tuple[str, float]] = []
    running = 0
    for bound, count in zip(histogram.bounds, histogram.counts, strict=False):
        running += count
        buckets.append((repr(float(bound)), running))
    buckets.append(("+Inf", running + histogram.counts[-1]))
    return buckets


def directory_bytes(directory: Path) -> int:
    """The size of the files under `directory` (0 when there is none); files vanishing meanwhile are skipped."""
    total = 0
    for root, _dirs, files in os.walk(directory):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:  # a compaction removed it between the listing and the stat
                continue
    return total


class KsqlpyCollector(Collector):
    """Reads the app's figures when the registry is scraped."""

    def __init__(self, app: KsqlpyApp) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        statuses = self.app.backend.query_status()
        yield from self._queries(statuses)
        yield self._processing_log()
        yield from self._state(statuses)
        yield from self._functions(self.app.engine.registry)

    def _queries(self, statuses: dict[str, QueryStatus]) -> Iterator[Metric]:
        records_in = CounterMetricFamily("ksqlpy_query_records_in", "Records the query read from its sources "
                                         "in this process.", labels=["query_id"])
        records_out = CounterMetricFamily("ksqlpy_query_records_out", "Records the query wrote to its sink "
                                          "in this process.", labels=["query_id"])
        late = CounterMetricFamily("ksqlpy_query_late_records", "Records an aggregation dropped because "
                                   "their window had closed.", labels=["query_id"])
        lag = GaugeMetricFamily("ksqlpy_query_lag_records", "Records in a source partition not yet committed "
                                "by the query (best effort).", labels=["query_id", "topic", "partition"])
        state = GaugeMetricFamily("ksqlpy_query_state", "1 for the query's state, 0 for the others.",
                                  labels=["query_id", "state"])
        partitions = GaugeMetricFamily("ksqlpy_query_partitions", "Source partitions this process holds "
                                       "for the query.", labels=["query_id"])
        batches = HistogramMetricFamily("ksqlpy_query_batch_duration_seconds", "Time to process one batch: "
                                        "run the query over it and hand its output to the producer.",
                                        labels=["query_id"])
        restored = GaugeMetricFamily("ksqlpy_query_restored_records", "Changelog records restored so far into "
                                     "a partition's state store, while it is being restored.",
                                     labels=["query_id", "partition"])
        for query_id, status in sorted(statuses.items()):
            records_in.add_metric([query_id], status.records_in)
            records_out.add_metric([query_id], status.records_out)
            if status.late_records is not None:
                late.add_metric([query_id], status.late_records)
            for (topic, partition), behind in sorted(status.lag.items()):
                lag.add_metric([query_id, topic, str(partition)], behind)
            for name in QUERY_STATES:
                state.add_metric([query_id, name], 1 if status.state == name else 0)
            partitions.add_metric([query_id], len(status.partitions))
            batches.add_metric([query_id], histogram_buckets(status.batch_seconds), status.batch_seconds.total)
            for partition, count in sorted(status.restoring.items()):
                restored.add_metric([query_id, str(partition)], count)
        yield from (records_in, records_out, late, lag, state, partitions, batches, restored)

    def _processing_log(self) -> Metric:
        entries = CounterMetricFamily("ksqlpy_processing_log_entries", "Processing log entries written: "
                                      "records a query could not process (ERROR) or dropped as expected "
                                      "(DEBUG).", labels=["query_id", "level"])
        for (query_id, level), count in sorted(self.app.backend.processing_log_counts().items()):
            entries.add_metric([query_id, level], count)
        return entries

    def _state(self, statuses: dict[str, QueryStatus]) -> Iterator[Metric]:
        provider = self.app.state
        if provider is None:
            return
        memory = GaugeMetricFamily("ksqlpy_state_memory_bytes", "Memory the state stores of every query of "
                                   "this process hold, by kind.", labels=["kind"])
        limit = GaugeMetricFamily("ksqlpy_state_memory_limit_bytes", "The bound set on that memory, by kind.",
                                  labels=["kind"])
        usage = provider.memory_usage()
        bounds = {"block cache": provider.settings.block_cache_bytes,
                  "write buffers": provider.settings.total_write_buffer_bytes}
        for kind, used in sorted(usage.items()):
            memory.add_metric([kind.replace(" ", "_")], used)
            limit.add_metric([kind.replace(" ", "_")], bounds[kind])
        disk = GaugeMetricFamily("ksqlpy_query_state_disk_bytes", "Bytes of the query's state stores on this "
                                 "process's disk.", labels=["query_id"])
        for query_id in sorted(statuses):
            disk.add_metric([query_id], directory_bytes(provider.directory / query_id))
        yield from (memory, limit, disk)

    def _functions(self, registry: FunctionRegistry) -> Iterator[Metric]:
        rows = CounterMetricFamily("ksqlpy_function_rows", "Rows a user function was called on (a vectorized "
                                   "function takes a batch of them in one call).", labels=["function"])
        errors = CounterMetricFamily("ksqlpy_function_errors", "Rows a user function failed on (it raised, or "
                                     "returned a value of the wrong type): NULL, logged.", labels=["function"])
        seconds = HistogramMetricFamily("ksqlpy_function_batch_duration_seconds", "Time a user function took "
                                        "over one batch (a row function: the expression calling it).",
                                        labels=["function"])
        scores = HistogramMetricFamily("ksqlpy_model_score", "Numeric results of a function backed by a model, "
                                       "per model version: their distribution shifting is the model drifting.",
                                       labels=["model", "version", "function"])
        for name in registry.names():
            overloads = [o for o in registry.overloads(name) if o.user_defined and o.kind != "aggregate"]
            if not overloads:
                continue
            total_rows = total_errors = 0
            time_taken: Histogram | None = None
            by_model: dict[ModelKey, Histogram] = {}
            for overload in overloads:
                called, failed, took, scored = overload.stats.snapshot()
                total_rows += called
                total_errors += failed
                time_taken = _added(time_taken, took)
                for key, histogram in scored.items():
                    by_model[key] = _added(by_model.get(key), histogram)
            rows.add_metric([name], total_rows)
            errors.add_metric([name], total_errors)
            if time_taken is not None:
                seconds.add_metric([name], histogram_buckets(time_taken), time_taken.total)
            for (model, version), histogram in sorted(by_model.items()):
                scores.add_metric([model, version, name], histogram_buckets(histogram), histogram.total)
        yield from (rows, errors, seconds, scores)


def _added(into: Histogram | None, histogram: Histogram) -> Histogram:
    """`into` with `histogram`'s observations added (a copy of `histogram` when there is nothing yet)."""
    if into is None:
        return histogram.copy()
    into.add(histogram)
    return into


def app_registry(app: KsqlpyApp) -> CollectorRegistry:
    """A registry of its own for the app, whose every scrape reads the app's figures as they are then."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(KsqlpyCollector(app))
    return registry


def serve_metrics(app: KsqlpyApp, port: int, host: str = "127.0.0.1") -> Callable[[], None]:
    """Serve the app's metrics over HTTP on `host:port` (`GET /metrics`, or any path) from a thread of its own;
    returns what stops it."""
    server, thread = start_http_server(port, host, app_registry(app))
    logger.info("metrics served on http://%s:%d/metrics", host, server.server_port)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return stop

