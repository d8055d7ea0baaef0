"""`ksqlpy demo`: simulated cars -> (Mosquitto -> MQTT bridge ->) Kafka -> queries/anomaly_detection.sql -> alerts.

Starts ksqlpy as `ksqlpy run` does (an embedded broker unless one is configured, UDFs from --udfs-dir), runs
the SQL file, then feeds it: through a Mosquitto started on a free loopback port and the MQTT bridge when
mosquitto is installed, straight into Kafka otherwise; first the cars' registry rows, and the readings only
once those are on Kafka, so every alert finds its car's model, owner and region. Alerts are read with a push
query on the alerts stream and printed one line each, pages (a car with 3 or more anomalies in a minute)
with one on the pages table, once per car and minute; after --duration seconds (or Ctrl-C) the readings
still in the pipeline are given a few seconds to come through, everything is stopped, and a summary says
how many alerts were real failures and how many pages were sent.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from ksqlpy.connect.lifecycle import configure_logging
from ksqlpy.connect.mosquitto import MosquittoBroker, find_mosquitto
from ksqlpy.connect.mqtt import DEFAULT_KAFKA_TOPIC, REGISTRY_KAFKA_TOPIC, BridgeSettings, MqttKafkaBridge
from ksqlpy.demo.simulate import (
    KafkaSink,
    MqttSink,
    ReadingSink,
    SimulationStats,
    car_readings,
    publish_registry,
    simulate,
)
from ksqlpy.errors import KsqlError
from ksqlpy.runtime.app import KsqlpyApp
from ksqlpy.runtime.config import RuntimeConfig, load_config
from ksqlpy.runtime.signals import stop_on_signals
from ksqlpy.syntax import ast
from ksqlpy.syntax.parser import parse

PROGRAM = "ksqlpy demo"
SQL_FILE = "queries/anomaly_detection.sql"
UDF_DIRECTORY = "udfs"
ALERTS_STREAM = "car_anomalies"
PAGES_TABLE = "car_pages"
REQUIRED_FUNCTIONS = ("ANOMALY_SCORE", "IS_ANOMALY")
DEMO_SERVICE_ID = "ksqlpy_demo_"  # the demo's statements stay out of the default service's command log
BRIDGE_CLIENT_ID = "ksqlpy-demo-bridge"
DRAIN_TIMEOUT_S = 15.0
DRAIN_POLL_S = 0.5
HEARTBEAT_S = 10.0
SUBSCRIBE_TIMEOUT_S = 20.0
REGISTRY_TIMEOUT_S = 20.0
# Alerts and pages are printed by two threads: each line is written whole under this lock.
OUTPUT_LOCK = threading.Lock()
# The checkout this module belongs to: the SQL file and udfs/ are found there when not in the current directory.
CHECKOUT = Path(__file__).resolve().parents[2]


def bundled(relative: str) -> str:
    """`relative` in the current directory when it exists there, else in the ksqlpy checkout."""
    if Path(relative).exists() or not (CHECKOUT / relative).exists():
        return relative
    return str(CHECKOUT / relative)


class BackgroundTask:
    """A daemon-less thread that keeps the exception it ended with, for the main thread to report."""

    def __init__(self, name: str, target: Callable[[], Any]) -> None:
        self.error: BaseException | None = None
        self._target = target
        self._thread = threading.Thread(target=self._run, name=name)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._target()
        except BaseException as error:
            self.error = error

    def join(self, timeout: float = 30.0) -> None:
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


@dataclass
class AlertCounts:
    seen: int = 0  # rows read from the alerts stream, older runs' included
    alerts: int = 0  # alerts on readings of this run
    real_failures: int = 0  # of those, on readings labelled failure_occurred = "true"
    page_rows_seen: int = 0  # rows read from the pages table: every update of a car's count, older runs' included
    pages: int = 0  # cars paged in this run, once per car and minute


def format_alert(row: dict[str, Any]) -> str:
    """One readable line per alert: car with its registry row, reading time (local), score, and whether it
    was a real failure."""
    moment = datetime.fromtimestamp(row["TS"] / 1000).strftime("%H:%M:%S.%f")[:-3]
    verdict = "real failure" if row["FAILURE_OCCURRED"] == "true" else "false alarm"
    car = "not in the registry" if row["MODEL"] is None else \
        f"{row['MODEL']}, owner {row['OWNER']}, region {row['REGION']}"
    return (f"ALERT {row['CAR_ID']} ({car})  at {moment}  anomaly score {row['ANOMALY_SCORE']:.5f}  "
            f"failure_occurred={row['FAILURE_OCCURRED']} ({verdict})")


def format_page(row: dict[str, Any]) -> str:
    """One readable line per page: car, its anomalies so far in the minute, and the minute (local time)."""
    minute = datetime.fromtimestamp(row["WINDOWSTART"] / 1000).strftime("%H:%M")
    return f"PAGE: {row['CAR_ID']} had {row['ANOMALIES']} anomalies in the minute starting {minute}"


def show(line: str, out: TextIO) -> None:
    with OUTPUT_LOCK:
        print(line, file=out, flush=True)


def push_rows(app: KsqlpyApp, text: str, name: str, cancel: threading.Event) -> Iterator[dict[str, Any]]:
    """The rows of the push query `text`, by column name, from the start of its source until `cancel` is set:
    rows written before the reader was positioned are not missed."""
    statement = parse(text)[0]
    assert isinstance(statement, ast.SelectStatement)
    plan = app.engine.plan_transient(statement)
    pipeline = app.engine.transient_pipeline(plan, name)
    columns = [column.name for column in plan.output.columns]
    for values in app.backend.push_query(plan, pipeline, {"auto.offset.reset": "earliest"}, cancel=cancel):
        yield dict(zip(columns, values, strict=True))


def stream_alerts(app: KsqlpyApp, since_ms: int, out: TextIO, counts: AlertCounts, cancel: threading.Event) -> None:
    """Print the alerts stream's rows for readings taken since `since_ms` until `cancel` is set."""
    text = (f"SELECT car_id, ts, anomaly_score, failure_occurred, model, owner, region FROM {ALERTS_STREAM} "
            "EMIT CHANGES;")
    for row in push_rows(app, text, "demo_alerts", cancel):
        counts.seen += 1
        # A cluster used before holds older runs' alerts: those are counted as read, not shown.
        if row["TS"] < since_ms:
            continue
        counts.alerts += 1
        counts.real_failures += row["FAILURE_OCCURRED"] == "true"
        show(format_alert(row), out)


