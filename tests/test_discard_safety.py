"""Issue 11 B (and issue 20): `pa discard` archives everything it removes, a crash and a
retry never lose the archive, and `pa restore` brings all of it back without moving a
branch that has other commits."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from parallel_agents.models import Status
from parallel_agents.sessions.orchestrator import App
from tests.conftest import make_repo
from tests.reliability.helpers import doctor, git, pa, pa_cmd

PY = sys.executable
IGNORE = "*.log\n.env\n*.db\nnode_modules/\n"


def _session(repo: Path) -> tuple[str, Path, str]:
    """(id, worktree, branch) of a finished session of ``repo`` (registered as demo)."""
    assert pa("repo", "add", str(repo), "--name", "demo").returncode == 0
    p = pa("new", "work", "--repo", "demo", "--cmd", "true", "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert pa("wait", "--timeout", "60", d["id"]).returncode == 0
    return d["id"], Path(d["worktree"]), d["branch"]


def _files(root: Path) -> dict[str, str]:
    """Every file (ignored ones too) outside .git folders, with a hash of its bytes."""
    out: dict[str, str] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if ".git" in rel.parts or not p.is_file():
            continue
        out[rel.as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _work(wt: Path) -> None:
    """An agent's typical leftovers: a commit, staged and unstaged edits, untracked and
    ignored files, an empty folder and a cache."""
    (wt / "README.md").write_text("# demo\ncommitted\n")
    git(wt, "commit", "-qam", "agent commit")
    (wt / "src" / "app.py").write_text("print('staged')\n")
    git(wt, "add", "src/app.py")
    (wt / "src" / "app.py").write_text("print('staged, then edited')\n")
    (wt / "new.txt").write_text("untracked\n")
    (wt / "staged_new.txt").write_text("staged new file\n")
    git(wt, "add", "staged_new.txt")
    (wt / "agent.log").write_text("a log the agent wrote\n")
    (wt / ".env").write_text("TOKEN=edited-by-agent\n")
    (wt / "local.db").write_bytes(b"\x00SQLite-ish\x01" * 100)
    (wt / "empty" / "deeper").mkdir(parents=True)
    (wt / "node_modules" / "pkg").mkdir(parents=True)
    (wt / "node_modules" / "pkg" / "index.js").write_text("cache\n")


def _state(wt: Path) -> dict[str, object]:
    files = _files(wt)
    files.pop("node_modules/pkg/index.js", None)  # a cache: skipped, and said so
    return {
        "HEAD": git(wt, "rev-parse", "HEAD"),
        "staged": git(wt, "diff", "--cached", "--name-status"),
        "unstaged": git(wt, "diff", "--name-status"),
        "files": files,
        "empty": (wt / "empty" / "deeper").is_dir(),
    }


def test_discard_restore_keeps_ignored_files_index_and_empty_dirs(tmp_path: Path) -> None:
    """issue 11 B.2 + B.5: ignored files (*.log, an edited .env, a local DB), the staging
    area and empty folders come back with `pa restore`; skipped caches are named."""
    repo = make_repo(
        tmp_path / "repo", {"README.md": "# demo\n", "src/app.py": "x\n", ".gitignore": IGNORE}
    )
    sid, wt, branch = _session(repo)
    _work(wt)
    before = _state(wt)
    d = pa("discard", sid)
    assert d.returncode == 0, d.stderr
    assert "ignored" in d.stdout and "staging area" in d.stdout, d.stdout
    assert "node_modules/" in d.stdout, d.stdout  # the skipped cache is listed
    assert not wt.exists()
    r = pa("restore", sid)
    assert r.returncode == 0, r.stderr
    assert _state(wt) == before
    assert git(wt, "rev-parse", "--abbrev-ref", "HEAD").strip() == branch


def test_merge_remove_worktree_archives_ignored_files(tmp_path: Path) -> None:
    """issue 11 B.2: `merge.remove_worktree = true` archives ignored files too, and
    `pa restore` brings the removed worktree of the merged session back."""
    from tests.reliability.helpers import write_settings

    repo = make_repo(tmp_path / "repo", {"README.md": "# demo\n", ".gitignore": IGNORE})
    sid, wt, _ = _session(repo)
    (wt / "feature.txt").write_text("feature\n")
    git(wt, "add", "feature.txt")
    git(wt, "commit", "-qm", "feature")
    (wt / "agent.log").write_text("log\n")
    write_settings("[merge]\nremove_worktree = true\n")
    m = pa("merge", sid)
    assert m.returncode == 0, m.stdout + m.stderr
    assert not wt.exists()
    r = pa("restore", sid)
    assert r.returncode == 0, r.stderr
    assert (wt / "agent.log").read_text() == "log\n"
    assert (wt / "feature.txt").read_text() == "feature\n"


def test_nested_repo_and_submodule_survive_discard(tmp_path: Path) -> None:
    """issue 11 B.1: a nested repository (its commits, edits, untracked files) and a
    submodule's own commits come back with `pa restore`; `pa diff` mentions them."""
    sub = make_repo(tmp_path / "sublib", {"lib.py": "v = 1\n"})
    repo = make_repo(tmp_path / "repo")
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub), "sub")
    git(repo, "commit", "-qm", "add submodule")
    sid, wt, _ = _session(repo)
    git(wt, "-c", "protocol.file.allow=always", "submodule", "update", "-q", "--init")
    (wt / "sub" / "lib.py").write_text("v = 2\n")
    git(wt / "sub", "commit", "-qam", "agent commit in submodule")
    (wt / "sub" / "scratch.txt").write_text("untracked in submodule\n")
    nested = wt / "vendor" / "lib"
    nested.mkdir(parents=True)
    git(nested, "init", "-q", "-b", "main")
    (nested / "a.txt").write_text("one\n")
    git(nested, "add", "a.txt")
    git(nested, "commit", "-qm", "nested commit")
    (nested / "a.txt").write_text("one, edited\n")
    (nested / "b.txt").write_text("untracked\n")
    d = pa("diff", sid)
    assert d.returncode == 0, d.stderr
    assert "nested repo vendor/lib/ has 2 uncommitted changes" in d.stderr, d.stderr
    assert "nested repo sub/ has 1 uncommitted change" in d.stderr, d.stderr
    sub_head = git(wt / "sub", "rev-parse", "HEAD")
    nested_head = git(nested, "rev-parse", "HEAD")
    before = _files(wt)
    assert pa("discard", sid).returncode == 0
    assert not wt.exists()
    r = pa("restore", sid)
    assert r.returncode == 0, r.stderr
    assert _files(wt) == before
    assert git(wt / "sub", "rev-parse", "HEAD") == sub_head
    assert git(nested, "rev-parse", "HEAD") == nested_head
    assert "a.txt" in git(nested, "status", "--porcelain")
    assert "lib.py" in git(wt / "sub", "log", "-1", "--stat")


