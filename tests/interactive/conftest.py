"""Fixtures for interactive sessions: real tmux on pa's own socket, a fake TUI, polling.

Every test's tmux server (``tmux -L pa-<hash of its PA_HOME>``) is killed afterwards, so
no test leaves a server behind and none ever touches the user's default tmux server.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from parallel_agents.models import Session
from parallel_agents.runtime import tmux
from parallel_agents.sessions.orchestrator import App

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
FAKE_TUI = HERE / "fake_tui.py"
CAPTURES = ROOT / "tests" / "fixtures" / "captures" / "tui"  # scripts/record-captures
BANNER = "FAKE-TUI READY"
PA = [sys.executable, "-m", "parallel_agents"]

T = TypeVar("T")


@pytest.fixture(autouse=True)
def tmux_server(pa_home: Path) -> Iterator[None]:
    """Skip without tmux; kill this test's own tmux server afterwards."""
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed: apt-get install tmux (scripts/test does, as root)")
    yield
    for name in tmux.panes(pa_home):  # end each TUI's process group, then the server
        tmux.kill(pa_home, name.removeprefix("pa-"), grace=2.0)
    subprocess.run(
        ["tmux", "-L", tmux.socket_name(pa_home), "kill-server"],
        capture_output=True,
        check=False,
    )


@pytest.fixture
def app(pa_home: Path) -> Iterator[App]:
    a = App.open()
    yield a
    a.close()


def wait_for(pred: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll ``pred`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what} (last: {last!r})")


def fake_session(app: App, repo: Path, mode: str, prompt: str = "do the thing") -> Session:
    """An interactive session of the `command` agent running the fake TUI (no hooks)."""
    return app.new_session(
        prompt, repo=str(repo), cmd=[sys.executable, str(FAKE_TUI), mode], interactive=True
    )


def screen(home: Path, sid: str) -> str:
    return tmux.capture(home, sid)


def wait_screen(home: Path, sid: str, text: str, timeout: float = 15) -> str:
    """Wait until ``text`` is on the session's pane; the screen then."""

    def shown() -> str:
        s = screen(home, sid)
        return s if text in s else ""

    return wait_for(shown, timeout, f"{text!r} on the pane")


def pa_cli(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    input: str | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run `pa` (with the interactive commands) in a subprocess; stdin empty unless given."""
    return subprocess.run(
        [*PA, *args],
        capture_output=True,
        text=True,
        env=dict(os.environ) if env is None else env,
        cwd=cwd,
        input=input if input is not None else "",
        timeout=timeout,
        check=False,
    )
