"""Test helper: `ksqlpy run` as a real subprocess (its output captured in files), and parsing its summaries."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SUMMARY_LINE = re.compile(r"query (\S+): state=\S+ records_in=(\d+) records_out=(\d+)")


@dataclass(frozen=True)
class QueryTotals:
    records_in: int
    records_out: int


class KsqlpyRun:
    """One `ksqlpy run FILE --bootstrap-servers B --service-id ID [args...]` process; `prelude` is Python run
    in it first (for fault injection)."""

    def __init__(self, sql_file: Path, bootstrap: str, service_id: str, *args: str, prelude: str = "") -> None:
        self.name = f"{sql_file.stem}-{os.getpid()}-{id(self)}"
        self.stdout_path = sql_file.parent / f"{self.name}.out"
        self.stderr_path = sql_file.parent / f"{self.name}.err"
        entry = ["-m", "ksqlpy.cli"]
        if prelude:
            entry = ["-c", f"{prelude}\nimport sys\nfrom ksqlpy.cli import main\nsys.exit(main())"]
        command = [sys.executable, *entry, "run", str(sql_file), "--bootstrap-servers", bootstrap,
                   "--service-id", service_id, *args]
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(command, stdout=out, stderr=err, stdin=subprocess.DEVNULL)

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"ksqlpy run did not exit within {timeout:g}s; stderr:\n{self.stderr}") from None

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM: the clean shutdown path (finish the batch, commit, print totals)."""
        self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: no chance to commit or close, as in a crash."""
        self.process.kill()
        self.process.wait()

    def ensure_stopped(self) -> None:
        if self.process.poll() is None:
            self.kill()

    def totals(self) -> dict[str, QueryTotals]:
        return {m[1]: QueryTotals(int(m[2]), int(m[3])) for m in SUMMARY_LINE.finditer(self.stderr)}

    def describe(self) -> str:
        return f"exit={self.process.poll()}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def write_sql(directory: Path, name: str, text: str) -> Path:
    path = directory / f"{name}.sql"
    path.write_text(text, encoding="utf-8")
    return path
