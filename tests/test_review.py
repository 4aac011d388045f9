"""review: checkpoints, restore, diffs, conflict forecast and checks, on real git repos."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from parallel_agents.errors import NotFound, UsageError
from parallel_agents.git import diffs, forecast, merge_tree, snapshots
from parallel_agents.git.diffs import FileChange
from parallel_agents.runtime import checks
from parallel_agents.runtime.checks import CheckSpec

# ------------------------------------------------------------------------------- helpers


def git(cwd: Path, *args: str, input: bytes | None = None) -> str:
    r = subprocess.run(["git", *args], cwd=cwd, input=input, capture_output=True, check=False)
    if r.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {r.stderr.decode()}")
    return r.stdout.decode().strip()


def write(root: Path, files: Mapping[str, str | bytes]) -> None:
    for name, content in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)


def make_repo(path: Path, files: Mapping[str, str | bytes] | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Test")
    git(path, "config", "user.email", "test@example.com")
    write(path, files or {"README.md": "# demo\n"})
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


def commit(repo: Path, files: Mapping[str, str | bytes], msg: str, rm: tuple[str, ...] = ()) -> str:
    write(repo, files)
    for name in rm:
        git(repo, "rm", "-q", name)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", msg)
    return git(repo, "rev-parse", "HEAD")


def branch_commit(repo: Path, branch: str, start: str, files: Mapping[str, str], msg: str) -> str:
    """A commit on ``branch`` (created at ``start``) without touching the checkout."""
    env = {**os.environ, "GIT_INDEX_FILE": str(repo / ".git" / f"tmp-index-{branch}")}
    subprocess.run(["git", "read-tree", start], cwd=repo, env=env, check=True)
    for name, content in files.items():
        blob = git(repo, "hash-object", "-w", "--stdin", input=content.encode())
        subprocess.run(
            ["git", "update-index", "--add", "--cacheinfo", f"100644,{blob},{name}"],
            cwd=repo,
            env=env,
            check=True,
        )
    tree = subprocess.run(
        ["git", "write-tree"], cwd=repo, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()
    os.unlink(env["GIT_INDEX_FILE"])
    c = git(repo, "commit-tree", tree, "-p", start, "-m", msg)
    git(repo, "update-ref", f"refs/heads/{branch}", c)
    return c


def tree_state(root: Path) -> dict[str, tuple[str, int, bytes]]:
    """Every file and symlink under root (outside .git): kind, mode bits, content/target."""
    out: dict[str, tuple[str, int, bytes]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", 0, os.readlink(p).encode())
            else:
                out[rel] = ("file", st.st_mode & 0o777, p.read_bytes())
    return out


def index_path(wt: Path) -> Path:
    p = Path(git(wt, "rev-parse", "--git-path", "index"))
    return p if p.is_absolute() else wt / p


def ls_tree(repo: Path, rev: str) -> dict[str, tuple[str, str]]:
    out = {}
    for line in git(repo, "ls-tree", "-r", "--full-tree", rev).splitlines():
        meta, path = line.split("\t", 1)
        mode, _kind, oid = meta.split()
        out[path] = (mode, oid)
    return out


def blob(repo: Path, rev: str, path: str) -> bytes:
    r = subprocess.run(
        ["git", "cat-file", "blob", f"{rev}:{path}"], cwd=repo, capture_output=True, check=True
    )
    return r.stdout


BINARY = bytes(range(256)) * 8


@pytest.fixture
def agent_wt(tmp_path: Path) -> tuple[Path, Path]:
    """A repo and a linked worktree on branch `agent`, like a session's."""
    repo = make_repo(
        tmp_path / "repo",
        {
            "README.md": "# demo\n",
            "a.txt": "a1\n",
            "b.txt": "b1\n",
            "gone.txt": "soon gone\n",
            "run.sh": "#!/bin/sh\necho hi\n",
            "img.bin": BINARY,
            ".gitignore": "*.log\nbuild/\n",
        },
    )
    os.symlink("a.txt", repo / "link")
    commit(repo, {}, "symlink")
    wt = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "-b", "agent", str(wt), "main")
    return repo, wt


# --------------------------------------------------------------------------- checkpoints


