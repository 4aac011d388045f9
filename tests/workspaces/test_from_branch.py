"""Issue 16 §4: `pa new --from-branch BRANCH` works on the user's existing branch (no new
branch), merges it as usual, and never deletes it (discard archives, removes the worktree).

Real `pa` (in-process mode), real git, the command agent.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import git, make_repo, pa
from tests.foundation.test_cli_sessions import new_json, script, wait_ok


def repo_with_feature(tmp_path: Path) -> tuple[Path, str]:
    """A repo whose branch `feature` has one commit of the user's own on top of main."""
    repo = make_repo(tmp_path / "repo", {"README.md": "# demo\n"})
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "feature.txt").write_text("user's start\n")
    git(repo, "add", "feature.txt")
    git(repo, "commit", "-qm", "user's work")
    tip = git(repo, "rev-parse", "feature").strip()
    git(repo, "checkout", "-q", "main")
    return repo, tip


def sessions_made() -> list[object]:
    p = pa("ls", "--all", "--json")
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    return list(data["sessions"] if isinstance(data, dict) else data)


def test_from_branch_works_on_the_branch_and_merges_it(tmp_path: Path) -> None:
    """issue 16 §4: the session's worktree is on BRANCH itself (no pa/… branch), its diff
    starts where BRANCH forked from main, and `pa merge` brings BRANCH's work (the user's
    commit and the agent's) into main; the branch is kept."""
    repo, tip = repo_with_feature(tmp_path)
    agent = script(tmp_path, "open('feature.txt', 'a').write('agent line\\n')\n")
    s = new_json("Extend the feature", "--from-branch", "feature", "--cmd", agent, cwd=repo)
    assert s["branch"] == "feature"
    assert s["base_commit"] == git(repo, "rev-parse", "main").strip()
    wt = Path(str(s["worktree"]))
    assert git(wt, "symbolic-ref", "HEAD").strip() == "refs/heads/feature"
    assert wait_ok(str(s["id"])).returncode == 0
    assert not [b for b in git(repo, "branch", "--list", "pa/*").split() if b != "*"]
    m = pa("merge", str(s["id"]), cwd=repo)
    assert m.returncode == 0, m.stdout + m.stderr
    assert git(repo, "show", "main:feature.txt") == "user's start\nagent line\n"
    assert git(repo, "merge-base", "--is-ancestor", tip, "main") == ""
    # The work went onto the user's branch too (committed there, then merged).
    assert git(repo, "show", "feature:feature.txt") == "user's start\nagent line\n"


def test_discard_keeps_the_users_branch(tmp_path: Path) -> None:
    """issue 16 §4 (data safety): `pa discard` of a --from-branch session archives the
    work and removes the worktree, but never deletes the user's branch nor its commits
    (was: `git branch -D` of the session's branch)."""
    repo, tip = repo_with_feature(tmp_path)
    agent = script(tmp_path, "open('scratch.txt', 'w').write('agent scratch\\n')\n")
    s = new_json("Try something", "--from-branch", "feature", "--cmd", agent, cwd=repo)
    assert wait_ok(str(s["id"])).returncode == 0
    wt = Path(str(s["worktree"]))
    d = pa("discard", str(s["id"]), "--json", cwd=repo)
    assert d.returncode == 0, d.stdout + d.stderr
    assert not wt.exists()
    head = git(repo, "rev-parse", "--verify", "-q", "refs/heads/feature").strip()
    assert head, "the user's branch was deleted"
    assert git(repo, "merge-base", "--is-ancestor", tip, head) == ""
    assert git(repo, "show", f"{head}:feature.txt") == "user's start\n"
    # The agent's uncommitted file is in the archive, not lost.
    refs = git(repo, "for-each-ref", "--format=%(refname)", "refs/pa/archive/").split()
    assert any(git(repo, "show", f"{r}:scratch.txt") == "agent scratch\n" for r in refs)
    # `pa restore` brings the work back on the same branch, which it does not move.
    r = pa("restore", str(s["id"]), cwd=repo)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (wt / "scratch.txt").read_text() == "agent scratch\n"
    assert git(wt, "symbolic-ref", "HEAD").strip() == "refs/heads/feature"
    assert git(repo, "rev-parse", "refs/heads/feature").strip() == head
    assert pa("discard", str(s["id"]), cwd=repo).returncode == 0
    assert git(repo, "rev-parse", "refs/heads/feature").strip() == head
    # The branch is free again: a new session can start on it.
    agent2 = script(tmp_path, "pass\n", name="noop.py")
    s2 = new_json("Again", "--from-branch", "feature", "--cmd", agent2, cwd=repo)
    assert s2["branch"] == "feature"


def test_from_branch_refusals_make_nothing(tmp_path: Path) -> None:
    """issue 16 §4 bad input: a missing branch, a branch checked out in the main checkout
    or in another session, and two --from-* at once are refused with error + hint, and
    nothing is made (no session, no worktree)."""
    repo, _ = repo_with_feature(tmp_path)
    agent = script(tmp_path, "pass\n")
    p = pa("new", "x", "--from-branch", "nope", "--cmd", agent, cwd=repo)
    assert p.returncode != 0 and "error: there is no branch 'nope'" in p.stderr, p.stderr
    assert "hint:" in p.stderr and "Traceback" not in p.stderr
    p = pa("new", "x", "--from-branch", "main", "--cmd", agent, cwd=repo)
    assert p.returncode != 0 and f"checked out in {repo}" in p.stderr, p.stderr
    p = pa("new", "x", "--from-branch", "feature", "--from-issue", "3", "--cmd", agent, cwd=repo)
    assert p.returncode != 0 and "exactly one source" in p.stderr, p.stderr
    assert sessions_made() == []
    assert len(git(repo, "worktree", "list").splitlines()) == 1
    s = new_json("first", "--from-branch", "feature", "--cmd", agent, cwd=repo)
    p = pa("new", "x", "--from-branch", "feature", "--cmd", agent, cwd=repo)
    assert p.returncode != 0 and f"checked out in {s['worktree']}" in p.stderr, p.stderr
    assert len(sessions_made()) == 1


def test_merge_remove_worktree_keeps_the_users_branch(tmp_path: Path) -> None:
    """issue 16 §4 (data safety): with `merge.remove_worktree = true`, merging a
    --from-branch session removes its worktree but keeps the user's branch at its tip."""
    from tests.reliability.helpers import write_settings

    repo, _ = repo_with_feature(tmp_path)
    agent = script(tmp_path, "open('feature.txt', 'a').write('agent line\\n')\n")
    s = new_json("Extend", "--from-branch", "feature", "--cmd", agent, cwd=repo)
    assert wait_ok(str(s["id"])).returncode == 0
    write_settings("[merge]\nremove_worktree = true\n")
    m = pa("merge", str(s["id"]), cwd=repo)
    assert m.returncode == 0, m.stdout + m.stderr
    assert not Path(str(s["worktree"])).exists()
    head = git(repo, "rev-parse", "--verify", "-q", "refs/heads/feature").strip()
    assert head, "the user's branch was deleted"
    assert git(repo, "show", f"{head}:feature.txt") == "user's start\nagent line\n"
