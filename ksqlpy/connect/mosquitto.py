"""A Mosquitto MQTT broker process on a free loopback port, for `ksqlpy demo` and the tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from ksqlpy.errors import KsqlError
from ksqlpy.runtime.broker import LOOPBACK, free_loopback_port, terminate

# Debian installs the broker in /usr/sbin, which is not on an ordinary user's PATH.
FALLBACK_BINARY = "/usr/sbin/mosquitto"
STOP_GRACE_SECONDS = 2.0
START_ATTEMPTS = 3
LOG_TAIL_CHARS = 2000
# The bridge acknowledges a message only once Kafka has it, so the broker's default window of 20
# unacknowledged messages would throttle it to 20 per Kafka round trip; and a subscriber that is away
# must not lose messages beyond the default queue of 1000.
CONFIG_TEMPLATE = """\
listener {port} {host}
allow_anonymous true
persistence false
max_inflight_messages 1000
max_queued_messages 0
log_dest stdout
"""


def find_mosquitto() -> str | None:
    """The mosquitto executable on PATH or in Debian's location, or None when it is not installed."""
    found = shutil.which("mosquitto")
    if found is not None:
        return found
    return FALLBACK_BINARY if Path(FALLBACK_BINARY).is_file() else None


def _accepts_connections(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((LOOPBACK, port)) == 0


class MosquittoBroker:
    """One mosquitto process listening on 127.0.0.1 (anonymous, in memory); a context manager."""

    host = LOOPBACK

    def __init__(self, binary: str | None = None) -> None:
        self.binary = binary
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None

    def start(self, timeout: float = 10.0) -> int:
        """Launch the broker and wait until it accepts connections; returns its port."""
        binary = self.binary or find_mosquitto()
        if binary is None:
            raise KsqlError("mosquitto is not installed (apt-get install mosquitto)")
        self._workdir = tempfile.TemporaryDirectory(prefix="ksqlpy-mosquitto-")
        # Another process can take the free port before mosquitto binds it: try a fresh one a few times.
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                return self._launch(binary, free_loopback_port(), timeout)
            except KsqlError:
                if attempt == START_ATTEMPTS:
                    self.stop()
                    raise
        raise AssertionError("unreachable")

    def _launch(self, binary: str, port: int, timeout: float) -> int:
        assert self._workdir is not None
        workdir = Path(self._workdir.name)
        config = workdir / "mosquitto.conf"
        config.write_text(CONFIG_TEMPLATE.format(port=port, host=self.host), encoding="utf-8")
        with (workdir / "mosquitto.log").open("wb") as log:
            try:
                # A session of its own keeps the terminal's Ctrl-C away from the broker: its owner stops it.
                self._process = subprocess.Popen([binary, "-c", str(config)], stdin=subprocess.DEVNULL,
                                                 stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            except OSError as error:
                raise KsqlError(f"Cannot run {binary}: {error.strerror or error}") from error
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                self._process = None
                raise KsqlError(f"mosquitto exited during start-up (exit code {code}): {self.log_tail()}")
            if _accepts_connections(port):
                self.port = port
                return port
            time.sleep(0.05)
        self._terminate()
        raise KsqlError(f"mosquitto did not accept connections on port {port} within {timeout:g}s: {self.log_tail()}")

    def log_tail(self) -> str:
        if self._workdir is None:
            return "(no log)"
        path = Path(self._workdir.name) / "mosquitto.log"
        text = path.read_text(encoding="utf-8", errors="replace").strip() if path.exists() else ""
        return text[-LOG_TAIL_CHARS:] or "(empty log)"

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            terminate(process, STOP_GRACE_SECONDS)

    def stop(self) -> None:
        """Terminate the broker and remove its files; safe to call twice."""
        self._terminate()
        self.port = None
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def __enter__(self) -> MosquittoBroker:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