def dirty_up(wt: Path) -> None:
    """Staged, unstaged, untracked, ignored, deleted, chmod, symlink and binary changes."""
    write(wt, {"b.txt": "b2 staged\n"})
    git(wt, "add", "b.txt")
    write(wt, {"b.txt": "b3 unstaged on top of staged\n", "a.txt": "a2 unstaged\n"})
    write(wt, {"new/untracked.txt": "fresh\n", "new/data.bin": BINARY[::-1]})
    write(wt, {"debug.log": "ignored\n", "build/out.o": b"\x00ignored"})
    (wt / "gone.txt").unlink()
    (wt / "run.sh").chmod(0o755)
    os.symlink("new/untracked.txt", wt / "link2")


def test_checkpoint_snapshots_everything_and_touches_nothing(agent_wt: tuple[Path, Path]) -> None:
    repo, wt = agent_wt
    dirty_up(wt)
    head_before = git(wt, "rev-parse", "HEAD")
    idx = index_path(wt)
    index_bytes = idx.read_bytes()
    files_before = tree_state(wt)
    status_before = git(wt, "status", "--porcelain")
    index_bytes = idx.read_bytes()  # status may refresh the index: take it again

    c = snapshots.checkpoint(wt, "refs/pa/sessions/s1/turns/1", "turn 1")

    # Nothing of the agent's changed: files, index bytes, HEAD, branch.
    assert tree_state(wt) == files_before
    assert idx.read_bytes() == index_bytes
    assert git(wt, "rev-parse", "HEAD") == head_before
    assert git(wt, "symbolic-ref", "HEAD") == "refs/heads/agent"
    assert git(wt, "status", "--porcelain") == status_before

    # The commit: parent is HEAD, ref points at it, tree is the worktree's state.
    assert git(repo, "rev-parse", "refs/pa/sessions/s1/turns/1") == c
    assert git(repo, "rev-parse", f"{c}^") == head_before
    assert git(repo, "log", "-1", "--format=%B", c).strip() == "turn 1"
    t = ls_tree(repo, c)
    assert blob(repo, c, "b.txt") == b"b3 unstaged on top of staged\n"
    assert blob(repo, c, "a.txt") == b"a2 unstaged\n"
    assert blob(repo, c, "new/untracked.txt") == b"fresh\n"
    assert blob(repo, c, "new/data.bin") == BINARY[::-1]
    assert blob(repo, c, "img.bin") == BINARY
    assert "gone.txt" not in t
    assert "debug.log" not in t and "build/out.o" not in t
    assert t["run.sh"][0] == "100755"
    assert t["link"][0] == "120000" and blob(repo, c, "link") == b"a.txt"
    assert t["link2"][0] == "120000" and blob(repo, c, "link2") == b"new/untracked.txt"


def test_checkpoint_always_points_at_current_state(agent_wt: tuple[Path, Path]) -> None:
    repo, wt = agent_wt
    ref = "refs/pa/sessions/s1/live"
    c1 = snapshots.checkpoint(wt, ref, "one")
    assert git(repo, "rev-parse", f"{c1}^{{tree}}") == git(repo, "rev-parse", "main^{tree}")
    c2 = snapshots.checkpoint(wt, ref, "two")
    assert git(repo, "rev-parse", f"{c2}^{{tree}}") == git(repo, "rev-parse", f"{c1}^{{tree}}")
    write(wt, {"a.txt": "changed\n"})
    c3 = snapshots.checkpoint(wt, ref, "three")
    assert git(repo, "rev-parse", ref) == c3
    assert blob(repo, c3, "a.txt") == b"changed\n"


