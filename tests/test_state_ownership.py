"""Worktrees know their PA_HOME: with one worktree_root shared by several homes (config.toml
is per user), one home's doctor or pool never removes another's worktrees or branches, and
doctor never removes a worktree a live process works in (issue 11 H)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from parallel_agents.git import pool
from parallel_agents.ops import doctor
from parallel_agents.sessions.orchestrator import App
from tests.conftest import make_repo
from tests.reliability.helpers import git, pa, write_settings


@pytest.fixture
def shared_root(tmp_path: Path) -> Path:
    root = tmp_path / "shared-worktrees"
    write_settings(f'worktree_root = "{root}"\n[pool]\nbackground = false\n')
    return root


def run_in(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return pa(*args, env={"PA_HOME": str(home)})


def session_in(home: Path, repo_name: str) -> dict[str, object]:
    p = run_in(home, "new", "work", "--repo", repo_name, "--cmd", "true", "--json")
    assert p.returncode == 0, p.stderr
    sid = str(json.loads(p.stdout)["id"])
    w = run_in(home, "wait", sid, "--timeout", "60")
    assert w.returncode == 0, w.stdout + w.stderr
    return dict(json.loads(run_in(home, "show", sid, "--json").stdout))


def pa_branches(repo: Path) -> list[str]:
    return git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/pa/").split()


def test_session_worktree_records_its_home(repo: Path, pa_home: Path, shared_root: Path) -> None:
    """issue 11 H: a session's worktree carries its PA_HOME in .git/worktrees/<name>/pa-owner."""
    assert run_in(pa_home, "repo", "add", str(repo), "--name", "demo").returncode == 0
    s = session_in(pa_home, "demo")
    adm = pool.admin_dir(Path(str(s["worktree"])))
    assert adm is not None
    assert (adm / "pa-owner").read_text().strip() == os.path.realpath(pa_home)


def test_doctor_of_another_home_leaves_a_live_session_alone(
    repo: Path, pa_home: Path, shared_root: Path, tmp_path: Path
) -> None:
    """issue 11 H: two PA_HOMEs share one worktree_root and register the same repo under the
    same name; `pa doctor --repair` in the second home removed the first home's session
    worktree and branch. Now it reports them for information and changes nothing."""
    home_b = tmp_path / "home-b"
    assert run_in(pa_home, "repo", "add", str(repo), "--name", "demo").returncode == 0
    s = session_in(pa_home, "demo")
    wt = Path(str(s["worktree"]))
    (wt / "work.txt").write_text("uncommitted work of home A\n")
    assert run_in(home_b, "repo", "add", str(repo), "--name", "demo").returncode == 0
    p = run_in(home_b, "doctor", "--repair", "--json", "--grace", "0")
    assert "Traceback" not in p.stderr, p.stderr
    rep = json.loads(p.stdout)
    assert p.returncode == 0, rep
    kinds = {f["kind"]: f for f in rep["findings"]}
    assert "foreign_home_worktree" in kinds and kinds["foreign_home_worktree"]["problem"] is False
    assert (wt / "work.txt").read_text() == "uncommitted work of home A\n"
    assert pa_branches(repo) == [s["branch"]]
    a = run_in(pa_home, "doctor", "--grace", "0")
    assert a.returncode == 0 and "all good" in a.stdout, a.stdout + a.stderr


def test_doctor_leaves_a_same_named_repo_of_another_home_alone(
    repo: Path, pa_home: Path, shared_root: Path, tmp_path: Path
) -> None:
    """issue 11 H: the second home registers a different repo under the same name: the
    first home's worktree under <root>/<name>/ is not a stray folder of that repo."""
    home_b = tmp_path / "home-b"
    other = make_repo(tmp_path / "other-repo")
    assert run_in(pa_home, "repo", "add", str(repo), "--name", "demo").returncode == 0
    s = session_in(pa_home, "demo")
    wt = Path(str(s["worktree"]))
    assert run_in(home_b, "repo", "add", str(other), "--name", "demo").returncode == 0
    p = run_in(home_b, "doctor", "--repair", "--json", "--grace", "0")
    assert p.returncode == 0, p.stdout + p.stderr
    assert wt.is_dir() and git(wt, "status", "--porcelain") == ""
    assert git(other, "for-each-ref", "refs/pa/") == ""  # nothing archived into the wrong repo


