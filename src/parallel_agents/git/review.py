"""Git-level review: checkpoints, diffs, the conflict forecast and checks.

Pure functions over a repository or worktree path and refs: no database, no CLI.

- ``checkpoint``/``restore``: snapshot a worktree (uncommitted and untracked files
  included, ignored files left out) into a commit through a temporary index, and put a
  worktree back to such a snapshot. The agent's HEAD, index and files are never touched
  by ``checkpoint``.
- ``diff_files``/``diff_stream``: what changed between two commits, as data or as a
  stream of text that never holds a large diff in memory.
- ``forecast``/``ConflictForecast``: which sessions merge cleanly into the base and which
  pairs conflict, with ``git merge-tree --write-tree`` prefiltered by changed-path
  overlap, cached by commit pair and batched (``--stdin`` when git has it).
- ``run_check``/``run_checks``: the repository owner's check command, with a timeout that
  kills the whole process group.
"""

from __future__ import annotations

import codecs
import contextlib
import functools
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Generator, Iterator, Mapping, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from parallel_agents import git
from parallel_agents.errors import NotFound, UsageError
from parallel_agents.git import PA_IDENTITY, GitError

__all__ = [
    "CheckResult",
    "CheckSpec",
    "ConflictForecast",
    "FileChange",
    "Forecast",
    "ForecastStats",
    "PairConflict",
    "SessionForecast",
    "check_argv",
    "checkpoint",
    "diff_files",
    "diff_stream",
    "forecast",
    "merge_tree",
    "merge_tree_supports_stdin",
    "needs_shell",
    "restore",
    "run_check",
    "run_checks",
]

# Variables that would point git at another repository, index or object store than the
# one we name explicitly (set, for example, when pa runs from inside a git hook).
_REPO_ENV = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_PREFIX",
    "GIT_NAMESPACE",
)

_HEX_RE = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


# --------------------------------------------------------------------------- git plumbing


@dataclass(frozen=True)
class _Raw:
    returncode: int
    stdout: bytes
    stderr: str

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", "surrogateescape")


def _env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = git.git_env()
    for k in _REPO_ENV:
        env.pop(k, None)
    if extra:
        env.update(extra)
    return env


def _git(
    args: Sequence[str],
    cwd: Path | str,
    *,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    check: bool = True,
    ok: Sequence[int] = (0,),
    timeout: float | None = 300,
) -> _Raw:
    """Run ``git <args>`` with bytes output; GitError unless the exit code is in ``ok``."""
    proc = subprocess.run(
        ["git", *args],
        cwd=str(cwd),
        env=_env(env),
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    err = proc.stderr.decode("utf-8", "replace")
    if check and proc.returncode not in ok:
        raise GitError(list(args), proc.returncode, err, proc.stdout.decode("utf-8", "replace"))
    return _Raw(proc.returncode, proc.stdout, err)


def _out(args: Sequence[str], cwd: Path | str, **kw: Any) -> str:
    return _git(args, cwd, **kw).text.strip()


def _resolve(cwd: Path | str, rev: str, kind: str = "commit") -> str | None:
    r = _git(
        ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{{kind}}}"],
        cwd,
        check=False,
    )
    return r.text.strip() if r.returncode == 0 else None


def _resolve_many(cwd: Path | str, revs: Sequence[str]) -> list[str | None]:
    """Commit ids of many revisions through one ``cat-file --batch-check`` process."""
    if not revs:
        return []
    if any("\n" in r or not r.strip() for r in revs):
        return [_resolve(cwd, r) if "\n" not in r and r.strip() else None for r in revs]
    data = "".join(f"{r}^{{commit}}\n" for r in revs).encode()
    out = _git(["cat-file", "--batch-check=%(objectname) %(objecttype)"], cwd, input=data)
    lines = out.text.splitlines()
    result: list[str | None] = []
    for line in lines[: len(revs)]:
        parts = line.split()
        ok = len(parts) == 2 and parts[1] == "commit" and _HEX_RE.match(parts[0]) is not None
        result.append(parts[0] if ok else None)
    return result


def _need(cwd: Path | str, rev: str, kind: str = "commit", what: str = "commit") -> str:
    oid = _resolve(cwd, rev, kind)
    if oid is None:
        raise NotFound(f"{rev!r} does not name a {what} in {cwd}")
    return oid


def _commit_tree(
    cwd: Path | str,
    tree: str,
    parents: Sequence[str],
    message: str | bytes,
    env: Mapping[str, str] | None = None,
) -> str:
    """``git commit-tree``; falls back to pa's own identity when git has none."""
    args = ["commit-tree", tree]
    for p in parents:
        args += ["-p", p]
    data = message if isinstance(message, bytes) else message.encode("utf-8")
    r = _git(args, cwd, input=data, env=env, check=False)
    if r.returncode != 0:
        low = r.stderr.lower()
        if "ident" in low or "who you are" in low or "auto-detect" in low or "email" in low:
            # Only what is missing: an author given in ``env`` (a rebase) is kept.
            r = _git(args, cwd, input=data, env={**PA_IDENTITY, **(env or {})})
        else:
            raise GitError(args, r.returncode, r.stderr, r.text)
    return r.text.strip()