# A reference-transaction hook that kills `pa` (its whole process group) when git is
# about to change the ref named in PA_TEST_KILL_REF: a kill -9 at an exact point.
HOOK = f"""#!{PY}
import os, signal, sys
want = os.environ.get("PA_TEST_KILL_REF")
lines = sys.stdin.read().splitlines()
if want and sys.argv[1] == os.environ.get("PA_TEST_KILL_STATE"):
    if any(line.split()[-1] == want for line in lines):
        os.killpg(os.getpgid(0), signal.SIGKILL)
"""


def _killed_discard(repo: Path, sid: str, ref: str, state: str) -> None:
    hook = repo / ".git" / "hooks" / "reference-transaction"
    hook.write_text(HOOK)
    hook.chmod(0o755)
    env = {**os.environ, "PA_TEST_KILL_REF": ref, "PA_TEST_KILL_STATE": state}
    p = subprocess.Popen(
        pa_cmd("discard", sid),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    assert p.wait(timeout=120) == -signal.SIGKILL, "the kill point was never reached"
    hook.unlink()


@pytest.mark.parametrize("state", ["prepared", "committed"])
def test_kill_during_discard_then_retry_keeps_the_archive(tmp_path: Path, state: str) -> None:
    """issue 11 B.3: kill -9 of `pa discard` after the worktree is gone (at the branch
    deletion), then the obvious retry and `pa doctor --repair`: the first, complete
    archive is kept (never overwritten) and `pa restore` brings all the work back."""
    repo = make_repo(
        tmp_path / "repo", {"README.md": "# demo\n", "src/app.py": "x\n", ".gitignore": IGNORE}
    )
    sid, wt, branch = _session(repo)
    _work(wt)
    before = _state(wt)
    _killed_discard(repo, sid, f"refs/heads/{branch}", state)
    assert not wt.exists()
    archive = git(repo, "rev-parse", f"refs/pa/archive/{sid}").strip()
    assert git(repo, "show", f"{archive}:new.txt") == "untracked\n"
    rc, rep = doctor(repair=False)
    assert "discard_incomplete" in [f["kind"] for f in rep["findings"]], rep
    retry = pa("discard", sid)
    assert "Traceback" not in retry.stderr, retry.stderr
    rc, rep = doctor(repair=True)
    assert rc == 0, json.dumps(rep["findings"], indent=1)
    # The archive ref was never moved.
    assert git(repo, "rev-parse", f"refs/pa/archive/{sid}").strip() == archive
    r = pa("restore", sid)
    assert r.returncode == 0, r.stderr
    assert _state(wt) == before
    assert git(wt, "rev-parse", "--abbrev-ref", "HEAD").strip() == branch
    rc, rep = doctor(repair=False)
    assert rc == 0 and rep["problems"] == 0, rep


def test_restore_never_moves_a_branch_with_other_commits(tmp_path: Path) -> None:
    """issue 11 B.4: a branch of the session's name that got commits after the discard
    (pushed by `pa pr`, someone added to it) is left alone: the session comes back on a
    new branch and the output says so. A branch behind the archive is simply reused."""
    repo = make_repo(tmp_path / "repo")
    sid, wt, branch = _session(repo)
    (wt / "work.txt").write_text("agent work\n")
    git(wt, "add", "work.txt")
    git(wt, "commit", "-qm", "agent work")
    head = git(wt, "rev-parse", "HEAD").strip()
    assert pa("discard", sid).returncode == 0
    tree = git(repo, "rev-parse", f"{head}^{{tree}}").strip()
    theirs = subprocess.run(
        ["git", "commit-tree", tree, "-p", head, "-m", "someone else's commit"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    git(repo, "branch", branch, theirs)
    r = pa("restore", sid, "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert git(repo, "rev-parse", branch).strip() == theirs  # not moved
    assert d["branch"] == f"{branch}-restored"
    assert any("commits the archive does not have" in n for n in d["notes"]), d
    assert git(wt, "rev-parse", "HEAD").strip() == head
    # A branch that is only behind (an ancestor of the archive) is fast-forwarded.
    assert pa("discard", sid).returncode == 0
    git(repo, "branch", "-f", d["branch"], head + "^")
    r = pa("restore", sid, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["branch"] == d["branch"]


@pytest.mark.parametrize("explicit", [False, True], ids=["by-id", "by-ref"])
def test_restore_brings_back_what_doctor_archived(tmp_path: Path, explicit: bool) -> None:
    """issue 20: an orphan worktree `pa doctor --repair` archived (here the worktree of a
    session marked discarded whose removal never happened) comes back with
    `pa restore ID` or `pa restore ID --archive REF`, ignored files included."""
    repo = make_repo(tmp_path / "repo", {"README.md": "# demo\n", ".gitignore": IGNORE})
    sid, wt, _ = _session(repo)
    (wt / "README.md").write_text("unsaved edit\n")
    (wt / "agent.log").write_text("ignored log\n")
    app = App.open()
    try:
        # What an older pa left when killed between writing the status and the removal.
        app.store.set_status(sid, Status.DISCARDED)
    finally:
        app.close()
    rc, rep = doctor(repair=True)
    assert rc == 0, rep
    assert not wt.exists()
    ref = f"refs/pa/archive/orphan-{sid}"
    assert git(repo, "show", f"{ref}:README.md") == "unsaved edit\n"
    args = ["restore", sid] + (["--archive", ref] if explicit else [])
    r = pa(*args)
    assert r.returncode == 0, r.stderr
    assert (wt / "README.md").read_text() == "unsaved edit\n"
    assert (wt / "agent.log").read_text() == "ignored log\n"


def test_rollback_keeps_the_staging_area_in_its_undo_point_and_says_so(tmp_path: Path) -> None:
    """issue 11 B.5 (rollback): the undo point of `pa rollback` keeps what was staged (a
    staged version that differs from the file), and the output says that nothing is
    staged afterwards."""
    repo = make_repo(tmp_path / "repo", {"a.txt": "base\n"})
    sid, wt, _ = _session(repo)
    (wt / "a.txt").write_text("staged version\n")
    git(wt, "add", "a.txt")
    (wt / "a.txt").write_text("worktree version\n")
    r = pa("rollback", sid, "--turn", "1", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert "nothing is staged" in res["note"]
    assert git(repo, "show", f"{res['undo_ref']}^2:index/a.txt") == "staged version\n"
    assert git(repo, "show", f"{res['undo_ref']}:a.txt") == "worktree version\n"
    assert (wt / "a.txt").read_text() == "base\n"
    assert git(wt, "diff", "--cached", "--name-only") == ""
