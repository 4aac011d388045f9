"""The warm worktree pool: fill, take, staleness, dirt, concurrency, the background filler."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from parallel_agents.git import pool, pool_budget, pool_take
from parallel_agents.sessions import pool_fill
from parallel_agents.sessions.orchestrator import App
from tests.conftest import make_repo
from tests.reliability.helpers import (
    assert_consistent,
    git,
    pa,
    pa_json,
    wait_until,
    worktree_list,
    write_settings,
)


def _app() -> App:
    return App.open()


@pytest.fixture
def pooled(repo: Path, pool_on: None) -> Path:
    write_settings("[pool]\nsize = 3\nbackground = false\n")
    app = _app()
    try:
        app.add_repo(repo, name="demo")
        pool_budget.mark_used(app.settings, "demo")  # as if a session had started there
    finally:
        app.close()
    return repo


def _fill(size: int | None = None) -> pool.FillReport:
    app = _app()
    try:
        r = app.store.repo_by_name("demo")
        assert r is not None
        return pool.fill(app.settings, r, target=size)
    finally:
        app.close()


def _status() -> dict[str, object]:
    app = _app()
    try:
        r = app.store.repo_by_name("demo")
        assert r is not None
        return pool.status(app.settings, r)
    finally:
        app.close()


def test_size_zero_turns_it_off(repo: Path, pool_on: None) -> None:
    write_settings("[pool]\nsize = 0\n")
    app = _app()
    try:
        r = app.add_repo(repo, name="demo")
        base = git(repo, "rev-parse", "HEAD").strip()
        wt = app.settings.worktree_root / "demo" / "x1"
        assert not pool_take.take(app.settings, repo, r.name, wt, "pa/x1", base)
        assert not wt.exists()
        assert not (app.settings.worktree_root / "demo" / ".pool").exists()
        assert pool.fill(app.settings, r).created == 0
    finally:
        app.close()


def test_fill_then_take_switches_to_the_branch_without_touching_files(pooled: Path) -> None:
    rep = _fill()
    assert (rep.created, rep.ready, rep.errors) == (3, 3, [])
    st = _status()
    assert st["ready"] == 3 and st["stale"] == 0
    base = git(pooled, "rev-parse", "HEAD").strip()
    listed = worktree_list(pooled)
    assert sum(1 for w in listed if "/.pool/" in w["worktree"] and "detached" in w) == 3

    s = pa_json("new", "work", "--repo", "demo", "--cmd", "true")
    wt = Path(s["worktree"])
    assert (wt / "README.md").read_text() == "# demo\n"
    assert git(wt, "symbolic-ref", "HEAD").strip() == f"refs/heads/{s['branch']}"
    assert git(wt, "rev-parse", "HEAD").strip() == base
    assert git(wt, "status", "--porcelain", "--untracked-files=all") == ""
    # It came from the pool: git's record of it is one of the warm worktrees'.
    token = (wt / ".git").read_text().strip().rsplit("/", 1)[1]
    assert token in {e["token"] for e in st["entries"]}  # type: ignore[attr-defined]
    assert _status()["ready"] == 2
    listed = {w["worktree"]: w for w in worktree_list(pooled)}
    assert listed[str(wt)]["branch"] == f"refs/heads/{s['branch']}"
    assert not any("prunable" in w for w in listed.values())
    assert pa("wait", "--timeout", "60", s["id"]).returncode == 0
    assert_consistent(pooled, Path(os.environ["PA_HOME"]))


def test_stale_entries_are_never_handed_out_and_fill_replaces_them(pooled: Path) -> None:
    _fill()
    old = git(pooled, "rev-parse", "HEAD").strip()
    (pooled / "new.txt").write_text("moved on\n")
    git(pooled, "add", "-A")
    git(pooled, "commit", "-q", "-m", "base moves")
    new = git(pooled, "rev-parse", "HEAD").strip()
    st = _status()
    assert (st["ready"], st["stale"]) == (0, 3)
    s = pa_json("new", "work", "--repo", "demo", "--cmd", "true")
    wt = Path(s["worktree"])
    assert git(wt, "rev-parse", "HEAD").strip() == new
    assert (wt / "new.txt").exists()
    assert _status()["stale"] == 3  # untouched: a plain create served the session
    rep = _fill()
    assert (rep.discarded, rep.created, rep.ready) == (3, 3, 3)
    st = _status()
    assert {e["commit"] for e in st["entries"]} == {new}  # type: ignore[attr-defined]
    assert old != new
    assert pa("wait", "--timeout", "60", s["id"]).returncode == 0
    assert_consistent(pooled, Path(os.environ["PA_HOME"]))


@pytest.mark.parametrize(
    "dirt", ["modified", "untracked", "untracked-folder", "staged", "staged-delete"]
)
def test_dirty_entries_are_archived_and_never_handed_out(pooled: Path, dirt: str) -> None:
    _fill(1)
    st = _status()
    entry = Path(st["entries"][0]["path"])  # type: ignore[index]
    token = st["entries"][0]["token"]  # type: ignore[index]
    if dirt == "modified":
        (entry / "README.md").write_text("someone typed here\n")
    elif dirt == "untracked":
        (entry / "notes.txt").write_text("stray\n")
    elif dirt == "untracked-folder":
        (entry / "src" / "new" / "deep").mkdir(parents=True)
        (entry / "src" / "new" / "deep" / "stray.py").write_text("x = 1\n")
    elif dirt == "staged-delete":
        git(entry, "rm", "-q", "--cached", "README.md")  # only the index changed
    else:
        (entry / "src" / "app.py").write_text("print('staged')\n")
        git(entry, "add", "src/app.py")
    s = pa_json("new", "work", "--repo", "demo", "--cmd", "true")
    wt = Path(s["worktree"])
    assert (wt / "README.md").read_text() == "# demo\n"
    assert not (wt / "notes.txt").exists()
    assert git(wt, "status", "--porcelain", "--untracked-files=all") == ""
    archived = git(pooled, "for-each-ref", "--format=%(refname)", f"refs/pa/archive/pool-{token}")
    assert archived.strip(), "the dirty warm worktree was not archived"
    base = git(pooled, "rev-parse", "HEAD").strip()
    assert git(pooled, "rev-parse", f"refs/pa/archive/pool-{token}^").strip() == base

    assert _status()["ready"] == 0
    assert pa("wait", "--timeout", "60", s["id"]).returncode == 0
    assert_consistent(pooled, Path(os.environ["PA_HOME"]))


_TAKER = r"""
import json, sys
from pathlib import Path
from parallel_agents.git import pool_take
from parallel_agents.config import load_settings
settings = load_settings()
repo, name, path, branch, base = sys.argv[1:6]
sys.stdin.readline()  # the start signal: every taker is ready before any moves
ok = pool_take.take(settings, Path(repo), name, Path(path), branch, base)
print(json.dumps({"ok": ok, "path": path, "branch": branch}))
"""


def test_twenty_concurrent_takes_from_separate_processes(pooled: Path) -> None:
    size = 12
    write_settings(f"[pool]\nsize = {size}\nbackground = false\n")
    assert _fill().ready == size
    base = git(pooled, "rev-parse", "HEAD").strip()
    app = _app()
    root = app.settings.worktree_root / "demo"
    app.close()
    procs = []
    for i in range(20):
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _TAKER,
                    str(pooled),
                    "demo",
                    str(root / f"t{i:02d}"),
                    f"pa/take-{i:02d}",
                    base,
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for p in procs:  # release them together
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(json.loads(out))
    taken = [r for r in results if r["ok"]]
    assert len(taken) == size, results
    tokens = set()
    listed = {w["worktree"]: w for w in worktree_list(pooled)}
    for r in taken:
        wt = Path(r["path"])
        assert listed[str(wt)]["branch"] == f"refs/heads/{r['branch']}"
        assert git(wt, "status", "--porcelain", "--untracked-files=all") == ""
        tokens.add((wt / ".git").read_text().strip())
    assert len(tokens) == size, "two sessions got the same worktree"
    for r in results:
        if not r["ok"]:
            assert not Path(r["path"]).exists()
            assert not git(pooled, "branch", "--list", r["branch"]).strip()
    assert _status()["ready"] == 0
    assert not any("prunable" in w for w in listed.values())


def test_background_refill_after_a_take(pooled: Path) -> None:
    write_settings("[pool]\nsize = 2\nbackground = true\n")
    _fill()
    s = pa_json("new", "work", "--repo", "demo", "--cmd", "true")
    app = _app()
    pdir = pool.pool_dir(app.settings, "demo")
    app.close()

    def refilled() -> bool:
        st = _status()
        return not st["filling"] and st["ready"] == 2

    wait_until(refilled, timeout=60, what="the background filler")
    log = (pdir / pool.FILL_LOG).read_text()
    assert '"created": 1' in log, log
    assert pa("wait", "--timeout", "60", s["id"]).returncode == 0
    assert_consistent(pooled, Path(os.environ["PA_HOME"]))


def test_only_the_sessions_take_starts_a_filler(pooled: Path) -> None:
    """git/pool_take.take is git mechanics only; sessions/pool_fill.take (what `pa new` uses)
    also starts the background filler that replaces the taken worktree."""
    write_settings("[pool]\nsize = 2\nbackground = true\n")
    assert _fill().ready == 2
    base = git(pooled, "rev-parse", "HEAD").strip()
    app = _app()
    try:
        root = app.settings.worktree_root / "demo"
        pdir = pool.pool_dir(app.settings, "demo")
        assert pool_take.take(app.settings, pooled, "demo", root / "t1", "pa/t1", base)
        assert not (pdir / pool.FILL_LOG).exists()  # no filler was started
        assert _status()["ready"] == 1
        assert pool_fill.take(app.settings, pooled, "demo", root / "t2", "pa/t2", base)
        wait_until(
            lambda: (pdir / pool.FILL_LOG).exists() and not pool.filling(pdir),
            timeout=60,
            what="the filler started by the take",
        )
        assert _status()["ready"] == 2, (pdir / pool.FILL_LOG).read_text()
    finally:
        app.close()


def test_kick_starts_at_most_one_filler(pooled: Path) -> None:
    write_settings("[pool]\nsize = 2\nbackground = true\n")
    app = _app()
    try:
        pdir = pool.pool_dir(app.settings, "demo")
        with pool.fill_lock(pdir, wait=True) as got:
            assert got
            assert not pool_fill.kick(app.settings, "demo")  # a filler (we) holds the lock
        assert pool_fill.kick(app.settings, "demo")
        wait_until(lambda: not pool.filling(pdir), timeout=60, what="the filler to finish")
        assert _status()["ready"] == 2
        filler = pool_fill._fillers[-1]
        wait_until(lambda: filler.poll() is not None, what="the filler to exit")
        assert filler.returncode == 0
    finally:
        app.close()


def test_refill_kicks_a_filler_only_when_a_pool_needs_work(pooled: Path) -> None:
    write_settings("[pool]\nsize = 2\nbackground = true\n")
    app = _app()
    try:
        r = app.store.repo_by_name("demo")
        assert r is not None
        pdir = pool.pool_dir(app.settings, "demo")
        assert pool.needs_fill(app.settings, r)  # empty
        assert pool.fill(app.settings, r).ready == 2
        assert not pool.needs_fill(app.settings, r)
        assert pool_fill.refill(app.settings, app.store) == []  # nothing to do: no filler started
        assert not (pdir / pool.FILL_LOG).exists()

        (pooled / "new.txt").write_text("moved on\n")
        git(pooled, "add", "-A")
        git(pooled, "commit", "-q", "-m", "base moves")
        new = git(pooled, "rev-parse", "HEAD").strip()
        assert pool.needs_fill(app.settings, r)  # stale
        assert pool_fill.refill(app.settings, app.store) == ["demo"]
        filler = pool_fill._fillers[-1]
        wait_until(lambda: filler.poll() is not None, timeout=60, what="the filler to exit")
        assert filler.returncode == 0, (pdir / pool.FILL_LOG).read_text()
        assert [e.commit for e in pool.ready_entries(pdir)] == [new, new]
        assert not pool.needs_fill(app.settings, r)

        (pdir / pool.TRASH_DIR / "left").mkdir(parents=True)
        assert pool.needs_fill(app.settings, r)  # trash to empty
        pool.tidy(app.settings, r)
        assert not pool.needs_fill(app.settings, r)
    finally:
        app.close()
    write_settings("[pool]\nsize = 2\nbackground = false\n")
    app = _app()
    try:
        (pooled / "new.txt").write_text("again\n")
        git(pooled, "commit", "-q", "-am", "base moves again")
        assert pool_fill.refill(app.settings, app.store) == []  # background off: only `pa pool fill` fills
    finally:
        app.close()


def test_max_caps_the_total_over_repos(pooled: Path, tmp_path: Path) -> None:
    other = make_repo(tmp_path / "other")
    write_settings("[pool]\nsize = 3\nmax = 4\nbackground = false\n")
    app = _app()
    try:
        r2 = app.add_repo(other, name="other")
        r1 = app.store.repo_by_name("demo")
        assert r1 is not None
        assert pool.fill(app.settings, r1).ready == 3
        assert pool.fill(app.settings, r2).ready == 1
        assert pool.config_for(app.settings, "demo").size == 3
    finally:
        app.close()
    write_settings("[pool]\nsize = 0\nmax = 4\n[pool.repos.other]\nsize = 2\n")
    app = _app()
    try:
        assert pool.config_for(app.settings, "other").size == 2
        assert pool.config_for(app.settings, "demo").size == 0
        refilled = {r.repo: r for r in pool_fill.refill(app.settings, app.store, wait=True)}
        assert refilled["demo"].ready == 0 and refilled["demo"].discarded == 3
        assert refilled["other"].ready == 2
    finally:
        app.close()


def test_clear_and_cli(pooled: Path) -> None:
    filled = pa_json("pool", "fill", "--repo", "demo")
    assert filled[0]["ready"] == 3
    st = pa_json("pool", "status")
    assert st[0]["ready"] == 3 and st[0]["size"] == 3
    text = pa("pool", "status").stdout
    assert "demo: 3/3 ready" in text
    cleared = pa_json("pool", "clear", "--repo", "demo")
    assert cleared[0]["discarded"] == 3
    assert len(worktree_list(pooled)) == 1
    app = _app()
    try:
        pdir = pool.pool_dir(app.settings, "demo")
        assert [p.name for p in pdir.iterdir() if not p.name.startswith(".")] == []
    finally:
        app.close()
    bad = pa("pool", "status", "--repo", "nope")
    assert bad.returncode == 2 and "no registered repo named 'nope'" in bad.stderr


def test_a_dead_fillers_leftovers_are_removed(pooled: Path) -> None:
    _fill(2)
    app = _app()
    try:
        pdir = pool.pool_dir(app.settings, "demo")
        r = app.store.repo_by_name("demo")
        assert r is not None
        # An unmarked worktree (filler killed before publishing) and a lone marker.
        git(pooled, "worktree", "add", "-q", "--detach", "--no-checkout", str(pdir / "dead0001"))
        (pdir / "gone0001.ready").write_text(json.dumps({"commit": "x", "created": 0}))
        st = pool.status(app.settings, r)
        assert (st["ready"], st["unready"], st["lone_markers"]) == (2, 1, 1)
        rep = pool.tidy(app.settings, r)
        assert rep.discarded == 1 and not rep.busy
        st = pool.status(app.settings, r)
        assert (st["ready"], st["unready"], st["lone_markers"], st["trash"]) == (2, 0, 0, 0)
        assert not any("dead0001" in w["worktree"] for w in worktree_list(pooled))
    finally:
        app.close()


def test_take_refuses_a_non_empty_path_and_keeps_the_pool(pooled: Path) -> None:
    _fill(1)
    base = git(pooled, "rev-parse", "HEAD").strip()
    app = _app()
    try:
        wt = app.settings.worktree_root / "demo" / "busy"
        wt.mkdir(parents=True)
        (wt / "f").write_text("x")
        from parallel_agents.errors import PAError

        with pytest.raises(PAError, match="already exists and is not empty"):
            pool_take.take(app.settings, pooled, "demo", wt, "pa/busy", base)
        assert _status()["ready"] == 1
        # An existing branch: the claimed worktree is given up, the branch untouched.
        git(pooled, "branch", "pa/taken")
        wt2 = app.settings.worktree_root / "demo" / "other"
        with pytest.raises(PAError, match="already exists"):
            pool_take.take(app.settings, pooled, "demo", wt2, "pa/taken", base)
        assert not wt2.exists()
        assert git(pooled, "rev-parse", "pa/taken").strip() == base
    finally:
        app.close()


def test_removing_a_repo_clears_its_warm_worktrees(tmp_path: Path, pool_on: None) -> None:
    import subprocess

    from tests.conftest import make_repo, pa

    repo = make_repo(tmp_path / "rmrepo")
    cfg = tmp_path / "pool.toml"
    cfg.write_text("[pool]\nsize = 1\nbackground = false\n")
    env = {"PA_CONFIG": str(cfg)}
    assert pa("repo", "add", str(repo), env=env).returncode == 0
    assert pa("pool", "fill", env=env).returncode == 0
    listed = subprocess.run(
        ["git", "-C", str(repo), "worktree", "list"], capture_output=True, text=True, check=True
    ).stdout
    assert listed.count("\n") == 2, listed
    p = pa("repo", "rm", "rmrepo", env=env)
    assert p.returncode == 0, p.stderr
    listed = subprocess.run(
        ["git", "-C", str(repo), "worktree", "list"], capture_output=True, text=True, check=True
    ).stdout
    assert listed.count("\n") == 1, listed
