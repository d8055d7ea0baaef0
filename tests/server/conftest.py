"""A real ksqlpy server on loopback for the server tests: a KsqlpyApp on the session's embedded broker, served
by hypercorn on a free port in a thread of its own.

- `server_factory(service_id=None, **ServerConfig fields)`: starts one (several may share a service id);
  every server started is stopped after the test.
- `server`: one server with a service id of its own; `.url` is its base URL, `.app` its KsqlpyApp.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from running_server import RunningServer

from ksqlpy.runtime.app import KsqlpyApp
from ksqlpy.runtime.config import RuntimeConfig
from ksqlpy.server.app import ServerConfig
from ksqlpy.server.serve import free_port, start_in_background
from ksqlpy.server.service import AppService


@pytest.fixture
def server_factory(broker: str, tmp_path: Path) -> Iterator[Callable[..., RunningServer]]:
    """Starts servers on the session's broker, each with its own service id unless given; stops them after."""
    running: list[RunningServer] = []

    def make(service_id: str | None = None, **settings: Any) -> RunningServer:
        config = RuntimeConfig(bootstrap_servers=broker, service_id=service_id or f"srv_{uuid.uuid4().hex[:8]}_",
                               properties={"ksql.streams.state.dir": str(tmp_path / f"state{len(running)}")})
        app = KsqlpyApp(config).start()
        server_config = replace(ServerConfig(port=free_port()), **settings)
        background = start_in_background(AppService(app), server_config)
        server = RunningServer(background.url, app, server_config, background.stop)
        running.append(server)
        return server

    yield make
    for server in running:
        server.stop()
        server.app.close()


@pytest.fixture
def server(server_factory: Callable[..., RunningServer]) -> RunningServer:
    return server_factory()
