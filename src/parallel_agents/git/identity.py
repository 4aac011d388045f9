"""Which registered repository a folder is, after the user moved it: recognise, re-point.

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
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parallel_agents import git
from parallel_agents.errors import Conflict, NotFound
from parallel_agents.git import worktrees
from parallel_agents.models import Repo, Session, Status

if TYPE_CHECKING:
    from parallel_agents.store import Store

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


def _write_uid(top: Path, uid: str) -> bool:
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


def claim(store: Store, repo: Repo) -> str | None:
    """Give a just-registered (or re-pointed) repo its identity, on disk and in the store.

    Keeps the id already in the folder unless another registration owns it (then this
    folder is a copy of that repository and gets an id of its own).
    """
    top = Path(repo.path)
    uid = read_uid(top)
    if uid is not None:
        owner = store.repo_by_uid(uid)
        if owner is not None and owner.id != repo.id:
            if _same_git_dir(Path(owner.path), top):
                # A linked worktree of a registered repo: the id file is that repo's.
                store.set_repo_uid(repo.id, None)
                return None
            uid = None
    if uid is None:
        fresh = store.repo_uid(repo.id) or secrets.token_hex(16)
        # A read-only .git keeps no id: such a repo is recognised by its worktree links.
        uid = fresh if _write_uid(top, fresh) else None
    store.set_repo_uid(repo.id, uid)
    return uid


def _same_git_dir(a: Path, b: Path) -> bool:
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


def holds_repo(store: Store, repo: Repo) -> bool:
    """Does the registered path still hold that repository (not gone, not replaced)?"""
    top = Path(repo.path)
    if not (top / ".git").exists():
        return False
    uid = store.repo_uid(repo.id)
    return uid is None or read_uid(top) in (uid, None)


def _same(a: Path, b: Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def find_moved(store: Store, top: Path) -> tuple[Repo, str] | None:
    """The registered repo that the unregistered repository at ``top`` is, moved here;
    with how it was recognised. None for a new repository or a copy of a registered one."""
    uid = read_uid(top)
    if uid is not None:
        r = store.repo_by_uid(uid)
        if r is not None and not _same(Path(r.path), top):
            if holds_repo(store, r):
                return None  # a copy: the original is still where it was registered
            return r, f"its .git/{UID_FILE} is the one pa wrote at registration"
    links = {os.path.realpath(p): p for p in linked_worktrees(top)}
    if not links:
        return None
    for s in store.sessions():
        if s.status == Status.DISCARDED or os.path.realpath(s.worktree) not in links:
            continue
        r = store.repo(s.repo_id)
        if _same(Path(r.path), top) or holds_repo(store, r):
            continue
        return r, f"git in it still links to the worktree of session {s.id}"
    return None


def moved_error(repo: Repo, top: Path, how: str) -> Conflict:
    return Conflict(
        f"{top} is the repository registered as {repo.name!r} at {repo.path}, which is gone: "
        f"it was moved ({how}); nothing was registered",
        hint=f"re-point it (and repair its sessions' worktrees): pa repo move {repo.name} {top}",
    )


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


def missing_repo_error(repo: Repo, s: Session | None = None) -> Conflict:
    whose = f"session {s.id}'s repository {repo.name!r}" if s else f"repository {repo.name!r}"
    kept = f"; the session's files are still in {s.worktree}" if s else ""
    return Conflict(
        f"{whose} is missing: nothing at {repo.path}; nothing was changed",
        hint=f"if you moved it: pa repo move {repo.name} NEWPATH{kept}",
    )


def require_repo(store: Store, s: Session) -> Path:
    """The session's repository path, or a clear error when the folder is gone."""
    repo = store.repo(s.repo_id)
    p = Path(repo.path)
    if not (p / ".git").exists():
        raise missing_repo_error(repo, s)
    return p


