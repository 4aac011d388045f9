"""A session's archive: make one when it is discarded, find one, and how to bring it back.

An archive is a ref under ``refs/pa/archive/`` (see ``archive.py`` for what it holds);
``pa doctor`` makes ``orphan-`` ones of leftovers, which ``pa restore`` finds here too.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from parallel_agents import git
from parallel_agents.errors import Conflict
from parallel_agents.git import archive as archive_mod
from parallel_agents.git import worktrees
from parallel_agents.models import Session

ARCHIVE_PREFIX = "refs/pa/archive/"


def archive_session(repo_path: Path, s: Session, *, stash: bool = True) -> dict[str, Any]:
    """Store the session's final state under a new archive ref (never overwriting one):
    uncommitted, untracked and ignored files, the staging area, empty folders, and (with
    ``stash``) its nested repositories moved next to the archive."""
    wt = Path(s.worktree)
    if wt.is_dir() and (wt / ".git").exists():
        snap = archive_mod.snapshot(wt, f"pa archive of session {s.id}: {s.title}")
        ref = archive_mod.write_new_ref(repo_path, ARCHIVE_PREFIX + s.id, snap.commit)
        if stash and snap.nested:
            archive_mod.stash_nested(repo_path, wt, ref, snap.nested)
        return {"ref": ref, "commit": snap.commit, "kind": "full", **snap.to_json()}
    head = git.rev_parse(repo_path, f"refs/heads/{s.branch}")
    if head is None:
        return {"ref": None, "commit": None, "kind": "none"}
    ref = archive_mod.write_new_ref(repo_path, ARCHIVE_PREFIX + s.id, head)
    return {"ref": ref, "commit": head, "kind": "branch"}


def orphan_archive(repo_path: Path, s: Session) -> str | None:
    """The newest archive of this session whose worktree is gone: its own (a merge with
    ``merge.remove_worktree``) or one ``pa doctor`` made of its worktree, folder or branch."""
    r = git.run(
        [
            "for-each-ref",
            "--sort=-creatordate",
            "--format=%(refname)",
            ARCHIVE_PREFIX,
        ],
        repo_path,
        check=False,
    )
    wanted = (
        ARCHIVE_PREFIX + s.id,
        archive_mod.ORPHAN_PREFIX + s.id,
        archive_mod.ORPHAN_PREFIX + archive_mod.safe_ref_name(s.branch),
    )
    for ref in r.stdout.split():
        if any(ref == w or ref.startswith(w + "-") for w in wanted):
            return ref
    return None


def archive_kind(repo_path: Path, commit: str) -> str:
    """How to bring back an archive whose kind was not recorded (one of doctor's)."""
    if archive_mod.extras_of(repo_path, commit):
        return "full"
    msg = git.out(["log", "-1", "--format=%s", commit], repo_path)
    if msg.startswith("pa doctor: archive of folder"):
        return "files"
    if msg.startswith(("pa doctor: archive of orphan worktree", "pa: archive of", "pa archive")):
        return "checkpoint"
    return "branch"


def free_branch(repo_path: Path, branch: str, head: str) -> str:
    """``branch`` when it does not exist or holds nothing ``head`` lacks (and no other
    worktree has it checked out); else a new name, so commits added to the branch
    meanwhile (after `pa pr`, say) are never moved away."""
    tip = git.rev_parse(repo_path, f"refs/heads/{branch}")
    if tip is None:
        return branch
    r = git.run(["merge-base", "--is-ancestor", tip, head], repo_path, check=False)
    if r.returncode == 0 and branch not in worktrees.registered_worktrees(repo_path).values():
        return branch
    for n in range(1, 100):
        name = f"{branch}-restored{'' if n == 1 else f'-{n}'}"
        if not git.ref_exists(repo_path, f"refs/heads/{name}"):
            return name
    raise Conflict(f"branch {branch} exists with other commits", hint="rename it, then restore")


def checkout_tree(wt: Path, commit: str) -> None:
    """Write a parentless archive's files (doctor's archive of a bare folder) into ``wt``."""
    with tempfile.TemporaryDirectory(prefix="pa-restore-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git.run(["read-tree", commit], wt, env=env)
        git.run(["checkout-index", "-a", "-f"], wt, env=env)