def stream_pages(app: KsqlpyApp, since_ms: int, out: TextIO, counts: AlertCounts, cancel: threading.Event) -> None:
    """Page once per car and minute, on the first row of the pages table for it, for minutes that end after
    `since_ms`. That row says 3 anomalies, or more when the record cache merged updates; the table's further
    updates of that minute's count are read but not printed: an operator is paged once, not per anomaly."""
    text = f"SELECT car_id, windowstart, windowend, anomalies FROM {PAGES_TABLE} EMIT CHANGES;"
    paged: set[tuple[str, int]] = set()
    for row in push_rows(app, text, "demo_pages", cancel):
        counts.page_rows_seen += 1
        car_minute = (row["CAR_ID"], row["WINDOWSTART"])
        if row["WINDOWEND"] <= since_ms or car_minute in paged:
            continue
        paged.add(car_minute)
        counts.pages += 1
        show(format_page(row), out)


def pipeline_settled(app: KsqlpyApp, stats: SimulationStats, counts: AlertCounts) -> bool:
    """Whether every persistent query has read what was written to its sources in this run (the sensor topic
    got the readings sent, the registry topic the rows), and every alert and pages-table row written has
    been read."""
    statuses = app.backend.query_status()
    queries = {query_id: app.engine.queries[query_id] for query_id in statuses if query_id in app.engine.queries}
    written: dict[str, int] = {DEFAULT_KAFKA_TOPIC: stats.sent, REGISTRY_KAFKA_TOPIC: stats.registered}
    for query_id, query in queries.items():
        written[query.sink.topic] = written.get(query.sink.topic, 0) + statuses[query_id].records_out
    for query_id, query in queries.items():
        if statuses[query_id].records_in < sum(written.get(topic, 0) for topic in query.plan.input_topics):
            return False

    def written_to(sink: str) -> int:
        return sum(statuses[query_id].records_out for query_id, query in queries.items()
                   if query.sink.name.upper() == sink.upper())

    return counts.seen >= written_to(ALERTS_STREAM) and counts.page_rows_seen >= written_to(PAGES_TABLE)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="The anomaly-detection pipeline end to end: simulated cars -> Mosquitto -> MQTT bridge -> "
                    "Kafka -> ANOMALY_SCORE / IS_ANOMALY in SQL -> alerts printed as they arrive, and a page "
                    "for a car with 3 or more anomalies within a minute. Without "
                    "mosquitto installed (or with --no-mqtt) the simulator writes to Kafka directly.")
    parser.add_argument("--cars", type=int, default=10, help="number of simulated cars (10)")
    parser.add_argument("--rate", type=float, default=20.0, help="readings per second, all cars together (20)")
    parser.add_argument("--duration", type=float, metavar="S", help="simulate for S seconds (default: until Ctrl-C)")
    parser.add_argument("--failure-rate", type=float, default=0.05, help="share of readings during a failure (0.05)")
    parser.add_argument("--seed", type=int, default=42, help="random seed of the simulator (42)")
    parser.add_argument("--no-mqtt", action="store_true", help="skip Mosquitto and the bridge even when installed")
    parser.add_argument("--sql", default=SQL_FILE, metavar="FILE", help=f"the statements to run ({SQL_FILE})")
    parser.add_argument("--bootstrap-servers", metavar="B", help="Kafka bootstrap servers (default: embedded broker)")
    parser.add_argument("--config", metavar="FILE", help="name=value settings: ksql properties and librdkafka settings")
    parser.add_argument("-p", "--property", action="append", default=[], metavar="NAME=VALUE",
                        help="a ksql property or librdkafka setting (repeatable)")
    parser.add_argument("--service-id", default=DEMO_SERVICE_ID, metavar="ID", help=f"ksqlpy service id ({DEMO_SERVICE_ID})")
    parser.add_argument("--udfs-dir", action="append", default=[], metavar="DIR",
                        help=f"a directory of UDF modules (repeatable; default: ./{UDF_DIRECTORY})")
    parser.add_argument("-v", "--verbose", action="store_true", help="log query starts and librdkafka's own log")
    return parser


