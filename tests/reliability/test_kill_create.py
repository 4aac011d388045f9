"""kill -9 of `pa new` (and of a pool filler) at random moments; `pa doctor --repair`
must then leave git and the store consistent: no orphan worktree or branch, no session
stuck in starting, `git worktree list` clean."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from parallel_agents.sessions.orchestrator import App
from tests.conftest import make_repo
from tests.reliability.helpers import (
    FULL,
    assert_consistent,
    doctor,
    pa,
    pa_cmd,
    wait_until,
    write_settings,
)

ROUNDS = 60 if FULL else 14


def _files(n: int) -> dict[str, str]:
    return {f"pkg{i % 17}/mod{i}.py": f"# module {i}\n" + "x = 1\n" * (i % 40) for i in range(n)}


def _kill_group_at(cmd: list[str], delay: float, cwd: Path | None = None) -> int | None:
    """Run ``cmd`` in its own process group; SIGKILL the group after ``delay`` seconds.

    Returns the exit code when it finished first, None when it was killed.
    """
    p = subprocess.Popen(
        cmd,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        return p.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
        return None


def _pool_processes_done(home: Path) -> bool:
    """No filler of this PA_HOME is running (a kicked one runs detached)."""
    from parallel_agents.git import pool

    app = App.open()
    try:
        return not any(pool.filling(pool.pool_dir(app.settings, r.name)) for r in app.store.repos())
    finally:
        app.close()


@pytest.mark.parametrize("with_pool", [False, True], ids=["create", "pool"])
def test_kill_pa_new_at_random_moments(
    tmp_path: Path, pa_home: Path, with_pool: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo(tmp_path / "repo", _files(400))
    if with_pool:
        monkeypatch.delenv("PA_POOL_DISK_BUDGET")  # the pool on, as for users (conftest: off)
        write_settings("[pool]\nsize = 3\nbackground = false\n")
    assert pa("repo", "add", str(repo), "--name", "demo").returncode == 0
    if with_pool:
        assert pa("pool", "fill").returncode == 0
    new = pa_cmd("new", "work", "--repo", "demo", "--cmd", "true")
    # How long an undisturbed `pa new` takes here: kills land across all of it.
    t0 = time.monotonic()
    assert _kill_group_at(new, 60) == 0
    full = time.monotonic() - t0
    rng = random.Random(int(os.environ.get("PA_SEED", "7")))
    killed = 0
    for i in range(ROUNDS):
        if with_pool and i % 4 == 3:
            # A filler killed half-way as well.
            _kill_group_at(pa_cmd("pool", "fill"), rng.uniform(0.05, 0.6))
        if _kill_group_at(new, rng.uniform(0.2 * full, 1.1 * full)) is None:
            killed += 1
    assert killed > 0
    wait_until(lambda: _pool_processes_done(pa_home), what="fillers to stop")
    rc, rep = doctor(repair=True)
    if os.environ.get("PA_DEBUG"):
        print(sorted(f["kind"] for f in rep["findings"]))
    unresolved = [f for f in rep["findings"] if f["problem"] and not f["repaired"]]
    assert rc == 0 and not unresolved, unresolved
    rc, rep = doctor(repair=False)
    assert rc == 0, [f for f in rep["findings"] if f["problem"]]
    assert_consistent(repo, pa_home)
    # And the repo still works: a new session starts and finishes.
    done = pa("new", "after", "--repo", "demo", "--cmd", "true", "--json")
    assert done.returncode == 0, done.stderr
    import json

    sid = json.loads(done.stdout)["id"]
    assert pa("wait", "--timeout", "60", sid).returncode == 0
    assert_consistent(repo, pa_home)
