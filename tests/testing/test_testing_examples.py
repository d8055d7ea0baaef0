"""The example query folders under queries/ pass `ksqlpy test` on the real engine, and fail when altered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ksqlpy.testing import test_runner

QUERIES = Path(__file__).resolve().parents[2] / "queries"
EXAMPLES = sorted(p for p in QUERIES.iterdir() if (p / "statements.sql").exists())


def _arguments(folder: Path, output: Path) -> list[str]:
    return ["--statements", str(folder / "statements.sql"), "--input", str(folder / "input.json"),
            "--output", str(output)]


def test_there_are_at_least_three_examples() -> None:
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("folder", EXAMPLES, ids=lambda p: p.name)
def test_example_passes(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert test_runner.main(_arguments(folder, folder / "output.json")) == 0, capsys.readouterr().out


@pytest.mark.parametrize("folder", EXAMPLES, ids=lambda p: p.name)
def test_example_fails_when_an_expected_record_is_dropped(folder: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    expected = json.loads((folder / "output.json").read_text())
    altered = tmp_path / "output.json"
    altered.write_text(json.dumps({"outputs": expected["outputs"][1:]}))
    assert test_runner.main(_arguments(folder, altered)) == 1
    assert "Test failed: topic" in capsys.readouterr().out
