"""Suite-wide setup: durable query state goes to a directory of this test session, never the user's own."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def session_state_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # The default state directory follows XDG_STATE_HOME; ksqlpy processes the tests start inherit it.
    previous = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("xdg-state"))
    yield
    if previous is None:
        os.environ.pop("XDG_STATE_HOME", None)
    else:
        os.environ["XDG_STATE_HOME"] = previous
