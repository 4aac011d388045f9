"""Issue 16 §5: pairing mode. The main checkout shows a session's files, follows them,
and `pa pair --stop` puts it back byte for byte: branch, HEAD, index, files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from tests.conftest import make_repo
from tests.reliability.helpers import git, pa

IGNORE = "*.log\nnode_modules/\n"


def _session(repo: Path) -> tuple[str, Path]:
    assert pa("repo", "add", str(repo), "--name", "demo").returncode == 0
    p = pa("new", "work", "--repo", "demo", "--cmd", "true", "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert pa("wait", "--timeout", "60", d["id"]).returncode == 0
    return d["id"], Path(d["worktree"])


def _repo(tmp_path: Path) -> Path:
    repo = make_repo(
        tmp_path / "repo",
        {"README.md": "# demo\n", "src/app.py": "print('hi')\n", ".gitignore": IGNORE},
    )
    (repo / "dev.log").write_text("the user's ignored log\n")
    (repo / "node_modules").mkdir()
    (repo / "node_modules" / "dep.js").write_text("dep\n")
    return repo


def state(repo: Path) -> dict[str, Any]:
    """Everything the user sees of a checkout: every file's bytes (ignored ones too),
    the index, HEAD, the branch, untracked files."""
    files: dict[str, str] = {}
    for p in sorted(repo.rglob("*")):
        rel = p.relative_to(repo)
        if ".git" in rel.parts or not p.is_file():
            continue
        files[rel.as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return {
        "files": files,
        "dirs": sorted(
            p.relative_to(repo).as_posix()
            for p in repo.rglob("*")
            if p.is_dir() and ".git" not in p.relative_to(repo).parts
        ),
        "index": git(repo, "ls-files", "-s"),
        "head": git(repo, "rev-parse", "HEAD"),
        "branch": git(repo, "symbolic-ref", "-q", "HEAD", check=False),
        "untracked": git(repo, "ls-files", "--others", "--exclude-standard"),
        "status": git(repo, "status", "--porcelain"),
    }


def _agent_work(wt: Path) -> None:
    (wt / "README.md").write_text("# demo\nby the agent\n")
    git(wt, "commit", "-qam", "agent commit")
    (wt / "src" / "app.py").write_text("print('agent, uncommitted')\n")
    (wt / "new.txt").write_text("untracked by the agent\n")
    (wt / "agent.log").write_text("ignored: never shown\n")


def _status(sid: str) -> dict[str, Any]:
    p = pa("pair", "status", "--json")
    assert p.returncode == 0, p.stderr
    rows = [r for r in json.loads(p.stdout)["pairings"] if r["sid"] == sid]
    assert rows
    return dict(rows[0])


def test_pair_shows_follows_and_stops_byte_for_byte(tmp_path: Path) -> None:
    """issue 16 §5: pair puts the session's files in the checkout, follows new work,
    and --stop restores branch, HEAD, index and files exactly, branch deleted."""
    repo = _repo(tmp_path)
    sid, wt = _session(repo)
    _agent_work(wt)
    before = state(repo)
    p = pa("pair", sid, "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["branch"] == "main" and d["head"] == before["head"].strip()
    assert git(repo, "symbolic-ref", "--short", "HEAD").strip() == f"pa/pair/{sid}"
    assert (repo / "README.md").read_text() == "# demo\nby the agent\n"
    assert (repo / "src" / "app.py").read_text() == "print('agent, uncommitted')\n"
    assert (repo / "new.txt").read_text() == "untracked by the agent\n"
    assert not (repo / "agent.log").exists()
    assert (repo / "dev.log").read_text() == "the user's ignored log\n"
    assert git(repo, "status", "--porcelain").strip() == ""  # the IDE sees a clean branch
    # The agent works on: the checkout follows (in-process: status syncs).
    (wt / "later.txt").write_text("later\n")
    (wt / "new.txt").unlink()
    assert _status(sid)["syncing"]
    assert (repo / "later.txt").read_text() == "later\n"
    assert not (repo / "new.txt").exists()
    # A second pairing of the same checkout is refused.
    p = pa("pair", sid)
    assert p.returncode != 0 and "already paired" in p.stderr
    p = pa("pair", "--stop", sid, "--json")
    assert p.returncode == 0, p.stderr
    assert state(repo) == before
    assert git(repo, "branch", "--list", f"pa/pair/{sid}").strip() == ""
    assert pa("pair", "status", "--json").stdout.count(sid) == 0
    # The agent's worktree was never touched.
    assert (wt / "later.txt").exists() and (wt / "agent.log").exists()


def test_pair_refuses_dirty_checkout(tmp_path: Path) -> None:
    """issue 16 §5: a checkout with modified, staged or untracked files is refused,
    each named, and nothing moves."""
    repo = _repo(tmp_path)
    sid, _wt = _session(repo)
    (repo / "README.md").write_text("user edit\n")
    (repo / "mine.txt").write_text("untracked\n")
    (repo / "staged.txt").write_text("staged\n")
    git(repo, "add", "staged.txt")
    before = state(repo)
    p = pa("pair", sid)
    assert p.returncode != 0
    for name in ("README.md", "mine.txt", "staged.txt"):
        assert name in p.stderr
    assert "Traceback" not in p.stderr
    assert state(repo) == before
    assert "no pairing" in pa("pair", "status").stdout


def test_pair_detached_head_restored(tmp_path: Path) -> None:
    """issue 16 §5: a checkout on a detached HEAD goes back to that detached commit."""
    repo = _repo(tmp_path)
    sid, wt = _session(repo)
    _agent_work(wt)
    git(repo, "checkout", "-q", "--detach", "HEAD")
    before = state(repo)
    assert pa("pair", sid).returncode == 0
    assert pa("pair", "--stop", sid).returncode == 0
    assert state(repo) == before


def test_user_edit_stops_sync_and_stop_refuses_then_keep(tmp_path: Path) -> None:
    """issue 16 §5: a user's edit in the paired checkout is never overwritten: syncing
    stops (status says so), --stop refuses touching nothing; committed on the temporary
    branch, --stop --keep restores the checkout and leaves the branch with the commit."""
    repo = _repo(tmp_path)
    sid, wt = _session(repo)
    before = state(repo)
    assert pa("pair", sid).returncode == 0
    (repo / "src" / "app.py").write_text("the user's fix\n")
    (wt / "src" / "app.py").write_text("the agent's later version\n")
    st = _status(sid)
    assert not st["syncing"] and "edits pa did not make" in st["diverged"]
    assert (repo / "src" / "app.py").read_text() == "the user's fix\n"
    p = pa("pair", "--stop", sid)
    assert p.returncode != 0 and "src/app.py" in p.stderr and "--keep" in p.stderr
    assert (repo / "src" / "app.py").read_text() == "the user's fix\n"
    p = pa("pair", "--stop", sid, "--keep")
    assert p.returncode != 0  # not committed yet: --keep would lose it too
    git(repo, "commit", "-qam", "user fix")
    p = pa("pair", "--stop", sid)
    assert p.returncode != 0  # deleting the branch would lose the commit
    p = pa("pair", "--stop", sid, "--keep", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["kept_branch"] == f"pa/pair/{sid}"
    assert state(repo) == before
    kept = git(repo, "show", f"pa/pair/{sid}:src/app.py")
    assert kept.strip() == "the user's fix"


def test_agent_file_over_users_ignored_file_is_refused_untouched(tmp_path: Path) -> None:
    """issue 16 §5: where the agent has a file the user has an ignored one (dev.log),
    pairing is refused, the user's file keeps its bytes and no pairing is left."""
    repo = _repo(tmp_path)
    sid, wt = _session(repo)
    (wt / "dev.log").write_text("the agent's log, force-added\n")
    git(wt, "add", "-f", "dev.log")
    git(wt, "commit", "-qm", "tracked log")
    (wt / "pkg" / "deep").mkdir(parents=True)
    (wt / "pkg" / "deep" / "mod.py").write_text("x = 1\n")
    before = state(repo)
    p = pa("pair", sid)
    assert p.returncode != 0 and "dev.log" in p.stderr and "Traceback" not in p.stderr
    assert state(repo) == before
    assert "no pairing" in pa("pair", "status").stdout
    # Moved away, pairing works, and --stop leaves no folder of the agent's behind.
    (repo / "dev.log").unlink()
    before = state(repo)
    assert pa("pair", sid).returncode == 0
    assert (repo / "pkg" / "deep" / "mod.py").exists()
    assert pa("pair", "--stop", sid).returncode == 0
    assert state(repo) == before
    assert not (repo / "pkg").exists()


def test_merge_while_paired_then_stop_lands_on_the_merged_branch(tmp_path: Path) -> None:
    """issue 16 §5: `pa merge` of the paired session moves main meanwhile; --stop puts
    the checkout on main as it is now (the merge's files, clean), nothing reverted."""
    repo = _repo(tmp_path)
    sid, wt = _session(repo)
    (wt / "feature.txt").write_text("merged work\n")
    assert pa("pair", sid).returncode == 0
    p = pa("merge", sid)
    assert p.returncode == 0, p.stdout + p.stderr
    tip = git(repo, "rev-parse", "main").strip()
    assert git(repo, "show", "main:feature.txt").strip() == "merged work"
    p = pa("pair", "--stop", sid, "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    assert git(repo, "symbolic-ref", "HEAD").strip() == "refs/heads/main"
    assert git(repo, "rev-parse", "HEAD").strip() == tip
    assert git(repo, "status", "--porcelain").strip() == ""
    assert (repo / "feature.txt").read_text() == "merged work\n"
    assert (repo / "dev.log").read_text() == "the user's ignored log\n"