def _status(text: str) -> None:
    print(f"{PROGRAM}: {text}", file=sys.stderr, flush=True)


def main(argv: Sequence[str], out: TextIO | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(argv))
    if args.cars < 1 or args.rate <= 0 or (args.duration is not None and args.duration < 0):
        parser.error("--cars must be at least 1, --rate positive and --duration not negative")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="ksqlpy: %(message)s")
    configure_logging(PROGRAM, args.verbose)
    try:
        sql = Path(bundled(args.sql)).read_text(encoding="utf-8")
        config = load_config(args.bootstrap_servers, args.config, args.property, args.service_id,
                             udf_directories=args.udfs_dir or [bundled(UDF_DIRECTORY)])
        with stop_on_signals() as stop:
            return _run_demo(args, sql, config, stop, out or sys.stdout)
    except OSError as error:
        _status(f"cannot read {error.filename}: {error.strerror}")
        return 2
    except KsqlError as error:
        _status(f"Error: {error}")
        return 1
    except KeyboardInterrupt:
        return 130


def _run_demo(args: argparse.Namespace, sql: str, config: RuntimeConfig, stop: threading.Event, out: TextIO) -> int:
    with ExitStack() as stack:
        app = KsqlpyApp(config).start()
        stack.callback(app.close)
        missing = [name for name in REQUIRED_FUNCTIONS if not app.engine.registry.exists(name)]
        if missing:
            raise KsqlError(f"{' and '.join(missing)} not found in {', '.join(config.udf_directories)}: run from the "
                            "repository root or pass --udfs-dir pointing at the directory with anomaly.py")
        for result in app.execute_iter(sql):
            if result.message:
                _status(result.message)
        started_ms = int(time.time() * 1000)
        counts = AlertCounts()
        cancel_readers = threading.Event()
        readers = [BackgroundTask("demo-alerts", lambda: stream_alerts(app, started_ms, out, counts, cancel_readers))]
        # A --sql file of one's own may define no pages table: then there is nothing to page on.
        if app.engine.catalog.find(PAGES_TABLE.upper()) is not None:
            readers.append(BackgroundTask("demo-pages", lambda: stream_pages(app, started_ms, out, counts, cancel_readers)))
        for reader in readers:
            stack.callback(reader.join)
        stack.callback(cancel_readers.set)
        sink, bridge = _feed(args, app, stack)
        stats = SimulationStats()
        publish_registry(sink, args.cars, args.seed, stats)
        if bridge is not None:
            _await_bridged(bridge, stats.registered)
        _status(f"registry of {stats.registered} cars (model, owner, region) on Kafka topic {REGISTRY_KAFKA_TOPIC}")
        stop_simulator = threading.Event()
        readings = car_readings(args.cars, args.rate, args.failure_rate, args.seed, None)
        simulator = BackgroundTask("demo-simulator", lambda: simulate(readings, sink, args.rate, stop_simulator, stats))
        _status(f"{args.cars} cars, {args.rate:g} readings/s to {sink.target}; alerts and pages below"
                + (f" for {args.duration:g}s" if args.duration is not None else "; Ctrl-C stops"))
        failed = _wait(stop, args.duration, [simulator, *readers], stats, counts)
        stop_simulator.set()
        simulator.join()
        sink.close()
        if not failed:
            _drain(app, stats, counts)
    # Everything is stopped (alerts reader, bridge, queries, brokers) when the ExitStack closes above.
    print(f"\nreadings sent: {stats.sent} ({stats.failures} during a failure); alerts: {counts.alerts}, "
          f"{counts.real_failures} on real failures; pages: {counts.pages}", file=out, flush=True)
    if failed is not None:
        _status(f"Error: {failed}")
        return 1
    return 0