def _git_path(cwd: Path, name: str) -> Path:
    p = Path(_out(["rev-parse", "--git-path", name], cwd))
    return p if p.is_absolute() else (cwd / p).resolve()


@contextlib.contextmanager
def _temp_index(worktree: Path, seed: bool = True) -> Iterator[dict[str, str]]:
    """Env pointing GIT_INDEX_FILE at a private copy of the worktree's index."""
    with tempfile.TemporaryDirectory(prefix="pa-index-") as tmp:
        path = Path(tmp) / "index"
        if seed:
            real = _git_path(worktree, "index")
            # A copy keeps the stat data, so `add -A` re-hashes only files that changed.
            with contextlib.suppress(FileNotFoundError):
                shutil.copyfile(real, path)
        yield {"GIT_INDEX_FILE": str(path)}


def _snapshot_tree(worktree: Path, env: Mapping[str, str], exclude: Sequence[str] = ()) -> str:
    """Tree of everything in the worktree git would add (not ignored), via ``env``'s index.

    ``exclude`` paths keep their HEAD state (absent when HEAD has none of them).
    """
    _git(["add", "-A"], worktree, env=env)
    if exclude:
        _keep_head(worktree, env, exclude)
    return _out(["write-tree"], worktree, env=env)


def _keep_head(worktree: Path, env: Mapping[str, str], paths: Sequence[str]) -> None:
    """Reset ``paths`` in ``env``'s index to HEAD: files `copy = [...]` put there (a
    ``.env`` with secrets) must never reach a commit unless the agent changed them."""
    with tempfile.NamedTemporaryFile(prefix="pa-exclude-") as f:
        f.write(b"".join(p.encode("utf-8", "surrogateescape") + b"\0" for p in paths))
        f.flush()
        if _resolve(worktree, "HEAD") is not None:
            args = ["reset", "-q", "HEAD"]
        else:
            args = ["rm", "-q", "--cached", "--ignore-unmatch"]
        args += [f"--pathspec-from-file={f.name}", "--pathspec-file-nul"]
        _git(["--literal-pathspecs", *args], worktree, env=env)


def _copied_unchanged(worktree: Path) -> list[str]:
    from parallel_agents.git.worktrees import copied_unchanged

    return copied_unchanged(worktree)


# ----------------------------------------------------------------------------- checkpoints


def checkpoint(worktree: Path, ref: str, message: str, exclude: Sequence[str] | None = None) -> str:
    """Snapshot ``worktree`` (uncommitted and untracked files included, ignored files not)
    into a commit whose parent is the worktree's HEAD, point ``ref`` at it and return it.

    ``exclude`` (default: the files `copy = [...]` put there and nobody changed since)
    keeps those paths as HEAD has them.

    Works through a temporary index: the worktree's HEAD, index and files stay exactly as
    they were. ``ref`` always ends up at a commit whose tree is the current state.
    """
    worktree = Path(worktree)
    if not worktree.is_dir():
        raise NotFound(f"worktree {worktree} does not exist")
    if not ref.startswith("refs/"):
        raise UsageError(f"checkpoint ref must be a full ref name under refs/, not {ref!r}")
    head = _resolve(worktree, "HEAD")
    if exclude is None:
        exclude = _copied_unchanged(worktree)
    with _temp_index(worktree) as env:
        tree = _snapshot_tree(worktree, env, exclude)
    commit = _commit_tree(worktree, tree, [head] if head else [], message)
    _git(["update-ref", "-m", "pa checkpoint", ref, commit], worktree)
    return commit


def restore(worktree: Path, commit: str, exclude: Sequence[str] | None = None) -> None:
    """Make ``worktree`` exactly the checkpoint ``commit``.

    Files: tracked and untracked files become the checkpoint's tree; files that are not in
    it are removed; ignored files are left alone. HEAD (the branch it names, or HEAD itself
    when detached) moves to the checkpoint's parent, the agent's HEAD when the checkpoint
    was taken, and the index becomes that HEAD. Callers checkpoint first, so a restore is
    itself undoable.
    """
    worktree = Path(worktree)
    if not worktree.is_dir():
        raise NotFound(f"worktree {worktree} does not exist")
    target = _need(worktree, commit, what="checkpoint commit")
    parent = _resolve(worktree, f"{target}^1")
    if parent is None:
        raise UsageError(
            f"checkpoint {target[:12]} has no parent commit, so there is no HEAD to restore"
        )
    if exclude is None:
        exclude = _copied_unchanged(worktree)  # e.g. a copied .env: not in checkpoints, kept
    with _temp_index(worktree) as env:
        # The temporary index lists every file the worktree has that is not ignored;
        # a one-tree reset then rewrites those to the checkpoint and deletes the rest.
        _snapshot_tree(worktree, env, exclude)
        _git(["read-tree", "--reset", "-u", target], worktree, env=env)
    # HEAD (through the branch it names) back to the agent's HEAD of that moment, and the
    # index to that commit; refresh so `git status` sees the files' stat data again.
    _git(["update-ref", "-m", f"pa restore to checkpoint {target[:12]}", "HEAD", parent], worktree)
    _git(["read-tree", parent], worktree)
    _git(["update-index", "-q", "--refresh"], worktree, check=False)