def test_checkpoint_without_any_git_identity(
    agent_wt: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    repo, wt = agent_wt
    for k in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "nohome"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    git(repo, "config", "--unset", "user.name")
    git(repo, "config", "--unset", "user.email")
    git(repo, "config", "user.useConfigOnly", "true")
    c = snapshots.checkpoint(wt, "refs/pa/x", "no identity")
    assert git(repo, "log", "-1", "--format=%an <%ae>", c) == "parallel-agents <pa@localhost>"


def test_checkpoint_bad_input(agent_wt: tuple[Path, Path], tmp_path: Path) -> None:
    _, wt = agent_wt
    with pytest.raises(UsageError, match="refs/"):
        snapshots.checkpoint(wt, "turns/1", "x")
    with pytest.raises(NotFound):
        snapshots.checkpoint(tmp_path / "missing", "refs/pa/x", "x")


def test_checkpoint_of_a_repo_without_commits(tmp_path: Path) -> None:
    repo = tmp_path / "fresh"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    write(repo, {"first.txt": "hello\n"})
    c = snapshots.checkpoint(repo, "refs/pa/fresh", "first")
    assert git(repo, "rev-list", "--parents", "-n1", c) == c  # no parent
    assert blob(repo, c, "first.txt") == b"hello\n"
    with pytest.raises(UsageError, match="no parent"):
        snapshots.restore(repo, c)


def test_restore_in_a_detached_worktree(agent_wt: tuple[Path, Path]) -> None:
    _repo, wt = agent_wt
    git(wt, "checkout", "-q", "--detach")
    write(wt, {"a.txt": "detached wip\n"})
    c = snapshots.checkpoint(wt, "refs/pa/d/1", "1")
    commit(wt, {"a.txt": "later\n"}, "later")
    snapshots.restore(wt, c)
    assert (wt / "a.txt").read_text() == "detached wip\n"
    assert git(wt, "rev-parse", "HEAD") == git(wt, "rev-parse", f"{c}^")
    assert (
        subprocess.run(["git", "symbolic-ref", "-q", "HEAD"], cwd=wt, check=False).returncode == 1
    )  # still detached


# ------------------------------------------------------------------------------ restore


def visible(state: dict[str, tuple[str, int, bytes]]) -> dict[str, tuple[str, int, bytes]]:
    return {k: v for k, v in state.items() if not k.endswith(".log") and not k.startswith("build/")}


def test_rollback_to_turn_one_and_forward_to_turn_three(agent_wt: tuple[Path, Path]) -> None:
    repo, wt = agent_wt
    ref = "refs/pa/sessions/s1/turns/{}".format
    # turn 1: uncommitted edits, an untracked file, a deleted file
    write(wt, {"a.txt": "turn1\n", "t1.txt": "only in turn 1\n"})
    (wt / "gone.txt").unlink()
    states = {1: tree_state(wt)}
    c1 = snapshots.checkpoint(wt, ref(1), "turn 1")
    # turn 2: the agent commits, then keeps editing; chmod; symlink swap
    (wt / "t1.txt").unlink()
    commit(wt, {"a.txt": "turn2 committed\n"}, "agent commit")
    write(wt, {"b.txt": "turn2 wip\n", "dir/deep/t2.txt": "t2\n"})
    (wt / "run.sh").chmod(0o755)
    (wt / "link").unlink()
    os.symlink("b.txt", wt / "link")
    states[2] = tree_state(wt)
    snapshots.checkpoint(wt, ref(2), "turn 2")
    # turn 3: another commit, a binary file, an ignored file (must survive rollbacks)
    commit(wt, {"img.bin": BINARY[:100], "c.txt": "turn3\n"}, "agent commit 2")
    write(wt, {"a.txt": "turn3 wip\n", "debug.log": "ignored, keep me\n"})
    states[3] = tree_state(wt)
    c3 = snapshots.checkpoint(wt, ref(3), "turn 3")
    head3 = git(wt, "rev-parse", "HEAD")

    # Roll back: checkpoint the current state first (undo), then restore turn 1.
    undo = snapshots.checkpoint(wt, "refs/pa/sessions/s1/undo", "before rollback")
    snapshots.restore(wt, c1)
    assert visible(tree_state(wt)) == visible(states[1])
    assert (wt / "debug.log").read_text() == "ignored, keep me\n"
    assert not (wt / "dir").exists()  # emptied directories go too
    assert git(wt, "rev-parse", "HEAD") == git(repo, "rev-parse", f"{c1}^")
    assert git(wt, "symbolic-ref", "HEAD") == "refs/heads/agent"
    git(wt, "diff", "--cached", "--quiet")  # index == HEAD
    # the later commits stay reachable through their checkpoints
    assert git(repo, "merge-base", "--is-ancestor", head3, c3) == ""
    # status shows exactly turn 1's uncommitted work
    st = git(wt, "status", "--porcelain")
    assert {line.strip() for line in st.splitlines()} == {"M a.txt", "D gone.txt", "?? t1.txt"}

    # Forward again to turn 3.
    snapshots.restore(wt, c3)
    assert visible(tree_state(wt)) == visible(states[3])
    assert git(wt, "rev-parse", "HEAD") == head3
    git(wt, "diff", "--cached", "--quiet")
    # and the undo checkpoint equals turn 3's tree
    assert git(repo, "rev-parse", f"{undo}^{{tree}}") == git(repo, "rev-parse", f"{c3}^{{tree}}")


def test_restore_bad_commit(agent_wt: tuple[Path, Path]) -> None:
    _, wt = agent_wt
    with pytest.raises(NotFound):
        snapshots.restore(wt, "refs/pa/sessions/nope/turns/9")


def test_restore_overwrites_untracked_file_that_is_in_checkpoint(
    agent_wt: tuple[Path, Path],
) -> None:
    _, wt = agent_wt
    write(wt, {"notes.txt": "v1\n"})
    c1 = snapshots.checkpoint(wt, "refs/pa/t/1", "1")
    write(wt, {"notes.txt": "v2\n", "other.txt": "x\n"})
    snapshots.restore(wt, c1)
    assert (wt / "notes.txt").read_text() == "v1\n"
    assert not (wt / "other.txt").exists()


# --------------------------------------------------------------------------------- diffs


@pytest.fixture
def diff_repo(tmp_path: Path) -> tuple[Path, str, str]:
    body = "".join(f"line {i}\n" for i in range(50))
    repo = make_repo(
        tmp_path / "repo",
        {
            "keep.txt": "1\n2\n3\n",
            "old_name.py": body,
            "img.png": BINARY,
            "doomed.txt": "x\ny\n",
            "tolink": "plain file\n",
        },
    )
    base = git(repo, "rev-parse", "HEAD")
    git(repo, "mv", "old_name.py", "new_name.py")
    write(
        repo,
        {
            "new_name.py": body + "one more\n",
            "keep.txt": "1\nTWO\n3\n4\n",
            "img.png": BINARY[::-1],
            "added.txt": "a\nb\n",
        },
    )
    git(repo, "rm", "-q", "doomed.txt")
    (repo / "tolink").unlink()
    os.symlink("keep.txt", repo / "tolink")
    target = commit(repo, {}, "changes")
    return repo, base, target


def test_diff_files_statuses_counts_renames_binary(diff_repo: tuple[Path, str, str]) -> None:
    repo, base, target = diff_repo
    files = {f.path: f for f in diffs.diff_files(repo, base, target)}
    assert files["new_name.py"] == FileChange(
        "new_name.py", "old_name.py", "R", 1, 0, False, files["new_name.py"].similarity
    )
    assert (files["new_name.py"].similarity or 0) >= 90
    assert files["keep.txt"] == FileChange("keep.txt", None, "M", 2, 1, False)
    assert files["img.png"] == FileChange("img.png", None, "M", 0, 0, True)
    assert files["added.txt"] == FileChange("added.txt", None, "A", 2, 0, False)
    assert files["doomed.txt"] == FileChange("doomed.txt", None, "D", 0, 2, False)
    assert files["tolink"].status == "T"
    assert set(files) == {"new_name.py", "keep.txt", "img.png", "added.txt", "doomed.txt", "tolink"}
    assert files["img.png"].to_json()["binary"] is True


def test_diff_files_odd_paths(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"a.txt": "a\n"})
    base = git(repo, "rev-parse", "HEAD")
    target = commit(repo, {"tab\there.txt": "x\n", "ünï cödé.txt": "y\n", "-dash.txt": "z\n"}, "o")
    paths = {f.path for f in diffs.diff_files(repo, base, target)}
    assert paths == {"tab\there.txt", "ünï cödé.txt", "-dash.txt"}


