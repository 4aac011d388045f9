"""`pa doctor`: every kind of leftover is reported, and --repair fixes it without losing work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from parallel_agents.git import pool
from parallel_agents.models import Status
from parallel_agents.ops import doctor
from parallel_agents.sessions.orchestrator import App
from tests.reliability.helpers import (
    assert_consistent,
    git,
    pa,
    wait_until,
    worktree_list,
    write_settings,
)

PY = sys.executable


@pytest.fixture
def app(repo: Path) -> App:
    a = App.open()
    a.add_repo(repo, name="demo")
    yield a  # type: ignore[misc]
    a.close()


def kinds(rep: doctor.Report, problems_only: bool = True) -> list[str]:
    return sorted(f.kind for f in rep.findings if f.problem or not problems_only)


def finished(app: App, sid: str) -> None:
    def done() -> bool:
        app.refresh()
        return not app.store.session(sid).status.active

    wait_until(done, timeout=60, what=f"session {sid} to finish")


def test_healthy_home_has_nothing_to_report(app: App, repo: Path) -> None:
    s = app.new_session("hello", repo="demo", cmd=["true"])
    finished(app, s.id)
    rep = doctor.check(app, grace=0)
    assert rep.ok and kinds(rep) == []
    p = pa("doctor")
    assert p.returncode == 0 and "all good" in p.stdout, p.stdout + p.stderr


def test_orphan_worktree_is_archived_then_removed(app: App, repo: Path) -> None:
    root = app.settings.worktree_root / "demo"
    wt = root / "deadbeef"
    root.mkdir(parents=True)
    git(repo, "worktree", "add", "-q", "-b", "pa/lost-deadbeef", str(wt))
    (wt / "README.md").write_text("unsaved work\n")
    (wt / "new.txt").write_text("untracked work\n")
    rep = doctor.check(app, grace=0)
    assert kinds(rep) == ["orphan_branch", "orphan_worktree"] and not rep.ok
    assert wt.exists()  # a check alone changes nothing
    rep = doctor.check(app, repair=True, grace=0)
    assert rep.ok, rep.to_json()
    assert not wt.exists()
    ref = "refs/pa/archive/orphan-deadbeef"
    assert git(repo, "show", f"{ref}:README.md") == "unsaved work\n"
    assert git(repo, "show", f"{ref}:new.txt") == "untracked work\n"
    assert not git(repo, "branch", "--list", "pa/lost-deadbeef").strip()
    assert len(worktree_list(repo)) == 1
    assert doctor.check(app, grace=0).findings == []


def test_orphan_branch_with_unique_commits_is_archived(app: App, repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "pa/gone-1234")
    (repo / "f.txt").write_text("only here\n")
    git(repo, "add", "f.txt")
    git(repo, "commit", "-q", "-m", "unique")
    tip = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "checkout", "-q", "main")
    git(repo, "branch", "pa/plain-5678")  # at main: nothing to archive
    rep = doctor.check(app, repair=True, grace=0)
    assert rep.ok and kinds(rep) == ["orphan_branch", "orphan_branch"]
    assert git(repo, "rev-parse", "refs/pa/archive/orphan-pa-gone-1234").strip() == tip
    assert git(repo, "for-each-ref", "refs/pa/archive/orphan-pa-plain-5678") == ""
    assert git(repo, "for-each-ref", "refs/heads/pa/") == ""


def test_orphan_folder_and_foreign_worktree(app: App, repo: Path, tmp_path: Path) -> None:
    root = app.settings.worktree_root / "demo"
    stray = root / "cafe0001"
    (stray / "sub").mkdir(parents=True)
    (stray / "sub" / "keep.txt").write_text("half-written\n")
    (root / "empty0001").mkdir()
    mine = tmp_path / "users-own"
    git(repo, "worktree", "add", "-q", "-b", "feature", str(mine))
    rep = doctor.check(app, repair=True, grace=0)
    assert rep.ok
    assert kinds(rep) == ["orphan_dir", "orphan_dir"]
    assert "foreign_worktree" in kinds(rep, problems_only=False)
    assert not stray.exists() and not (root / "empty0001").exists()
    assert git(repo, "show", "refs/pa/archive/orphan-cafe0001:sub/keep.txt") == "half-written\n"
    assert mine.exists() and git(mine, "branch", "--show-current").strip() == "feature"


def test_prunable_registration_and_stale_locks(app: App, repo: Path) -> None:
    root = app.settings.worktree_root / "demo"
    root.mkdir(parents=True)
    git(repo, "worktree", "add", "-q", "--detach", str(root / "gone0001"))
    import shutil

    shutil.rmtree(root / "gone0001")
    s = app.new_session("hello", repo="demo", cmd=["true"])
    finished(app, s.id)
    admin = pool.admin_dir(Path(s.worktree))
    assert admin is not None
    (admin / "index.lock").write_text("")
    (admin / "locked").write_text("initializing")
    (repo / ".git" / "packed-refs.lock").write_text("")
    # A lock a live process holds open is not stale, whatever its age.
    held = repo / ".git" / "config.lock"
    holder = subprocess.Popen(
        [PY, "-c", "import sys; f = open(sys.argv[1], 'w'); sys.stdin.read()", str(held)],
        stdin=subprocess.PIPE,
    )
    try:
        wait_until(held.exists, what="the holder to open its lock")
        rep = doctor.check(app, repair=True, grace=0)
        assert rep.ok, rep.to_json()
        stale = sorted(f.subject for f in rep.findings if f.kind == "stale_lock")
        assert stale == sorted(
            [str(admin / "index.lock"), str(admin / "locked"), str(repo / ".git/packed-refs.lock")]
        )
        assert "prunable_worktree" in kinds(rep)
        assert held.exists()
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
        held.unlink()
    assert_consistent(repo, app.store.home)


def _half_created(app: App, repo: Path, *, checkout: bool, branch: bool = True) -> str:
    """A session as `pa new` leaves it when killed inside worktrees.create."""
    s = app.new_session("hello", repo="demo", cmd=["true"])
    finished(app, s.id)
    sess = app.store.session(s.id)
    # Rewind it to what a kill during creation leaves: starting, no turn, partial worktree.
    from parallel_agents.git import worktrees

    worktrees.remove(repo, Path(sess.worktree), sess.branch)
    with app.store.tx() as db:
        for table in ("events", "turns", "checkpoints"):
            db.execute(f"DELETE FROM {table} WHERE session_id = ?", (s.id,))
        db.execute("UPDATE sessions SET status = 'starting' WHERE id = ?", (s.id,))
    args = ["worktree", "add", "-q", "--no-checkout"]
    args += ["-b", sess.branch] if branch else ["--detach"]
    git(repo, *args, sess.worktree, sess.base_commit)
    if checkout:
        git(Path(sess.worktree), "reset", "-q", "--hard")
    return s.id


@pytest.mark.parametrize("checkout", [True, False])
def test_session_killed_during_creation(app: App, repo: Path, checkout: bool) -> None:
    sid = _half_created(app, repo, checkout=checkout)
    rep = doctor.check(app, grace=0)
    assert kinds(rep) == ["stuck_starting"]
    rep = doctor.check(app, repair=True, grace=0)
    assert rep.ok, rep.to_json()
    s = app.store.session(sid)
    assert s.status == Status.FAILED
    assert f"pa send {sid}" in (s.error or "")
    wt = Path(s.worktree)
    assert (wt / "README.md").read_text() == "# demo\n"
    assert git(wt, "status", "--porcelain") == ""
    assert_consistent(repo, app.store.home)
    # The hint works: the session continues in the completed worktree.
    app.send(sid, "go on")
    finished(app, sid)
    assert app.store.session(sid).status == Status.IDLE


def test_session_killed_during_a_pool_take(app: App, repo: Path, pool_on: None) -> None:
    """Killed between the rename and the repair: git still points into the pool."""
    write_settings("[pool]\nsize = 1\nbackground = false\n")
    sid = _half_created(app, repo, checkout=True, branch=False)
    s = app.store.session(sid)
    adm = pool.admin_dir(Path(s.worktree))
    assert adm is not None
    (adm / "gitdir").write_text(str(app.settings.worktree_root / "demo/.pool/abcd/.git") + "\n")
    rep = doctor.check(app, repair=True, grace=0)
    assert rep.ok, rep.to_json()
    assert "broken_worktree" in kinds(rep)
    s = app.store.session(sid)
    assert s.status == Status.FAILED
    assert git(Path(s.worktree), "symbolic-ref", "HEAD").strip() == f"refs/heads/{s.branch}"
    assert_consistent(repo, app.store.home)


def test_session_killed_before_anything_was_created(app: App, repo: Path) -> None:
    sid = _half_created(app, repo, checkout=False)
    s = app.store.session(sid)
    from parallel_agents.git import worktrees

    worktrees.remove(repo, Path(s.worktree), s.branch)
    rep = doctor.check(app, repair=True, grace=0)
    assert rep.ok
    s = app.store.session(sid)
    assert s.status == Status.FAILED and "start again with pa new" in (s.error or "")
    assert_consistent(repo, app.store.home)


def test_grace_protects_a_pa_new_still_working(app: App, repo: Path) -> None:
    sid = _half_created(app, repo, checkout=False)
    rep = doctor.check(app, repair=True, grace=3600)
    assert "stuck_starting" not in kinds(rep)
    assert app.store.session(sid).status == Status.STARTING


def test_session_stuck_starting_after_it_was_queued(app: App, repo: Path) -> None:
    s = app.new_session("hello", repo="demo", cmd=["true"])
    finished(app, s.id)
    with app.store.tx() as db:
        app.store.add_turn(db, s.id, "again", {})
        db.execute("UPDATE sessions SET status = 'starting' WHERE id = ?", (s.id,))
    rep = doctor.check(app, repair=True, grace=0)
    assert rep.ok and kinds(rep) == ["stuck_starting"]
    finished(app, s.id)
    assert app.store.session(s.id).status == Status.IDLE
    assert [t.status for t in app.store.turns(s.id)] == ["done", "done"]


def test_launched_turn_is_adopted_not_started_twice(app: App, repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "runs"
    agent = tmp_path / "agent.py"
    agent.write_text(f"import sys\nopen({str(marker)!r}, 'a').write('run\\n')\nprint('did it')\n")
    s = app.new_session("hello", repo="demo", cmd=[PY, str(agent)])
    finished(app, s.id)
    # The launch happened, but `starting -> running` was never written (killed between).
    with app.store.tx() as db:
        db.execute("UPDATE sessions SET status = 'starting' WHERE id = ?", (s.id,))
        db.execute(
            "UPDATE turns SET status = 'pending', read_offset = 0 WHERE session_id = ?", (s.id,)
        )
        db.execute("DELETE FROM events WHERE session_id = ? AND kind = 'output'", (s.id,))
    rep = doctor.check(app, repair=True, grace=0)
    assert rep.ok and kinds(rep) == ["stuck_starting"]
    finished(app, s.id)
    assert marker.read_text() == "run\n"  # not run again
    outs = [e.payload["text"] for e in app.store.events(s.id, kinds=["output"])]
    assert outs == ["did it"]


def test_running_session_whose_process_died(app: App, repo: Path) -> None:
    s = app.new_session("hello", repo="demo", cmd=["sleep", "300"])
    files = app.sup.turn_files(s.id, 1)
    wpid = wait_until(files.wrapper_pid, what="the wrapper pid")
    apid = wait_until(files.pid, what="the agent pid")
    os.kill(wpid, signal.SIGKILL)
    os.kill(apid, signal.SIGKILL)
    from parallel_agents.runtime import local

    wait_until(lambda: not local.alive(wpid) and not local.alive(apid), what="the kills")
    rep = doctor.check(app, grace=0)
    assert kinds(rep) == ["dead_running"]
    rep = doctor.check(app, repair=True, grace=0)
    assert rep.ok, rep.to_json()
    assert app.store.session(s.id).status == Status.INTERRUPTED


def test_missing_checkpoints_are_recreated(app: App, repo: Path) -> None:
    s = app.new_session("hello", repo="demo", cmd=["sh", "-c", "echo hi > made.txt"])
    finished(app, s.id)
    ref = f"refs/pa/sessions/{s.id}/turns/1"
    commit = git(repo, "rev-parse", ref).strip()
    # 1. the row is missing (killed between update-ref and the insert)
    app.store.db.execute("DELETE FROM checkpoints WHERE session_id = ?", (s.id,))
    rep = doctor.check(app, repair=True, grace=0)
    assert rep.ok and kinds(rep) == ["missing_checkpoint"]
    row = app.store.db.execute("SELECT commit_id FROM checkpoints WHERE session_id = ?", (s.id,))
    assert row.fetchone()[0] == commit
    # 2. the ref is missing
    git(repo, "update-ref", "-d", ref)
    rep = doctor.check(app, repair=True, grace=0)
    assert rep.ok and kinds(rep) == ["missing_checkpoint"]
    assert git(repo, "rev-parse", ref).strip() == commit
    # 3. both are missing (killed before the snapshot): take it now
    git(repo, "update-ref", "-d", ref)
    app.store.db.execute("DELETE FROM checkpoints WHERE session_id = ?", (s.id,))
    rep = doctor.check(app, repair=True, grace=0)
    assert rep.ok and kinds(rep) == ["missing_checkpoint"]
    assert git(repo, "show", f"{ref}:made.txt") == "hi\n"


def test_stale_server_info_is_removed(app: App) -> None:
    home = app.store.home
    dead = subprocess.run(
        [PY, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    (home / "server.json").write_text(json.dumps({"pid": int(dead.stdout), "port": 1}))
    (home / "server.lock").write_text("")
    rep = doctor.check(app, grace=0)
    assert kinds(rep) == ["server_stale"]
    rep = doctor.check(app, repair=True, grace=0)
    assert rep.ok and not (home / "server.json").exists()


def test_live_server_info_is_left_alone(app: App) -> None:
    import fcntl

    home = app.store.home
    fd = os.open(home / "server.lock", os.O_CREAT | os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    # A stand-in server: alive, holding the lock through its inherited descriptor.
    holder = subprocess.Popen(
        [PY, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE, pass_fds=(fd,)
    )
    os.close(fd)
    (home / "server.json").write_text(json.dumps({"pid": holder.pid, "port": 1}))
    try:
        rep = doctor.check(app, repair=True, grace=0)
        assert "server_stale" not in kinds(rep)
        assert (home / "server.json").exists()
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
        (home / "server.json").unlink()


def test_cli_json_and_exit_codes(app: App, repo: Path) -> None:
    git(repo, "branch", "pa/nobody-0000")
    p = pa("doctor", "--json")
    assert p.returncode == 1, p.stderr
    data = json.loads(p.stdout)
    assert data["ok"] is False and data["findings"][0]["kind"] == "orphan_branch"
    text = pa("doctor")
    assert "orphan_branch" in text.stdout and "pa doctor --repair" in text.stdout
    fixed = pa("doctor", "--repair")
    assert fixed.returncode == 0 and "fixed" in fixed.stdout, fixed.stdout + fixed.stderr
    assert pa("doctor").returncode == 0


def test_pool_leftovers(app: App, repo: Path, pool_on: None) -> None:
    write_settings("[pool]\nsize = 1\nbackground = false\n")
    app2 = App.open()
    r = app2.store.repo_by_name("demo")
    assert r is not None
    pool.fill(app2.settings, r)
    pdir = pool.pool_dir(app2.settings, "demo")
    git(repo, "worktree", "add", "-q", "--detach", str(pdir / "dead0002"))
    (pdir / "dead0002" / "scratch.txt").write_text("who wrote this\n")
    rep = doctor.check(app2, repair=True, grace=0)
    assert rep.ok and kinds(rep) == ["pool_leftover"]
    assert git(repo, "show", "refs/pa/archive/pool-dead0002:scratch.txt") == "who wrote this\n"
    assert pool.status(app2.settings, r)["ready"] == 1
    app2.close()
    assert_consistent(repo, app.store.home)


def test_launched_turn_whose_wrapper_died_is_interrupted_not_rerun(
    app: App, repo: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "runs"
    agent = tmp_path / "agent.py"
    agent.write_text(f"open({str(marker)!r}, 'a').write('run\\n')\n")
    s = app.new_session("hello", repo="demo", cmd=[PY, str(agent)])
    finished(app, s.id)
    files = app.sup.turn_files(s.id, 1)
    files.exit.unlink()  # the wrapper died before it could write how the agent ended
    with app.store.tx() as db:
        db.execute("UPDATE sessions SET status = 'starting' WHERE id = ?", (s.id,))
        db.execute("UPDATE turns SET status = 'pending' WHERE session_id = ?", (s.id,))
    rep = doctor.check(app, repair=True, grace=0)
    assert rep.ok and kinds(rep) == ["stuck_starting"]
    assert app.store.session(s.id).status == Status.INTERRUPTED
    assert marker.read_text() == "run\n"
