"""Issue 20 §1: a moved repository never costs a session its worktree.

Real git repositories moved with a real rename, the real `pa` CLI and `pa doctor`.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from parallel_agents.git import identity as repo_identity
from parallel_agents.ops import doctor
from parallel_agents.sessions.orchestrator import App
from tests.conftest import git, make_repo, pa
from tests.foundation.test_cli_sessions import new_json, no_traceback, script, wait_ok


def started(tmp_path: Path) -> tuple[Path, str, Path]:
    """A registered repo `proj` with one finished session that left uncommitted work."""
    repo = make_repo(tmp_path / "proj", {"a.txt": "base\n"})
    assert pa("repo", "add", str(repo)).returncode == 0
    agent = script(tmp_path, "import os\nopen(f\"t{os.environ['PA_TURN']}.txt\", 'w').write('x')\n")
    s = new_json("work", "--cmd", agent, cwd=repo)
    sid = str(s["id"])
    assert wait_ok(sid).returncode == 0
    wt = Path(str(s["worktree"]))
    (wt / "unsaved.txt").write_text("uncommitted work\n")
    return repo, sid, wt


def test_doctor_keeps_worktree_of_a_session_whose_repo_was_registered_again(
    tmp_path: Path,
) -> None:
    """issue 20 §1: after `mv`, a second registration of the moved repo (what `pa new` did
    before) must not make doctor archive and remove the session's worktree as an orphan."""
    repo, sid, wt = started(tmp_path)
    moved = tmp_path / "proj-moved"
    repo.rename(moved)
    app = App.open()
    try:
        app.store.add_repo("proj-moved", str(moved.resolve()), None)  # the old duplicate
        rep = doctor.check(app, repair=True, grace=0)
        assert wt.is_dir() and (wt / "unsaved.txt").read_text() == "uncommitted work\n"
        branch = app.store.session(sid).branch
        assert git(moved, "branch", "--list", branch).strip()
        assert not git(moved, "for-each-ref", f"refs/pa/archive/orphan-{sid}").strip()
        mine = [f for f in rep.findings if f.kind == "other_repo_session"]
        assert mine and all(not f.repaired for f in mine)
        assert any("pa repo move proj" in (f.fix or "") for f in mine)
        assert not rep.ok  # the moved registration is reported as a problem to fix
    finally:
        app.close()


def test_pa_new_in_moved_repo_refuses_and_says_what_it_found(tmp_path: Path) -> None:
    """issue 20 §1: `pa new` inside a moved repo names the registration and the move
    command instead of silently registering a duplicate (`proj-moved`)."""
    repo, _sid, _wt = started(tmp_path)
    moved = tmp_path / "proj-moved"
    repo.rename(moved)
    p = pa("new", "--cmd", "true", "again", cwd=moved)
    no_traceback(p)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "error:" in p.stderr and "registered as 'proj'" in p.stderr
    assert f"pa repo move proj {moved.resolve()}" in p.stderr
    add = pa("repo", "add", str(moved))
    assert add.returncode == 1 and "pa repo move proj" in add.stderr
    names = [r["name"] for r in json.loads(pa("repo", "ls", "--json").stdout)]
    assert names == ["proj"]


def test_repo_move_relinks_worktrees_and_the_session_continues(tmp_path: Path) -> None:
    """issue 20 §1: `pa repo move NAME NEWPATH` re-points the registration and repairs the
    worktree links both ways; the session's uncommitted work is intact and it continues."""
    repo, sid, wt = started(tmp_path)
    moved = tmp_path / "elsewhere" / "proj"
    moved.parent.mkdir()
    repo.rename(moved)
    p = pa("repo", "move", "proj", str(moved), "--json")
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    assert res["relinked"] == [sid] and res["unlinked"] == []
    assert res["repo"]["path"] == str(moved.resolve())
    assert "?? unsaved.txt" in git(wt, "status", "--porcelain")
    assert str(wt) in git(moved, "worktree", "list")
    d = pa("diff", sid, "--name-only")
    assert d.returncode == 0 and "unsaved.txt" in d.stdout, d.stderr
    assert pa("send", sid, "more").returncode == 0
    assert wait_ok(sid).returncode == 0
    assert (wt / "t2.txt").exists() and (wt / "unsaved.txt").exists()
    doc = pa("doctor", "--json", "--grace", "0")
    assert doc.returncode == 0, doc.stdout
    # A second move to the same place is harmless.
    assert pa("repo", "move", "proj", str(moved)).returncode == 0


def test_moved_repo_registered_before_repo_ids_is_recognised_by_worktree_links(
    tmp_path: Path,
) -> None:
    """issue 20 §1: a repo registered before pa wrote .git/pa-repo-id is recognised by git's
    links to its sessions' worktrees, and `pa repo move` still re-links them."""
    repo, sid, wt = started(tmp_path)
    (repo / ".git" / "pa-repo-id").unlink()
    app = App.open()
    try:
        app.store.set_repo_uid(app.store.repo_by_name("proj").id, None)  # type: ignore[union-attr]
    finally:
        app.close()
    moved = tmp_path / "proj-moved"
    repo.rename(moved)
    p = pa("new", "--cmd", "true", "again", cwd=moved)
    assert p.returncode == 1 and f"session {sid}" in p.stderr, p.stderr
    assert pa("repo", "move", "proj", str(moved)).returncode == 0
    assert "?? unsaved.txt" in git(wt, "status", "--porcelain")
    assert (moved / ".git" / "pa-repo-id").exists()  # it has an identity from now on


