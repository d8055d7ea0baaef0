"""`ksqlpy server`: a headless ksqlpy (command topic, recovery, persistent queries, scale-out) serving ksqlDB's
REST API with hypercorn: HTTP/1.1 and HTTP/2 cleartext (prior knowledge) on one port, or TLS with a
certificate and key. It binds to loopback unless told otherwise and stops cleanly on SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from hypercorn.asyncio import serve
from hypercorn.config import Config as HypercornConfig
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from ksqlpy.server.app import ServerConfig, create_app
from ksqlpy.server.service import KsqlService

logger = logging.getLogger(__name__)


def hypercorn_config(config: ServerConfig) -> HypercornConfig:
    settings = HypercornConfig()
    settings.bind = [f"{config.host}:{config.port}"]
    settings.certfile = config.tls_certificate
    settings.keyfile = config.tls_key
    settings.accesslog = None
    settings.errorlog = logging.getLogger("hypercorn.error")
    settings.graceful_timeout = 5.0
    return settings


async def serve_until_stopped(app: Starlette, config: ServerConfig, stop: asyncio.Event,
                              started: asyncio.Event | None = None) -> None:
    """Serve `app` until `stop` is set; `started` is set once the port is bound."""
    settings = hypercorn_config(config)

    async def shutdown_trigger() -> None:
        await stop.wait()

    task = asyncio.create_task(serve(app, settings, shutdown_trigger=shutdown_trigger))  # type: ignore[arg-type]
    if started is not None:
        await _wait_until_listening(config, task)
        started.set()
    await task


async def _wait_until_listening(config: ServerConfig, task: asyncio.Task[None]) -> None:
    while not task.done():
        try:
            _reader, writer = await asyncio.open_connection(config.host, config.port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return
    task.result()  # it ended before listening: raise why


@dataclass
class BackgroundServer:
    """A server serving from a thread of its own (tests, conformance): its URL and how to stop it."""

    url: str
    config: ServerConfig
    stop: Callable[[], None]


def start_in_background(service: KsqlService, config: ServerConfig, timeout: float = 30.0) -> BackgroundServer:
    """Serve in a new thread with an event loop of its own; returns once the port is bound."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    listening = threading.Event()
    failure: list[BaseException] = []

    async def main() -> None:
        started = asyncio.Event()
        serving = asyncio.create_task(serve_until_stopped(create_app(service, config), config, stop, started))
        await asyncio.wait({serving, asyncio.create_task(started.wait())}, return_when=asyncio.FIRST_COMPLETED)
        listening.set()
        await serving

    def run() -> None:
        try:
            loop.run_until_complete(main())
        except BaseException as error:  # handed to the thread that started the server
            failure.append(error)
        finally:
            listening.set()
            loop.close()

    thread = threading.Thread(target=run, name=f"ksqlpy-server-{config.port}", daemon=True)
    thread.start()
    if not listening.wait(timeout):
        raise RuntimeError(f"the server did not start listening on {config.host}:{config.port} in {timeout:g} s")
    if failure:
        raise failure[0]

    def stop_server() -> None:
        if not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        thread.join(15)

    return BackgroundServer(config.url, config, stop_server)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (for servers of tests and conformance runs)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def run_server(service: KsqlService, config: ServerConfig, extra_routes: Iterable[BaseRoute] = ()) -> None:
    """Serve in the foreground until SIGTERM or Ctrl-C."""
    app = create_app(service, config, extra_routes)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        started = asyncio.Event()
        serving = asyncio.create_task(serve_until_stopped(app, config, stop, started))
        done, _pending = await asyncio.wait({serving, asyncio.create_task(started.wait())},
                                            return_when=asyncio.FIRST_COMPLETED)
        if serving in done:
            serving.result()
            return
        print(f"ksqlpy: server listening on {config.url} (service id {service.service_id})", file=sys.stderr,
              flush=True)
        await serving

    asyncio.run(main())


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    parser.add_argument("--port", type=int, default=8088, help="port to listen on (default: %(default)s)")
    parser.add_argument("--advertised-url", metavar="URL",
                        help="how other servers of the service reach this one (default: from host and port)")
    parser.add_argument("--credentials", metavar="FILE",
                        help="require HTTP basic authentication by the user:password lines of FILE")
    parser.add_argument("--tls-cert", metavar="PEM", help="serve HTTPS with this certificate (and --tls-key)")
    parser.add_argument("--tls-key", metavar="PEM", help="the private key of --tls-cert")


def server_config(args: argparse.Namespace, properties: Mapping[str, object]) -> ServerConfig:
    if bool(args.tls_cert) != bool(args.tls_key):
        raise SystemExit("ksqlpy server: --tls-cert and --tls-key go together")
    return ServerConfig(
        host=args.host, port=args.port, advertised_url=args.advertised_url,
        max_push_queries=int(str(properties.get("ksql.max.push.queries", 100))),
        credentials_file=args.credentials, tls_certificate=args.tls_cert, tls_key=args.tls_key,
    )
