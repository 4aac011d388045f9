"""Diffs between two commits: as data (``diff_files``) or as a stream of text
(``diff_stream``) that never holds a large diff in memory."""

from __future__ import annotations

import codecs
import os
import subprocess
import tempfile
from collections.abc import Generator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from parallel_agents import git
from parallel_agents.errors import NotFound, UsageError
from parallel_agents.git import GitError

__all__ = ["FileChange", "diff_files", "diff_stream"]

Status = Literal["A", "M", "D", "R", "T"]
_STATUSES: dict[str, Status] = {"A": "A", "M": "M", "D": "D", "R": "R", "T": "T"}


@dataclass(frozen=True)
class FileChange:
    """One changed file between two commits (``git diff -M`` semantics)."""

    path: str
    old_path: str | None  # the path before a rename, else None
    status: Status  # A added, M modified, D deleted, R renamed, T type changed
    additions: int
    deletions: int
    binary: bool
    similarity: int | None = None  # rename score in percent

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _tree_ish(repo: Path, rev: str) -> str:
    oid = git.resolve(repo, rev, "tree")
    if oid is None:
        raise NotFound(f"{rev!r} does not name a commit or tree in {repo}")
    return rev


def diff_files(repo: Path, base: str, target: str) -> list[FileChange]:
    """Changed files from ``base`` to ``target`` with line counts, renames and binary flags."""
    repo = Path(repo)
    _tree_ish(repo, base)
    _tree_ish(repo, target)
    raw = git.run(
        [
            "diff",
            "--raw",
            "--numstat",
            "-z",
            "-M",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "--end-of-options",
            base,
            target,
            "--",
        ],
        repo,
    ).text
    tokens = raw.split("\0")
    if tokens and tokens[-1] == "":
        tokens.pop()
    i = 0
    entries: list[tuple[str, str | None, str, int | None]] = []  # path, old, status, score
    while i < len(tokens) and tokens[i].startswith(":"):
        meta = tokens[i].split()
        code = meta[-1]
        letter = code[0]
        if letter in "RC":
            old, new = tokens[i + 1], tokens[i + 2]
            score = int(code[1:]) if code[1:].isdigit() else None
            if letter == "C":
                entries.append((new, None, "A", None))
            else:
                entries.append((new, old, "R", score))
            i += 3
        else:
            entries.append((tokens[i + 1], None, letter, None))
            i += 2
    counts: dict[str, tuple[int, int, bool]] = {}
    while i < len(tokens):
        added, deleted, path = tokens[i].split("\t", 2)
        if path == "":  # rename: old and new paths follow as their own tokens
            path = tokens[i + 2]
            i += 3
        else:
            i += 1
        binary = added == "-"
        a = 0 if binary else int(added)
        d = 0 if binary else int(deleted)
        pa, pd, pb = counts.get(path, (0, 0, False))
        counts[path] = (pa + a, pd + d, pb or binary)
    result: list[FileChange] = []
    for new_path, old_path, letter, score in entries:
        status: Status = _STATUSES.get(letter, "M")
        a, d, b = counts.get(new_path, (0, 0, False))
        result.append(FileChange(new_path, old_path, status, a, d, b, score))
    return result


def diff_stream(
    repo: Path,
    base: str,
    target: str,
    *,
    paths: Sequence[str] | None = None,
    stat: bool = False,
    name_only: bool = False,
    chunk_size: int = 64 * 1024,
) -> Generator[str, None, None]:
    """The text of ``git diff base target`` in chunks, read from a pipe as git writes it.

    Binary files are summarised as git does ("Binary files … differ"). Refs are checked
    before anything streams, so a bad ref raises NotFound at the call, not mid-stream.
    """
    if stat and name_only:
        raise UsageError("choose one of --stat and --name-only")
    repo = Path(repo)
    _tree_ish(repo, base)
    _tree_ish(repo, target)
    args = ["git", "diff", "--no-color", "--no-ext-diff", "-M"]
    if stat:
        args.append("--stat")
    if name_only:
        args.append("--name-only")
    args += ["--end-of-options", base, target, "--", *(paths or [])]
    return _stream(args, repo, chunk_size)


def _stream(args: list[str], cwd: Path, chunk_size: int) -> Generator[str, None, None]:
    """Chunks of a command's stdout; the process starts at the first ``next()`` and is
    ended (and waited for) when the generator finishes, fails or is closed early."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            args,
            cwd=str(cwd),
            env=git.repo_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
        )
        assert proc.stdout is not None
        try:
            fd = proc.stdout.fileno()
            chunks = iter(lambda: os.read(fd, chunk_size), b"")
            yield from codecs.iterdecode(chunks, "utf-8", "replace")
            rc = proc.wait()
            if rc != 0:
                err.seek(0)
                raise GitError(args[1:], rc, err.read().decode("utf-8", "replace"))
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()
