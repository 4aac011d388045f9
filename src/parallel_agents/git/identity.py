"""A repository's identity on disk, to recognise it after the user moved it; its links.

Identity: at registration pa writes a random id into the repository's own git directory
(``.git/pa-repo-id``) and keeps it in the store. The file travels with the repository on
``mv`` (so the moved folder is recognised), is not copied by ``git clone`` (a clone is
another repository) and, when a ``cp -r`` copy brings it along, the original still holds
it at the registered path, which tells a copy from a move. The root commit would not do:
every clone and fork shares it. Repositories registered before the id existed are
recognised by their links instead: git's ``.git/worktrees/*/gitdir`` files name the
worktrees of known sessions.

After ``mv`` the links between the repository and its worktrees are broken both ways;
``git worktree repair`` (run in the moved repository, with the worktree paths) fixes them.

This module is the git side (the id file, the links); the store's side (claiming an id,
recognising a moved repository, re-pointing it) is ``sessions/repos.py``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from parallel_agents import git

UID_FILE = "pa-repo-id"


def _git_dir(top: Path) -> Path | None:
    """The repository's common git directory, without a git process in the usual case."""
    dot = top / ".git"
    try:
        if dot.is_dir():
            return dot
        if not dot.exists():
            return None
        return git.common_dir(top)
    except (OSError, git.GitError):
        return None


def read_uid(top: Path) -> str | None:
    d = _git_dir(top)
    if d is None:
        return None
    try:
        text = (d / UID_FILE).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if text.isalnum() and 8 <= len(text) <= 64 else None


def write_uid(top: Path, uid: str) -> bool:
    d = _git_dir(top)
    if d is None:
        return False
    tmp = d / f"{UID_FILE}.{os.getpid()}.tmp"
    try:
        tmp.write_text(uid + "\n", encoding="utf-8")
        os.replace(tmp, d / UID_FILE)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        return False
    return True


def same_git_dir(a: Path, b: Path) -> bool:
    da, db = _git_dir(a), _git_dir(b)
    return da is not None and db is not None and os.path.realpath(da) == os.path.realpath(db)


def linked_worktrees(top: Path) -> list[Path]:
    """Worktree folders the repository's ``.git/worktrees/*/gitdir`` files name."""
    d = _git_dir(top)
    if d is None:
        return []
    out: list[Path] = []
    with contextlib.suppress(OSError):
        for entry in sorted(os.scandir(d / "worktrees"), key=lambda e: e.name):
            with contextlib.suppress(OSError, UnicodeDecodeError):
                gitdir = Path(entry.path, "gitdir").read_text(encoding="utf-8").strip()
                if gitdir:
                    out.append(Path(gitdir).parent)
    return out


def same_path(a: Path, b: Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def worktree_linked(wt: Path) -> bool:
    """Does the worktree's ``.git`` file lead to an existing git directory?"""
    dot = wt / ".git"
    if dot.is_dir():
        return True
    try:
        text = dot.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return False
    if not text.startswith("gitdir:"):
        return False
    target = Path(text[len("gitdir:") :].strip())
    if not target.is_absolute():
        target = wt / target
    return target.is_dir()


def links_into(wt: Path, common: str) -> bool:
    """Does the worktree's ``.git`` lead into the git directory ``common`` (a realpath)?"""
    try:
        text = (wt / ".git").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return (wt / ".git").is_dir()
    target = os.path.realpath(text.removeprefix("gitdir:").strip())
    return target.startswith(common + os.sep)
