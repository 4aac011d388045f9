"""Taking a warm worktree from the pool (``pool.py``) for a new session.

Invariants:

* An entry is handed out only when its marker names the requested base commit, and after
  the claim its HEAD is verified detached at that commit with an empty
  ``git status --porcelain`` (untracked files included). Anything else is discarded
  (archived first when dirty) and never handed out.
* The claim is ``rename(<token>, <session path>)``: exactly one caller wins a rename, so
  no two sessions ever get the same worktree. git's record of the worktree is then
  pointed at the new path (what ``git worktree repair`` does, without a process).
* The dirt check (``git status``, the slow part on a large tree) runs while the branch is
  made; if it finds anything the branch is deleted again and the entry discarded.
* The session branch is created with ``update-ref <branch> <commit> <zero-oid>`` (fails
  if it exists: nothing is overwritten) and HEAD pointed at it with ``symbolic-ref``:
  the commit does not change, so not one file or index entry is touched.
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from parallel_agents import git
from parallel_agents.config import Settings
from parallel_agents.errors import PAError
from parallel_agents.git import pool, worktrees
from parallel_agents.git.worktrees import admin_dir


@dataclass
class TakeResult:
    taken: bool
    token: str | None = None
    discarded: list[str] = field(default_factory=list)  # tokens found stale or dirty
    reason: str | None = None  # why the pool could not serve


def take(
    settings: Settings,
    repo_path: Path,
    repo_name: str,
    path: Path,
    branch: str,
    base_commit: str,
) -> bool:
    """Move a warm worktree to ``path`` on new ``branch``; False when the pool cannot serve.

    On False nothing was changed at ``path`` or in the branch namespace: the caller
    creates the worktree as usual. Raises PAError only for the errors
    ``worktrees.create`` would raise as well (path not empty, branch exists). Starts no
    filler: ``sessions.pool_fill.take`` is the take that also refills.
    """
    return take_detail(settings, repo_path, repo_name, path, branch, base_commit).taken


def take_detail(
    settings: Settings,
    repo_path: Path,
    repo_name: str,
    path: Path,
    branch: str,
    base_commit: str,
) -> TakeResult:
    cfg = pool.config_for(settings, repo_name)
    res = TakeResult(False)
    if cfg.size <= 0:
        res.reason = "pool off"
        return res
    pdir = pool.pool_dir(settings, repo_name)
    candidates = [
        e for e in pool.ready_entries(pdir, base_commit) if not pool.foreign(e.path, settings.home)
    ]
    if not candidates:
        res.reason = "no warm worktree at this base"
        return res
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise PAError(f"worktree path {path} already exists and is not empty")
    random.shuffle(candidates)  # concurrent takers rarely reach for the same entry
    for e in candidates:
        if not _claim(repo_path, e, path):
            continue  # someone else got it
        bad = _check_head(path, base_commit)
        if bad:
            res.discarded.append(e.token)
            _discard_claimed(repo_path, path, pdir, e.token, bad)
            continue
        # The status check (the slow part) runs while the branch is made; the worktree
        # is handed out only if it was clean, otherwise the branch is taken back.
        status = _Dirt(path)
        try:
            _switch(path, branch, base_commit)
        except PAError:
            status.kill()
            _discard_claimed(repo_path, path, pdir, e.token, None)
            raise
        bad = status.verdict()
        if bad:
            res.discarded.append(e.token)
            _discard_claimed(repo_path, path, pdir, e.token, bad)  # archives while HEAD is set
            git.run(
                ["update-ref", "-d", f"refs/heads/{branch}", base_commit], repo_path, check=False
            )
            continue
        res.taken, res.token = True, e.token
        break
    else:
        res.reason = "every warm worktree was taken, stale or dirty"
    return res


def _claim(repo_path: Path, e: pool.Entry, path: Path) -> bool:
    """Atomically move entry ``e`` to ``path``; False when another caller got it first.

    The rename is the claim: of any number of callers exactly one moves the folder.
    git's record is pointed at the new place right after (microseconds later); a
    ``git worktree prune`` landing in between would drop the record, which the HEAD
    check that follows notices (the entry is then discarded, never handed out).
    """
    assert e.marker is not None
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(e.path, path)
    except FileNotFoundError:
        return False
    except OSError as err:
        raise PAError(f"cannot move warm worktree {e.path} to {path}: {err}") from err
    if not _point_git_at(path):
        with worktrees.repo_lock(repo_path):
            r = git.run(["worktree", "repair", str(path)], repo_path, check=False)
        if r.returncode != 0:
            os.rename(path, e.path)  # back where git expects it; the next fill checks it
            return False
    with contextlib.suppress(FileNotFoundError):
        e.marker.unlink()
    return True


def _point_git_at(path: Path) -> bool:
    """What ``git worktree repair PATH`` does after a move, without a process: rewrite
    the worktree's ``gitdir`` record (atomically). False when there is no record."""
    adm = admin_dir(path)
    if adm is None or not (adm / "gitdir").is_file():
        return False
    tmp = adm / f"gitdir.pa-{secrets.token_hex(3)}"
    tmp.write_text(os.path.realpath(path / ".git") + "\n", encoding="utf-8")
    os.replace(tmp, adm / "gitdir")
    return True


