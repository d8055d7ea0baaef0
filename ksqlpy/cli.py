"""The `ksqlpy` command line: one entry point dispatching to each tool's own argument parser.

Imports are lazy so `ksqlpy --help` and `ksqlpy test` start without loading the Kafka client.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ksqlpy.runtime.app import KsqlpyApp
    from ksqlpy.runtime.config import RuntimeConfig

USAGE = """usage: ksqlpy <command> [options]

commands:
  run           run a file of statements against Kafka; persistent queries keep running until Ctrl-C
                (with --server URL: submit them to a running server, where they keep running)
  shell         an interactive statement prompt against Kafka (with --server URL: a client of a server)
  server        serve ksqlDB's REST API (port 8088) and run the persistent queries, headless
  broker        run the embedded Kafka-compatible broker (in memory) in the foreground
  produce       write JSON lines from stdin to a topic
  consume       print a topic's records as JSON lines
  demo          the anomaly-detection pipeline: simulated cars -> (MQTT ->) Kafka -> SQL -> alerts
  simulate      publish generated connected-car sensor readings to MQTT or Kafka
  mqtt-bridge   copy MQTT messages (vehicles/sensor/data/#) into a Kafka topic
  train         train the anomaly-detection autoencoder from a Kafka topic and save a versioned artifact
  test          run statements over input records in memory and compare with expected output
  conformance   run ksqlDB's query-validation cases (JSON Lines) and report the pass rate
  version       print the version (also: ksqlpy --version)

Without --bootstrap-servers (or KSQLPY_BOOTSTRAP_SERVERS, or bootstrap.servers in --config), run and shell
start an embedded broker that keeps data in memory only.
Run 'ksqlpy <command> --help' for a command's options."""


def _test(argv: list[str]) -> int:
    from ksqlpy.testing import test_runner

    return test_runner.main(argv)


def _conformance(argv: list[str]) -> int:
    from ksqlpy.testing import conformance

    return conformance.main(argv)


def _version(argv: list[str]) -> int:
    from importlib.metadata import version

    print(f"ksqlpy {version('ksqlpy')}")
    return 0


def _add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bootstrap-servers", metavar="B", help="Kafka bootstrap servers (default: embedded broker)")
    parser.add_argument("--config", metavar="FILE", help="name=value settings: ksql properties and librdkafka settings")
    parser.add_argument("-p", "--property", action="append", default=[], metavar="NAME=VALUE",
                        help="a ksql property or librdkafka setting (repeatable)")
    parser.add_argument("--service-id", metavar="ID",
                        help="processes with the same service id share the command log and the queries' work")
    parser.add_argument("--udfs-dir", action="append", default=[], metavar="DIR",
                        help="a directory of UDF modules, watched for changes (repeatable; default: ./udfs)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log query starts and partition assignments")


def _configure_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="ksqlpy: %(message)s")


def _config_from(args: argparse.Namespace) -> RuntimeConfig:
    from ksqlpy.runtime.config import load_config

    return load_config(args.bootstrap_servers, args.config, args.property, args.service_id,
                       udf_directories=args.udfs_dir)


def _error(message: object) -> None:
    if isinstance(message, BaseException):
        from ksqlpy.runtime.clients import describe_error

        message = describe_error(message)  # a Kafka client's error in the broker's words
    print(f"Error: {message}", file=sys.stderr, flush=True)


