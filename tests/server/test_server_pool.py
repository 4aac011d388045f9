"""The server's periodic warm-pool refill (`pool.refill_every`): a real `pa server`, a
real repository, no session started, so only the periodic check can fill the pool."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from parallel_agents.git import pool
from parallel_agents.sessions.orchestrator import App
from tests.conftest import git
from tests.server.conftest import Srv, wait_for
from tests.test_pool import _status as _pool_status


def _commit(repo: Path) -> str:
    (repo / "moved.txt").write_text("the base moves on\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base moves")
    return git(repo, "rev-parse", "HEAD").strip()


def _ready_at(commit: str) -> dict[str, Any] | None:
    st = _pool_status()
    entries = st["entries"]
    done = (
        st["base"] == commit
        and st["ready"] == 1
        and st["stale"] == 0
        and st["unready"] == 0
        and not st["filling"]
        and [e["commit"] for e in entries] == [commit]
    )
    return st if done else None


def test_the_server_refills_a_stale_pool(
    start_server: Callable[..., Srv], repo_path: Path, pool_on: None
) -> None:
    # No session is started: the repo's own size asks for its pool (`pool_budget.wanted`).
    srv = start_server("[pool]\nbackground = true\nrefill_every = 0.2\n[pool.repos.demo]\nsize = 1\n")
    srv.client.add_repo(repo_path, name="demo")
    first = git(repo_path, "rev-parse", "HEAD").strip()
    # An empty pool is short: the periodic check fills it.
    wait_for(lambda: _ready_at(first), 60, "the first fill", diagnose=srv.diagnose)

    new = _commit(repo_path)  # the warm worktree is now stale
    assert _pool_status()["stale"] == 1
    st = wait_for(lambda: _ready_at(new), 60, "a refill at the new base", diagnose=srv.diagnose)
    wt = Path(st["entries"][0]["path"])
    assert (wt / "moved.txt").exists()
    assert git(wt, "status", "--porcelain", "--untracked-files=all") == ""
    # Both fills were background fillers started by the server (they log here).
    log = (Path(st["dir"]) / pool.FILL_LOG).read_text()
    assert log.count('"created": 1') == 2, log
    assert srv.client.list_sessions(all=True) == []


def test_refill_every_zero_leaves_the_pool_alone(
    start_server: Callable[..., Srv], repo_path: Path, pool_on: None
) -> None:
    srv = start_server("[pool]\nsize = 1\nbackground = true\nrefill_every = 0\n")
    srv.client.add_repo(repo_path, name="demo")
    app = App.open()
    try:
        r = app.store.repo_by_name("demo")
        assert r is not None
        assert pool.fill(app.settings, r).ready == 1  # in this process: no filler log
    finally:
        app.close()
    _commit(repo_path)

    def ticks() -> int:
        return int(srv.client.health()["supervisor"]["ticks"])

    start = ticks()
    # 20 loop passes (about 3 s): with refill_every = 0.2 a filler would have started.
    wait_for(lambda: ticks() >= start + 20, 60, "20 supervisor passes", diagnose=srv.diagnose)
    st = _pool_status()
    assert (st["ready"], st["stale"], st["unready"], st["filling"]) == (0, 1, 0, False)
    assert not (Path(st["dir"]) / pool.FILL_LOG).exists()  # no filler was ever started
