"""issue 11 A and E: `pa merge` never leaves a checkout that silently reverts the merge,
and the history it writes into the user's branch is clean.

Real git, real `pa` processes and real sessions; a kill -9 at the exact moment between
moving the branch and updating the checkout comes from git's own reference-transaction
hook, which SIGKILLs the `pa merge` process group right after the ref was committed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from parallel_agents.runtime.local import alive
from tests.conftest import git, make_repo, pa
from tests.foundation.test_cli_sessions import new_json, script, wait_ok
from tests.reliability.helpers import doctor, kill_when_ref_moves, wait_until

PY = sys.executable


def committing_agent(tmp_path: Path, name: str, text: str, *, extra: str = "") -> str:
    """An agent command that commits ``name`` and leaves ``extra`` (if any) uncommitted."""
    body = (
        "import subprocess\n"
        f"open({name!r}, 'w').write({text!r})\n"
        f"subprocess.run(['git', 'add', {name!r}], check=True)\n"
        f"subprocess.run(['git', 'commit', '-qm', 'agent adds {name}'], check=True)\n"
    )
    if extra:
        body += f"open({extra!r}, 'w').write('uncommitted work\\n')\n"
    return script(tmp_path, body, f"agent-{name}.py")


def session(tmp_path: Path, repo: Path, name: str, *, extra: str = "", title: str = "") -> str:
    prompt = title or f"please add {name}"
    s = new_json(
        prompt, "--cmd", committing_agent(tmp_path, name, f"{name}\n", extra=extra), cwd=repo
    )
    return str(s["id"])


def status(sid: str) -> str:
    return str(json.loads(pa("show", sid, "--json").stdout)["status"])


def porcelain(checkout: Path) -> str:
    return git(checkout, "status", "--porcelain", "--untracked-files=all")


def rev(repo: Path, ref: str) -> str:
    return git(repo, "rev-parse", ref).strip()


def findings(kind: str, rep: dict[str, object]) -> list[dict[str, object]]:
    items = rep["findings"]
    assert isinstance(items, list)
    return [f for f in items if f["kind"] == kind]


# ------------------------------------------------------------------------------ A.1 races


def test_five_concurrent_pa_merge_processes_leave_a_clean_checkout(tmp_path: Path) -> None:
    """issue 11 A.1: 5 sessions (one distinct file each) merged by 5 separate `pa merge`
    processes at the same time, no user edits: every round ends with every session
    merged, every file in main and in the checkout, and `git status --porcelain` empty."""
    repo = make_repo(tmp_path / "repo", {"base.txt": "base\n"})
    for rnd in range(3):
        names = [f"r{rnd}_f{i}.txt" for i in range(5)]
        ids = [session(tmp_path, repo, n) for n in names]
        assert wait_ok(*ids).returncode == 0
        procs = [
            subprocess.Popen(
                [PY, "-m", "parallel_agents", "merge", sid],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for sid in ids
        ]
        outs = [p.communicate(timeout=300) for p in procs]
        for p, (out, err) in zip(procs, outs, strict=True):
            assert p.returncode == 0, f"round {rnd}: {out}\n{err}"
            assert "uncommitted changes" not in out + err, out + err
        assert porcelain(repo) == "", f"round {rnd}: the checkout trails main"
        for sid in ids:
            assert status(sid) == "merged"
        for n in names:
            assert git(repo, "show", f"main:{n}") == f"{n}\n"
            assert (repo / n).read_text() == f"{n}\n"


# ---------------------------------------------------------------------------- A.2 kill -9

def killed_merge(tmp_path: Path, repo: Path, sid: str) -> None:
    marker = kill_when_ref_moves(tmp_path, repo, "refs/heads/main")
    p = subprocess.run(
        [PY, "-m", "parallel_agents", "merge", sid],
        capture_output=True,
        text=True,
        start_new_session=True,  # the hook kills this group only
        timeout=300,
    )
    assert p.returncode == -9, (p.returncode, p.stdout, p.stderr)
    assert not marker.exists()


def crashed_between_ref_and_files(tmp_path: Path) -> tuple[Path, str, str, str]:
    repo = make_repo(tmp_path / "repo", {"base.txt": "base\n"})
    sid = session(tmp_path, repo, "done.txt", extra="loose.txt")
    assert wait_ok(sid).returncode == 0
    before = rev(repo, "main")
    killed_merge(tmp_path, repo, sid)
    after = rev(repo, "main")
    assert after != before, "the kill came after the ref moved"
    assert porcelain(repo) != "", "the checkout trails main (the state being repaired)"
    assert status(sid) == "idle"
    return repo, sid, before, after


def test_retry_after_kill_between_ref_and_files_finishes_without_a_second_commit(
    tmp_path: Path,
) -> None:
    """issue 11 A.2: kill -9 between update-ref and the file sync. `pa doctor` reports the
    checkout left behind; retrying `pa merge ID` finishes the file update, marks the
    session merged and writes no second checkpoint or merge commit."""
    repo, sid, _before, after = crashed_between_ref_and_files(tmp_path)
    rc, rep = doctor(repair=False)
    assert rc != 0, rep
    (f,) = findings("merge_checkout_behind", rep)
    assert f["subject"] == str(repo) and "read-tree" in str(f["fix"])
    p = pa("merge", sid)
    assert p.returncode == 0, p.stdout + p.stderr
    assert rev(repo, "main") == after, "the retry made a second commit"
    assert status(sid) == "merged"
    assert porcelain(repo) == ""
    assert (repo / "done.txt").read_text() == "done.txt\n"
    assert (repo / "loose.txt").read_text() == "uncommitted work\n"
    rc, rep = doctor(repair=False)
    assert findings("merge_checkout_behind", rep) == []


def test_doctor_repairs_a_checkout_a_killed_merge_left_behind(tmp_path: Path) -> None:
    """issue 11 A.2: `pa doctor --repair` brings the index and files up to the moved
    branch (keeping an unrelated local edit); a retried merge then changes nothing."""
    repo, sid, _before, after = crashed_between_ref_and_files(tmp_path)
    (repo / "base.txt").write_text("my own edit\n")
    _rc, rep = doctor(repair=True)
    (f,) = findings("merge_checkout_behind", rep)
    assert f["repaired"] is True, f
    assert porcelain(repo) == " M base.txt\n"
    assert (repo / "done.txt").read_text() == "done.txt\n"
    p = pa("merge", sid)
    assert p.returncode == 0, p.stdout + p.stderr
    assert rev(repo, "main") == after
    assert status(sid) == "merged"
    assert (repo / "base.txt").read_text() == "my own edit\n"


@pytest.mark.usefixtures("server_mode")
def test_kill_9_of_the_server_between_ref_and_files_then_retry(
    tmp_path: Path, pa_home: Path
) -> None:
    """issue 11 A.2, through the background server: the server is killed -9 right after
    it moved main; the retried `pa merge ID` (a new server) finishes the checkout, ends
    with the session merged and adds no commit."""
    repo = make_repo(tmp_path / "repo", {"base.txt": "base\n"})
    sid = session(tmp_path, repo, "srv.txt", extra="loose.txt")
    assert wait_ok(sid).returncode == 0
    pid = int(json.loads((pa_home / "server.json").read_text())["pid"])
    before = rev(repo, "main")
    marker = kill_when_ref_moves(tmp_path, repo, "refs/heads/main")
    p = pa("merge", sid)
    assert p.returncode != 0 and "Traceback" not in p.stderr, p.stdout + p.stderr
    assert not marker.exists() and not alive(pid)
    after = rev(repo, "main")
    assert after != before and porcelain(repo) != ""
    p = pa("merge", sid)
    assert p.returncode == 0, p.stdout + p.stderr
    assert rev(repo, "main") == after
    assert status(sid) == "merged"
    assert porcelain(repo) == ""
    assert (repo / "loose.txt").read_text() == "uncommitted work\n"


# ------------------------------------------------------------------ A.3 linked worktrees


def test_into_a_branch_checked_out_in_a_linked_worktree_updates_it(tmp_path: Path) -> None:
    """issue 11 A.3: `pa merge ID --into feature` with feature checked out in a linked
    worktree moves that worktree's files with the branch (no staged revert there); when
    git cannot update it the merge is refused, naming the worktree, and nothing moves."""
    repo = make_repo(tmp_path / "repo", {"base.txt": "base\n"})
    feat = tmp_path / "feature-wt"
    git(repo, "worktree", "add", "-q", "-b", "feature", str(feat), "main")
    a = session(tmp_path, repo, "a.txt")
    b = session(tmp_path, repo, "b.txt")
    assert wait_ok(a, b).returncode == 0
    p = pa("merge", a, "--into", "feature")
    assert p.returncode == 0, p.stdout + p.stderr
    assert porcelain(feat) == ""
    assert (feat / "a.txt").read_text() == "a.txt\n"
    assert porcelain(repo) == "" and not (repo / "a.txt").exists()
    # An untracked file in the way there: refused, and nothing changes.
    (feat / "b.txt").write_text("mine\n")
    before = rev(repo, "feature")
    p = pa("merge", b, "--into", "feature", "--json")
    assert p.returncode == 1, p.stdout + p.stderr
    (item,) = json.loads(p.stdout)["items"]
    assert item["status"] == "checkout_blocked"
    assert str(feat) in item["detail"] and "b.txt" in item["detail"]
    assert rev(repo, "feature") == before
    assert (feat / "b.txt").read_text() == "mine\n"
    assert porcelain(feat) == "?? b.txt\n"
    assert status(b) == "idle"


def test_into_another_sessions_branch_updates_that_worktree(tmp_path: Path) -> None:
    """issue 11 A.3: merging into another (idle) session's branch updates that session's
    worktree with it instead of leaving a staged revert there."""
    repo = make_repo(tmp_path / "repo", {"base.txt": "base\n"})
    a = new_json("host", "--cmd", "true", cwd=repo)
    b = session(tmp_path, repo, "b.txt")
    assert wait_ok(str(a["id"]), b).returncode == 0
    host = Path(str(a["worktree"]))
    p = pa("merge", b, "--into", str(a["branch"]))
    assert p.returncode == 0, p.stdout + p.stderr
    assert (host / "b.txt").read_text() == "b.txt\n"
    assert porcelain(host) == ""


def test_into_a_running_sessions_branch_is_refused(tmp_path: Path) -> None:
    """issue 11 A.3: the target is checked out in the worktree of a session that is still
    running: refused (exit 1, branch not moved), its files are not changed under it."""
    repo = make_repo(tmp_path / "repo", {"base.txt": "base\n"})
    release = tmp_path / "release"
    waiting = script(
        tmp_path,
        f"import os, time\nwhile not os.path.exists({str(release)!r}):\n    time.sleep(0.05)\n",
        "waiting.py",
    )
    host = new_json("host", "--cmd", waiting, cwd=repo)
    b = session(tmp_path, repo, "b.txt")
    try:
        assert wait_ok(b).returncode == 0
        wait_until(lambda: status(str(host["id"])) == "running", 60, "the host to run")
        before = rev(repo, str(host["branch"]))
        p = pa("merge", b, "--into", str(host["branch"]))
        assert p.returncode == 1, p.stdout + p.stderr
        assert "running" in p.stderr and str(host["worktree"]) in p.stderr
        assert rev(repo, str(host["branch"])) == before
        assert not (Path(str(host["worktree"])) / "b.txt").exists()
    finally:
        release.write_text("go")
    assert wait_ok(str(host["id"])).returncode == 0


# --------------------------------------------------- A.4 lock, dirty files, untracked files


def test_held_index_lock_refuses_and_moves_nothing(tmp_path: Path) -> None:
    """issue 11 A.4: a held .git/index.lock in the main checkout: exit 1, the branch is
    not moved, the error names the checkout and the lock; once it is gone the same
    command merges and leaves a clean checkout."""
    repo = make_repo(tmp_path / "repo", {"base.txt": "base\n"})
    sid = session(tmp_path, repo, "x.txt")
    assert wait_ok(sid).returncode == 0
    before = rev(repo, "main")
    lock = repo / ".git" / "index.lock"
    lock.write_text("")
    p = pa("merge", sid)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "checkout_blocked" in p.stdout and str(repo) in p.stdout
    assert "index.lock" in p.stdout
    assert rev(repo, "main") == before
    assert status(sid) == "idle"
    lock.unlink()
    assert porcelain(repo) == ""
    p = pa("merge", sid)
    assert p.returncode == 0, p.stdout + p.stderr
    assert porcelain(repo) == "" and (repo / "x.txt").read_text() == "x.txt\n"


def test_dirty_checkout_in_the_way_refuses_unless_forced(tmp_path: Path) -> None:
    """issue 11 A.4: an uncommitted edit to a file the merge changes: refused (exit 1,
    branch not moved, edit intact). With --force the branch moves, pa warns that the
    files trail, and `pa doctor` reports that checkout until it is brought along."""
    repo = make_repo(tmp_path / "repo", {"base.txt": "base\n"})
    sid = session(tmp_path, repo, "base.txt")
    assert wait_ok(sid).returncode == 0
    (repo / "base.txt").write_text("my edit\n")
    before = rev(repo, "main")
    p = pa("merge", sid)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "checkout_blocked" in p.stdout and "base.txt" in p.stdout
    assert rev(repo, "main") == before
    assert (repo / "base.txt").read_text() == "my edit\n"
    assert porcelain(repo) == " M base.txt\n"
    p = pa("merge", sid, "--force")
    assert p.returncode == 1, p.stdout + p.stderr  # the user still has something to do
    assert "warning:" in p.stdout and "do not commit" in p.stdout
    assert rev(repo, "main") != before
    assert (repo / "base.txt").read_text() == "my edit\n"
    rc, rep = doctor(repair=True)
    (f,) = findings("merge_checkout_behind", rep)
    assert rc != 0 and f["repaired"] is False and f["error"], f
    (repo / "base.txt").write_text("base\n")  # the user puts their edit aside
    _rc, rep = doctor(repair=True)
    (f,) = findings("merge_checkout_behind", rep)
    assert f["repaired"] is True
    assert porcelain(repo) == "" and (repo / "base.txt").read_text() == "base.txt\n"


# ------------------------------------------------------------------------ E. clean history


def commits_since(repo: Path, base: str) -> list[tuple[str, str]]:
    out = git(repo, "log", "--format=%H %T", f"{base}..main")
    return [(c, t) for c, t in (ln.split() for ln in out.splitlines())]


def assert_no_empty_commits(repo: Path, base: str) -> None:
    for c, tree in commits_since(repo, base):
        parent_tree = git(repo, "rev-parse", f"{c}^1^{{tree}}").strip()
        assert tree != parent_tree, f"empty commit {c} in main"


def test_fully_committed_session_merges_without_checkpoint_commits(tmp_path: Path) -> None:
    """issue 11 E: an agent that committed everything: main gets its commit and the
    merge commit, no `pa checkpoint` commit and no empty commit, in every strategy."""
    for strategy in ("merge", "squash", "rebase"):
        repo = make_repo(tmp_path / f"repo-{strategy}", {"base.txt": "base\n"})
        base = rev(repo, "main")
        sid = session(tmp_path, repo, "c.txt")
        assert wait_ok(sid).returncode == 0
        p = pa("merge", sid, "--strategy", strategy)
        assert p.returncode == 0, p.stdout + p.stderr
        subjects = git(repo, "log", "--format=%s", f"{base}..main").splitlines()
        assert not [s for s in subjects if "checkpoint" in s], subjects
        if strategy != "squash":
            assert "agent adds c.txt" in subjects, "the agent's own commit is kept"
        assert_no_empty_commits(repo, base)
        assert porcelain(repo) == ""


def test_uncommitted_work_becomes_one_commit_saying_what_the_session_did(
    tmp_path: Path,
) -> None:
    """issue 11 E: uncommitted work becomes one commit (parent: the agent's commit) whose
    message is the session title and prompt summary."""
    repo = make_repo(tmp_path / "repo", {"base.txt": "base\n"})
    base = rev(repo, "main")
    sid = session(tmp_path, repo, "k.txt", extra="u.txt", title="teach the parser commas")
    assert wait_ok(sid).returncode == 0
    p = pa("merge", sid, "--strategy", "rebase")
    assert p.returncode == 0, p.stdout + p.stderr
    log = git(repo, "log", "--format=%s%n%b%x00", f"{base}..main").split("\0")
    msgs = [m.strip() for m in log if m.strip()]
    assert len(msgs) == 2, msgs
    assert msgs[1].startswith("agent adds k.txt")
    assert msgs[0].startswith("teach the parser commas")
    assert "turn 1: teach the parser commas" in msgs[0] and "checkpoint" not in msgs[0]
    assert git(repo, "show", "main:u.txt") == "uncommitted work\n"
    assert_no_empty_commits(repo, base)


def test_discarded_then_restored_merged_session_is_not_merged_twice(tmp_path: Path) -> None:
    """issue 11 E: merge, discard, restore, merge again: the second merge finds the work
    already in main and adds nothing."""
    repo = make_repo(tmp_path / "repo", {"base.txt": "base\n"})
    sid = session(tmp_path, repo, "d.txt", extra="loose.txt")
    assert wait_ok(sid).returncode == 0
    assert pa("merge", sid).returncode == 0
    merged = rev(repo, "main")
    assert pa("discard", sid).returncode == 0
    assert pa("restore", sid).returncode == 0
    p = pa("merge", sid, "--json")
    assert rev(repo, "main") == merged, "merged twice"
    if p.returncode == 0:
        assert [i["status"] for i in json.loads(p.stdout)["items"]] == ["up_to_date"]
    else:
        assert "already merged" in p.stderr, p.stdout + p.stderr
    assert porcelain(repo) == ""


# -------------------------------------------------- git level: spotting an interrupted merge


def commit_file(repo: Path, parent: str, name: str, text: str) -> str:
    """A commit on top of ``parent`` adding ``name``, made without touching any checkout."""
    idx = repo / ".git" / "test-index"
    env = {**os.environ, "GIT_INDEX_FILE": str(idx)}
    run = lambda *a, inp=None: subprocess.run(  # noqa: E731
        ["git", *a], cwd=repo, env=env, input=inp, capture_output=True, text=True, check=True
    ).stdout.strip()
    run("read-tree", parent)
    blob = run("hash-object", "-w", "--stdin", inp=text)
    run("update-index", "--add", "--cacheinfo", f"100644,{blob},{name}")
    tree = run("write-tree")
    idx.unlink()
    return run("commit-tree", tree, "-p", parent, "-m", f"add {name}")


def test_interrupted_sync_is_found_across_a_queue_and_only_after_pa_merges(
    tmp_path: Path,
) -> None:
    """issue 11 A.2: a checkout left behind by pa merges (two queue items moved main, the
    files still show the commit before both) is spotted even with the user's own staged
    change, finished keeping that change; a ref the user moved themselves is not
    mistaken for one."""
    from parallel_agents.git import merging as merge

    repo = make_repo(tmp_path / "repo", {"base.txt": "base\n"})
    a = rev(repo, "main")
    b = commit_file(repo, a, "b.txt", "b\n")
    c = commit_file(repo, b, "c.txt", "c\n")
    git(repo, "update-ref", "-m", "pa merge queue: s1", "refs/heads/main", b, a)
    git(repo, "update-ref", "-m", "pa merge queue: s2", "refs/heads/main", c, b)
    (repo / "base.txt").write_text("mine\n")
    git(repo, "add", "base.txt")
    assert merge.interrupted_sync(repo) == ("main", a, c)
    assert merge.newest_reflog_message(repo / ".git", "main") == "pa merge queue: s2"
    merge.finish_interrupted_sync(repo, a, c)
    assert porcelain(repo) == "M  base.txt\n"
    assert merge.interrupted_sync(repo) is None
    git(repo, "read-tree", b)  # as if the first item's files were updated, not the second's
    assert merge.interrupted_sync(repo) == ("main", b, c)
    git(repo, "read-tree", c)
    git(repo, "reset", "-q", "--soft", a)  # the user's own move: theirs to keep
    assert porcelain(repo) != "" and merge.interrupted_sync(repo) is None
