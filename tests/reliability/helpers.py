"""Helpers for the pool, doctor and reliability tests: run `pa`, poll with deadlines, and
check the invariants a crash must not break."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from parallel_agents import git as pa_git
from parallel_agents.config import config_path

FULL = bool(os.environ.get("PA_FULL"))
PY = sys.executable
T = TypeVar("T")

_LAUNCH = "from parallel_agents.cli import main\nmain(prog_name='pa')\n"


def pa_cmd(*args: str) -> list[str]:
    return [PY, "-c", _LAUNCH, *args]


def pa(
    *args: str,
    cwd: Path | None = None,
    input: str | None = None,
    timeout: float = 120,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    return subprocess.run(
        pa_cmd(*args),
        cwd=cwd,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


def pa_json(*args: str, cwd: Path | None = None) -> Any:
    p = pa(*args, "--json", cwd=cwd)
    assert p.returncode == 0, f"pa {' '.join(args)}: {p.stdout}\n{p.stderr}"
    return json.loads(p.stdout)


def doctor(repair: bool = True) -> tuple[int, dict[str, Any]]:
    args = ["doctor", "--json", "--grace", "0"] + (["--repair"] if repair else [])
    p = pa(*args)
    assert "Traceback" not in p.stderr, p.stderr
    return p.returncode, json.loads(p.stdout)


def wait_until(pred: Callable[[], T], timeout: float = 30.0, what: str = "condition") -> T:
    """Poll ``pred`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(delay)
        delay = min(0.1, delay * 1.5)


def write_settings(text: str) -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def git(cwd: Path | str, *args: str, check: bool = True) -> str:
    r = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if check and r.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {r.stderr}")
    return r.stdout


def worktree_list(repo: Path) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    cur: dict[str, str] = {}
    for line in git(repo, "worktree", "list", "--porcelain").splitlines():
        if not line:
            if cur:
                out.append(cur)
            cur = {}
            continue
        key, _, val = line.partition(" ")
        cur[key] = val
    if cur:
        out.append(cur)
    return out


def assert_consistent(repo: Path, home: Path) -> None:
    """What a crash plus `pa doctor --repair` must leave: git and the store agree."""
    from parallel_agents.sessions.orchestrator import App

    app = App.open()
    try:
        r = app.store.repo_by_path(str(repo.resolve()))
        assert r is not None
        sessions = [s for s in app.store.sessions(repo_id=r.id) if s.status.value != "discarded"]
        stuck = [s.id for s in sessions if s.status.value == "starting"]
        assert not stuck, f"sessions stuck in starting: {stuck}"
        by_path = {os.path.realpath(s.worktree): s for s in sessions}
        pool_root = os.path.realpath(app.settings.worktree_root / r.name / ".pool")
        wts = worktree_list(repo)
        for w in wts:
            assert "prunable" not in w, f"prunable worktree left: {w}"
        for w in wts[1:]:
            p = os.path.realpath(w["worktree"])
            assert os.path.isdir(p), f"registered worktree missing: {p}"
            if p.startswith(pool_root + os.sep):
                assert "detached" in w, w
                continue
            s = by_path.get(p)
            assert s is not None, f"orphan worktree {p}"
            assert w.get("branch") == f"refs/heads/{s.branch}", (w, s.branch)
        root = app.settings.worktree_root / r.name
        if root.is_dir():
            registered = {os.path.realpath(w["worktree"]) for w in wts}
            for d in root.iterdir():
                if d.name.startswith("."):
                    continue
                assert os.path.realpath(d) in registered, f"unregistered folder {d}"
        branches = git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/pa/")
        owned = {s.branch for s in sessions}
        for b in branches.split():
            assert b in owned, f"orphan branch {b}"
        assert app.store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        app.close()


def rev(repo: Path, ref: str) -> str | None:
    return pa_git.rev_parse(repo, ref)


_KILL_HOOK = """\
import os
import signal
import sys

data = sys.stdin.read()
marker = {marker!r}
if sys.argv[1] == "committed" and {ref!r} in data and os.path.exists(marker):
    os.unlink(marker)
    os.killpg(os.getpgid(0), signal.SIGKILL)
"""


def kill_when_ref_moves(tmp_path: Path, repo: Path, ref: str) -> Path:
    """Arm a one-shot kill -9 of the process group that next moves a ref of ``repo`` whose
    name contains ``ref`` (git's reference-transaction hook, once the move is committed:
    files and ref moved, pa's record still says the step is under way). The marker file
    it returns is gone once it fired."""
    marker = tmp_path / "kill-armed"
    marker.write_text("1")
    hook = repo / ".git" / "hooks" / "reference-transaction"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text(f"#!{PY}\n" + _KILL_HOOK.format(marker=str(marker), ref=" " + ref))
    hook.chmod(0o755)
    return marker