# ----------------------------------------------------------------------------------- diffs

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
    oid = _resolve(repo, rev, "tree")
    if oid is None:
        raise NotFound(f"{rev!r} does not name a commit or tree in {repo}")
    return rev


def diff_files(repo: Path, base: str, target: str) -> list[FileChange]:
    """Changed files from ``base`` to ``target`` with line counts, renames and binary flags."""
    repo = Path(repo)
    _tree_ish(repo, base)
    _tree_ish(repo, target)
    raw = _git(
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
    ).stdout.decode("utf-8", "surrogateescape")
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
            env=_env(),
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


# ------------------------------------------------------------------------ conflict forecast


@functools.cache
def merge_tree_supports_stdin() -> bool:
    """Does this git's ``merge-tree`` take ``--stdin`` (batched merges)? Asked once."""
    try:
        r = subprocess.run(
            ["git", "merge-tree", "-h"],
            capture_output=True,
            text=True,
            env=_env(),
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):  # pragma: no cover - no git at all
        return False
    return "--stdin" in (r.stdout + r.stderr)


@dataclass(frozen=True)
class SessionForecast:
    """How one session stands against the base and the other sessions."""

    session_id: str
    head: str
    merge_base: str | None  # with the base; None: no common history
    changed_paths: int
    clean_with_base: bool
    base_conflict_paths: list[str]
    conflicts_with: list[str]  # other session ids
    error: str | None = None


@dataclass(frozen=True)
class PairConflict:
    a: str  # session ids, a < b
    b: str
    paths: list[str]


@dataclass(frozen=True)
class ForecastStats:
    sessions: int
    pairs: int  # every pair of sessions
    candidate_pairs: int  # pairs whose changed paths overlap
    base_checks: int  # sessions whose changes overlap what the base changed
    cache_hits: int
    merges_run: int  # merge-tree merges actually computed
    batched: bool  # through one `merge-tree --stdin` process
    seconds: float


@dataclass(frozen=True)
class Forecast:
    base_commit: str
    sessions: dict[str, SessionForecast]
    conflicts: list[PairConflict]
    stats: ForecastStats

    def pairs(self) -> set[frozenset[str]]:
        return {frozenset((c.a, c.b)) for c in self.conflicts}

    def to_json(self) -> dict[str, Any]:
        return {
            "base": self.base_commit,
            "sessions": {k: asdict(v) for k, v in self.sessions.items()},
            "conflicts": [asdict(c) for c in self.conflicts],
            "stats": asdict(self.stats),
        }


@dataclass(frozen=True)
class _Changes:
    """Paths one side of a merge changed, with the directories needed for the prefilter."""

    files: frozenset[str] = frozenset()
    dirs: frozenset[str] = frozenset()  # ancestors of any changed path
    deleted_dirs: frozenset[str] = frozenset()  # ancestors of deleted paths
    added_dirs: frozenset[str] = frozenset()  # ancestors of added paths

    @staticmethod
    def build(items: Sequence[tuple[str, str]]) -> _Changes:
        files: set[str] = set()
        dirs: set[str] = set()
        deleted: set[str] = set()
        added: set[str] = set()
        for status, path in items:
            files.add(path)
            anc = _ancestors(path)
            dirs.update(anc)
            if status == "D":
                deleted.update(anc)
            elif status == "A":
                added.update(anc)
        return _Changes(frozenset(files), frozenset(dirs), frozenset(deleted), frozenset(added))

    def __or__(self, o: _Changes) -> _Changes:
        return _Changes(
            self.files | o.files,
            self.dirs | o.dirs,
            self.deleted_dirs | o.deleted_dirs,
            self.added_dirs | o.added_dirs,
        )

    def may_conflict(self, o: _Changes) -> bool:
        """False only when a three-way merge of the two sides cannot conflict.

        Same path changed on both sides; a file on one side where the other has a
        directory; or one side deleting inside a directory where the other adds files
        (a possible directory rename, which merge-ort reports as a conflict).
        """
        if not self.files or not o.files:
            return False
        return not (
            self.files.isdisjoint(o.files)
            and self.files.isdisjoint(o.dirs)
            and o.files.isdisjoint(self.dirs)
            and self.deleted_dirs.isdisjoint(o.added_dirs)
            and o.deleted_dirs.isdisjoint(self.added_dirs)
        )


