"""merge: merge/squash/rebase without a working tree, races, the main checkout, the merge
queue and pull requests, on real git repos (and a local bare remote)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

import pytest

from parallel_agents.errors import NotFound, PAError, UsageError
from parallel_agents.git import forecast, github
from parallel_agents.git import merge_queue as mq
from parallel_agents.git import merging as pm
from parallel_agents.git.merge_queue import QueueItem
from parallel_agents.git.merging import MergeConflict, TargetMoved
from parallel_agents.runtime import checks
from parallel_agents.runtime.checks import CheckResult

# ------------------------------------------------------------------------------- helpers


def git(
    cwd: Path, *args: str, input: bytes | None = None, env: Mapping[str, str] | None = None
) -> str:
    r = subprocess.run(
        ["git", *args],
        cwd=cwd,
        input=input,
        capture_output=True,
        check=False,
        env={**os.environ, **(env or {})},
    )
    if r.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {r.stderr.decode()}")
    return r.stdout.decode().strip()


def write(root: Path, files: Mapping[str, str]) -> None:
    for name, content in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)


def make_repo(path: Path, files: Mapping[str, str]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Test")
    git(path, "config", "user.email", "test@example.com")
    write(path, files)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


def commit_on(
    repo: Path,
    branch: str,
    files: Mapping[str, str],
    msg: str,
    start: str | None = None,
    author: str | None = None,
) -> str:
    """Commit on ``branch`` (created at ``start`` if new) without touching any checkout."""
    parent = start or git(repo, "rev-parse", f"refs/heads/{branch}")
    idx = repo / ".git" / f"idx-{threading.get_ident()}"
    env = {"GIT_INDEX_FILE": str(idx)}
    git(repo, "read-tree", parent, env=env)
    for name, content in files.items():
        blob = git(repo, "hash-object", "-w", "--stdin", input=content.encode())
        git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},{name}", env=env)
    tree = git(repo, "write-tree", env=env)
    idx.unlink()
    aenv: dict[str, str] = {}
    if author:
        aenv = {
            "GIT_AUTHOR_NAME": author,
            "GIT_AUTHOR_EMAIL": f"{author}@example.com",
            "GIT_AUTHOR_DATE": "1700000000 +0200",
        }
    c = git(repo, "commit-tree", tree, "-p", parent, "-m", msg, env=aenv)
    git(repo, "update-ref", f"refs/heads/{branch}", c)
    return c


def show(repo: Path, rev: str, path: str) -> str:
    return git(repo, "show", f"{rev}:{path}")


def head(repo: Path, branch: str = "main") -> str:
    return git(repo, "rev-parse", f"refs/heads/{branch}")


SHARED = "".join(f"row {i}\n" for i in range(20))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = make_repo(
        tmp_path / "repo", {"a.py": "a\n", "b.py": "b\n", "c.py": "c\n", "shared.py": SHARED}
    )
    git(r, "checkout", "-q", "--detach")  # the main checkout is not on main by default
    return r


# ------------------------------------------------------------------------------ strategies


def test_merge_creates_merge_commit_without_touching_files(repo: Path) -> None:
    base = head(repo)
    src = commit_on(repo, "s1", {"a.py": "a1\n"}, "s1 work", start=base)
    commit_on(repo, "main", {"b.py": "b on main\n"}, "main moves")
    old = head(repo)
    files_before = (repo / "a.py").read_text()
    res = pm.merge(repo, src, "main", strategy="merge", message="Session s1: add a1")
    assert res.old == old and res.new == head(repo) and res.commits == [res.new]
    assert not res.fast_forward and not res.up_to_date
    assert git(repo, "rev-parse", f"{res.new}^1") == old
    assert git(repo, "rev-parse", f"{res.new}^2") == src
    assert git(repo, "log", "-1", "--format=%B", res.new) == "Session s1: add a1"
    assert show(repo, res.new, "a.py") == "a1" and show(repo, res.new, "b.py") == "b on main"
    assert (repo / "a.py").read_text() == files_before  # no working tree involved
    assert git(repo, "reflog", "-1", "--format=%gs", "refs/heads/main").startswith("pa merge")


def test_merge_records_a_merge_commit_even_when_fast_forward_is_possible(repo: Path) -> None:
    base = head(repo)
    src = commit_on(repo, "s1", {"a.py": "a1\n"}, "s1", start=base)
    res = pm.merge(repo, src, "main", strategy="merge", message="m")
    assert git(repo, "rev-list", "--parents", "-n1", res.new).split()[1:] == [base, src]


def test_squash(repo: Path) -> None:
    base = head(repo)
    commit_on(repo, "s1", {"a.py": "a1\n"}, "one", start=base)
    src = commit_on(repo, "s1", {"c.py": "c1\n"}, "two")
    res = pm.merge(repo, src, "main", strategy="squash", message="Squashed s1")
    assert git(repo, "rev-list", "--parents", "-n1", res.new).split()[1:] == [base]
    assert show(repo, res.new, "a.py") == "a1" and show(repo, res.new, "c.py") == "c1"
    assert git(repo, "log", "-1", "--format=%s", res.new) == "Squashed s1"
    # squashing the same thing again: nothing new to add
    again = pm.merge(repo, src, "main", strategy="squash", message="again")
    assert again.up_to_date and head(repo) == res.new


def test_rebase_replays_commits_like_git_rebase(repo: Path, tmp_path: Path) -> None:
    base = head(repo)
    c1 = commit_on(repo, "s1", {"a.py": "a1\n"}, "first\n\nbody line", start=base, author="ann")
    commit_on(repo, "s1", {"c.py": "c1\n"}, "second", author="bob")
    commit_on(repo, "s1", {"b.py": "b on main\n"}, "same as main", author="bob")
    src = commit_on(repo, "s1", {"shared.py": SHARED + "tail\n"}, "third", author="ann")
    commit_on(repo, "main", {"b.py": "b on main\n"}, "main moves")
    old = head(repo)
    res = pm.merge(repo, src, "main", strategy="rebase", message="ignored for rebase")
    log = git(repo, "log", "--format=%s|%an|%ae|%ad", "--date=raw", f"{old}..{res.new}")
    assert log.splitlines() == [
        "third|ann|ann@example.com|1700000000 +0200",
        "second|bob|bob@example.com|1700000000 +0200",
        "first|ann|ann@example.com|1700000000 +0200",
    ]  # "same as main" became empty and was dropped, as git rebase does
    assert len(res.commits) == 3 and res.commits[-1] == res.new
    assert git(repo, "log", "-1", "--format=%B", res.commits[0]) == "first\n\nbody line"
    assert git(repo, "rev-list", "--merges", f"{old}..{res.new}") == ""
    assert git(repo, "rev-parse", f"{res.commits[0]}^") == old
    assert c1 not in res.commits
    # Same trees as a real `git rebase` in a clone.
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    git(clone, "config", "user.name", "T")
    git(clone, "config", "user.email", "t@e")
    git(clone, "checkout", "-q", "-B", "s1", "origin/s1")
    git(clone, "rebase", "-q", old)
    assert git(clone, "rev-parse", "HEAD^{tree}") == git(repo, "rev-parse", f"{res.new}^{{tree}}")


def test_rebase_without_any_identity_keeps_authors(
    repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    base = head(repo)
    src = commit_on(repo, "s1", {"a.py": "a1\n"}, "by ann", start=base, author="ann")
    commit_on(repo, "main", {"b.py": "b2\n"}, "main moves")
    s2 = commit_on(repo, "s2", {"c.py": "c2\n"}, "s2", start=base)
    for k in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "nohome"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    git(repo, "config", "--unset", "user.name")
    git(repo, "config", "--unset", "user.email")
    git(repo, "config", "user.useConfigOnly", "true")
    res = pm.merge(repo, src, "main", strategy="rebase", message="")
    assert git(repo, "log", "-1", "--format=%an|%cn", res.new) == "ann|parallel-agents"
    m = pm.merge(repo, s2, "main", strategy="merge", message="merge s2")
    assert git(repo, "log", "-1", "--format=%an|%cn", m.new) == "parallel-agents|parallel-agents"


def test_rebase_keeps_message_bytes_exactly(repo: Path) -> None:
    base = head(repo)
    tree = git(
        repo, "rev-parse", f"{commit_on(repo, 'tmp', {'a.py': 'x'}, 't', start=base)}^{{tree}}"
    )
    raw = b"caf\xe9 latin-1 subject\n\n  indented body\n\n\n"
    c = (
        subprocess.run(
            ["git", "commit-tree", tree, "-p", base],
            cwd=repo,
            input=raw,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .strip()
    )
    commit_on(repo, "main", {"b.py": "b2\n"}, "main moves")
    res = pm.merge(repo, c, "main", strategy="rebase", message="")
    body = subprocess.run(
        ["git", "cat-file", "commit", res.new], cwd=repo, capture_output=True, check=True
    ).stdout
    orig = subprocess.run(
        ["git", "cat-file", "commit", c], cwd=repo, capture_output=True, check=True
    ).stdout
    # (git itself stores a non-UTF-8 message as UTF-8; the replay must not change it again)
    assert body.split(b"\n\n", 1)[1] == orig.split(b"\n\n", 1)[1]
    assert b"  indented body\n\n\n" in body and "café".encode() in body


def test_rebase_fast_forwards_when_target_is_an_ancestor(repo: Path) -> None:
    base = head(repo)
    src = commit_on(repo, "s1", {"a.py": "a1\n"}, "one", start=base)
    res = pm.merge(repo, src, "main", strategy="rebase", message="")
    assert res.fast_forward and res.new == src == head(repo) and res.commits == []


def test_rebase_conflict_midway_changes_nothing(repo: Path) -> None:
    base = head(repo)
    commit_on(repo, "s1", {"a.py": "a1\n"}, "fine", start=base)
    src = commit_on(repo, "s1", {"shared.py": SHARED.replace("row 5", "row five")}, "clash")
    main = commit_on(repo, "main", {"shared.py": SHARED.replace("row 5", "ROW 5")}, "main")
    with pytest.raises(MergeConflict) as ei:
        pm.merge(repo, src, "main", strategy="rebase", message="")
    assert ei.value.paths == ["shared.py"]
    assert head(repo) == main


@pytest.mark.parametrize("strategy", ["merge", "squash", "rebase"])
def test_conflict_raises_with_paths_and_leaves_everything(repo: Path, strategy: str) -> None:
    base = head(repo)
    src = commit_on(
        repo, "s1", {"shared.py": SHARED.replace("row 3", "mine"), "a.py": "x\n"}, "s1", start=base
    )
    main = commit_on(repo, "main", {"shared.py": SHARED.replace("row 3", "theirs")}, "main")
    refs_before = git(repo, "for-each-ref")
    with pytest.raises(MergeConflict) as ei:
        pm.merge(repo, src, "main", strategy=strategy, message="m")  # type: ignore[arg-type]
    assert ei.value.paths == ["shared.py"]
    assert "shared.py" in str(ei.value) and ei.value.hint
    assert head(repo) == main and git(repo, "for-each-ref") == refs_before
    assert git(repo, "status", "--porcelain") == ""


def test_already_merged_is_up_to_date(repo: Path) -> None:
    base = head(repo)
    src = commit_on(repo, "s1", {"a.py": "a1\n"}, "s1", start=base)
    first = pm.merge(repo, src, "main", strategy="merge", message="m")
    for strategy in ("merge", "squash", "rebase"):
        again = pm.merge(repo, src, "main", strategy=strategy, message="m")
        assert again.up_to_date and again.new == first.new == head(repo)


def test_bad_targets_and_sources(repo: Path) -> None:
    src = commit_on(repo, "s1", {"a.py": "a1\n"}, "s1", start=head(repo))
    with pytest.raises(NotFound, match="'nope' does not exist") as ei:
        pm.merge(repo, src, "nope", strategy="merge", message="m")
    assert ei.value.hint and "--into" in ei.value.hint
    with pytest.raises(NotFound):
        pm.merge(repo, "refs/heads/missing", "main", strategy="merge", message="m")
    with pytest.raises(UsageError, match="strategy"):
        pm.merge(repo, src, "main", strategy="octopus", message="m")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="not a valid branch"):
        pm.merge(repo, src, "bad..name", strategy="merge", message="m")
    empty_tree = git(repo, "hash-object", "-t", "tree", "--stdin", input=b"")
    orphan = git(repo, "commit-tree", empty_tree, "-m", "orphan")
    with pytest.raises(UsageError, match="no common history"):
        pm.merge(repo, orphan, "main", strategy="merge", message="m")


def test_expected_old_mismatch_is_target_moved(repo: Path) -> None:
    base = head(repo)
    src = commit_on(repo, "s1", {"a.py": "a1\n"}, "s1", start=base)
    moved = commit_on(repo, "main", {"b.py": "b2\n"}, "someone else")
    with pytest.raises(TargetMoved) as ei:
        pm.merge(repo, src, "main", strategy="merge", message="m", expected_old=base)
    assert ei.value.expected == base and ei.value.actual == moved
    assert head(repo) == moved
    ok = pm.merge(repo, src, "main", strategy="merge", message="m", expected_old=moved)
    assert ok.old == moved


def test_apply_refuses_when_target_moved_after_compute(repo: Path) -> None:
    base = head(repo)
    src = commit_on(repo, "s1", {"a.py": "a1\n"}, "s1", start=base)
    planned = pm.compute_merge(repo, src, "main", strategy="merge", message="m")
    moved = commit_on(repo, "main", {"b.py": "b2\n"}, "race winner")
    with pytest.raises(TargetMoved):
        pm.apply_merge(repo, planned)
    assert head(repo) == moved


def test_two_threads_racing_never_lose_a_commit(repo: Path) -> None:
    base = head(repo)
    srcs = [
        commit_on(repo, f"s{i}", {f"new{i}.py": f"{i}\n"}, f"s{i}", start=base) for i in range(2)
    ]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def worker(src: str) -> None:
        barrier.wait()
        try:
            pm.merge(
                repo, src, "main", strategy="merge", message=f"merge {src[:7]}", expected_old=base
            )
            outcomes.append("merged")
        except TargetMoved:
            outcomes.append("moved")

    threads = [threading.Thread(target=worker, args=(s,)) for s in srcs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["merged", "moved"]
    # The refused one recomputes on the new target: both land.
    loser = next(
        s
        for s in srcs
        if subprocess.run(
            ["git", "merge-base", "--is-ancestor", s, "main"], cwd=repo, check=False
        ).returncode
        != 0
    )
    pm.merge(repo, loser, "main", strategy="merge", message="retry")
    for s in srcs:
        git(repo, "merge-base", "--is-ancestor", s, "main")


RACER = r"""
import sys
from pathlib import Path
from parallel_agents.git import merging as pm
repo = Path(sys.argv[1])
refused = 0
for src in sys.argv[2:]:
    while True:
        try:
            pm.merge(repo, src, "main", strategy="merge", message="race " + src[:7])
            break
        except pm.TargetMoved:
            refused += 1
