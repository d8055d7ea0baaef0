"""`ksqlpy shell` and `ksqlpy run` on statements that used to crash them: each gets one clear error line, no
traceback, and the shell carries on with the next statement."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

from ksqlpy.syntax.parser import MAX_NESTING


def _ksqlpy(broker: str, *arguments: str, stdin: str = "", cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ksqlpy.cli", *arguments, "--bootstrap-servers", broker,
         "--service-id", f"hostile_{uuid.uuid4().hex[:10]}_"],
        input=stdin, capture_output=True, text=True, timeout=60, check=False, cwd=cwd,
    )


def test_the_shell_reports_each_hostile_statement_in_one_line_and_goes_on(
    broker: str, unique_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = unique_topic("hostile")
    (tmp_path / "self.sql").write_text("RUN SCRIPT 'self.sql';", encoding="utf-8")
    script = "\n".join([
        f"CREATE STREAM s (k STRING KEY, v INT) WITH (kafka_topic='{topic}', value_format='JSON', partitions=1);",
        "SELECT k, " + "ABS(" * 488 + "v" + ")" * 488 + " FROM s EMIT CHANGES;",
        "SELECT k, " + "CASE WHEN true THEN " * 244 + "v" + " END" * 244 + " FROM s EMIT CHANGES;",
        "SELECT k, " + "9" * 4301 + " FROM s EMIT CHANGES;",
        "RUN SCRIPT 'self.sql';",
        "SELECT * FROM s;",
        f"CREATE TABLE t (k STRING PRIMARY KEY, v INT) WITH (kafka_topic='{topic}_t', value_format='JSON', "
        "partitions=1);",
        "SELECT * FROM t;",
        "SET 'ksql.query.pull.table.scan.enabled'='false';",
        "SELECT * FROM t WHERE v > 1;",
        "DESCRIBE EXTENDED s;",
    ])
    done = _ksqlpy(broker, "shell", stdin=script, cwd=tmp_path)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert errors == [
        "Error: line 1:"
        f"{len('SELECT k, ') + len('ABS(') * MAX_NESTING + 1}: Nested too deeply: expressions and types may nest at "
        f"most {MAX_NESTING} levels (each operator, function call, CASE, CAST, constructor, field access, "
        "subscript and type parameter is one level)",
        "Error: line 1:"
        f"{len('SELECT k, ') + len('CASE WHEN true THEN ') * MAX_NESTING + 1}: Nested too deeply: "
        f"expressions and types may nest at most {MAX_NESTING} levels (each operator, function call, CASE, CAST, "
        "constructor, field access, subscript and type parameter is one level)",
        "Error: line 1:11: Invalid numeric literal: 999999999999999999999999... (4301 characters)",
        f"Error: RUN SCRIPT self.sql would run a script inside itself: {tmp_path / 'self.sql'} -> "
        f"{tmp_path / 'self.sql'}",
        "Error: WHERE clause missing key column for disjunct: (V > 1)",
    ]
    assert "Read by:" in done.stdout  # the last statement still ran


def test_run_reports_a_script_that_runs_itself_in_one_line(broker: str, tmp_path: Path) -> None:
    script = tmp_path / "loop.sql"
    script.write_text(f"RUN SCRIPT '{script}';", encoding="utf-8")
    done = _ksqlpy(broker, "run", str(script))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert [line for line in done.stderr.splitlines() if line.startswith("Error: ")] == [
        f"Error: RUN SCRIPT {script} would run a script inside itself: {script} -> {script}",
    ]