def _ancestors(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


# Facts about immutable objects never change, so they are cached for the process:
# merge bases of commit pairs and the changed paths between two commits.
_MB_CACHE: dict[tuple[str, str], str | None] = {}
_DIFF_CACHE: dict[tuple[str, str], _Changes] = {}
_CACHE_LIMIT = 20_000
_cache_lock = threading.Lock()


def _remember(d: dict[Any, Any], key: Any, value: Any) -> None:
    with _cache_lock:
        if len(d) >= _CACHE_LIMIT:
            d.clear()
        d[key] = value


def _merge_base(repo: Path, a: str, b: str) -> str | None:
    key = (a, b) if a <= b else (b, a)
    if key in _MB_CACHE:
        return _MB_CACHE[key]
    r = _git(["merge-base", a, b], repo, ok=(0, 1))
    mb = r.text.strip() or None
    _remember(_MB_CACHE, key, mb)
    return mb


def _merge_bases(
    repo: Path, base: str, heads: Sequence[str], workers: int
) -> dict[str, str | None]:
    """Merge base of ``base`` with each head, mostly from one ``rev-list`` process.

    ``rev-list --parents heads --not base`` lists every commit the heads have and the base
    has not. Walking a head's commits down to where they leave that set gives its
    boundary; a single boundary commit is the merge base (every common ancestor lies
    below it). Heads with several boundaries (e.g. the base merged into the session) ask
    ``git merge-base``; a head the base already contains is its own merge base.
    """
    result: dict[str, str | None] = {}
    todo = []
    for h in heads:
        key = (base, h) if base <= h else (h, base)
        if key in _MB_CACHE:
            result[h] = _MB_CACHE[key]
        else:
            todo.append(h)
    if not todo:
        return result
    out = _git(["rev-list", "--parents", *todo, "--not", base], repo).text
    graph: dict[str, list[str]] = {}
    for line in out.splitlines():
        parts = line.split()
        graph[parts[0]] = parts[1:]
    slow: list[str] = []
    for h in todo:
        if h not in graph:  # reachable from the base
            mb: str | None = h
        else:
            boundary: set[str] = set()
            seen: set[str] = set()
            stack = [h]
            while stack:
                c = stack.pop()
                if c in seen:
                    continue
                seen.add(c)
                for p in graph[c]:
                    if p in graph:
                        stack.append(p)
                    else:
                        boundary.add(p)
            if len(boundary) != 1:
                slow.append(h)
                continue
            mb = boundary.pop()
        result[h] = mb
        _remember(_MB_CACHE, (base, h) if base <= h else (h, base), mb)
    if slow:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for h, mb in zip(
                slow, pool.map(lambda x: _merge_base(repo, base, x), slow), strict=True
            ):
                result[h] = mb
    return result


def _changes(repo: Path, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], _Changes]:
    """Changed paths for each (old, new) commit pair, through one ``diff-tree --stdin``."""
    result: dict[tuple[str, str], _Changes] = {}
    todo: list[tuple[str, str]] = []
    for p in dict.fromkeys(pairs):
        if p[0] == p[1]:
            result[p] = _Changes()
        elif p in _DIFF_CACHE:
            result[p] = _DIFF_CACHE[p]
        else:
            todo.append(p)
    if not todo:
        return result
    data = "".join(f"{a} {b}\n" for a, b in todo).encode()
    out = _git(
        ["diff-tree", "--stdin", "--always", "-r", "--no-renames", "--name-status", "-z"],
        repo,
        input=data,
    ).stdout.decode("utf-8", "surrogateescape")
    tokens = out.split("\0")
    records: list[list[tuple[str, str]]] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "":
            i += 1
            continue
        if _HEX_RE.match(tok):  # a header: the next input line's output starts here
            records.append([])
            i += 1
            continue
        records[-1].append((tok[0], tokens[i + 1]))
        i += 2
    if len(records) != len(todo):  # pragma: no cover - defensive: fall back to one by one
        records = []
        for a, b in todo:
            o = (
                _git(["diff-tree", "-r", "--no-renames", "--name-status", "-z", a, b], repo)
                .stdout.decode("utf-8", "surrogateescape")
                .split("\0")
            )
            records.append([(o[k][0], o[k + 1]) for k in range(0, len(o) - 1, 2)])
    for p, items in zip(todo, records, strict=True):
        ch = _Changes.build(items)
        _remember(_DIFF_CACHE, p, ch)
        result[p] = ch
    return result


