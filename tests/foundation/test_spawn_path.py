"""What a session start costs in git processes, and that the cheaper checks stay safe.

Counted with a real ``git`` behind a logging shim on PATH (no times are asserted).
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
from pathlib import Path

import pytest

from parallel_agents.errors import PAError
from parallel_agents.git import worktrees
from parallel_agents.sessions.orchestrator import App
from tests.conftest import git


def _git_shim(tmp_path: Path) -> tuple[Path, Path]:
    """A ``git`` that logs its arguments, then runs the real one: (bin dir, log)."""
    real = shutil.which("git")
    assert real is not None
    bin_dir = tmp_path / "shim"
    bin_dir.mkdir()
    log = tmp_path / "git-calls.log"
    shim = bin_dir / "git"
    shim.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\nexec "{real}" "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    return bin_dir, log


def test_a_session_start_runs_three_git_processes(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """issue 14 §1: `pa new` runs git three times (the repo's state, the worktree's
    metadata, its files): the lock's common dir and the branch check are read from
    files, not asked of git; the files are checked out by parallel workers; and the
    start says where its time went (``App.timings``)."""
    app = App.open()
    try:
        app.add_repo(repo, name="r")
        bin_dir, log = _git_shim(tmp_path)
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        s = app.new_session("go", repo="r", cmd=[sys.executable, "-c", "pass"])
        timings = dict(app.timings)
    finally:
        app.close()
    calls = log.read_text().splitlines()
    assert len(calls) == 3, calls
    assert calls[0].startswith("rev-parse ")
    assert calls[1].startswith("worktree add --no-checkout")
    assert calls[2].endswith("reset --hard --quiet")
    if (os.cpu_count() or 1) > 1:
        assert calls[2].startswith("-c checkout.workers=")
    assert (Path(s.worktree) / "src" / "app.py").read_text() == "print('hi')\n"
    assert git(Path(s.worktree), "status", "--porcelain") == ""
    for phase in ("repo", "worktree_lock", "worktree_add", "worktree_checkout", "start"):
        assert timings[phase] >= 0, timings


@pytest.mark.parametrize("packed", [False, True])
def test_an_existing_branch_is_refused_and_left_alone(
    repo: Path, tmp_path: Path, packed: bool
) -> None:
    """issue 14 §1: the branch check read from the ref files (loose or packed) still
    refuses a branch that exists, and the undo never deletes it."""
    git(repo, "branch", "pa/taken-1234")
    if packed:
        git(repo, "pack-refs", "--all")
        assert not (repo / ".git" / "refs" / "heads" / "pa" / "taken-1234").exists()
    head = git(repo, "rev-parse", "pa/taken-1234").strip()
    wt = tmp_path / "wt"
    with pytest.raises(PAError, match="already exists"):
        worktrees.create(repo, wt, "pa/taken-1234", head)
    assert git(repo, "rev-parse", "pa/taken-1234").strip() == head
    assert not wt.exists() or not any(wt.iterdir())
    # A free name next to it is fine.
    worktrees.create(repo, wt, "pa/taken-12345", head)
    assert (wt / "README.md").exists()


def test_the_lock_of_a_linked_worktree_is_the_repositorys(repo: Path, tmp_path: Path) -> None:
    """issue 14 §1: the worktree lock's file, found without git, is the same one git's
    ``--git-common-dir`` names, from the main checkout and from a linked worktree."""
    other = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", "--detach", str(other))
    for where in (repo, other):
        assert worktrees._common_dir(where) == (repo / ".git").resolve()
