"""issue 17: a real server runs an `--on-push` routine once per new commit of the branch,
and a server killed with SIGKILL, with a commit pushed while it is down, runs that commit
once after the restart: no commit doubled, none lost."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.server.conftest import Srv, repo_path, start_server, wait_for

__all__ = ["repo_path", "start_server"]  # fixtures, used by name


def _commit(repo: Path, msg: str) -> str:
    subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", msg], cwd=repo, check=True)
    out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True,
                         capture_output=True, text=True)  # fmt: skip
    return out.stdout.strip()


def test_on_push_routine_survives_kill9(
    start_server: Callable[..., Srv], repo_path: Path
) -> None:
    """issue 17: one run per pushed commit, {commit} filled, across a kill -9."""
    srv = start_server()
    srv.client.routine_add("ci", "check {commit}", on_push=["main"], cmd=["true"],
                           repo=str(repo_path), overlap="allow")  # fmt: skip

    def history() -> list[dict[str, Any]]:
        return srv.client.routine_history("ci")

    a = _commit(repo_path, "a")
    wait_for(lambda: [r["state"] for r in history()] == ["started"], 60, "the run for a",
             diagnose=srv.diagnose)  # fmt: skip
    srv.kill9()
    b = _commit(repo_path, "b")
    srv.start()
    wait_for(lambda: len(history()) >= 2, 60, "the run for b", diagnose=srv.diagnose)
    c = _commit(repo_path, "c")
    wait_for(lambda: len(history()) >= 3, 60, "the run for c", diagnose=srv.diagnose)
    wait_for(lambda: all(r["state"] == "started" for r in history()), 30, "runs recorded")
    runs = history()
    assert [r["reason"] for r in runs] == [f"push main {x[:8]}" for x in (c, b, a)], runs

    def prompts() -> list[str] | None:
        turns = [srv.client.get_session(r["session"])["turns"] for r in runs]
        return [t[0]["prompt"] for t in turns] if all(turns) else None

    got = wait_for(prompts, 60, "the runs' turns (a busy machine queues them)")
    assert got == [f"check {x}" for x in (c, b, a)]
