"""Thin wrapper over the git CLI: argv lists only, never a shell string.

The one runner (``run``) and the plumbing steps the git modules share: naming objects
(``resolve``, ``need``), writing commits (``commit_tree``) and a private index
(``temp_index``).
"""

from __future__ import annotations

import contextlib
import functools
import locale
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parallel_agents.errors import NotFound, PAError
from parallel_agents.gitenv import BASE_ENV, REPO_ENV

# Identity used for commits pa makes itself (checkpoints, archives) when the user has none.
PA_IDENTITY = {
    "GIT_AUTHOR_NAME": "parallel-agents",
    "GIT_AUTHOR_EMAIL": "pa@localhost",
    "GIT_COMMITTER_NAME": "parallel-agents",
    "GIT_COMMITTER_EMAIL": "pa@localhost",
}


class GitError(PAError):
    """A git command failed; carries the command and its stderr."""

    def __init__(self, args: Sequence[str], returncode: int, stderr: str, stdout: str = "") -> None:
        self.args_list = list(args)
        self.returncode = returncode
        self.stderr = stderr
        self.stdout = stdout
        # git's own "fatal:"/"error:" line names the problem (e.g. which lock file); the
        # last line is often only advice.
        lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
        key = next((ln for ln in lines if ln.startswith(("fatal:", "error:"))), None)
        msg = key or (lines[-1] if lines else f"exit code {returncode}")
        super().__init__(f"git {' '.join(args[:3])}… failed: {msg}")


@dataclass(frozen=True)
class GitResult:
    """What a git command printed.

    ``raw`` is stdout byte for byte; ``text`` decodes it keeping every byte (a path in no
    encoding survives the round trip). ``stdout`` and ``stderr`` are decoded as
    ``subprocess``'s text mode did for the callers that always read them: with str or no
    input, the locale's encoding and universal newlines; with bytes input, UTF-8.
    """

    returncode: int
    raw: bytes
    stderr: str
    bytes_in: bool = False  # the command was given bytes: stdout decodes as UTF-8

    @property
    def text(self) -> str:
        return self.raw.decode("utf-8", "surrogateescape")

    @functools.cached_property
    def stdout(self) -> str:
        # Decoded on first use: a caller reading ``raw`` never pays for (or trips over)
        # a decoding it does not need.
        if self.bytes_in:
            return self.raw.decode("utf-8", "replace")
        return _universal_newlines(self.raw.decode(locale.getpreferredencoding(False)))


def _universal_newlines(s: str) -> str:
    return s.replace("\r\n", "\n").replace("\r", "\n")


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(BASE_ENV)
    if extra:
        env.update(extra)
    return env


def repo_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """``git_env`` without inherited variables that would point git at another repository,
    index or object store than the one named by the working directory (set, for example,
    when pa runs from inside a git hook); ``extra`` may set them on purpose."""
    env = git_env()
    for k in REPO_ENV:
        env.pop(k, None)
    if extra:
        env.update(extra)
    return env


def run(
    args: Sequence[str],
    cwd: Path | str,
    *,
    check: bool = True,
    ok: Sequence[int] = (0,),
    env: Mapping[str, str] | None = None,
    input: str | bytes | None = None,
    timeout: float | None = 300,
) -> GitResult:
    """Run ``git <args>`` in ``cwd``; raise GitError when ``check`` and the exit code is
    not in ``ok``."""
    bytes_in = isinstance(input, bytes)
    data = input.encode(locale.getpreferredencoding(False)) if isinstance(input, str) else input
    proc = subprocess.run(
        ["git", *args],
        cwd=str(cwd),
        env=repo_env(env),
        input=data,
        stdin=None if data is not None else subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    err = proc.stderr.decode("utf-8", "replace")
    if not bytes_in:
        err = _universal_newlines(err)
    if check and proc.returncode not in ok:
        raise GitError(args, proc.returncode, err, proc.stdout.decode("utf-8", "replace"))
    return GitResult(proc.returncode, proc.stdout, err, bytes_in)


def out(args: Sequence[str], cwd: Path | str, **kw: Any) -> str:
    """stdout of a git command, stripped of the trailing newline."""
    return run(args, cwd, **kw).stdout.strip()


def resolve(cwd: Path | str, rev: str, kind: str = "commit") -> str | None:
    """Id of the ``kind`` object (commit, tree…) ``rev`` names, or None; ``rev`` is never
    taken for an option."""
    r = run(
        ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{{kind}}}"],
        cwd,
        check=False,
    )
    return r.text.strip() if r.returncode == 0 else None


def need(cwd: Path | str, rev: str, kind: str = "commit", what: str = "commit") -> str:
    """``resolve``, or NotFound naming ``what`` was asked for."""
    oid = resolve(cwd, rev, kind)
    if oid is None:
        raise NotFound(f"{rev!r} does not name a {what} in {cwd}")
    return oid


