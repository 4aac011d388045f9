"""Issue 16 §2: `pa shell ID`, a terminal in any session's worktree (headless too), on
pa's own tmux server, independent of the agent. Real git, real tmux, the real `pa`."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from parallel_agents.sessions import shell
from tests.conftest import make_repo, pa
from tests.foundation.test_cli_sessions import new_json, wait_ok

pytestmark = pytest.mark.usefixtures("tmux_server")


def _headless(tmp_path: Path, *env: str) -> dict[str, object]:
    repo = make_repo(tmp_path / "proj", {"a.txt": "base\n"})
    extra = [a for e in env for a in ("--env", e)]
    s = new_json("do it", "--cmd", "true", *extra, cwd=repo)
    assert wait_ok(str(s["id"])).returncode == 0
    return s


def _wait_screen(home: Path, sid: str, text: str, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        last = shell.capture(home, sid)
        if text in last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never showed in the shell; screen:\n{last}")


def _type(home: Path, sid: str, line: str) -> None:
    from parallel_agents.runtime import tmux

    tmux.run(home, "send-keys", "-t", f"={shell.name(sid)}:", "-l", "--", line)
    tmux.run(home, "send-keys", "-t", f"={shell.name(sid)}:", "Enter")


def test_shell_runs_in_the_worktree_with_the_session_env(tmp_path: Path, pa_home: Path) -> None:
    """issue 16 §2: `pa shell ID` starts a shell in a headless session's worktree, with
    the session's environment; `pwd` and `echo $X` show them; --kill ends it."""
    s = _headless(tmp_path, "X=hello-from-pa")
    sid, wt = str(s["id"]), str(s["worktree"])
    p = pa("shell", sid, "--json", env={"SHELL": "/bin/sh"})
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["tmux_session"] == f"shell-{sid}" and d["worktree"] == wt
    assert "attach-session" in d["attach"]
    assert shell.is_running(pa_home, sid)
    _type(pa_home, sid, "pwd; echo X=$X; echo ID=$PA_SESSION_ID")
    screen = _wait_screen(pa_home, sid, "ID=" + sid)
    assert os.path.realpath(wt) in {os.path.realpath(x.strip()) for x in screen.splitlines()}
    assert "X=hello-from-pa" in screen
    # No secret in any argv: the environment went through a file, now removed.
    assert not list((pa_home / "sessions" / sid).glob("shell-*.json"))
    # A second `pa shell` comes back to the same shell (its screen is still there).
    assert pa("shell", sid, "--json").returncode == 0
    assert "X=hello-from-pa" in shell.capture(pa_home, sid)
    k = pa("shell", sid, "--kill", "--json")
    assert json.loads(k.stdout) == {"id": sid, "ended": True}
    assert not shell.is_running(pa_home, sid)
    assert "has no shell" in pa("shell", sid, "--kill").stdout


def test_shell_needs_a_terminal_and_a_worktree(tmp_path: Path, pa_home: Path) -> None:
    """issue 16 §2: without a tty, or when the worktree is gone: a clear error, no shell."""
    s = _headless(tmp_path)
    sid, wt = str(s["id"]), Path(str(s["worktree"]))
    p = pa("shell", sid)
    assert p.returncode != 0 and "needs a terminal" in p.stderr and "Traceback" not in p.stderr
    import shutil as sh

    sh.rmtree(wt)
    p = pa("shell", sid, "--json")
    assert p.returncode != 0
    assert "worktree" in p.stderr and "is gone" in p.stderr and "Traceback" not in p.stderr
    assert "hint:" in p.stderr
    assert not shell.is_running(pa_home, sid)


def test_discard_ends_the_shell(tmp_path: Path, pa_home: Path) -> None:
    """issue 16 §2: discarding a session ends its shell; the discarded session has none."""
    s = _headless(tmp_path)
    sid = str(s["id"])
    assert pa("shell", sid, "--json").returncode == 0
    assert shell.is_running(pa_home, sid)
    d = pa("discard", sid)
    assert d.returncode == 0, d.stderr
    assert not shell.is_running(pa_home, sid)
    p = pa("shell", sid, "--json")
    assert p.returncode != 0 and "discarded" in p.stderr and "pa restore" in p.stderr


def test_exit_ends_the_shell_and_it_starts_afresh(tmp_path: Path, pa_home: Path) -> None:
    """issue 16 §2: `exit` in the shell ends it; `pa shell` then starts a new one."""
    s = _headless(tmp_path)
    sid = str(s["id"])
    assert pa("shell", sid, "--json", env={"SHELL": "/bin/sh"}).returncode == 0
    _type(pa_home, sid, "exit")
    deadline = time.monotonic() + 15
    while shell.is_running(pa_home, sid):
        assert time.monotonic() < deadline, "the shell did not end on `exit`"
        time.sleep(0.05)
    assert pa("shell", sid, "--json").returncode == 0
    assert shell.is_running(pa_home, sid)
