"""The routines tests' shared fixture: an in-process App with the test repo as ``r``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from parallel_agents.sessions.orchestrator import App


@pytest.fixture
def app(repo: Path) -> Iterator[App]:
    a = App.open()
    a.add_repo(repo, "r")
    yield a
    a.close()
