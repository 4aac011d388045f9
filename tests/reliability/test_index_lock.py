"""A repository whose index.lock is held by another process (a git command of the user
or of the agent still running): what pa can do without the index works, what needs it
fails quickly with a message naming the lock, and nothing is left half-done."""

from __future__ import annotations

import contextlib
import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from parallel_agents.git import pool
from tests.reliability.helpers import git, pa, wait_until

HOLDER = (
    "import os, sys\n"
    "fd = os.open(sys.argv[1], os.O_CREAT | os.O_EXCL | os.O_WRONLY)\n"
    "print('held', flush=True)\n"
    "sys.stdin.read()\n"
    "os.close(fd)\n"
    "os.unlink(sys.argv[1])\n"
)


@contextlib.contextmanager
def held(lock: Path) -> Iterator[None]:
    """``lock`` created and kept open by another process, like a running git does."""
    p = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert p.stdout is not None and p.stdout.readline() == "held\n"
    try:
        yield
    finally:
        assert p.stdin is not None and p.stdout is not None
        p.stdin.close()
        p.wait(timeout=10)
        p.stdout.close()
    assert not lock.exists()


def _new(repo: Path, *args: str) -> dict[str, str]:
    p = pa("new", "work", "--repo", "demo", "--json", *args)
    assert p.returncode == 0, p.stderr
    data: dict[str, str] = json.loads(p.stdout)
    return data


def _worktree_state(wt: Path) -> tuple[str, str, str]:
    adm = pool.admin_dir(wt)
    assert adm is not None
    files = {
        str(p.relative_to(wt)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(wt.rglob("*"))
        if p.is_file() and p.name != ".git"
    }
    index = hashlib.sha256((adm / "index").read_bytes()).hexdigest()
    return (adm / "HEAD").read_text(), index, json.dumps(files, sort_keys=True)


@pytest.fixture
def demo(repo: Path) -> Path:
    assert pa("repo", "add", str(repo), "--name", "demo").returncode == 0
    return repo


def test_pa_new_works_while_the_main_index_is_locked(demo: Path) -> None:
    lock = demo / ".git" / "index.lock"
    with held(lock):
        s = _new(demo, "--cmd", "true")
        assert pa("wait", "--timeout", "60", s["id"]).returncode == 0
        assert lock.exists() and lock.read_bytes() == b""
        assert Path(s["worktree"], "README.md").exists()


def test_checkpoint_and_diff_work_while_the_agent_holds_its_index(demo: Path) -> None:
    s = _new(demo, "--cmd", "sh -c 'echo more >> README.md'")
    assert pa("wait", "--timeout", "60", s["id"]).returncode == 0
    wt = Path(s["worktree"])
    adm = pool.admin_dir(wt)
    assert adm is not None
    (wt / "extra.txt").write_text("new\n")
    with held(adm / "index.lock"):
        before = _worktree_state(wt)
        d = pa("diff", s["id"], "--name-only")
        assert d.returncode == 0, d.stderr
        assert d.stdout.split() == ["README.md", "extra.txt"]
        assert _worktree_state(wt) == before


def test_rollback_refuses_cleanly_while_the_index_is_locked(demo: Path, tmp_path: Path) -> None:
    agent = tmp_path / "agent.sh"
    agent.write_text('echo "turn $PA_TURN" >> log.txt\n')
    s = _new(demo, "--cmd", f"sh {agent}")
    assert pa("wait", "--timeout", "60", s["id"]).returncode == 0
    assert pa("send", s["id"], "again").returncode == 0
    assert pa("wait", "--timeout", "60", s["id"]).returncode == 0
    wt = Path(s["worktree"])
    adm = pool.admin_dir(wt)
    assert adm is not None
    with held(adm / "index.lock"):
        before = _worktree_state(wt)
        t0 = time.monotonic()
        p = pa("rollback", s["id"], "--turn", "1")
        took = time.monotonic() - t0
        assert p.returncode != 0
        assert "index.lock" in p.stderr and "Traceback" not in p.stderr, p.stderr
        assert took < 30, "the retry is not bounded"
        assert _worktree_state(wt) == before, "a refused rollback changed the worktree"
    assert (wt / "log.txt").read_text() == "turn 1\nturn 2\n"


def test_merge_leaves_a_locked_main_checkout_alone(demo: Path) -> None:
    from parallel_agents.git import merging as merge

    git(demo, "checkout", "-q", "-b", "feature")
    (demo / "feature.txt").write_text("feature\n")
    git(demo, "add", "-A")
    git(demo, "commit", "-q", "-m", "feature")
    git(demo, "checkout", "-q", "main")
    old = git(demo, "rev-parse", "main").strip()
    lock = demo / ".git" / "index.lock"
    with held(lock):
        res = merge.merge(demo, "feature", "main", strategy="merge", message="merge feature")
        msg = merge.sync_main_checkout(demo, "main", old, res.new)
        assert "index.lock" in msg and "nothing there was changed" in msg, msg
        assert not (demo / "feature.txt").exists()
    # After the lock is gone the same call brings the files up to date.
    msg = merge.sync_main_checkout(demo, "main", old, res.new)
    assert (demo / "feature.txt").read_text() == "feature\n", msg
    wait_until(lambda: git(demo, "status", "--porcelain") == "", what="a clean checkout")


def test_a_stale_ref_lock_is_named_in_the_checkpoint_error(demo: Path) -> None:
    from parallel_agents.errors import PAError
    from parallel_agents.sessions import review as review_service
    from parallel_agents.sessions.orchestrator import App

    s = _new(demo, "--cmd", "true")
    assert pa("wait", "--timeout", "60", s["id"]).returncode == 0
    lock = demo / ".git" / "refs" / "pa" / "sessions" / s["id"] / "turns" / "1.lock"
    lock.write_text("")  # left by a checkpoint killed inside `git update-ref`
    app = App.open()
    try:
        with pytest.raises(PAError) as err:
            review_service.checkpoint_turn(app.store, app.store.session(s["id"]), 1)
        assert "1.lock" in str(err.value), str(err.value)
    finally:
        app.close()
        lock.unlink()
