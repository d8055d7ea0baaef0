"""A real ksqlpy server on loopback for the server tests: a KsqlpyApp on the session's embedded broker, served
by hypercorn on a free port in a thread of its own.

- `server_factory(service_id=None, **ServerConfig fields)`: starts one (several may share a service id);
  every server started is stopped after the test.
- `server`: one server with a service id of its own; `.url` is its base URL, `.app` its KsqlpyApp.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from ksqlpy.runtime.app import KsqlpyApp
from ksqlpy.runtime.config import RuntimeConfig
from ksqlpy.server.app import ServerConfig, create_app
from ksqlpy.server.serve import serve_until_stopped
from ksqlpy.server.service import AppService


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RunningServer:
    """A server in a background thread: its URL, its app and how to stop it."""

    url: str
    app: KsqlpyApp
    config: ServerConfig
    stop: Callable[[], None]


def start_server(app: KsqlpyApp, config: ServerConfig) -> RunningServer:
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    started = threading.Event()
    failure: list[BaseException] = []

    async def main() -> None:
        ready = asyncio.Event()
        serving = asyncio.create_task(serve_until_stopped(create_app(AppService(app), config), config, stop, ready))
        await asyncio.wait({serving, asyncio.create_task(ready.wait())}, return_when=asyncio.FIRST_COMPLETED)
        started.set()
        await serving

    def run() -> None:
        try:
            loop.run_until_complete(main())
        except BaseException as error:
            failure.append(error)
            started.set()

    thread = threading.Thread(target=run, name="ksqlpy-test-server", daemon=True)
    thread.start()
    assert started.wait(30), "the server did not start listening"
    if failure:
        raise failure[0]

    def stop_server() -> None:
        loop.call_soon_threadsafe(stop.set)
        thread.join(15)

    return RunningServer(config.url, app, config, stop_server)


@pytest.fixture
def server_factory(broker: str, tmp_path: Path) -> Iterator[Callable[..., RunningServer]]:
    """Starts servers on the session's broker, each with its own service id unless given; stops them after."""
    running: list[RunningServer] = []

    def make(service_id: str | None = None, **settings: Any) -> RunningServer:
        config = RuntimeConfig(bootstrap_servers=broker, service_id=service_id or f"srv_{uuid.uuid4().hex[:8]}_",
                               properties={"ksql.streams.state.dir": str(tmp_path / f"state{len(running)}")})
        app = KsqlpyApp(config).start()
        server = start_server(app, replace(ServerConfig(port=free_port()), **settings))
        running.append(server)
        return server

    yield make
    for server in running:
        server.stop()
        server.app.close()


@pytest.fixture
def server(server_factory: Callable[..., RunningServer]) -> RunningServer:
    return server_factory()
