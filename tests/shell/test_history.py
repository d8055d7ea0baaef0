"""The shell's history file never holds a secret."""

from __future__ import annotations

from pathlib import Path

from ksqlpy.shell.repl import MaskedHistory


def test_history_masks_sensitive_settings_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "history"
    history = MaskedHistory(str(path))

    history.append_string("SET 'sasl.password'='hunter2';")
    history.append_string("SET 'auto.offset.reset'='earliest';")

    text = path.read_text()
    assert "hunter2" not in text
    assert "SET 'sasl.password'='[hidden]';" in text
    assert "SET 'auto.offset.reset'='earliest';" in text
    assert next(iter(MaskedHistory(str(path)).load_history_strings())) == "SET 'auto.offset.reset'='earliest';"
