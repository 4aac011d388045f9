"""Registered repositories: register, find, remove, and re-point one the user moved.

The store's side of a repository's identity; the git side (the id file in ``.git``, the
worktrees' links) is ``git/identity.py``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from parallel_agents import git
from parallel_agents.config import Settings
from parallel_agents.errors import Conflict, NotFound, PAError, UsageError
from parallel_agents.git import identity, pool, worktrees
from parallel_agents.models import Repo, Session, Status
from parallel_agents.store import Store

_REPO_NAME = re.compile(r"[A-Za-z0-9._-]+")


def safe_repo_name(name: str) -> str:
    """``name`` made into a valid repo name (what `pa repo add` accepts)."""
    if _REPO_NAME.fullmatch(name) and name not in (".", ".."):
        return name
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")
    return slug or "repo"


def add(store: Store, home: Path, path: Path, name: str | None, base: str | None) -> Repo:
    """`pa repo add`: register the repository at ``path`` (its top) as ``name``."""
    top = validate_repo_path(path)
    if base is not None and git.rev_parse(top, base) is None:
        raise UsageError(f"base {base!r} does not name a commit in {top}")
    with _registering(home):
        return _add_locked(store, top, name, base)


def _add_locked(store: Store, top: Path, name: str | None, base: str | None) -> Repo:
    existing = store.repo_by_path(str(top))
    if existing is not None:
        raise UsageError(f"{top} is already registered as {existing.name!r}")
    moved = find_moved(store, top)
    if moved is not None:
        raise moved_error(moved[0], top, moved[1])
    name = name or top.name
    if not _REPO_NAME.fullmatch(name) or name in (".", ".."):
        raise UsageError(f"repo name {name!r} may only contain letters, digits, '.', '_' and '-'")
    r = store.add_repo(name, str(top), base)
    claim(store, r)
    return r


def find(store: Store, home: Path, ref: str | None, cwd: Path | None, *, register: bool) -> Repo:
    """A repo by name or path; with no ref, the git repo around ``cwd``."""
    if ref:
        by_name = store.repo_by_name(ref)
        if by_name:
            return by_name
        p = Path(ref).expanduser()
        if not _exists(p):
            raise NotFound(
                f"no registered repo named {ref!r} and no such path",
                hint="see `pa repo ls`, or register it with `pa repo add PATH`",
            )
    else:
        p = cwd or Path.cwd()
    top = validate_repo_path(p)
    # Several `pa new` started at once in an unregistered repository must end with one
    # registration, not one registration and errors for the rest.
    with _registering(home):
        return _find_or_register(store, top, register=register)


def _find_or_register(store: Store, top: Path, *, register: bool) -> Repo:
    found = store.repo_by_path(str(top))
    if found:
        if store.repo_uid(found.id) is None:  # registered before repo ids existed
            claim(store, found)
        return found
    # Never a second registration of a registered repository that was moved here.
    moved = find_moved(store, top)
    if moved is not None:
        raise moved_error(moved[0], top, moved[1])
    if not register:
        raise NotFound(f"{top} is not a registered repo", hint="pa repo add " + str(top))
    # The same names `pa repo add` accepts: the name travels in URLs and commands.
    base_name = safe_repo_name(top.name)
    name = (
        base_name
        if store.repo_by_name(base_name) is None
        else f"{base_name}-{secrets.token_hex(2)}"
    )
    r = store.add_repo(name, str(top), None)
    claim(store, r)
    return r


@contextlib.contextmanager
def _registering(home: Path) -> Iterator[None]:
    """One registration at a time across processes sharing this PA_HOME."""
    lock_path = home / "register.lock"
    try:
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
    except OSError as e:
        raise PAError(f"cannot create lock file {lock_path}: {e.strerror}") from e
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def remove(store: Store, settings: Settings, name: str) -> Repo:
    """`pa repo rm`: unregister repo ``name`` with its finished sessions' records."""
    repo = store.repo_by_name(name)
    if repo is None:
        raise NotFound(f"no registered repo named {name!r}", hint="see `pa repo ls`")
    gone = not (Path(repo.path) / ".git").exists()
    live = [s for s in store.sessions(repo_id=repo.id) if s.status.live]
    # A deleted repository's sessions cannot be merged or discarded any more (there is no
    # git to archive into); their worktree folders are left exactly as they are, so
    # unregistering loses no file. Only an agent still at work holds it up.
    blocking = [s for s in live if s.status.active] if gone else live
    if blocking:
        raise Conflict(
            f"repo {name!r} still has {len(blocking)} live session(s): "
            + ", ".join(s.id for s in blocking[:10]),
            hint="stop them first (pa stop ID)"
            if gone
            else "merge or discard them first (pa discard ID)",
        )
    old = store.sessions(repo_id=repo.id)
    if old:
        store.delete_sessions([s.id for s in old])
    if (Path(repo.path) / ".git").exists():  # a deleted repo has no git to clean up
        pool.clear(settings, repo)  # warm worktrees must not stay registered in git
    store.remove_repo(repo.id)
    return repo


def _exists(p: Path) -> bool:
    try:
        return p.exists()
    except OSError as e:  # e.g. a name longer than the OS allows
        raise UsageError(f"path {str(p)[:80]}… is not usable: {e.strerror}") from e