def test_diff_files_bad_ref(diff_repo: tuple[Path, str, str]) -> None:
    repo, base, _ = diff_repo
    with pytest.raises(NotFound, match="nope"):
        diffs.diff_files(repo, base, "nope")


def test_diff_stream_text_stat_name_only_paths(diff_repo: tuple[Path, str, str]) -> None:
    repo, base, target = diff_repo
    text = "".join(diffs.diff_stream(repo, base, target))
    assert "Binary files a/img.png and b/img.png differ" in text
    assert "rename from old_name.py" in text and "rename to new_name.py" in text
    assert "+TWO" in text
    names = "".join(diffs.diff_stream(repo, base, target, name_only=True)).split()
    assert set(names) == {"new_name.py", "keep.txt", "img.png", "added.txt", "doomed.txt", "tolink"}
    st = "".join(diffs.diff_stream(repo, base, target, stat=True))
    assert "files changed" in st and "img.png" in st and "Bin" in st
    only = "".join(diffs.diff_stream(repo, base, target, paths=["keep.txt"]))
    assert "keep.txt" in only and "img.png" not in only
    with pytest.raises(UsageError):
        diffs.diff_stream(repo, base, target, stat=True, name_only=True)
    with pytest.raises(NotFound):
        diffs.diff_stream(repo, "nope", target)