def require_usable(store: Store, s: Session) -> Path:
    """``require_repo``, and the session's worktree (when present) still linked to it."""
    p = require_repo(store, s)
    wt = Path(s.worktree)
    if wt.is_dir() and not worktree_linked(wt):
        repo = store.repo(s.repo_id)
        raise Conflict(
            f"the worktree of session {s.id} ({wt}) has lost its link to the repository "
            f"(was the repository moved?); nothing was changed",
            hint=f"pa repo move {repo.name} PATH re-links it (PATH: where the repository is now)",
        )
    return p


def move(store: Store, name: str, new_path: Path) -> dict[str, Any]:
    """Re-point repo ``name`` at ``new_path`` and repair its worktrees' links both ways."""
    from parallel_agents.sessions.orchestrator import validate_repo_path

    repo = store.repo_by_name(name)
    if repo is None:
        raise NotFound(f"no registered repo named {name!r}", hint="see `pa repo ls`")
    top = validate_repo_path(new_path)
    old = Path(repo.path)
    other = store.repo_by_path(str(top))
    if other is not None and other.id != repo.id:
        raise Conflict(
            f"{top} is already registered as {other.name!r}; nothing was changed",
            hint=f"pa repo rm {other.name} first (after merging or discarding its sessions)",
        )
    same = _same(old, top)
    if not same and holds_repo(store, repo):
        raise Conflict(
            f"{old} still holds repo {name!r}: pa repo move is for a repository that was "
            "moved; nothing was changed",
            hint=f"to register {top} as a repository of its own: pa repo add {top} --name NAME",
        )
    old_uid, new_uid = store.repo_uid(repo.id), read_uid(top)
    sessions = [s for s in store.sessions(repo_id=repo.id) if s.status != Status.DISCARDED]
    links = {os.path.realpath(p) for p in linked_worktrees(top)}
    owner = store.repo_by_uid(new_uid) if new_uid else None
    if (owner is not None and owner.id != repo.id) or (old_uid and new_uid and old_uid != new_uid):
        raise Conflict(
            f"{top} is not repo {name!r}: its .git/{UID_FILE} names another repository; "
            "nothing was changed",
            hint="give the folder the repository was moved to",
        )
    if not (old_uid and new_uid == old_uid) and sessions:
        linked = any(os.path.realpath(s.worktree) in links for s in sessions)
        bases = {s.base_commit for s in sessions}
        if not linked and not any(git.rev_parse(top, c) for c in bases):
            raise Conflict(
                f"{top} does not look like repo {name!r}: none of its sessions' commits "
                "are in it; nothing was changed",
                hint="give the folder the repository was moved to",
            )
    paths: list[Path] = []
    for p in [*(Path(s.worktree) for s in sessions), *linked_worktrees(top)]:
        if p.is_dir() and all(not _same(p, q) for q in paths):
            paths.append(p)
    repair_err = ""
    if paths:
        with worktrees.repo_lock(top):
            r = git.run(["worktree", "repair", *map(str, paths)], top, check=False)
            repair_err = r.stderr.strip() if r.returncode != 0 else ""
    common = os.path.realpath(git.common_dir(top))
    relinked: list[str] = []
    unlinked: list[dict[str, str]] = []
    for s in sessions:
        wt = Path(s.worktree)
        if not wt.is_dir():
            continue
        if worktree_linked(wt) and _links_into(wt, common):
            relinked.append(s.id)
        else:
            unlinked.append({"session": s.id, "worktree": str(wt)})
    moved = store.set_repo_path(repo.id, str(top))
    claim(store, moved)
    return {
        "repo": dict(moved.__dict__),
        "from": str(old),
        "to": str(top),
        "relinked": relinked,
        "unlinked": unlinked,
        "repair_error": repair_err or None,
    }


def _links_into(wt: Path, common: str) -> bool:
    try:
        text = (wt / ".git").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return (wt / ".git").is_dir()
    target = os.path.realpath(text.removeprefix("gitdir:").strip())
    return target.startswith(common + os.sep)
