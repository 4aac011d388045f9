"""Issue 19: a Ray turn's start (its actor coming up on a node, the code shipped, the
repository URL asked) runs on the server's start threads, not on its loop: while one
hangs, the loop goes on starting and ingesting other sessions."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_repo, pa
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
            ray_s = json.loads(pa(
                "new", "on the cluster", "--runtime", "ray", "--json",
                "--cmd", "sh -c 'echo x > x.txt'", cwd=repo, check=True, timeout=180,
            ).stdout)["id"]  # fmt: skip
            poll("git to ask the URL", lambda: held, 120)
            local_s = json.loads(pa(
                "new", "here", "--json", "--cmd", "sh -c 'echo here > here.txt'",
                cwd=repo, check=True, timeout=60,
            ).stdout)["id"]  # fmt: skip
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
