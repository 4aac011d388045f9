"""Interactive sessions in real tmux with a fake TUI (no hooks): the pane fallback, typing,
exits, restarts and stopping."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from parallel_agents.models import Status
from parallel_agents.runtime import tmux
from parallel_agents.sessions import tui
from parallel_agents.sessions.orchestrator import App

from .conftest import BANNER, fake_session, screen, wait_for, wait_screen


def status_after_poll(app: App, sid: str) -> Status:
    tui.poll(app.sup, force=True)
    return app.store.session(sid).status


def test_own_socket_and_session_name(app: App, repo: Path, pa_home: Path) -> None:
    s = fake_session(app, repo, "echo")
    wait_screen(pa_home, s.id, BANNER)
    sock = tmux.socket_name(pa_home)
    assert sock.startswith("pa-") and sock != tmux.socket_name(pa_home / "other")
    names = subprocess.run(
        ["tmux", "-L", sock, "list-sessions", "-F", "#{session_name}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert names == [f"pa-{s.id}"]
    assert tmux.display(pa_home, s.id, "#{pane_current_path}") == str(Path(s.worktree).resolve())
    cols, _rows = tmux.pane_size(app.settings)
    assert tmux.display(pa_home, s.id, "#{window_width}") == str(cols)
    launch = json.loads((tmux.run_dir(pa_home, s.id) / "launch.json").read_text())
    assert launch["env"]["PA_SESSION_ID"] == s.id and launch["env"]["PA_PROMPT"] == "do the thing"
    assert (tmux.run_dir(pa_home, s.id) / "launch.json").stat().st_mode & 0o077 == 0


def test_pane_fallback_permission_prompt_then_answer(app: App, repo: Path, pa_home: Path) -> None:
    s = fake_session(app, repo, "permission")
    assert app.store.session(s.id).status == Status.RUNNING
    wait_screen(pa_home, s.id, "Do you want to proceed?")
    # No hooks here: only the pane can tell that the TUI waits for the person.
    wait_for(lambda: status_after_poll(app, s.id) == Status.NEEDS_INPUT, 10, "needs_input")
    got = app.store.session(s.id)
    assert got.unread and got.options["interactive"]["signal"]["source"] == "pane"
    assert not (pa_home / "sessions" / s.id / "hooks.jsonl").exists()

    app.send(s.id, "1")  # the answer, typed into the pane
    wait_screen(pa_home, s.id, "● Done.")
    wait_for(lambda: status_after_poll(app, s.id) == Status.IDLE, 10, "idle")
    turn = app.store.last_turn(s.id)
    assert turn is not None and (turn.n, turn.status) == (1, "done")
    attention = [e.payload["status"] for e in app.store.events(s.id, kinds=["attention"])]
    assert attention == ["needs_input", "idle"]
    # The finished turn is checkpointed like a headless one.
    ref = f"refs/pa/sessions/{s.id}/turns/1"
    wait_for(
        lambda: (
            subprocess.run(["git", "rev-parse", "--verify", "-q", ref], cwd=repo).returncode == 0
        ),
        10,
        "the turn's checkpoint",
    )


def test_follow_up_is_typed_literally(app: App, repo: Path, pa_home: Path) -> None:
    s = fake_session(app, repo, "echo")
    wait_screen(pa_home, s.id, BANNER)
    tricky = "a;b \"q\" 'x' $(echo no) `no` %1 #{pane_id} \\; é;"
    tmux.type_text(pa_home, s.id, tricky)
    wait_screen(pa_home, s.id, "got: " + tricky)
    tmux.type_text(pa_home, s.id, ";")
    wait_screen(pa_home, s.id, "got: ;")


def test_exit_code_then_restart_then_stop(app: App, repo: Path, pa_home: Path) -> None:
    s = fake_session(app, repo, "echo")
    wait_screen(pa_home, s.id, BANNER)
    app.send(s.id, "fail")  # the fake TUI exits with code 3
    wait_for(lambda: status_after_poll(app, s.id) == Status.FAILED, 10, "failed")
    got = app.store.session(s.id)
    assert got.error is not None and "exit code 3" in got.error
    assert tmux.pane(pa_home, s.id) is not None  # the dead pane stays to be looked at

    # A follow-up starts the TUI again in the same tmux session.
    tui.send_text(app, app.store.session(s.id), "again")
    assert app.store.session(s.id).status == Status.RUNNING
    wait_screen(pa_home, s.id, f"{BANNER} prompt=again")
    pane = tmux.pane(pa_home, s.id)
    assert pane is not None and not pane.dead
    # "fail" was typed while turn 1 ran: an answer, not a turn of its own
    assert [t.prompt for t in app.store.turns(s.id)] == ["do the thing", "again"]
    assert [t.status for t in app.store.turns(s.id)] == ["failed", "running"]

    app.stop(s.id)
    got = app.store.session(s.id)
    assert got.status == Status.STOPPED
    assert tmux.pane(pa_home, s.id) is None
    assert "prompt=again" in (tmux.run_dir(pa_home, s.id) / "screen.txt").read_text()
    app.stop(s.id)  # twice is fine
    assert screen(pa_home, s.id) == ""


def test_prompt_less_session_starts_idle(app: App, repo: Path, pa_home: Path) -> None:
    s = fake_session(app, repo, "echo", prompt="")
    assert app.store.session(s.id).status == Status.IDLE
    wait_screen(pa_home, s.id, BANNER)
    app.send(s.id, "first prompt")
    assert app.store.session(s.id).status == Status.RUNNING
    wait_screen(pa_home, s.id, "got: first prompt")
    assert [t.prompt for t in app.store.turns(s.id)] == ["first prompt"]


def test_vanished_tmux_server_means_interrupted(app: App, repo: Path, pa_home: Path) -> None:
    s = fake_session(app, repo, "echo")
    stubborn = fake_session(app, repo, "stubborn")
    wait_screen(pa_home, s.id, BANNER)
    wait_screen(pa_home, stubborn.id, BANNER)
    pid = int((tmux.run_dir(pa_home, stubborn.id) / "pid").read_text())
    subprocess.run(["tmux", "-L", tmux.socket_name(pa_home), "kill-server"], check=True)
    for sid in (s.id, stubborn.id):
        wait_for(lambda i=sid: status_after_poll(app, i) == Status.INTERRUPTED, 10, "interrupted")
    # The TUI that ignored the hang-up does not live on, orphaned.
    wait_for(lambda: not Path(f"/proc/{pid}").exists(), 10, "the orphaned TUI ended")


def test_typing_reaches_a_pane_left_in_copy_mode(app: App, repo: Path, pa_home: Path) -> None:
    s = fake_session(app, repo, "echo")
    wait_screen(pa_home, s.id, BANNER)
    tmux.run(pa_home, "copy-mode", "-t", f"=pa-{s.id}:")
    assert tmux.display(pa_home, s.id, "#{pane_in_mode}") == "1"
    tmux.type_text(pa_home, s.id, "after scrolling")
    wait_screen(pa_home, s.id, "got: after scrolling")