def test_repo_move_refuses_a_copy_and_another_repository(tmp_path: Path) -> None:
    """issue 20 §1: a `cp -r` copy (the original still in place) is not a move, and an
    unrelated repository is refused; `pa new` in the copy registers it as a repo of its own."""
    repo, _sid, wt = started(tmp_path)
    copy = tmp_path / "proj-copy"
    shutil.copytree(repo, copy, symlinks=True)
    p = pa("repo", "move", "proj", str(copy))
    assert p.returncode == 1 and "still holds repo 'proj'" in p.stderr, p.stderr
    other = make_repo(tmp_path / "other")
    shutil.rmtree(repo)
    p = pa("repo", "move", "proj", str(other))
    no_traceback(p)
    assert p.returncode == 1 and "does not look like repo 'proj'" in p.stderr, p.stderr
    assert json.loads(pa("repo", "ls", "--json").stdout)[0]["path"] == str(repo.resolve())
    assert (wt / "unsaved.txt").exists()


def test_pa_new_in_a_copy_registers_it_with_its_own_identity(tmp_path: Path) -> None:
    """issue 20 §1: a copy is not mistaken for a move: it is registered, with its own id."""
    repo, _sid, _wt = started(tmp_path)
    copy = tmp_path / "proj-copy"
    shutil.copytree(repo, copy, symlinks=True)
    s = new_json("in the copy", "--cmd", "true", cwd=copy)
    assert s["repo_name"] == "proj-copy"
    ids = {(p / ".git" / "pa-repo-id").read_text() for p in (repo, copy)}
    assert len(ids) == 2


@pytest.mark.usefixtures("server_mode")
def test_repo_move_through_the_server(tmp_path: Path) -> None:
    """issue 20 §1: `pa repo move` works against the background server too."""
    repo, sid, wt = started(tmp_path)
    moved = tmp_path / "moved"
    repo.rename(moved)
    refused = pa("new", "--cmd", "true", "again", cwd=moved)
    no_traceback(refused)
    assert refused.returncode == 1 and "hint: re-point it" in refused.stderr, refused.stderr
    p = pa("repo", "move", "proj", os.path.relpath(moved, tmp_path), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "re-linked the worktrees of 1 session" in p.stdout
    assert "?? unsaved.txt" in git(wt, "status", "--porcelain")
    assert pa("send", sid, "more").returncode == 0
    assert wait_ok(sid).returncode == 0


def test_registering_a_worktree_of_a_registered_repo_keeps_the_repo_identity(
    tmp_path: Path,
) -> None:
    """issue 20 §1: `pa new` inside a linked worktree of a registered repo must not give the
    shared .git a new id (the registered repo would then look replaced)."""
    repo, _sid, _wt = started(tmp_path)
    uid = (repo / ".git" / "pa-repo-id").read_text()
    extra = tmp_path / "extra-wt"
    git(repo, "worktree", "add", "-q", "-b", "side", str(extra))
    new_json("from a worktree", "--cmd", "true", cwd=extra)
    assert (repo / ".git" / "pa-repo-id").read_text() == uid
    s = new_json("still proj", "--cmd", "true", cwd=repo)
    assert s["repo_name"] == "proj"


def test_concurrent_first_use_of_a_repo_registers_it_once(tmp_path: Path) -> None:
    """CI failure of 2026-12-02: several `pa new` started at once in an unregistered
    repository raced between "is it registered?" and the insert; all but one failed with
    "a repo named 'repo' is already registered". Every caller must get the one registration.
    The race is a matter of timing, so several repositories are tried in turn."""
    import threading

    callers, rounds = 8, 6
    for n in range(rounds):
        repo = make_repo(tmp_path / f"r{n}" / "repo", {"a.txt": "base\n"})
        barrier = threading.Barrier(callers)
        found: list[int] = []
        errors: list[BaseException] = []

        def first_use(
            repo: Path = repo,
            barrier: threading.Barrier = barrier,
            found: list[int] = found,
            errors: list[BaseException] = errors,
        ) -> None:
            app = App.open()  # each caller its own connection, as separate processes have
            try:
                barrier.wait()
                found.append(app.find_repo(None, cwd=repo).id)
            except BaseException as e:  # collected and reported below
                errors.append(e)
            finally:
                app.close()

        threads = [threading.Thread(target=first_use) for _ in range(callers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        assert len(found) == callers and len(set(found)) == 1
        app = App.open()
        try:
            uid = app.store.repo_uid(found[0])
            assert uid and repo_identity.read_uid(repo) == uid
        finally:
            app.close()
    app = App.open()
    try:
        assert len(app.store.repos()) == rounds
    finally:
        app.close()


def test_a_git_husk_left_at_the_old_path_does_not_hide_the_move(tmp_path: Path) -> None:
    """CI failure of 2026-12-03 (test_repo_move_through_the_server): a background git (the
    warm-pool filler's `git worktree add`) still running when the folder was moved recreated
    `.git/worktrees/<id>/` at the old path; pa took that husk for the registered repository,
    called the moved folder a copy and registered it a second time."""
    repo, _sid, _wt = started(tmp_path)
    moved = tmp_path / "proj-moved"
    repo.rename(moved)
    husk = repo / ".git" / "worktrees" / "pool-x"
    husk.mkdir(parents=True)  # what git's leading-directory creation leaves behind
    (husk / "gitdir").write_text(str(tmp_path / "elsewhere" / ".git") + "\n")
    p = pa("new", "--cmd", "true", "again", cwd=moved)
    no_traceback(p)
    assert p.returncode == 1 and "hint: re-point it" in p.stderr, p.stderr
    assert "pa repo move proj" in p.stderr