def _user_errors() -> tuple[type[Exception], ...]:
    """What run and shell report in one line, without a traceback: ksqlpy's errors and a Kafka client's.
    (An except clause evaluates this only when an exception arrives, so nothing is imported before.)"""
    from confluent_kafka import KafkaException

    from ksqlpy.errors import KsqlError

    return KsqlError, KafkaException


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops a command the way Ctrl-C does, so both shut down cleanly."""

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ksqlpy run", description="Run the statements of FILE in order; "
                                     "persistent queries then run until Ctrl-C / SIGTERM (or --until-idle).")
    parser.add_argument("file", metavar="FILE.sql")
    _add_connection_arguments(parser)
    parser.add_argument("--until-idle", type=float, metavar="SECONDS",
                        help="return once every query holds its partitions and has read its backlog, and no "
                             "input record has arrived for SECONDS since")
    parser.add_argument("--metrics-port", type=int, metavar="PORT",
                        help="serve Prometheus metrics on http://HOST:PORT/metrics while the statements run")
    parser.add_argument("--metrics-host", default="127.0.0.1", metavar="HOST",
                        help="the address the metrics are served on (default: %(default)s, this machine only)")
    from ksqlpy.shell.remote import add_remote_arguments, run_remote, run_remote_file

    add_remote_arguments(parser)
    args = parser.parse_args(argv)
    try:
        with open(args.file, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as error:
        _error(f"cannot read {args.file}: {error.strerror}")
        return 2
    if args.server:
        with _sigterm_as_interrupt():
            return run_remote(args, lambda client: run_remote_file(client, text))
    from ksqlpy.runtime.app import KsqlpyApp
    from ksqlpy.shell.render import StreamingTable, print_result

    _configure_logging(args.verbose)
    with _sigterm_as_interrupt():
        try:
            app = KsqlpyApp(_config_from(args)).start()
        except _user_errors() as error:
            _error(error)
            return 1
        except KeyboardInterrupt:
            return 130
        stop_metrics: Callable[[], None] | None = None
        try:
            if args.metrics_port is not None:
                from ksqlpy.runtime.metrics import serve_metrics

                stop_metrics = serve_metrics(app, args.metrics_port, args.metrics_host)
            for result in app.execute_iter(text, StreamingTable(sys.stdout)):
                print_result(result, sys.stdout)
            if app.engine.queries:
                count = len(app.engine.queries)
                print(f"ksqlpy: {count} persistent quer{'y' if count == 1 else 'ies'} running; "
                      "press Ctrl-C to stop.", file=sys.stderr, flush=True)
                app.run_until(args.until_idle)
            return 0
        except _user_errors() as error:
            _error(error)
            return 1
        except KeyboardInterrupt:
            return 130
        except OSError as error:  # the metrics port is taken, or the host is not this machine's
            _error(f"cannot serve metrics on {args.metrics_host}:{args.metrics_port}: {error.strerror or error}")
            return 1
        finally:
            if stop_metrics is not None:
                stop_metrics()
            _shutdown(app)


def _shutdown(app: KsqlpyApp) -> None:
    """Print each query's totals, then stop queries and broker; another Ctrl-C or SIGTERM cannot cut the
    clean shutdown short (SIGKILL still can)."""
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        for line in app.summary_lines():
            print(f"ksqlpy: {line}", file=sys.stderr)
        app.close()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _server(argv: list[str]) -> int:
    from ksqlpy.server.serve import add_server_arguments, run_server, server_config

    parser = argparse.ArgumentParser(prog="ksqlpy server", description="Serve ksqlDB's REST API (HTTP/1.1 and "
                                     "HTTP/2 on one port) and run the persistent queries until SIGTERM / Ctrl-C.")
    _add_connection_arguments(parser)
    add_server_arguments(parser)
    args = parser.parse_args(argv)
    from ksqlpy.runtime.app import KsqlpyApp
    from ksqlpy.server.service import AppService

    _configure_logging(args.verbose)
    config = _config_from(args)
    settings = server_config(args, config.properties)
    with _sigterm_as_interrupt():
        try:
            app = KsqlpyApp(config).start()
        except _user_errors() as error:
            _error(error)
            return 1
        except KeyboardInterrupt:
            return 130
    try:
        run_server(AppService(app), settings)
        return 0
    except OSError as error:
        _error(f"cannot listen on {settings.host}:{settings.port}: {error.strerror or error}")
        return 1
    finally:
        _shutdown(app)


def _shell(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ksqlpy shell", description="Interactive statement prompt; reads "
                                     "statements from stdin when it is not a terminal.")
    _add_connection_arguments(parser)
    from ksqlpy.shell.remote import add_remote_arguments, run_remote, run_remote_shell

    add_remote_arguments(parser)
    args = parser.parse_args(argv)
    if args.server:
        with _sigterm_as_interrupt():
            return run_remote(args, run_remote_shell)
    from ksqlpy.shell.repl import run_shell

    _configure_logging(args.verbose)
    try:
        with _sigterm_as_interrupt():
            return run_shell(_config_from(args))
    except _user_errors() as error:
        _error(error)
        return 1
    except KeyboardInterrupt:
        return 130


def _broker(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ksqlpy broker", description="Run the embedded broker (Tansu, data in "
                                     "memory only) in the foreground and print its bootstrap address.")
    parser.add_argument("--port", type=int, help="loopback port to listen on (default: a free one)")
    args = parser.parse_args(argv)
    from ksqlpy.runtime.broker import run_broker_foreground

    _configure_logging()
    return run_broker_foreground(args.port)


def _produce(argv: list[str]) -> int:
    from ksqlpy.runtime.tools import main_produce

    return main_produce(argv)


def _consume(argv: list[str]) -> int:
    from ksqlpy.runtime.tools import main_consume

    return main_consume(argv)


def _demo(argv: list[str]) -> int:
    from ksqlpy.demo import pipeline

    return pipeline.main(argv)


def _simulate(argv: list[str]) -> int:
    from ksqlpy.demo import simulate

    return simulate.main(argv)


def _mqtt_bridge(argv: list[str]) -> int:
    from ksqlpy.connect import mqtt

    return mqtt.main(argv)


def _train(argv: list[str]) -> int:
    from ksqlpy.ml import train

    return train.main(argv)


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "run": _run,
    "shell": _shell,
    "server": _server,
    "broker": _broker,
    "produce": _produce,
    "consume": _consume,
    "demo": _demo,
    "simulate": _simulate,
    "mqtt-bridge": _mqtt_bridge,
    "train": _train,
    "test": _test,
    "conformance": _conformance,
    "version": _version,
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if args else 2
    if args[0] in ("-V", "--version"):
        return _version(args[1:])
    command = COMMANDS.get(args[0])
    if command is None:
        print(f"ksqlpy: unknown command '{args[0]}'\n\n{USAGE}", file=sys.stderr)
        return 2
    return command(args[1:])


if __name__ == "__main__":
    sys.exit(main())
