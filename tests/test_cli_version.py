"""`ksqlpy --version`: the installed package's version, exit 0."""

from __future__ import annotations

from importlib.metadata import version

import pytest

from ksqlpy.cli import main


@pytest.mark.parametrize("flag", ["--version", "-V", "version"])
def test_version_flag_prints_the_package_version(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([flag]) == 0
    assert capsys.readouterr().out == f"ksqlpy {version('ksqlpy')}\n"