def _parse_merge_tree(tokens: list[str], start: int) -> tuple[bool, list[str], int]:
    """Parse one ``--stdin -z --name-only --no-messages`` record at ``start``.

    A record is ``<1 clean|0 conflicted>\\0<tree>\\0[<path>\\0…]\\0``.
    Returns (clean, paths, index after the record).
    """
    status = tokens[start]
    if status not in ("0", "1"):
        raise ValueError(f"unexpected merge-tree --stdin status {status!r}")
    i = start + 2  # skip the tree id
    paths: list[str] = []
    while i < len(tokens) and tokens[i] != "":
        paths.append(tokens[i])
        i += 1
    return status == "1", _dedupe(paths), i + 1


def _dedupe(paths: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(paths))


class ConflictForecast:
    """Pairwise conflict forecast with a result cache keyed by (commit, commit).

    ``cache`` maps a sorted pair of commit ids to the conflicted paths of their merge
    (an empty list: the merge is clean). Commits are immutable, so the caller may keep
    the mapping across calls and processes. A side may also be ``head@base`` (see
    ``projected``): sessions forked from different base commits are compared on their
    own changes only, each as if merged into the current base first.
    """

    def __init__(
        self,
        repo: Path,
        cache: MutableMapping[tuple[str, str], list[str]] | None = None,
        *,
        use_stdin: bool | None = None,
        workers: int | None = None,
    ) -> None:
        self.repo = Path(repo)
        self.cache: MutableMapping[tuple[str, str], list[str]] = {} if cache is None else cache
        self.use_stdin = merge_tree_supports_stdin() if use_stdin is None else use_stdin
        self.workers = workers or max(2, min(8, os.cpu_count() or 2))

    # -- merges ------------------------------------------------------------------------

    def merge_paths(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], list[str]]:
        """Conflicted paths of each pair's merge (cached); an empty list means clean.

        Keys of the result are sorted pairs.
        """
        return self._merge_paths(pairs)[0]

    def _merge_paths(
        self, pairs: Sequence[tuple[str, str]]
    ) -> tuple[dict[tuple[str, str], list[str]], int, int]:
        result: dict[tuple[str, str], list[str]] = {}
        todo: list[tuple[str, str]] = []
        hits = 0
        for key in dict.fromkeys((a, b) if a <= b else (b, a) for a, b in pairs):
            hit = self.cache.get(key)
            if hit is not None:
                result[key] = list(hit)
                hits += 1
            else:
                todo.append(key)
        if todo:
            # merge-tree writes the merged trees and blobs; keep them out of the repository
            # by giving git a throw-away object directory that borrows the real one.
            objects = git.common_dir(self.repo) / "objects"
            with tempfile.TemporaryDirectory(prefix="pa-forecast-") as tmp:
                env = {
                    "GIT_OBJECT_DIRECTORY": tmp,
                    "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(objects),
                }
                sides = sorted({x for pair in todo for x in pair})
                if any(PROJECTED in x for x in sides):
                    real = self._project(sides, env)
                    merged = self._run_merges([(real[a], real[b]) for a, b in todo], env)
                    computed = {k: merged[(real[k[0]], real[k[1]])] for k in todo}
                else:
                    computed = self._run_merges(todo, env)
            for key, paths in computed.items():
                self.cache[key] = list(paths)
                result[key] = paths
        return result, hits, len(todo)

    def _project(self, sides: Sequence[str], env: Mapping[str, str]) -> dict[str, str]:
        """Commit ids for merge sides: a plain commit stands for itself; ``head@base`` (see
        ``projected``) becomes a commit, written to ``env``'s object directory, whose
        parent is ``base`` and whose tree is ``head`` merged into ``base`` (with conflict
        markers where they conflict). Merging two such commits merges only what each
        head itself changed: their merge base is ``base``.
        """
        real: dict[str, str] = {}
        todo: list[tuple[str, str]] = []  # (base, head)
        for side in sides:
            head, sep, base = side.partition(PROJECTED)
            if sep:
                todo.append((base, head))
            else:
                real[side] = side
        if not todo:
            return real
        trees = self._merge_trees(todo, env)
        with tempfile.TemporaryDirectory(prefix="pa-forecast-commits-") as tmp:
            files = []
            for k, (base, head) in enumerate(todo):
                f = Path(tmp) / str(k)
                # Fixed identity and date: the same inputs always give the same commit id,
                # so results cached under ``head@base`` keys stay valid across processes.
                f.write_text(
                    f"tree {trees[k]}\nparent {base}\n"
                    f"author pa <pa@localhost> 0 +0000\ncommitter pa <pa@localhost> 0 +0000\n"
                    f"\npa forecast: {head} onto {base}\n"
                )
                files.append(str(f))
            ids = _git(
                ["hash-object", "-t", "commit", "-w", "--stdin-paths"],
                self.repo,
                input="".join(f"{f}\n" for f in files).encode(),
                env=env,
            ).text.split()
        for (base, head), oid in zip(todo, ids, strict=True):
            real[projected(head, base)] = oid
        return real

    def _stdin_tokens(self, todo: list[tuple[str, str]], env: Mapping[str, str]) -> list[str]:
        """All of ``todo``'s merges through one ``git merge-tree --stdin``, as NUL tokens."""
        data = "".join(f"{a} {b}\n" for a, b in todo).encode()
        out = _git(
            ["merge-tree", "--stdin", "--write-tree", "-z", "--name-only", "--no-messages"],
            self.repo,
            input=data,
            env=env,
        )
        return out.stdout.decode("utf-8", "surrogateescape").split("\0")

    def _merge_trees(self, todo: list[tuple[str, str]], env: Mapping[str, str]) -> list[str]:
        """The tree of each (a, b) merge, conflicted or not, in ``todo``'s order."""
        if self.use_stdin and len(todo) > 1:
            tokens = self._stdin_tokens(todo, env)
            trees: list[str] = []
            i = 0
            for _ in todo:
                trees.append(tokens[i + 1])
                _, _, i = _parse_merge_tree(tokens, i)
            return trees
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            return list(pool.map(lambda p: merge_tree(self.repo, p[0], p[1], env=env)[0], todo))

    def _run_merges(
        self, todo: list[tuple[str, str]], env: Mapping[str, str]
    ) -> dict[tuple[str, str], list[str]]:
        if self.use_stdin and len(todo) > 1:
            try:
                return self._merges_stdin(todo, env)
            except (GitError, ValueError, IndexError):  # pragma: no cover - fall back
                pass
        if len(todo) == 1:
            return {todo[0]: self._merge_one(todo[0], env)}
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            paths = list(pool.map(lambda p: self._merge_one(p, env), todo))
        return dict(zip(todo, paths, strict=True))

    def _merges_stdin(
        self, todo: list[tuple[str, str]], env: Mapping[str, str]
    ) -> dict[tuple[str, str], list[str]]:
        tokens = self._stdin_tokens(todo, env)
        result: dict[tuple[str, str], list[str]] = {}
        i = 0
        for key in todo:
            clean, paths, i = _parse_merge_tree(tokens, i)
            if not clean and not paths:
                paths = self._merge_one(key, env)
            result[key] = [] if clean else paths
        return result

    def _merge_one(self, pair: tuple[str, str], env: Mapping[str, str]) -> list[str]:
        return merge_tree(self.repo, pair[0], pair[1], env=env)[1]

    # -- the forecast ------------------------------------------------------------------

    def forecast(self, base_commit: str, heads: Mapping[str, str]) -> Forecast:
        t0 = time.perf_counter()
        repo = self.repo
        base = _need(repo, base_commit, what="base commit")
        ids = sorted(heads)
        resolved: dict[str, str] = {}
        for sid, oid in zip(ids, _resolve_many(repo, [heads[i] for i in ids]), strict=True):
            if oid is None:
                raise NotFound(f"session {sid}: {heads[sid]!r} does not name a commit in {repo}")
            resolved[sid] = oid

        # 1. merge base of every session with the base.
        uniq = sorted(set(resolved.values()))
        mbs = _merge_bases(repo, base, uniq, self.workers)

        # 2. what each session and the base changed since that merge base (one process).
        wanted: list[tuple[str, str]] = []
        for h in uniq:
            mb = mbs[h]
            if mb is not None:
                wanted += [(mb, h), (mb, base)]
        changes = _changes(repo, wanted)

        # 3. candidates: base checks and pairs whose changed paths may conflict.
        merges: list[tuple[str, str]] = []
        base_needed: dict[str, bool] = {}
        for h in uniq:
            mb = mbs[h]
            need = (
                mb is not None
                and mb not in (h, base)
                and changes[(mb, h)].may_conflict(changes[(mb, base)])
            )
            base_needed[h] = need
            if need:
                merges.append((base, h))
        pairs_total = len(ids) * (len(ids) - 1) // 2
        candidates: list[tuple[str, str]] = []
        for x in range(len(ids)):
            for y in range(x + 1, len(ids)):
                a, b = ids[x], ids[y]
                ha, hb = resolved[a], resolved[b]
                if ha == hb or mbs[ha] is None or mbs[hb] is None:
                    continue
                if self._pair_candidate(ha, hb, mbs, changes):
                    candidates.append((a, b))
                    merges.append(self._pair_sides(ha, hb, mbs, base))
        results, hits, run = self._merge_paths(merges)

        def paths_of(a: str, b: str) -> list[str]:
            return results[(a, b) if a <= b else (b, a)]

        def pair_paths(ha: str, hb: str) -> list[str]:
            return paths_of(*self._pair_sides(ha, hb, mbs, base))

        conflicts: list[PairConflict] = []
        partners: dict[str, list[str]] = {sid: [] for sid in ids}
        for a, b in candidates:
            p = pair_paths(resolved[a], resolved[b])
            if p:
                conflicts.append(PairConflict(a, b, p))
                partners[a].append(b)
                partners[b].append(a)
        sessions: dict[str, SessionForecast] = {}
        for sid in ids:
            h = resolved[sid]
            mb = mbs[h]
            if mb is None:
                sessions[sid] = SessionForecast(
                    sid, h, None, 0, False, [], [], error="no common history with the base"
                )
                continue
            bpaths = paths_of(base, h) if base_needed[h] else []
            sessions[sid] = SessionForecast(
                sid, h, mb, len(changes[(mb, h)].files), not bpaths, bpaths, partners[sid]
            )
        stats = ForecastStats(
            sessions=len(ids),
            pairs=pairs_total,
            candidate_pairs=len(candidates),
            base_checks=sum(base_needed.values()),
            cache_hits=hits,
            merges_run=run,
            batched=self.use_stdin and run > 1,
            seconds=time.perf_counter() - t0,
        )
        return Forecast(base, sessions, conflicts, stats)

    @staticmethod
    def _pair_candidate(
        ha: str,
        hb: str,
        mbs: Mapping[str, str | None],
        changes: Mapping[tuple[str, str], _Changes],
    ) -> bool:
        ma, mb = mbs[ha], mbs[hb]
        assert ma is not None and mb is not None
        # Only what each session itself changed counts (issue 11 F.6): what the base
        # changed since either forked is between that session and the base (the base
        # check), never the other session's doing.
        return changes[(ma, ha)].may_conflict(changes[(mb, hb)])

    @staticmethod
    def _pair_sides(
        ha: str, hb: str, mbs: Mapping[str, str | None], base: str
    ) -> tuple[str, str]:
        """What to merge to compare two sessions' own changes. Forked from the same commit:
        the heads themselves (their merge base is that commit). Otherwise each head that
        is behind the base is taken as merged into the base first (``projected``), so
        changes the base made since an older fork (e.g. a merged session's) do not count
        against the newer session."""
        if mbs[ha] == mbs[hb]:
            return ha, hb
        sa = ha if mbs[ha] == base else projected(ha, base)
        sb = hb if mbs[hb] == base else projected(hb, base)
        return sa, sb