def validate_repo_path(p: Path) -> Path:
    """The top of the git work tree at ``p``, or a clear error for every bad case."""
    p = p.expanduser()
    if not _exists(p):
        raise NotFound(f"path {p} does not exist")
    if not p.is_dir():
        raise UsageError(f"{p} is a file, not a directory")
    inside = git.run(["rev-parse", "--is-inside-work-tree"], p, check=False)
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        bare = git.run(["rev-parse", "--is-bare-repository"], p, check=False)
        if bare.returncode == 0 and bare.stdout.strip() == "true":
            raise UsageError(
                f"{p} is a bare repository: sessions need a work tree",
                hint="clone it first (git clone PATH) and register the clone",
            )
        raise UsageError(
            f"{p} is not a git repository", hint="run `git init` there, or pick a repo"
        )
    top = git.toplevel(p)
    assert top is not None
    if git.rev_parse(top, "HEAD") is None:
        raise UsageError(
            f"{top} has no commits yet: a session needs a base commit",
            hint="make a first commit (git commit --allow-empty -m init)",
        )
    return top.resolve()


def same_dir(a: Path, b: Path) -> bool:
    try:
        return a == b or a.samefile(b)
    except OSError:
        return False


# -- identity in the store ---------------------------------------------------------------
def claim(store: Store, repo: Repo) -> str | None:
    """Give a just-registered (or re-pointed) repo its identity, on disk and in the store.

    Keeps the id already in the folder unless another registration owns it (then this
    folder is a copy of that repository and gets an id of its own).
    """
    top = Path(repo.path)
    uid = identity.read_uid(top)
    if uid is not None:
        owner = store.repo_by_uid(uid)
        if owner is not None and owner.id != repo.id:
            if identity.same_git_dir(Path(owner.path), top):
                # A linked worktree of a registered repo: the id file is that repo's.
                store.set_repo_uid(repo.id, None)
                return None
            uid = None
    if uid is None:
        fresh = store.repo_uid(repo.id) or secrets.token_hex(16)
        # A read-only .git keeps no id: such a repo is recognised by its worktree links.
        uid = fresh if identity.write_uid(top, fresh) else None
    store.set_repo_uid(repo.id, uid)
    return uid


def holds_repo(store: Store, repo: Repo) -> bool:
    """Does the registered path still hold that repository (not gone, not replaced)?"""
    top = Path(repo.path)
    dot_git = top / ".git"
    # A git still running against the old path when the folder was moved (the warm-pool
    # filler's `git worktree add`) recreates `.git/worktrees/...` there: such a husk has no
    # HEAD and holds nothing, and must not make the moved repository look like a copy.
    if not (dot_git.is_file() or (dot_git / "HEAD").exists()):
        return False
    uid = store.repo_uid(repo.id)
    return uid is None or identity.read_uid(top) in (uid, None)


def find_moved(store: Store, top: Path) -> tuple[Repo, str] | None:
    """The registered repo that the unregistered repository at ``top`` is, moved here;
    with how it was recognised. None for a new repository or a copy of a registered one."""
    uid = identity.read_uid(top)
    if uid is not None:
        r = store.repo_by_uid(uid)
        if r is not None and not identity.same_path(Path(r.path), top):
            if holds_repo(store, r):
                return None  # a copy: the original is still where it was registered
            return r, f"its .git/{identity.UID_FILE} is the one pa wrote at registration"
    links = {os.path.realpath(p): p for p in identity.linked_worktrees(top)}
    if not links:
        return None
    for s in store.sessions():
        if s.status == Status.DISCARDED or os.path.realpath(s.worktree) not in links:
            continue
        r = store.repo(s.repo_id)
        if identity.same_path(Path(r.path), top) or holds_repo(store, r):
            continue
        return r, f"git in it still links to the worktree of session {s.id}"
    return None


def moved_error(repo: Repo, top: Path, how: str) -> Conflict:
    return Conflict(
        f"{top} is the repository registered as {repo.name!r} at {repo.path}, which is gone: "
        f"it was moved ({how}); nothing was registered",
        hint=f"re-point it (and repair its sessions' worktrees): pa repo move {repo.name} {top}",
    )


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
    if wt.is_dir() and not identity.worktree_linked(wt):
        repo = store.repo(s.repo_id)
        raise Conflict(
            f"the worktree of session {s.id} ({wt}) has lost its link to the repository "
            f"(was the repository moved?); nothing was changed",
            hint=f"pa repo move {repo.name} PATH re-links it (PATH: where the repository is now)",
        )
    return p


def move(store: Store, name: str, new_path: Path) -> dict[str, Any]:
    """Re-point repo ``name`` at ``new_path`` and repair its worktrees' links both ways."""
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
    same = identity.same_path(old, top)
    if not same and holds_repo(store, repo):
        raise Conflict(
            f"{old} still holds repo {name!r}: pa repo move is for a repository that was "
            "moved; nothing was changed",
            hint=f"to register {top} as a repository of its own: pa repo add {top} --name NAME",
        )
    old_uid, new_uid = store.repo_uid(repo.id), identity.read_uid(top)
    sessions = [s for s in store.sessions(repo_id=repo.id) if s.status != Status.DISCARDED]
    links = {os.path.realpath(p) for p in identity.linked_worktrees(top)}
    owner = store.repo_by_uid(new_uid) if new_uid else None
    if (owner is not None and owner.id != repo.id) or (old_uid and new_uid and old_uid != new_uid):
        raise Conflict(
            f"{top} is not repo {name!r}: its .git/{identity.UID_FILE} names another repository; "
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
    for p in [*(Path(s.worktree) for s in sessions), *identity.linked_worktrees(top)]:
        if p.is_dir() and all(not identity.same_path(p, q) for q in paths):
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
        if identity.worktree_linked(wt) and identity.links_into(wt, common):
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