def test_diff_stream_is_chunked_and_can_stop_early(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"a.txt": "a\n"})
    base = git(repo, "rev-parse", "HEAD")
    big = "".join(f"{i:08d} some text that makes the line longer ✓\n" for i in range(60_000))
    target = commit(repo, {"big.txt": big}, "big")
    chunks = diffs.diff_stream(repo, base, target, chunk_size=16 * 1024)
    first = next(chunks)
    assert len(first) <= 16 * 1024
    n = 1
    total = len(first)
    for c in chunks:
        n += 1
        total += len(c)
    assert n > 10 and total > len(big)
    # Stopping early ends the git process cleanly (warnings are errors in this suite),
    # and a stream that is never read starts no process at all.
    stream = diffs.diff_stream(repo, base, target, chunk_size=1024)
    next(stream)
    stream.close()
    unused = diffs.diff_stream(repo, base, target)
    del unused


# ------------------------------------------------------------------------------ forecast

MODES = [pytest.param(False, id="pool")]
if merge_tree.merge_tree_supports_stdin():
    MODES.append(pytest.param(True, id="stdin"))


@pytest.fixture
def five(tmp_path: Path) -> tuple[Path, str, dict[str, str]]:
    """The acceptance setup: five sessions from one base; s4 and s5 edit the same lines."""
    shared = "".join(f"row {i}\n" for i in range(20))
    repo = make_repo(
        tmp_path / "repo",
        {
            "a.py": "a\n",
            "b.py": "b\n",
            "c.py": "c\n",
            "shared.py": shared,
            "pkg/mod.py": "m\n",
        },
    )
    base = git(repo, "rev-parse", "HEAD")
    heads = {
        "s1": branch_commit(repo, "s1", base, {"a.py": "a changed\n", "new1.py": "n\n"}, "s1"),
        "s2": branch_commit(repo, "s2", base, {"b.py": "b changed\n"}, "s2"),
        "s3": branch_commit(repo, "s3", base, {"c.py": "c changed\n", "pkg/x.py": "x\n"}, "s3"),
        "s4": branch_commit(
            repo, "s4", base, {"shared.py": shared.replace("row 3", "ROW 3 s4")}, "s4"
        ),
        "s5": branch_commit(
            repo, "s5", base, {"shared.py": shared.replace("row 3", "row three")}, "s5"
        ),
    }
    return repo, base, heads


@pytest.mark.parametrize("use_stdin", MODES)
def test_forecast_reports_exactly_the_conflicting_pair(
    five: tuple[Path, str, dict[str, str]], use_stdin: bool
) -> None:
    repo, base, heads = five
    cache: dict[tuple[str, str], list[str]] = {}
    f = forecast.ConflictForecast(repo, cache, use_stdin=use_stdin).forecast(base, heads)
    assert f.pairs() == {frozenset({"s4", "s5"})}
    assert f.conflicts == [forecast.PairConflict("s4", "s5", ["shared.py"])]
    assert all(s.clean_with_base and s.base_conflict_paths == [] for s in f.sessions.values())
    assert f.sessions["s4"].conflicts_with == ["s5"]
    assert f.sessions["s1"].conflicts_with == []
    assert f.sessions["s1"].changed_paths == 2
    assert f.stats.pairs == 10 and f.stats.candidate_pairs == 1 and f.stats.merges_run == 1
    h4, h5 = heads["s4"], heads["s5"]
    key = (h4, h5) if h4 <= h5 else (h5, h4)
    assert cache == {key: ["shared.py"]}
    # A second run is answered from the cache.
    again = forecast.ConflictForecast(repo, cache, use_stdin=use_stdin).forecast(base, heads)
    assert again.pairs() == f.pairs()
    assert again.stats.merges_run == 0 and again.stats.cache_hits == 1
    # The cache really is consulted (a caller may persist it).
    cache[key] = ["from-cache.txt"]
    assert forecast.forecast(repo, base, heads, cache).conflicts[0].paths == ["from-cache.txt"]


