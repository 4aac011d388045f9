"""Fixtures for workspace tests (issue 16 §2, §3): real tmux on pa's own socket, killed
after each test so none leaves a server behind."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from parallel_agents.runtime import tmux


@pytest.fixture
def tmux_server(pa_home: Path) -> Iterator[None]:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed: apt-get install tmux (scripts/test does, as root)")
    yield
    subprocess.run(
        ["tmux", "-L", tmux.socket_name(pa_home), "kill-server"],
        capture_output=True,
        check=False,
    )
