"""Interactive turns are checkpointed however they end (issue 11 F.3, issue 20 §4a).

A TUI (the `command` agent, in real tmux) writes a file, then is stopped with `pa stop`,
exits with an error, or loses its tmux session. Each time the turn's checkpoint exists
(`pa diff --turn 1` shows the file), `pa doctor` finds no missing checkpoint, and after
`pa stop` no pane is left.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from parallel_agents.models import Session, Status
from parallel_agents.runtime import tmux
from parallel_agents.sessions import tui
from parallel_agents.sessions.orchestrator import App

from .conftest import pa_cli, wait_for, wait_screen

READY = "TUI-WROTE-ITS-FILE"
# Writes a file in its worktree, then reads lines: "fail" exits 3.
TUI = (
    "import pathlib, sys\n"
    "pathlib.Path('work.txt').write_text('made by the TUI\\n')\n"
    f"print({READY!r}, flush=True)\n"
    "for line in sys.stdin:\n"
    "    if line.strip() == 'fail':\n"
    "        sys.exit(3)\n"
)


def start(app: App, repo: Path, pa_home: Path) -> Session:
    s = app.new_session(
        "write it", repo=str(repo), cmd=[sys.executable, "-c", TUI], interactive=True
    )
    wait_screen(pa_home, s.id, READY)
    return s


def assert_checkpointed(app: App, sid: str) -> None:
    diff = pa_cli("diff", sid, "--turn", "1", "--name-only")
    assert diff.returncode == 0 and diff.stdout.split() == ["work.txt"], diff
    doctor = pa_cli("doctor", "--json")
    found = json.loads(doctor.stdout)["findings"]
    assert [f for f in found if f["kind"] == "missing_checkpoint"] == [], found
    assert doctor.returncode == 0, doctor.stdout


def test_pa_stop_checkpoints_the_interactive_turn_and_closes_the_pane(
    app: App, repo: Path, pa_home: Path
) -> None:
    """issue 11 F.3: `pa stop` on an --interactive session checkpoints its turn (so
    `pa doctor` stays clean) and leaves no tmux pane behind."""
    s = start(app, repo, pa_home)
    proc = pa_cli("stop", s.id)
    assert proc.returncode == 0, proc.stderr
    got = app.store.session(s.id)
    assert got.status == Status.STOPPED
    assert [t.status for t in app.store.turns(s.id)] == ["stopped"]
    assert tmux.pane(pa_home, s.id) is None
    assert_checkpointed(app, s.id)


@pytest.mark.parametrize("how", ["failed", "interrupted"])
def test_a_failed_or_interrupted_tui_turn_is_checkpointed(
    app: App, repo: Path, pa_home: Path, how: str
) -> None:
    """issue 20 §4a: a TUI that exits with an error, or whose tmux session is gone, still
    gets its turn checkpointed (`pa diff --turn 1` shows what it did)."""
    s = start(app, repo, pa_home)
    if how == "failed":
        tmux.type_text(pa_home, s.id, "fail")
    else:
        sock = tmux.socket_name(pa_home)
        subprocess.run(["tmux", "-L", sock, "kill-server"], check=True)

    def ended() -> bool:
        tui.poll(app.sup, force=True)
        return app.store.session(s.id).status == Status(how)

    wait_for(ended, 15, f"the session {how}")
    assert [t.status for t in app.store.turns(s.id)] == [how]
    assert_checkpointed(app, s.id)
