"""`ksqlpy server` as a process: it serves on the port it is given, bound to loopback, and stops cleanly on
SIGTERM (its queries stopped, no traceback), and a second start on a busy port is one clear error line."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from ksqlpy.server.serve import free_port


def start_server(broker: str, port: int, tmp_path: Path, name: str) -> subprocess.Popen[bytes]:
    errors = (tmp_path / f"{name}.err").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "ksqlpy.cli", "server", "--bootstrap-servers", broker, "--port", str(port),
         "--service-id", f"proc_{uuid.uuid4().hex[:8]}_", "-p", f"ksql.streams.state.dir={tmp_path / name}"],
        stdout=subprocess.DEVNULL, stderr=errors, stdin=subprocess.DEVNULL)


def answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/info", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_the_server_process_serves_then_stops_cleanly_on_sigterm(
    broker: str, tmp_path: Path, wait_until: Callable[..., Any],
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(broker, port, tmp_path, "first")
    try:
        wait_until(lambda: answers(url) or server.poll() is not None, timeout=60, message="the server to answer")
        assert server.poll() is None, (tmp_path / "first.err").read_text()
        created = httpx.post(f"{url}/ksql", timeout=30, json={"ksql": (
            f"CREATE STREAM s (k STRING KEY, v INT) WITH (kafka_topic='proc_{uuid.uuid4().hex[:6]}', "
            "value_format='JSON', partitions=1); CREATE STREAM t AS SELECT * FROM s;")})
        assert created.status_code == 200, created.text
        busy = start_server(broker, port, tmp_path, "second")
        assert busy.wait(60) == 1
        assert f"cannot listen on 127.0.0.1:{port}" in (tmp_path / "second.err").read_text()
        server.send_signal(signal.SIGTERM)
        assert server.wait(60) == 0
    finally:
        if server.poll() is None:
            server.kill()
    log = (tmp_path / "first.err").read_text()
    assert f"server listening on {url}" in log
    assert "Traceback" not in log
    assert not answers(url)