print(refused)
"""


def test_processes_racing_on_one_target_keep_every_commit(repo: Path) -> None:
    base = head(repo)
    srcs = [commit_on(repo, f"p{i}", {f"p{i}.py": f"{i}\n"}, f"p{i}", start=base) for i in range(6)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(repo), *srcs[i::3]],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    for p in procs:
        _out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    for s in srcs:
        git(repo, "merge-base", "--is-ancestor", s, "main")
    assert len(git(repo, "rev-list", "--merges", f"{base}..main").split()) == 6


# ------------------------------------------------------------------------------ submodules


def test_submodule_pointers_merge_and_conflict(tmp_path: Path) -> None:
    sub = make_repo(tmp_path / "sub", {"s.txt": "1\n"})
    s1 = head(sub)
    s2 = commit_on(sub, "main", {"s.txt": "2\n"}, "s2")
    s3 = commit_on(sub, "other", {"s.txt": "3\n"}, "s3", start=s1)
    repo = make_repo(tmp_path / "super", {"a.txt": "a\n"})
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub), "lib")
    git(repo, "-C", "lib", "checkout", "-q", s1)
    git(repo, "add", "lib")
    git(repo, "commit", "-q", "-m", "add submodule")
    git(repo, "checkout", "-q", "--detach")
    base = head(repo)

    def bump(branch: str, to: str, start: str) -> str:
        idx = tmp_path / f"idx-{branch}"
        env = {"GIT_INDEX_FILE": str(idx)}
        git(repo, "read-tree", start, env=env)
        git(repo, "update-index", "--cacheinfo", f"160000,{to},lib", env=env)
        tree = git(repo, "write-tree", env=env)
        c = git(repo, "commit-tree", tree, "-p", start, "-m", f"bump {branch}")
        git(repo, "update-ref", f"refs/heads/{branch}", c)
        return c

    one = bump("one", s2, base)
    res = pm.merge(repo, one, "main", strategy="merge", message="bump lib")
    assert git(repo, "rev-parse", f"{res.new}:lib") == s2
    two = bump("two", s3, base)
    f = forecast.forecast(repo, base, {"one": one, "two": two})
    assert f.pairs() == {frozenset({"one", "two"})}
    with pytest.raises(MergeConflict) as ei:
        pm.merge(repo, two, "main", strategy="squash", message="bump lib other way")
    assert ei.value.paths == ["lib"]
    assert head(repo) == res.new
    # rebase replays a gitlink change onto a target that moved in the meantime
    three = bump("three", s3, res.new)
    moved = commit_on(repo, "main", {"a.txt": "a moved\n"}, "main moves")
    reb = pm.merge(repo, three, "main", strategy="rebase", message="")
    assert not reb.fast_forward and git(repo, "rev-parse", f"{reb.new}^") == moved
    assert git(repo, "rev-parse", f"{reb.new}:lib") == s3
    assert show(repo, reb.new, "a.txt") == "a moved"


# ------------------------------------------------------------------------ the main checkout


def test_checkout_state_and_sync_clean_checkout(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.py": "a\n", "b.py": "b\n"})
    assert pm.checkout_state(repo, "main") == "clean"
    assert pm.checkout_state(repo, "other") == "not_checked_out"
    write(repo, {"untracked.txt": "u\n"})
    assert pm.checkout_state(repo, "main") == "clean"  # untracked files do not count
    src = commit_on(repo, "s1", {"a.py": "a from s1\n", "new.py": "n\n"}, "s1", start=head(repo))
    state = pm.checkout_state(repo, "main")
    res = pm.merge(repo, src, "main", strategy="merge", message="m")
    msg = pm.sync_main_checkout(repo, "main", res.old, res.new)
    assert state == "clean" and "updated" in msg
    assert (repo / "a.py").read_text() == "a from s1\n" and (repo / "new.py").exists()
    assert (repo / "untracked.txt").exists()
    assert git(repo, "status", "--porcelain", "--untracked-files=no") == ""
    assert pm.checkout_state(repo, "main") == "clean"
    assert "already up to date" in pm.sync_main_checkout(repo, "main", res.new, res.new)


def test_sync_leaves_a_dirty_checkout_alone_and_says_how(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.py": "a\n", "b.py": "b\n"})
    src = commit_on(repo, "s1", {"a.py": "a from s1\n"}, "s1", start=head(repo))
    write(repo, {"b.py": "my uncommitted work\n"})
    assert pm.checkout_state(repo, "main") == "dirty"
    res = pm.merge(repo, src, "main", strategy="merge", message="m")
    msg = pm.sync_main_checkout(repo, "main", res.old, res.new)
    assert "uncommitted changes" in msg and f"git read-tree -m -u {res.old} {res.new}" in msg
    assert (repo / "b.py").read_text() == "my uncommitted work\n"
    assert (repo / "a.py").read_text() == "a\n"  # nothing changed there
    assert head(repo) == res.new  # the merge itself landed
    # The suggested command works for changes that do not touch the merged files.
    git(repo, "read-tree", "-m", "-u", res.old, res.new)
    assert (repo / "a.py").read_text() == "a from s1\n"
    assert (repo / "b.py").read_text() == "my uncommitted work\n"


def test_sync_staged_change_is_dirty_and_other_branch_is_untouched(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.py": "a\n"})
    write(repo, {"z.py": "staged\n"})
    git(repo, "add", "z.py")
    assert pm.checkout_state(repo, "main") == "dirty"
    src = commit_on(repo, "feature", {"a.py": "f\n"}, "f", start=head(repo))
    git(repo, "branch", "dev", "main")
    res = pm.merge(repo, src, "dev", strategy="merge", message="m")
    assert "not checked out" in pm.sync_main_checkout(repo, "dev", res.old, res.new)
    assert (repo / "a.py").read_text() == "a\n"


# ---------------------------------------------------------------------------- merge queue


@pytest.fixture
def five(tmp_path: Path) -> tuple[Path, str, dict[str, str]]:
    repo = make_repo(
        tmp_path / "repo", {"a.py": "a\n", "b.py": "b\n", "c.py": "c\n", "shared.py": SHARED}
    )
    git(repo, "checkout", "-q", "--detach")
    base = head(repo)
    heads = {
        "s1": commit_on(repo, "s1", {"a.py": "a1\n"}, "s1", start=base),
        "s2": commit_on(repo, "s2", {"b.py": "b2\n"}, "s2", start=base),
        "s3": commit_on(repo, "s3", {"c.py": "c3\n"}, "s3", start=base),
        "s4": commit_on(repo, "s4", {"shared.py": SHARED.replace("row 3", "s4")}, "s4", start=base),
        "s5": commit_on(repo, "s5", {"shared.py": SHARED.replace("row 3", "s5")}, "s5", start=base),
    }
    return repo, base, heads


def test_acceptance_forecast_then_queues(five: tuple[Path, str, dict[str, str]]) -> None:
    repo, base, heads = five
    f = forecast.forecast(repo, base, heads)
    assert f.pairs() == {frozenset({"s4", "s5"})}
    checked: list[str] = []

    def check(commit: str) -> CheckResult:
        checked.append(commit)
        return checks.run_check(repo, ["git", "cat-file", "-e", f"{commit}:a.py"], 30)

    q = mq.merge_queue(
        repo,
        [QueueItem(s, heads[s], f"merge {s}") for s in ("s1", "s2", "s3")],
        "main",
        "merge",
        check,
    )
    assert q.ok and q.merged == ["s1", "s2", "s3"] and q.old == base and q.new == head(repo)
    assert [i.status for i in q.items] == ["merged"] * 3
    assert checked == [i.commit for i in q.items]
    for s in ("s1", "s2", "s3"):
        git(repo, "merge-base", "--is-ancestor", heads[s], "main")
    assert show(repo, "main", "a.py") == "a1" and show(repo, "main", "c.py") == "c3"

    before = head(repo)
    q2 = mq.merge_queue(
        repo, [QueueItem(s, heads[s], f"merge {s}") for s in ("s4", "s5")], "main", "squash"
    )
    assert [i.status for i in q2.items] == ["merged", "conflict"]
    assert q2.items[1].conflict_paths == ["shared.py"] and q2.stopped_at is q2.items[1]
    assert not q2.ok and q2.merged == ["s4"]
    assert head(repo) == q2.new == q2.items[0].commit
    assert git(repo, "rev-parse", f"{q2.new}^") == before  # the base is intact: s4 on top
    assert show(repo, "main", "shared.py") == SHARED.replace("row 3", "s4").rstrip("\n")
    assert q2.to_json()["items"][1]["status"] == "conflict"


def test_queue_stops_at_failed_check_without_moving_target(
    five: tuple[Path, str, dict[str, str]],
) -> None:
    repo, _base, heads = five
    calls: list[str] = []

    def check(commit: str) -> CheckResult:
        calls.append(commit)
        ok = len(calls) != 2
        return CheckResult(ok, 0 if ok else 1, 0.1, "" if ok else "tests failed")

    items = [QueueItem(s, heads[s], s) for s in ("s1", "s2", "s3")]
    q = mq.merge_queue(repo, items, "main", "rebase", check)
    assert [i.status for i in q.items] == ["merged", "check_failed", "skipped"]
    assert q.items[1].check is not None and q.items[1].check.output_tail == "tests failed"
    assert q.items[1].commit == calls[1]  # the candidate that failed, never applied
    assert head(repo) == q.new == q.items[0].commit == heads["s1"]  # rebase fast-forward
    assert len(calls) == 2


def test_queue_validates_everything_first_and_reports_up_to_date(
    five: tuple[Path, str, dict[str, str]],
) -> None:
    repo, base, heads = five
    with pytest.raises(NotFound, match="s9"):
        mq.merge_queue(
            repo, [QueueItem("s1", heads["s1"], "m"), QueueItem("s9", "nope", "m")], "main", "merge"
        )
    assert head(repo) == base
    with pytest.raises(NotFound):
        mq.merge_queue(repo, [QueueItem("s1", heads["s1"], "m")], "nope", "merge")
    with pytest.raises(TargetMoved):
        mq.merge_queue(
            repo, [QueueItem("s1", heads["s1"], "m")], "main", "merge", expected_old=heads["s2"]
        )
    pm.merge(repo, heads["s1"], "main", strategy="merge", message="m")
    q = mq.merge_queue(
        repo,
        [QueueItem("s1", heads["s1"], "m"), QueueItem("s2", heads["s2"], "m")],
        "main",
        "merge",
    )
    assert [i.status for i in q.items] == ["up_to_date", "merged"] and q.ok


def test_check_commit_runs_in_a_temporary_worktree(five: tuple[Path, str, dict[str, str]]) -> None:
    repo, _base, heads = five
    checker = mq.commit_checker(repo, "cat a.py && test -f c.py", 30)
    r = checker(heads["s1"])
    assert r.ok and r.output_tail.strip() == "a1"
    bad = mq.check_commit(repo, heads["s1"], "grep -q c3 c.py", 30)
    assert not bad.ok and bad.exit_code == 1
    missing = mq.check_commit(repo, heads["s1"], "no-such-program-xyz", 30)
    assert not missing.ok and "not found" in missing.output_tail
    # every temporary worktree is gone again
    assert len(git(repo, "worktree", "list", "--porcelain").split("\n\n")) == 1


def test_queue_with_real_check_command(five: tuple[Path, str, dict[str, str]]) -> None:
    repo, _base, heads = five
    check = mq.commit_checker(repo, ["sh", "-c", "! grep -q s5 shared.py"], 30)
    q = mq.merge_queue(
        repo, [QueueItem(s, heads[s], s) for s in ("s1", "s5")], "main", "merge", check
    )
    assert [i.status for i in q.items] == ["merged", "check_failed"]
    assert show(repo, "main", "shared.py") == SHARED.rstrip("\n")


# ---------------------------------------------------------------------------- pull requests


@pytest.fixture
def with_remote(tmp_path: Path) -> tuple[Path, Path]:
    repo = make_repo(tmp_path / "repo", {"a.py": "a\n"})
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(repo, "remote", "add", "origin", str(bare))
    commit_on(repo, "pa/s1", {"a.py": "a1\n"}, "s1 work", start=head(repo))
    return repo, bare


def test_gh_pr_argv_exact() -> None:
    body = 'Line 1\n$(rm -rf /) `x` "quoted" ünï'
    assert github.gh_pr_argv("pa/s1", title="Add a1", body=body) == [
        "gh",
        "pr",
        "create",
        "--head",
        "pa/s1",
        "--title",
        "Add a1",
        "--body",
        body,
    ]
    assert github.gh_pr_argv("b", title="t", body="", draft=True, base="main", gh="/x/gh") == [
        "/x/gh",
        "pr",
        "create",
        "--head",
        "b",
        "--title",
        "t",
        "--body",
        "",
        "--base",
        "main",
        "--draft",
    ]


def test_push_without_gh_pushes_and_says_what_to_run(with_remote: tuple[Path, Path]) -> None:
    repo, bare = with_remote
    r = github.push_and_pr(repo, "pa/s1", title="Add a1", body="body", draft=True, gh=None)
    assert r.pushed and not r.created and r.url is None
    assert git(bare, "rev-parse", "refs/heads/pa/s1") == head(repo, "pa/s1") == r.commit
    assert "gh" in r.message and "not installed" in r.message
    assert "gh pr create --head pa/s1 --title 'Add a1' --body body --draft" in r.message
    assert r.gh_argv[-1] == "--draft"


def test_push_errors_name_what_is_missing(with_remote: tuple[Path, Path], tmp_path: Path) -> None:
    repo, _bare = with_remote
    with pytest.raises(UsageError, match="no remote named 'upstream'") as ei:
        github.push_and_pr(repo, "pa/s1", remote="upstream", title="t", body="b", gh=None)
    assert "origin" in str(ei.value) and ei.value.hint and "git remote add" in ei.value.hint
    lonely = make_repo(tmp_path / "lonely", {"x": "x\n"})
    with pytest.raises(UsageError, match="no remotes at all"):
        github.push_and_pr(lonely, "main", title="t", body="b", gh=None)
    with pytest.raises(NotFound, match="nope"):
        github.push_and_pr(repo, "nope", title="t", body="b", gh=None)
    git(repo, "remote", "set-url", "origin", str(tmp_path / "not-a-repo"))
    with pytest.raises(PAError, match="git push of pa/s1 to origin failed"):
        github.push_and_pr(repo, "pa/s1", title="t", body="b", gh=None)


def test_push_with_failing_gh_reports_without_losing_the_push(
    with_remote: tuple[Path, Path],
) -> None:
    repo, bare = with_remote
    false = shutil.which("false")
    assert false
    r = github.push_and_pr(repo, "pa/s1", title="t", body="b", gh=false)
    assert r.pushed and not r.created and "gh pr create failed" in r.message
    assert r.gh_argv[0] == false
    assert git(bare, "rev-parse", "refs/heads/pa/s1") == r.commit


@pytest.mark.skipif(shutil.which("gh") is None, reason="the gh CLI is not installed: apt-get install gh")
def test_real_gh_understands_our_flags(tmp_path: Path) -> None:
    gh = shutil.which("gh")
    assert gh
    out = subprocess.run(
        [gh, "pr", "create", "--help"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "GH_PROMPT_DISABLED": "1"},
    ).stdout
    for flag in ("--head", "--title", "--body", "--draft", "--base"):
        assert flag in out
