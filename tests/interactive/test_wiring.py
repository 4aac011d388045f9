"""How the rest of pa reaches interactive sessions: `pa` commands, the supervisor's tick,
and the service's send / discard for sessions whose TUI runs in tmux."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from parallel_agents.models import Status
from parallel_agents.runtime import tmux
from parallel_agents.sessions.orchestrator import App

from .conftest import BANNER, fake_session, wait_for, wait_screen


def test_pa_has_attach_and_hook() -> None:
    for cmd in ("attach", "hook"):
        p = subprocess.run(
            [sys.executable, "-m", "parallel_agents", cmd, "--help"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert p.returncode == 0, f"`pa {cmd}` missing: cli/__init__.py's COMMANDS must map it"
    assert (
        "Ctrl-b d" in p.stdout
        or "Ctrl-b d"
        in subprocess.run(
            [sys.executable, "-m", "parallel_agents", "attach", "--help"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
    )


def test_tick_runs_the_pane_fallback(app: App, repo: Path, pa_home: Path) -> None:
    s = fake_session(app, repo, "permission")
    wait_screen(pa_home, s.id, "Do you want to proceed?")

    def refreshed() -> bool:
        app.refresh()  # Supervisor.tick, as `pa ls` and the server's loop run it
        return app.store.session(s.id).status == Status.NEEDS_INPUT

    wait_for(refreshed, 10, "needs_input through Supervisor.tick")


def test_send_restarts_a_stopped_interactive_session(app: App, repo: Path, pa_home: Path) -> None:
    s = fake_session(app, repo, "echo")
    wait_screen(pa_home, s.id, BANNER)
    app.stop(s.id)
    assert app.store.session(s.id).status == Status.STOPPED
    app.send(s.id, "start again")  # the TUI again, in tmux: not a headless turn
    assert app.store.session(s.id).status == Status.RUNNING
    wait_screen(pa_home, s.id, f"{BANNER} prompt=start again")
    assert not (pa_home / "sessions" / s.id / "turns").exists()


def test_discard_closes_an_idle_tui(app: App, repo: Path, pa_home: Path) -> None:
    s = fake_session(app, repo, "echo", prompt="")
    wait_screen(pa_home, s.id, BANNER)
    assert app.store.session(s.id).status == Status.IDLE
    app.discard(s.id)
    assert tmux.pane(pa_home, s.id) is None  # no agent left running in a removed worktree
