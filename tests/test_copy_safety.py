"""Issue 11 C: files copied in by `.parallel-agents.toml` never reach the base branch.

Real `pa` (in-process mode), real git, the `command` agent. The README's own example:
`copy = [".env"]` with an untracked, not ignored `.env` holding a secret.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import git, make_repo, pa
from tests.foundation.test_cli_sessions import new_json, script, wait_ok

SECRET = "DB_PASS=hunter2\n"


def repo_with_env(tmp_path: Path, copy: str = '[".env"]') -> Path:
    repo = make_repo(tmp_path / "repo", {"CHANGES.rst": "changes\n", "app.py": "x = 1\n"})
    (repo / ".parallel-agents.toml").write_text(f"copy = {copy}\n")
    git(repo, "add", ".parallel-agents.toml")
    git(repo, "commit", "-qm", "pa config")
    (repo / ".env").write_text(SECRET)  # untracked and not ignored
    return repo


def in_tree(repo: Path, rev: str, path: str) -> bool:
    r = subprocess.run(
        ["git", "cat-file", "-e", f"{rev}:{path}"], cwd=repo, capture_output=True, check=False
    )
    return r.returncode == 0


def test_copied_env_never_reaches_main(tmp_path: Path) -> None:
    """issue 11 C: the copied `.env` stays out of turn checkpoints, `pa diff` and
    `pa merge` (was: `git show main:.env` printed the secret); the worktree keeps it."""
    repo = repo_with_env(tmp_path)
    agent = script(tmp_path, "open('CHANGES.rst', 'a').write('more\\n')\n")
    s = new_json("edit changes", "--cmd", agent, cwd=repo)
    sid, wt = str(s["id"]), Path(str(s["worktree"]))
    assert wait_ok(sid).returncode == 0
    assert (wt / ".env").read_text() == SECRET
    turn1 = git(repo, "rev-parse", f"refs/pa/sessions/{sid}/turns/1").strip()
    assert not in_tree(repo, turn1, ".env")
    names = pa("diff", sid, "--name-only")
    assert names.returncode == 0, names.stderr
    assert names.stdout.split() == ["CHANGES.rst"]
    m = pa("merge", sid)
    assert m.returncode == 0, m.stdout + m.stderr
    assert "WARNING" not in m.stdout
    assert "more" in git(repo, "show", "main:CHANGES.rst")
    assert not in_tree(repo, "main", ".env")
    assert SECRET.strip() not in git(repo, "log", "-p", "--all")
    assert (wt / ".env").read_text() == SECRET


def test_copied_file_changed_by_the_agent_is_merged_with_a_warning(tmp_path: Path) -> None:
    """issue 11 C: a copied file the agent changed is the agent's work: merged, with an
    explicit WARNING naming it."""
    repo = repo_with_env(tmp_path)
    agent = script(tmp_path, "open('.env', 'a').write('DEBUG=1\\n')\n")
    s = new_json("debug on", "--cmd", agent, cwd=repo)
    sid = str(s["id"])
    assert wait_ok(sid).returncode == 0
    assert ".env" in pa("diff", sid, "--name-only").stdout.split()
    # Into a branch not checked out: the main checkout's own .env is in the way of main.
    git(repo, "branch", "integration", "main")
    m = pa("merge", sid, "--into", "integration")
    assert m.returncode == 0, m.stdout + m.stderr
    assert "WARNING: .env was copied in by copy = [...]" in m.stdout
    assert git(repo, "show", "integration:.env") == SECRET + "DEBUG=1\n"


def test_rollback_keeps_the_copied_file(tmp_path: Path) -> None:
    """issue 11 C: copied files are not in checkpoints, so a rollback (which removes files
    the checkpoint lacks) must leave them alone."""
    repo = repo_with_env(tmp_path)
    agent = script(tmp_path, "import os\nopen(f\"t{os.environ['PA_TURN']}.txt\", 'w').write('t')\n")
    s = new_json("one", "--cmd", agent, cwd=repo)
    sid, wt = str(s["id"]), Path(str(s["worktree"]))
    assert wait_ok(sid).returncode == 0
    assert pa("send", sid, "two").returncode == 0
    assert wait_ok(sid).returncode == 0
    assert (wt / "t2.txt").exists()
    r = pa("rollback", sid, "--turn", "1")
    assert r.returncode == 0, r.stderr
    assert not (wt / "t2.txt").exists() and (wt / "t1.txt").exists()
    assert (wt / ".env").read_text() == SECRET


def test_copy_through_a_symlink_out_of_the_repo_is_refused(tmp_path: Path) -> None:
    """issue 11 C: `copy = ["outside_link/passwd"]` with `outside_link -> /somewhere`
    copied a file from outside the repo; now `pa new` refuses before creating anything."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_text("root:x:0:0\n")
    repo = repo_with_env(tmp_path, '["outside_link/passwd"]')
    (repo / "outside_link").symlink_to(outside)
    (repo / "link_file").symlink_to(outside / "passwd")
    for copy in ('["outside_link/passwd"]', '["link_file"]', '["outside_link"]'):
        (repo / ".parallel-agents.toml").write_text(f"copy = {copy}\n")
        p = pa("new", "x", "--cmd", "true", cwd=repo)
        assert p.returncode == 2, (copy, p.stdout, p.stderr)
        assert "outside the repository" in p.stderr and "Traceback" not in p.stderr
    assert json.loads(pa("ls", "--all", "--json").stdout or "[]") == []
    assert git(repo, "branch", "--list", "pa/*") == ""
    assert git(repo, "worktree", "list").count("\n") == 1