@pytest.mark.parametrize("use_stdin", MODES)
def test_forecast_without_prefilter_agrees_with_pairwise_merge_tree(
    five: tuple[Path, str, dict[str, str]], use_stdin: bool, tmp_path: Path
) -> None:
    """Batch (or pool) answers equal one merge-tree per pair, for every pair."""
    repo, _base, heads = five
    eng = forecast.ConflictForecast(repo, use_stdin=use_stdin)
    ids = sorted(heads)
    pairs = [(heads[a], heads[b]) for i, a in enumerate(ids) for b in ids[i + 1 :]]
    got = eng.merge_paths(pairs)
    for a, b in pairs:
        r = subprocess.run(
            ["git", "merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", a, b],
            cwd=repo,
            capture_output=True,
            check=False,
        )
        want = [p for p in r.stdout.decode().split("\0")[1:] if p] if r.returncode else []
        assert got[(a, b) if a <= b else (b, a)] == want


def test_forecast_does_not_write_objects_into_the_repo(
    five: tuple[Path, str, dict[str, str]],
) -> None:
    repo, base, heads = five
    git(repo, "gc", "-q")
    before = git(repo, "count-objects", "-v")
    f = forecast.forecast(repo, base, heads)
    assert f.conflicts
    assert git(repo, "count-objects", "-v") == before


def test_forecast_against_a_moved_base(five: tuple[Path, str, dict[str, str]]) -> None:
    repo, base, heads = five
    shared = blob(repo, base, "shared.py").decode()
    new_base = commit(
        repo, {"shared.py": shared.replace("row 3", "row 3 on main"), "d.py": "d\n"}, "main moves"
    )
    f = forecast.forecast(repo, new_base, heads)
    assert not f.sessions["s4"].clean_with_base
    assert f.sessions["s4"].base_conflict_paths == ["shared.py"]
    assert not f.sessions["s5"].clean_with_base
    assert f.sessions["s1"].clean_with_base and f.sessions["s1"].merge_base == base
    assert f.pairs() == {frozenset({"s4", "s5"})}
    assert f.stats.base_checks == 2


def test_forecast_sessions_forked_from_different_base_commits(tmp_path: Path) -> None:
    """s_old (forked before main changed x) vs s_new (forked after): a merge of the two
    heads conflicts on x, but only because of main's change, which s_new did not make:
    s_old conflicts with the base, the pair does not conflict (issue 11 F.6)."""
    repo = make_repo(tmp_path / "r", {"x.txt": "x0\n", "y.txt": "y0\n"})
    b1 = git(repo, "rev-parse", "HEAD")
    s_old = branch_commit(repo, "old", b1, {"x.txt": "x from old session\n"}, "old")
    b2 = commit(repo, {"x.txt": "x changed on main\n"}, "main")
    s_new = branch_commit(repo, "new", b2, {"y.txt": "y new\n"}, "new")
    f = forecast.forecast(repo, b2, {"old": s_old, "new": s_new})
    assert f.sessions["old"].base_conflict_paths == ["x.txt"]
    assert f.sessions["new"].clean_with_base
    assert f.pairs() == set()


def test_forecast_file_directory_and_directory_rename_conflicts(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"lib/a.py": "a\n", "lib/b.py": "b\n", "z.txt": "z\n"})
    base = git(repo, "rev-parse", "HEAD")
    heads = {
        "file": branch_commit(repo, "f", base, {"thing": "a file\n"}, "file"),
        "dir": branch_commit(repo, "d", base, {"thing/inside.txt": "in a dir\n"}, "dir"),
        "adds": branch_commit(repo, "adds", base, {"lib/c.py": "c\n"}, "adds to lib"),
    }
    # `moves` renames lib/ to src/ entirely (a directory rename).
    wt = tmp_path / "mv"
    git(repo, "worktree", "add", "-q", "-b", "moves", str(wt), base)
    git(wt, "mv", "lib", "src")
    git(wt, "commit", "-q", "-m", "lib -> src")
    heads["moves"] = git(wt, "rev-parse", "HEAD")
    f = forecast.forecast(repo, base, heads)
    assert f.pairs() == {frozenset({"file", "dir"}), frozenset({"adds", "moves"})}
    fd = next(c for c in f.conflicts if c.a == "dir")
    assert any(p.startswith("thing") for p in fd.paths)