def commit_tree(
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
    r = run(args, cwd, input=data, env=env, check=False)
    if r.returncode != 0:
        low = r.stderr.lower()
        if "ident" in low or "who you are" in low or "auto-detect" in low or "email" in low:
            # Only what is missing: an author given in ``env`` (a rebase) is kept.
            r = run(args, cwd, input=data, env={**PA_IDENTITY, **(env or {})})
        else:
            raise GitError(args, r.returncode, r.stderr, r.text)
    return r.text.strip()


def tree_of(cwd: Path | str, commit: str) -> str:
    return out(["rev-parse", f"{commit}^{{tree}}"], cwd)


def git_path(cwd: Path, name: str) -> Path:
    """``git rev-parse --git-path name``, absolute."""
    p = Path(run(["rev-parse", "--git-path", name], cwd).text.strip())
    return p if p.is_absolute() else (cwd / p).resolve()


def copy_index(src: Path, dst: Path) -> None:
    """A private copy of an index (none when ``src`` does not exist). It keeps the stat
    data, so `add -A` re-hashes only files that changed, and the index's mtime: git
    re-checks an entry as new as its index (racy git), and a copy stamped later would
    make a same-size edit made in that second look unchanged to a diff, a checkpoint or
    an archive."""
    with contextlib.suppress(FileNotFoundError):
        shutil.copy2(src, dst)


@contextlib.contextmanager
def temp_index(worktree: Path, seed: bool = True) -> Iterator[dict[str, str]]:
    """Env pointing GIT_INDEX_FILE at a private copy of the worktree's index."""
    with tempfile.TemporaryDirectory(prefix="pa-index-") as tmp:
        path = Path(tmp) / "index"
        if seed:
            real = git_path(worktree, "index")
            copy_index(real, path)
        yield {"GIT_INDEX_FILE": str(path)}


def rev_parse(cwd: Path | str, rev: str) -> str | None:
    """Full commit id of ``rev`` or None when it does not name a commit."""
    r = run(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], cwd, check=False)
    return r.stdout.strip() if r.returncode == 0 else None


@dataclass(frozen=True)
class StartInfo:
    toplevel: Path
    head: str  # commit checked out
    branch: str | None  # its branch's short name; None when detached
    base: str | None  # commit of the base asked for, if one was


def start_info(cwd: Path | str, base: str | None = None) -> StartInfo | None:
    """What starting a session needs to know of a repo, in one process; None when
    anything is unusual (no commits, unknown base, not a work tree…): the caller then
    asks again step by step, to say exactly what is wrong."""
    if base is not None and (base.startswith("-") or not base.strip()):
        return None
    revs = ["HEAD^{commit}", *([f"{base}^{{commit}}"] if base is not None else [])]
    args = ["rev-parse", "--is-inside-work-tree", "--show-toplevel", *revs]
    try:
        r = run([*args, "--symbolic-full-name", "HEAD"], cwd, check=False)
    except OSError:  # the folder is gone, or is not one
        return None
    lines = r.stdout.splitlines()
    if r.returncode != 0 or len(lines) != 3 + len(revs) or lines[0] != "true":
        return None
    sym = lines[-1]
    return StartInfo(
        toplevel=Path(lines[1]),
        head=lines[2],
        branch=sym.removeprefix("refs/heads/") if sym.startswith("refs/heads/") else None,
        base=lines[3] if base is not None else None,
    )


def ref_exists(cwd: Path | str, ref: str) -> bool:
    return run(["show-ref", "--verify", "--quiet", ref], cwd, check=False).returncode == 0


def current_branch(cwd: Path | str) -> str | None:
    r = run(["symbolic-ref", "--quiet", "--short", "HEAD"], cwd, check=False)
    return r.stdout.strip() if r.returncode == 0 else None


def toplevel(cwd: Path | str) -> Path | None:
    r = run(["rev-parse", "--show-toplevel"], cwd, check=False)
    return Path(r.stdout.strip()) if r.returncode == 0 else None


def common_dir(cwd: Path | str) -> Path:
    """The repository's shared .git directory (same for every worktree)."""
    d = out(["rev-parse", "--git-common-dir"], cwd)
    p = Path(d)
    return p if p.is_absolute() else (Path(cwd) / p).resolve()


def is_bare(cwd: Path | str) -> bool:
    return out(["rev-parse", "--is-bare-repository"], cwd) == "true"


def status_porcelain(cwd: Path | str) -> str:
    return run(["status", "--porcelain=v1", "-z", "--untracked-files=all"], cwd).stdout


def version() -> tuple[int, ...]:
    r = subprocess.run(["git", "--version"], capture_output=True, text=True, check=True)
    parts = r.stdout.split()[2].split(".")
    return tuple(int(p) for p in parts[:3] if p.isdigit())
