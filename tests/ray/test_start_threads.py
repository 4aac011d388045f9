"""Issue 19: a Ray turn's start (its actor coming up on a node, the code shipped, the
repository URL asked) runs on the server's start threads, not on its loop: while one
hangs, the loop goes on starting and ingesting other sessions."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git, make_repo, pa
from tests.ray.conftest import poll


@contextmanager
def _hanging_http() -> Iterator[tuple[str, list[socket.socket]]]:
    """A URL on 127.0.0.1 that accepts connections and answers nothing until the block
    ends (then hangs up): git asking it hangs as long as the test wants."""
    srv = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not done.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.getsockname()[1]}/repo.git", held
    finally:
        done.set()
        t.join(timeout=5)
        for conn in held:
            conn.close()
        srv.close()


def _new(repo: Path, prompt: str, cmd: str, *more: str) -> str:
    """A new command-agent session (through the running server): its id."""
    made = pa("new", prompt, "--json", "--cmd", cmd, *more, cwd=repo, check=True, timeout=180)
    return str(json.loads(made.stdout)["id"])


def _show(sid: str, repo: Path) -> dict[str, Any]:
    return dict(json.loads(pa("show", sid, "--json", cwd=repo, check=True, timeout=60).stdout))


def test_a_ray_start_that_hangs_leaves_the_loop_running_local_sessions(
    cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """issue 19: the server's `runtime.ray.repo_url` answers nothing, so a Ray session's
    start hangs in `git ls-remote`; a local session made after it starts, runs and ends
    while the Ray one still shows `starting`; once the URL hangs up, the Ray turn fails
    with git's message and the setting's name."""
    c, _ = cluster
    monkeypatch.setenv("PA_SERVER_AUTOSTART", "1")
    repo = make_repo(tmp_path / "repo", {"a.txt": "one\n"})
    with _hanging_http() as (url, held):
        env = {"PA_RAY_ADDRESS": c.address, "PA_RAY_REPO_URL": url}
        try:
            pa("server", "start", env=env, check=True, timeout=120)
            ray_s = _new(repo, "on the cluster", "sh -c 'echo x > x.txt'", "--runtime", "ray")
            poll("git to ask the URL", lambda: held, 120)
            local_s = _new(repo, "here", "sh -c 'echo here > here.txt'")
            pa("wait", local_s, "--timeout", "120", cwd=repo, check=True, timeout=180)
            assert _show(local_s, repo)["status"] == "idle"
            assert _show(ray_s, repo)["status"] == "starting"  # still asking the URL
            for conn in list(held):  # the URL hangs up: git gives up with its message
                conn.close()
            pa("wait", ray_s, "--timeout", "120", cwd=repo, timeout=180)
            shown = _show(ray_s, repo)
            assert shown["status"] == "failed", shown
            told = json.dumps(shown) + pa("logs", ray_s, cwd=repo).stdout
            assert "runtime.ray.repo_url" in told, told
            assert url in told, told
        finally:
            pa("server", "stop", timeout=60)


def test_a_stop_during_a_ray_start_stops_the_turn_it_launches(
    cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """issue 19: `pa stop` while a Ray session's start is under way (held in the snapshot
    of its worktree by a git clean filter that waits for a gate) waits for that start,
    then stops the turn it launched: the session is never shown `stopped` while its
    agent runs on the node (it used to be, after 10 s, with the turn left running)."""
    c, _ = cluster
    monkeypatch.setenv("PA_SERVER_AUTOSTART", "1")
    repo = make_repo(tmp_path / "repo", {"a.txt": "one\n", ".gitattributes": "*.gated filter=gate\n",
                                         "x.gated": "held\n"})  # fmt: skip
    entered, gate = tmp_path / "entered", tmp_path / "gate"
    git(repo, "config", "filter.gate.clean",
        f"sh -c 'touch {entered}; while [ ! -e {gate} ]; do sleep 0.05; done; cat'")  # fmt: skip
    env = {"PA_RAY_ADDRESS": c.address}
    try:
        pa("server", "start", env=env, check=True, timeout=120)
        sid = _new(repo, "held", "sh -c 'echo started; exec sleep 600'", "--runtime", "ray")
        poll("the start held in the filter", entered.exists, 120)
        stopping = threading.Thread(
            target=lambda: pa("stop", sid, cwd=repo, timeout=300), daemon=True
        )
        stopping.start()
        # Longer than the old stop's 10 s look: it would have said `stopped` by now.
        end = time.monotonic() + 12
        while time.monotonic() < end:
            assert _show(sid, repo)["status"] == "starting"
            time.sleep(0.5)  # the pace of the look
        gate.touch()
        stopping.join(timeout=300)
        assert not stopping.is_alive()
        shown = _show(sid, repo)
        assert shown["status"] == "stopped", shown
        state = Path(os.environ["PA_HOME"]) / "sessions" / sid / "turns" / "1" / "ray.json"
        assert state.exists()  # the turn did start on a node ...
        exit_info = state.parent / "exit"
        assert exit_info.exists(), shown  # ... and ended there, stopped
        # by `pa stop`'s first signal: a Ray worker's blocked SIGINT is not the agent's
        assert json.loads(exit_info.read_text())["code"] == -signal.SIGINT
    finally:
        gate.touch()
        pa("server", "stop", timeout=60)
