"""Diffs between two commits: as data (``diff_files``) or as a stream of text
(``diff_stream``) that never holds a large diff in memory."""

from __future__ import annotations

import codecs
import contextlib
import functools
import os
import subprocess
import tempfile
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from parallel_agents import git
from parallel_agents.errors import NotFound, UsageError
from parallel_agents.git import GitError

__all__ = ["FileChange", "diff_files", "diff_stream", "live_stream", "worktree_stream"]

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
    args = ["diff", "--raw", "--numstat", "-z", "-M", "--no-color", "--no-ext-diff"]
    args += ["--no-textconv", "--end-of-options", base, target, "--"]
    r = git.run(args, repo, check=False)
    if r.returncode != 0:  # the refs are looked at only when git could not diff them
        _tree_ish(repo, base)
        _tree_ish(repo, target)
        raise GitError(args, r.returncode, r.stderr)
    raw = r.text
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
) -> Iterator[str]:
    """The text of ``git diff base target`` in chunks, read from a pipe as git writes it.

    Binary files are summarised as git does ("Binary files … differ"); ``name_only``
    gives one path a line, unquoted (as ``diff_files`` names them). A bad ref raises
    NotFound at the call, not mid-stream: the first chunk is read before this returns.
    """
    repo = Path(repo)
    args = [*_diff_args(stat, name_only), "--end-of-options", base, target, "--", *(paths or [])]
    return _primed(_stream(args, repo, chunk_size, name_only=name_only), repo, (base, target))


