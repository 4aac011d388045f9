"""The one git runner (``parallel_agents.git.run``): exit codes it accepts, stdout as
bytes, as text that keeps every byte, and as the str its older callers read."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from parallel_agents import git
from parallel_agents.errors import NotFound
from parallel_agents.git import GitError


def _repo(path: Path, name: str) -> Path:
    path.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    (path / "f.txt").write_bytes(b"one\r\ntwo\n")
    subprocess.run(["git", "-C", str(path), "add", "f.txt"], check=True)
    env = {**git.PA_IDENTITY}
    git.run(["commit", "-q", "-m", name], path, env=env)
    return path


def test_ok_lists_the_exit_codes_that_are_not_errors(tmp_path: Path) -> None:
    a = _repo(tmp_path / "a", "a")
    b = _repo(tmp_path / "b", "b")
    git.run(["fetch", "-q", str(b), "main:other"], a)
    # Unrelated histories: merge-base exits 1, which ``ok`` allows.
    r = git.run(["merge-base", "main", "other"], a, ok=(0, 1))
    assert r.returncode == 1 and r.raw == b""
    with pytest.raises(GitError) as ei:
        git.run(["merge-base", "main", "other"], a)
    assert ei.value.returncode == 1


def test_stdout_as_bytes_as_text_and_as_before(tmp_path: Path) -> None:
    a = _repo(tmp_path / "a", "a")
    r = git.run(["cat-file", "blob", "HEAD:f.txt"], a)
    assert r.raw == b"one\r\ntwo\n"
    assert r.text == "one\r\ntwo\n"  # every byte kept
    assert r.stdout == "one\ntwo\n"  # text mode's universal newlines, as always
    blob = git.run(["hash-object", "-w", "--stdin"], a, input=b"\xff\r\n")
    # Bytes in: stdout decodes as UTF-8 with replacement, newlines as written.
    assert git.run(["cat-file", "blob", blob.stdout.strip()], a, input=b"").stdout == "\ufffd\r\n"
    assert git.run(["cat-file", "blob", blob.text.strip()], a).text == "\udcff\r\n"


def test_inherited_repository_variables_do_not_redirect_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = _repo(tmp_path / "a", "a")
    b = _repo(tmp_path / "b", "b")
    # As inside a git hook of another repository: git must still work on ``cwd``.
    monkeypatch.setenv("GIT_DIR", str(b / ".git"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(b / ".git" / "index"))
    assert git.out(["log", "-1", "--format=%s"], a) == "a"
    # ...unless the caller names them on purpose.
    assert git.out(["log", "-1", "--format=%s"], a, env={"GIT_DIR": str(b / ".git")}) == "b"


def test_resolve_need_and_commit_tree(tmp_path: Path) -> None:
    a = _repo(tmp_path / "a", "a")
    head = git.need(a, "HEAD")
    assert git.resolve(a, "--all") is None  # never taken for an option
    with pytest.raises(NotFound):
        git.need(a, "nope", what="base commit")
    tree = git.tree_of(a, head)
    assert git.resolve(a, head, "tree") == tree
    c = git.commit_tree(a, tree, [head], "again\n", env=git.PA_IDENTITY)
    assert git.out(["rev-parse", f"{c}^"], a) == head