def test_forecast_bad_input(five: tuple[Path, str, dict[str, str]], tmp_path: Path) -> None:
    repo, base, heads = five
    with pytest.raises(NotFound, match="s9"):
        forecast.forecast(repo, base, {**heads, "s9": "refs/heads/nope"})
    with pytest.raises(NotFound):
        forecast.forecast(repo, "nope", heads)
    assert forecast.forecast(repo, base, {}).conflicts == []
    # a session with no common history with the base
    empty_tree = git(repo, "hash-object", "-t", "tree", "--stdin", input=b"")
    orphan = git(repo, "commit-tree", empty_tree, "-m", "orphan")
    f = forecast.forecast(repo, base, {"s1": heads["s1"], "orphan": orphan})
    assert f.sessions["orphan"].error and not f.sessions["orphan"].clean_with_base
    assert f.sessions["s1"].clean_with_base


def test_forecast_identical_and_stacked_sessions(five: tuple[Path, str, dict[str, str]]) -> None:
    repo, base, heads = five
    stacked = branch_commit(repo, "stack", heads["s4"], {"more.txt": "m\n"}, "on top of s4")
    f = forecast.forecast(repo, base, {"s4": heads["s4"], "twin": heads["s4"], "stack": stacked})
    assert f.conflicts == []
    assert f.to_json()["sessions"]["twin"]["clean_with_base"] is True


def test_merge_bases_from_one_rev_list_agree_with_git(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"a.txt": "0\n", "b.txt": "0\n"})
    b1 = git(repo, "rev-parse", "HEAD")
    fork = branch_commit(repo, "fork", b1, {"x.txt": "1\n"}, "fork")
    fork2 = branch_commit(repo, "fork", fork, {"x.txt": "2\n"}, "fork 2")
    stacked = branch_commit(repo, "stacked", fork2, {"y.txt": "1\n"}, "stacked")
    b2 = commit(repo, {"a.txt": "1\n"}, "main 2")
    b3 = commit(repo, {"a.txt": "2\n"}, "main 3")
    # a session that merged the base in: two boundary commits
    tree = git(repo, "rev-parse", f"{fork2}^{{tree}}")
    merged_in = git(repo, "commit-tree", tree, "-p", fork2, "-p", b2, "-m", "merge main")
    empty_tree = git(repo, "hash-object", "-t", "tree", "--stdin", input=b"")
    orphan = git(repo, "commit-tree", empty_tree, "-m", "orphan")
    heads = [fork, fork2, stacked, merged_in, orphan, b1, b2, b3]
    forecast._MB_CACHE.clear()
    got = forecast._merge_bases(repo, b3, heads, 2)
    for h in heads:
        r = subprocess.run(
            ["git", "merge-base", b3, h], cwd=repo, capture_output=True, text=True, check=False
        )
        assert got[h] == (r.stdout.strip() or None), h
    assert got[merged_in] == b2 and got[stacked] == b1 and got[b2] == b2
    assert forecast._merge_bases(repo, b3, heads, 2) == got  # cached


def test_parse_merge_tree_stdin_records() -> None:
    """The documented --stdin -z format: status, tree, paths, empty terminator."""
    out = "1\0" + "a" * 40 + "\0\0" + "0\0" + "b" * 40 + "\0x.txt\0d/y\0\0"
    tokens = out.split("\0")
    clean, paths, i = merge_tree.parse_merge_tree(tokens, 0)
    assert clean and paths == []
    clean, paths, i = merge_tree.parse_merge_tree(tokens, i)
    assert not clean and paths == ["x.txt", "d/y"]
    with pytest.raises(ValueError):
        merge_tree.parse_merge_tree(["x", "y"], 0)


# -------------------------------------------------------------------------------- checks


def test_check_argv_and_shell_detection() -> None:
    assert checks.check_argv("pytest -q 'tests/a b.py'") == ["pytest", "-q", "tests/a b.py"]
    assert checks.check_argv(["make", "test"]) == ["make", "test"]
    for cmd in [
        "make && make test",
        "a | b",
        "echo $HOME",
        "FOO=1 make",
        "ls *.py",
        "a; b",
        "x > out",
        'echo "$(date)"',
        "cd ~",
        "make # comment",
    ]:
        assert checks.check_argv(cmd) == ["sh", "-c", cmd], cmd
    for cmd in ["echo 'a | b'", "pytest -k 'not slow'", "echo a\\|b", "git log --format=%H~x"]:
        assert checks.check_argv(cmd)[0] != "sh", cmd
    with pytest.raises(UsageError):
        checks.check_argv("  ")
    with pytest.raises(UsageError):
        checks.check_argv([])
    with pytest.raises(UsageError):
        checks.check_argv("echo 'unterminated")