PROJECTED = "@"  # in a merge side: ``head@base``, ``head`` as merged into ``base``


def projected(head: str, base: str) -> str:
    """The merge side standing for ``head`` merged into ``base`` (a cache key as well:
    the merge it stands for depends on nothing else)."""
    return f"{head}{PROJECTED}{base}"


def merge_tree(
    repo: Path, a: str, b: str, *, env: Mapping[str, str] | None = None
) -> tuple[str, list[str]]:
    """``git merge-tree --write-tree`` of two commits: (tree id, conflicted paths)."""
    r = _git(
        ["merge-tree", "--write-tree", "-z", "--name-only", "--no-messages", a, b],
        repo,
        env=env,
        ok=(0, 1),
    )
    tokens = r.stdout.decode("utf-8", "surrogateescape").split("\0")
    tree = tokens[0]
    if r.returncode == 0:
        return tree, []
    paths = _dedupe([t for t in tokens[1:] if t])
    if not paths:  # a conflict without a conflicted index entry: take the paths from messages
        m = _git(
            ["merge-tree", "--write-tree", "-z", "--name-only", "--messages", a, b],
            repo,
            env=env,
            ok=(0, 1),
        )
        paths = _message_paths(m.stdout.decode("utf-8", "surrogateescape"))
    return tree, paths or ["(unknown)"]