@pytest.fixture
def app(repo: Path) -> Iterator[App]:
    a = App.open()
    a.add_repo(repo, name="demo")
    yield a
    a.close()


def test_doctor_never_removes_a_worktree_a_live_process_works_in(
    app: App, repo: Path
) -> None:
    """issue 11 H: an orphan worktree (no session owns it) that a live process has as its
    working directory is reported, not removed; once the process is gone, it is."""
    root = app.settings.worktree_root / "demo"
    wt = root / "feed0001"
    root.mkdir(parents=True)
    git(repo, "worktree", "add", "-q", "-b", "pa/busy-feed0001", str(wt))
    proc = subprocess.Popen(["sleep", "300"], cwd=wt)
    try:
        rep = doctor.check(app, repair=True, grace=0)
        assert wt.is_dir()
        assert "worktree_in_use" in [f.kind for f in rep.findings]
    finally:
        proc.kill()
        proc.wait()
    rep = doctor.check(app, repair=True, grace=0)
    assert rep.ok, rep.to_json()
    assert not wt.exists()


def test_pool_of_another_home_keeps_this_homes_warm_worktrees(
    repo: Path, pa_home: Path, shared_root: Path, tmp_path: Path, pool_on: None
) -> None:
    """issue 11 H: with a shared worktree_root, `pa pool clear` (or a fill) in another home
    removed this home's warm worktrees; now each home tidies only its own."""
    home_b = tmp_path / "home-b"
    write_settings(
        f'worktree_root = "{shared_root}"\n[pool]\nbackground = false\nsize = 1\n'
    )
    for h in (pa_home, home_b):
        assert run_in(h, "repo", "add", str(repo), "--name", "demo").returncode == 0
    assert run_in(pa_home, "pool", "fill").returncode == 0
    pdir = shared_root / "demo" / pool.POOL_DIR
    mine = [e.path for e in pool.ready_entries(pdir)]
    assert len(mine) == 1
    assert run_in(home_b, "pool", "fill").returncode == 0
    assert run_in(home_b, "pool", "clear").returncode == 0
    assert [e.path for e in pool.ready_entries(pdir)] == mine
    st = json.loads(run_in(pa_home, "pool", "status", "--json").stdout)
    assert st[0]["ready"] == 1
    s = session_in(pa_home, "demo")  # takes its own warm worktree
    assert not mine[0].exists() and Path(str(s["worktree"])).is_dir()


def test_doctor_marks_its_sessions_worktrees_made_by_an_older_pa(
    repo: Path, pa_home: Path, shared_root: Path, tmp_path: Path
) -> None:
    """issue 11 H: a session worktree made before worktrees carried an owner is marked by
    its own home's `pa doctor`, so another home's doctor leaves it alone afterwards."""
    home_b = tmp_path / "home-b"
    assert run_in(pa_home, "repo", "add", str(repo), "--name", "demo").returncode == 0
    s = session_in(pa_home, "demo")
    wt = Path(str(s["worktree"]))
    adm = pool.admin_dir(wt)
    assert adm is not None
    (adm / "pa-owner").unlink()  # as an older pa left it
    assert run_in(pa_home, "doctor", "--grace", "0").returncode == 0
    assert (adm / "pa-owner").read_text().strip() == os.path.realpath(pa_home)
    assert run_in(home_b, "repo", "add", str(repo), "--name", "demo").returncode == 0
    assert run_in(home_b, "doctor", "--repair", "--grace", "0").returncode == 0
    assert wt.is_dir() and pa_branches(repo) == [s["branch"]]