def test_run_check_ok_fail_env_and_shell(tmp_path: Path) -> None:
    ok = checks.run_check(tmp_path, [sys.executable, "-c", "print('fine')"], 30)
    assert ok.ok and ok.exit_code == 0 and ok.output_tail.strip() == "fine" and not ok.timed_out
    bad = checks.run_check(tmp_path, f"{sys.executable} -c 'import sys; sys.exit(3)'", 30)
    assert not bad.ok and bad.exit_code == 3
    env = checks.run_check(
        tmp_path, "echo $PA_TEST_VALUE && echo second >&2", 30, env={"PA_TEST_VALUE": "from-env"}
    )
    assert env.ok and env.output_tail.split() == ["from-env", "second"]
    assert env.command[:2] == ["sh", "-c"]
    (tmp_path / "marker").write_text("here")
    assert checks.run_check(tmp_path, "cat marker", 30).output_tail == "here"


def test_run_check_keeps_only_the_tail(tmp_path: Path) -> None:
    code = "import sys\nfor i in range(20000): print(f'line {i}')\nprint('THE END')"
    r = checks.run_check(tmp_path, [sys.executable, "-c", code], 30)
    assert r.ok
    assert len(r.output_tail.encode()) <= checks.TAIL_BYTES
    assert r.output_tail.endswith("THE END\n")
    assert "line 0\n" not in r.output_tail


def test_run_check_timeout_kills_the_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    t0 = time.monotonic()
    r = checks.run_check(tmp_path, f"sleep 60 & echo $! > {pidfile}; echo started; wait", 0.5)
    assert r.timed_out and not r.ok and r.exit_code is None
    assert time.monotonic() - t0 < 10
    assert "started" in r.output_tail and "timed out" in r.output_tail
    child = int(pidfile.read_text())
    for _ in range(50):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        # a zombie still answers kill(0) until reaped by init; check its state
        st = Path(f"/proc/{child}/stat")
        if st.exists() and st.read_text().split(") ")[-1].startswith("Z"):
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the background child survived the timeout")


def test_run_check_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    code = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('x', flush=True)\ntime.sleep(60)"
    r = checks.run_check(tmp_path, [sys.executable, "-c", code], 0.5)
    assert r.timed_out and r.duration_s < 10


def test_run_check_missing_program(tmp_path: Path) -> None:
    r = checks.run_check(tmp_path, "no-such-check-program --all", 5)
    assert not r.ok and r.exit_code == 127 and not r.timed_out
    assert "not found" in r.output_tail and "no-such-check-program" in r.output_tail
    r2 = checks.run_check(tmp_path, "no-such-check-program && true", 5)
    assert not r2.ok and r2.exit_code == 127
    (tmp_path / "noexec").write_text("#!/bin/sh\n")
    r3 = checks.run_check(tmp_path, ["./noexec"], 5)
    assert not r3.ok and r3.exit_code == 126
    with pytest.raises(NotFound):
        checks.run_check(tmp_path / "missing", "true", 5)


def test_run_checks_in_parallel_within_limit(tmp_path: Path) -> None:
    """Each check waits until all three have started: passes only if they overlap."""
    code = (
        "import pathlib, sys, time\n"
        "d = pathlib.Path(sys.argv[1]); (d / sys.argv[2]).touch()\n"
        "t = time.time()\n"
        "while len(list(d.iterdir())) < 3:\n"
        "    if time.time() - t > 10: sys.exit(1)\n"
        "    time.sleep(0.01)\n"
        "print(sys.argv[2])\n"
    )
    d = tmp_path / "started"
    d.mkdir()
    specs = [CheckSpec(tmp_path, [sys.executable, "-c", code, str(d), n], 20) for n in "abc"]
    results = checks.run_checks(specs, limit=3)
    assert [r.output_tail.strip() for r in results] == ["a", "b", "c"]
    assert all(r.ok for r in results)
    assert checks.run_checks([], limit=2) == []