def _message_paths(out: str) -> list[str]:
    """Paths named by CONFLICT messages in ``merge-tree -z --messages`` output."""
    tokens = out.split("\0")
    try:
        i = tokens.index("", 1) + 1  # the messages follow an empty token
    except ValueError:
        return []
    paths: list[str] = []
    while i < len(tokens) and tokens[i].isdigit():
        n = int(tokens[i])
        involved = tokens[i + 1 : i + 1 + n]
        kind = tokens[i + 1 + n]
        if kind.startswith("CONFLICT"):
            paths += involved
        i += n + 3
    return _dedupe(paths)


def forecast(
    repo: Path,
    base_commit: str,
    heads: Mapping[str, str],
    cache: MutableMapping[tuple[str, str], list[str]] | None = None,
) -> Forecast:
    """Does each session (id -> checkpoint commit) merge cleanly into ``base_commit``,
    and which pairs of sessions conflict with each other, with the conflicting paths."""
    return ConflictForecast(repo, cache).forecast(base_commit, heads)


# ------------------------------------------------------------------------------------ checks

TAIL_BYTES = 4096
_KILL_GRACE = 1.0


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    exit_code: int | None  # None when killed by the timeout
    duration_s: float
    output_tail: str  # last ~4 KB of stdout and stderr together
    timed_out: bool = False
    command: list[str] = field(default_factory=list)  # the argv that ran

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CheckSpec:
    worktree: Path
    command: str | list[str]
    timeout: float
    env: Mapping[str, str] | None = None