def worktree_stream(
    worktree: Path,
    base: str,
    *,
    exclude: Sequence[str] = (),
    stat: bool = False,
    name_only: bool = False,
    chunk_size: int = 64 * 1024,
) -> Iterator[str]:
    """``diff_stream`` from ``base`` to what a checkpoint of ``worktree`` would hold now
    (tracked and untracked files, ignored ones not, ``exclude`` as HEAD has them), without
    making one: the worktree is added to a throwaway copy of its index and git diffs
    ``base`` against that index. No commit, no ref, and no second pass over the files."""
    worktree = Path(worktree)
    args = [*_diff_args(stat, name_only), "--cached", "--end-of-options", base, "--"]

    def gen() -> Generator[str, None, None]:
        from parallel_agents.git import snapshots

        with tempfile.TemporaryDirectory(prefix="pa-index-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            git.copy_index(_index_path(worktree), Path(env["GIT_INDEX_FILE"]))
            git.run(["add", "-A"], worktree, env=env)
            if exclude:
                snapshots._keep_head(worktree, env, exclude)  # as a checkpoint does
            yield from _stream(args, worktree, chunk_size, env=env, name_only=name_only)

    return _primed(gen(), worktree, (base,))


def live_stream(
    worktree: Path,
    base: str,
    *,
    stat: bool = False,
    name_only: bool = False,
    chunk_size: int = 64 * 1024,
) -> tuple[Iterator[str], list[str]]:
    """``worktree_stream`` (no ``exclude``) and the nested repositories of ``worktree``
    (``nested_scan``'s list), with as few passes over the files as the worktree allows.

    With nothing untracked and no ``.git`` below the top, the diff is ``git diff BASE``
    on the worktree's own index: one git process, nothing written, the same text (the
    throwaway index would only repeat the tracked files). ``untracked_cache`` remembers
    such a worktree and, while no folder or ignore rule changed, this is all it costs.
    Otherwise one walk (``find``) finds the nested repositories and stamps the folders,
    then git lists what is untracked, and only those paths are added to a copy of the
    index before git diffs ``base`` against the worktree through it. A worktree with
    nested repositories goes the throwaway-index way (``add -A``, then ``--cached``),
    which records them as gitlinks exactly as a checkpoint does."""
    from parallel_agents.git import untracked_cache

    worktree = Path(worktree)
    plain = [*_diff_args(stat, name_only), "--end-of-options", base, "--"]
    if untracked_cache.known(worktree):
        # git's own pass over the tracked files runs while the folders are checked.
        check = functools.partial(untracked_cache.clean, worktree)
        with contextlib.suppress(_Stale):
            chunks = _stream(plain, worktree, chunk_size, name_only=name_only, ready=check)
            return _primed(chunks, worktree, (base,)), []
    look = untracked_cache.Look(worktree, git_dir(worktree))
    try:
        nested = look.nested()  # the walk ends before git's (see untracked_cache)
        whole = look.complete and not look.gits
        paths = untracked_cache.untracked(worktree) if whole else None
        look.keep_if_clean(paths != [])
    finally:
        look.close()
    if paths == []:
        chunks = _stream(plain, worktree, chunk_size, name_only=name_only)
    elif paths is not None:
        chunks = _with_added(worktree, paths, plain, chunk_size, name_only)
    else:
        return worktree_stream(
            worktree, base, stat=stat, name_only=name_only, chunk_size=chunk_size
        ), nested
    return _primed(chunks, worktree, (base,)), nested


def live_argv(worktree: Path, base: str, *, stat: bool = False) -> list[str] | None:
    """The one `git diff BASE` ``live_stream`` would run for ``worktree`` now, when pa's
    untracked cache vouches that the worktree holds nothing untracked and nothing nested
    (None: ``live_stream`` has to look). A client on this machine runs it itself, so
    the patch goes from git straight to the user's terminal: no copy through the server,
    no decoding (issue 14 §4)."""
    from parallel_agents.git import untracked_cache

    if not untracked_cache.clean(Path(worktree)):
        return None
    return [*_diff_args(stat, False), "--end-of-options", base, "--"]


def _with_added(
    worktree: Path, paths: list[bytes], args: list[str], chunk_size: int, name_only: bool
) -> Generator[str, None, None]:
    """``args`` (a diff of the worktree) through a copy of its index with ``paths`` added:
    the untracked files as new files, and the walk limited to them."""
    with tempfile.TemporaryDirectory(prefix="pa-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git.copy_index(_index_path(worktree), Path(env["GIT_INDEX_FILE"]))
        git.run(
            ["add", "--pathspec-from-file=-", "--pathspec-file-nul"],
            worktree,
            env={**env, "GIT_LITERAL_PATHSPECS": "1"},
            input=b"\0".join(paths) + b"\0",
        )
        yield from _stream(args, worktree, chunk_size, env=env, name_only=name_only)


def git_dir(worktree: Path) -> Path:
    """``worktree``'s own git folder (where ``git rev-parse --git-path index`` points),
    found without starting git: ``.git`` itself, or the folder a linked worktree's
    ``.git`` file names."""
    dot = worktree / ".git"
    if dot.is_dir():
        return dot
    head = dot.read_bytes()[:4096] if dot.is_file() else b""
    if head.startswith(b"gitdir: "):
        gitdir = Path(os.fsdecode(head[8:].splitlines()[0]))
        return gitdir if gitdir.is_absolute() else worktree / gitdir
    return git.git_path(worktree, "index").parent


def _index_path(worktree: Path) -> Path:
    return git_dir(worktree) / "index"


def _diff_args(stat: bool, name_only: bool) -> list[str]:
    if stat and name_only:
        raise UsageError("choose one of --stat and --name-only")
    args = ["git", "diff", "--no-color", "--no-ext-diff", "-M"]
    if stat:
        args.append("--stat")
    if name_only:
        args += ["--name-only", "-z"]  # -z: paths as they are, never C-quoted
    return args


def _primed(chunks: Generator[str, None, None], cwd: Path, revs: Sequence[str]) -> Iterator[str]:
    """``chunks`` with its first chunk already read, so that git failing to start (a bad
    ref) raises here, before a response has begun."""
    try:
        first = next(chunks, None)
    except GitError:
        for rev in revs:
            _tree_ish(cwd, rev)  # the clear error for a ref that names nothing
        raise

    def rest() -> Generator[str, None, None]:
        try:
            if first is not None:
                yield first
            yield from chunks
        finally:
            chunks.close()

    return rest()


class _Stale(Exception):
    """What a diff was started on changed before its output was read."""


def _stream(
    args: list[str],
    cwd: Path,
    chunk_size: int,
    *,
    env: Mapping[str, str] | None = None,
    name_only: bool = False,
    ready: Callable[[], bool] | None = None,
) -> Generator[str, None, None]:
    """Chunks of a command's stdout; the process starts at the first ``next()`` and is
    ended (and waited for) when the generator finishes, fails or is closed early.
    ``ready`` runs while the process works, before its output is read: False ends the
    process and raises ``_Stale``."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            args,
            cwd=str(cwd),
            env=git.repo_env(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
        )
        assert proc.stdout is not None
        try:
            if ready is not None and not ready():
                raise _Stale
            fd = proc.stdout.fileno()
            chunks = iter(lambda: os.read(fd, chunk_size), b"")
            for text in codecs.iterdecode(chunks, "utf-8", "replace"):
                yield text.replace("\0", "\n") if name_only else text
            rc = proc.wait()
            if rc != 0:
                err.seek(0)
                raise GitError(args[1:], rc, err.read().decode("utf-8", "replace"))
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()


def nested_scan(wt: Path) -> Callable[[], list[str]]:
    """Start looking for nested repositories under ``wt`` (``archive.scan``'s first list,
    the same rules) in a ``find`` process, so the walk runs beside git's own work; the
    returned function waits for it and gives the sorted paths."""
    from parallel_agents.git import archive

    heavy: list[str] = []
    for name in sorted(archive.HEAVY):
        heavy += ["-o", "-name", name]
    try:
        # A `.git` entry of any kind marks a repository; caches and `.git` folders are
        # not entered, nor (as find never follows them) symbolic links.
        proc = subprocess.Popen(
            ["find", ".", "-name", ".git", "-print0", "-prune", "-o", "-type", "d",
             "(", *heavy[1:], ")", "-prune"],
            cwd=str(wt),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
    except OSError:
        return lambda: archive.scan(wt)[0]

    def collect() -> list[str]:
        out, _ = proc.communicate()  # an unreadable folder is skipped, as os.walk does
        found = sorted(
            os.fsdecode(p[2:-5])
            for p in out.split(b"\0")
            if p.startswith(b"./") and p.endswith(b"/.git") and p != b"./.git"
        )
        nested: list[str] = []
        for rel in found:  # a repository inside a nested one is that one's business
            if not any(rel.startswith(n + "/") for n in nested):
                nested.append(rel)
        return nested

    return collect