def _check_head(path: Path, base_commit: str) -> str | None:
    """None when ``path`` is a worktree detached at ``base_commit``, else what is wrong."""
    adm = admin_dir(path)
    try:
        head = (adm / "HEAD").read_text(encoding="utf-8").strip() if adm else ""
    except OSError as e:
        return f"not a usable worktree: {e}"
    if head.startswith("ref:"):
        return f"not detached: HEAD is {head[4:].strip()}"
    if head != base_commit:
        return f"stale: HEAD is {head[:10] or '?'}, base is {base_commit[:10]}"
    return None


# Dirt, split in two processes that run at once (the check is on the path of every
# pooled start): tracked changes, staged or not, and untracked files. "--directory"
# reports an untracked folder as one line instead of every file in it: the same verdict
# (any output is dirt) for less work on a large tree.
_DIRT_CHECKS = (
    ["status", "--porcelain=v1", "-z", "--untracked-files=no"],
    ["ls-files", "-z", "--others", "--directory", "--no-empty-directory", "--exclude-standard"],
)


class _Dirt:
    """The running dirt checks of one worktree."""

    def __init__(self, path: Path) -> None:
        self.procs = [
            subprocess.Popen(
                ["git", *args],
                cwd=str(path),
                env=git.git_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for args in _DIRT_CHECKS
        ]

    def kill(self) -> None:
        for p in self.procs:
            p.kill()
            p.communicate()

    def verdict(self) -> str | None:
        """None when clean, else what was found (or what failed)."""
        bad = None
        for args, p in zip(_DIRT_CHECKS, self.procs, strict=True):
            out, err = p.communicate(timeout=300)
            if bad:
                continue
            if p.returncode != 0:
                bad = f"git {args[0]} failed: {err.decode('utf-8', 'replace').strip()}"
            elif out:
                bad = "dirty: " + out.decode("utf-8", "replace").replace("\0", " ")[:200]
        return bad


def _switch(path: Path, branch: str, commit: str) -> None:
    """Put the claimed worktree on a new ``branch`` at ``commit`` without touching files."""
    ref = f"refs/heads/{branch}"
    r = git.run(
        [
            "update-ref",
            "--create-reflog",
            "-m",
            f"branch: Created from {commit}",
            ref,
            commit,
            pool.ZERO_OID,
        ],
        path,
        check=False,
    )
    if r.returncode != 0:
        if git.ref_exists(path, ref):
            raise PAError(f"branch {branch} already exists", hint="try again: ids are random")
        raise git.GitError(["update-ref", ref], r.returncode, r.stderr)
    if not _write_head(path, ref):
        git.run(["symbolic-ref", "-m", f"checkout: moving to {branch}", "HEAD", ref], path)


def _write_head(path: Path, ref: str) -> bool:
    """Point the worktree's HEAD at ``ref`` the way git does (``HEAD.lock``, then a
    rename), without a process; False when git should do it (lock held, odd layout)."""
    adm = admin_dir(path)
    if adm is None:
        return False
    lock = adm / "HEAD.lock"
    try:
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError:
        return False
    try:
        try:
            os.write(fd, f"ref: {ref}\n".encode())
        finally:
            os.close(fd)
        os.replace(lock, adm / "HEAD")
    except OSError:  # e.g. disk full: leave no lock behind; git reports it properly
        with contextlib.suppress(OSError):
            lock.unlink()
        return False
    return True


def _discard_claimed(repo_path: Path, path: Path, pdir: Path, token: str, why: str | None) -> None:
    """Get rid of a claimed entry that must not be handed out (archived if dirty)."""
    if why and why.startswith("dirty"):
        with contextlib.suppress(PAError):
            pool.archive_dirty(repo_path, path, f"pool-{token}")
    pool.unregister(repo_path, path, pdir / pool.TRASH_DIR)