@pytest.mark.parametrize("copy", ['[".*"]', '["**"]'])
def test_copy_patterns_never_match_git(tmp_path: Path, copy: str) -> None:
    """issue 11 C: `copy = [".*"]` / `["**"]` matched `.git` and broke session creation,
    leaving a half-made worktree; `.git` is never matched, and nothing copied reaches main."""
    repo = repo_with_env(tmp_path, copy)
    agent = script(tmp_path, "open('CHANGES.rst', 'a').write('more\\n')\n")
    s = new_json("x", "--cmd", agent, cwd=repo)
    sid, wt = str(s["id"]), Path(str(s["worktree"]))
    assert wait_ok(sid).returncode == 0, pa("show", sid).stdout
    assert (wt / ".git").is_file(), "the worktree's .git file is intact"
    assert (wt / ".env").read_text() == SECRET
    m = pa("merge", sid)
    assert m.returncode == 0, m.stdout + m.stderr
    assert not in_tree(repo, "main", ".env")
    assert git(repo, "diff", "--name-only", "main~1", "main").split() == ["CHANGES.rst"]


def test_copied_file_stays_out_after_discard_and_restore(tmp_path: Path) -> None:
    """issue 11 C: after `pa discard` and `pa restore` the copied `.env` is back in the
    worktree (from the local archive, or copied again) and still never merged."""
    repo = repo_with_env(tmp_path)
    agent = script(tmp_path, "open('CHANGES.rst', 'a').write('more\\n')\n")
    s = new_json("x", "--cmd", agent, cwd=repo)
    sid, wt = str(s["id"]), Path(str(s["worktree"]))
    assert wait_ok(sid).returncode == 0
    assert pa("discard", sid).returncode == 0
    r = pa("restore", sid)
    assert r.returncode == 0, r.stderr
    assert (wt / ".env").read_text() == SECRET
    assert "more" in (wt / "CHANGES.rst").read_text()
    m = pa("merge", sid)
    assert m.returncode == 0, m.stdout + m.stderr
    assert not in_tree(repo, "main", ".env")


def test_restored_copy_changed_by_the_agent_is_merged_with_a_warning(tmp_path: Path) -> None:
    """issue 11 C: a copied file the agent changed, archived by a discard and brought back
    by `pa restore`, still counts as changed: merged with a WARNING."""
    repo = repo_with_env(tmp_path)
    agent = script(tmp_path, "open('.env', 'a').write('DEBUG=1\\n')\n")
    s = new_json("x", "--cmd", agent, cwd=repo)
    sid = str(s["id"])
    assert wait_ok(sid).returncode == 0
    assert pa("discard", sid).returncode == 0
    assert pa("restore", sid).returncode == 0
    git(repo, "branch", "integration", "main")
    m = pa("merge", sid, "--into", "integration")
    assert m.returncode == 0, m.stdout + m.stderr
    assert "WARNING: .env was copied in" in m.stdout
    assert git(repo, "show", "integration:.env") == SECRET + "DEBUG=1\n"
