"""A ksqlpy server a test started: what the server tests' fixtures hand out (conftest modules are not
importable by name)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ksqlpy.runtime.app import KsqlpyApp
from ksqlpy.server.app import ServerConfig


@dataclass
class RunningServer:
    """A server in a background thread: its URL, its app and how to stop it."""

    url: str
    app: KsqlpyApp
    config: ServerConfig
    stop: Callable[[], None]