def _feed(args: argparse.Namespace, app: KsqlpyApp, stack: ExitStack) -> tuple[ReadingSink, MqttKafkaBridge | None]:
    """Where the simulator writes: a fresh Mosquitto bridged into Kafka (the bridge returned too), or Kafka itself."""
    binary = None if args.no_mqtt else find_mosquitto()
    if binary is None:
        if not args.no_mqtt:
            _status("mosquitto is not installed: the simulator writes to Kafka directly (apt-get install mosquitto "
                    "for the MQTT leg)")
        return KafkaSink(app.clients, DEFAULT_KAFKA_TOPIC), None
    mosquitto = stack.enter_context(MosquittoBroker(binary))
    assert mosquitto.port is not None
    _status(f"started mosquitto on {mosquitto.host}:{mosquitto.port}")
    bridge = MqttKafkaBridge(BridgeSettings(mosquitto.host, mosquitto.port, client_id=BRIDGE_CLIENT_ID), app.clients)
    stop_bridge = threading.Event()
    task = BackgroundTask("demo-bridge", lambda: bridge.run(stop_bridge))
    stack.callback(task.join)
    stack.callback(stop_bridge.set)
    if not bridge.subscribed.wait(SUBSCRIBE_TIMEOUT_S):
        raise KsqlError(f"the MQTT bridge did not subscribe within {SUBSCRIBE_TIMEOUT_S:g}s")
    return MqttSink(mosquitto.host, mosquitto.port), bridge


def _await_bridged(bridge: MqttKafkaBridge, messages: int) -> None:
    """Wait until the bridge has written `messages` (all it received so far) to Kafka: readings published
    afterwards are then stamped later than the registry rows, and the join processes the rows first."""
    deadline = time.monotonic() + REGISTRY_TIMEOUT_S
    while bridge.stats.delivered < messages:
        if time.monotonic() >= deadline:
            raise KsqlError(f"the MQTT bridge wrote {bridge.stats.delivered} of {messages} registry rows to Kafka "
                            f"within {REGISTRY_TIMEOUT_S:g}s")
        time.sleep(0.01)


def _wait(stop: threading.Event, duration: float | None, tasks: list[BackgroundTask], stats: SimulationStats,
          counts: AlertCounts) -> BaseException | None:
    """Run until `duration` passes, Ctrl-C / SIGTERM, or a background task fails (returned)."""
    deadline = None if duration is None else time.monotonic() + duration
    next_heartbeat = time.monotonic() + HEARTBEAT_S
    while not stop.wait(0.2):
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            return None
        for task in tasks:
            if task.error is not None:
                return task.error
        if now >= next_heartbeat:
            _status(f"{stats.sent} readings sent, {counts.alerts} alerts and {counts.pages} pages so far")
            next_heartbeat = now + HEARTBEAT_S
    return None


def _drain(app: KsqlpyApp, stats: SimulationStats, counts: AlertCounts) -> None:
    """Give the readings already sent a bounded time to come through the queries and be printed."""
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while time.monotonic() < deadline:
        if pipeline_settled(app, stats, counts):
            return
        time.sleep(DRAIN_POLL_S)
    _status(f"stopped with readings still in the pipeline after waiting {DRAIN_TIMEOUT_S:g}s")