# Unquoted characters that only mean something to a shell.
_SHELL_CHARS = set("|&;<>()$`*?\n")
_WORD_START_CHARS = set("~#")  # tilde expansion and comments, only at the start of a word
_ASSIGN_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def needs_shell(command: str) -> bool:
    """Does this command line use shell syntax (pipes, &&, redirections, $VARS, globs…)?"""
    quote: str | None = None
    escaped = False
    at_word_start = True
    for ch in command:
        if escaped:
            escaped = False
            at_word_start = False
            continue
        if ch == "\\" and quote != "'":
            escaped = True
            continue
        if quote:
            if ch == quote:
                quote = None
            elif quote == '"' and ch in "$`":
                return True
            continue
        if ch in "'\"":
            quote = ch
            at_word_start = False
            continue
        if ch in " \t":
            at_word_start = True
            continue
        if ch in _SHELL_CHARS or (at_word_start and ch in _WORD_START_CHARS):
            return True
        at_word_start = False
    first = command.strip().split(maxsplit=1)
    return bool(first) and bool(_ASSIGN_RE.match(first[0]))


def check_argv(command: str | Sequence[str]) -> list[str]:
    """The argv a check runs as: a list as is, a string split with shlex, or through
    ``sh -c`` when the string uses shell syntax (the repo owner's own configured command)."""
    if isinstance(command, str):
        if not command.strip():
            raise UsageError("the check command is empty")
        if needs_shell(command):
            return ["sh", "-c", command]
        try:
            return shlex.split(command)
        except ValueError as e:
            raise UsageError(f"cannot parse the check command {command!r}: {e}") from e
    argv = [str(a) for a in command]
    if not argv:
        raise UsageError("the check command is empty")
    return argv


class _Tail:
    """Keeps the last ``limit`` bytes written to it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.buf = bytearray()

    def add(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) > 2 * self.limit:
            del self.buf[: len(self.buf) - self.limit]

    def text(self) -> str:
        data = bytes(self.buf[-self.limit :])
        return data.decode("utf-8", "replace").lstrip("\ufffd")


def _drain(stream: IO[bytes], tail: _Tail) -> None:
    with contextlib.suppress(OSError, ValueError):
        while True:
            data = os.read(stream.fileno(), 65536)
            if not data:
                break
            tail.add(data)


def _kill_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def run_check(
    worktree: Path,
    command: str | list[str],
    timeout: float,
    env: Mapping[str, str] | None = None,
) -> CheckResult:
    """Run the repository's check command in ``worktree`` with a timeout.

    ``env`` is added to the current environment. A missing program gives ``ok=False`` with
    a message (exit code 127, like a shell), not an exception. On timeout the whole process
    group is killed (TERM, then KILL) and ``timed_out`` is set.
    """
    worktree = Path(worktree)
    if not worktree.is_dir():
        raise NotFound(f"cannot run the check: {worktree} does not exist")
    argv = check_argv(command)
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            cwd=str(worktree),
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except FileNotFoundError:
        return CheckResult(
            False,
            127,
            time.monotonic() - t0,
            f"check command not found: {argv[0]!r} (is it installed and on PATH?)",
            command=argv,
        )
    except PermissionError:
        return CheckResult(
            False,
            126,
            time.monotonic() - t0,
            f"check command is not executable: {argv[0]!r}",
            command=argv,
        )
    assert proc.stdout is not None
    tail = _Tail(TAIL_BYTES)
    reader = threading.Thread(target=_drain, args=(proc.stdout, tail), daemon=True)
    reader.start()
    timed_out = False
    try:
        code: int | None = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=_KILL_GRACE)
        _kill_group(proc, signal.SIGKILL)
        proc.wait()
        code = None
    # Background children of the check may still hold the output pipe: give them a
    # moment, then end the group so the check never outlives its result.
    reader.join(timeout=1.0)
    if reader.is_alive():
        _kill_group(proc, signal.SIGKILL)
        reader.join(timeout=5.0)
    proc.stdout.close()
    duration = time.monotonic() - t0
    text = tail.text()
    if timed_out:
        text = (
            text
            + ("\n" if text and not text.endswith("\n") else "")
            + f"[pa] check timed out after {timeout:g}s; its process group was killed"
        )
    return CheckResult(not timed_out and code == 0, code, duration, text, timed_out, argv)


def run_checks(items: Sequence[CheckSpec], limit: int = 4) -> list[CheckResult]:
    """Run several checks at once, at most ``limit`` at a time; results in input order."""
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=max(1, limit)) as pool:
        return list(pool.map(lambda s: run_check(s.worktree, s.command, s.timeout, s.env), items))
