"""Lead and child sessions (issue 18): a session may be started by another one, its parent.

The tag lives in the child's ``options`` (``{"parent": {"id": SID, "depth": N}}``, a lead
has none and depth 0), written with the row itself: no migration, and a crash right after
the insert cannot leave an untagged child. Three rules hang on it:

- depth: a child's depth is its parent's + 1, at most ``mcp.max_depth``;
- fan-out: a parent has at most ``mcp.max_children`` children that are not merged or
  discarded (ended children free their place: a lead may work through many in turn);
- merging: a session never merges into a branch a session above it is working on (its
  own branch, or what its worktree has checked out): that agent's files would move
  under it, and the child's work would skip the person's review of the lead's.

Caps are checked under one lock together with the insert, so two children started at
once cannot both take the last place.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from parallel_agents import git
from parallel_agents.config import Settings, config_path, mcp_cap
from parallel_agents.errors import Conflict, NotFound, PAError
from parallel_agents.models import Session, Status
from parallel_agents.store import Store

# Held from the cap check to the child's insert (one server process starts sessions).
ADMIT = threading.Lock()
_ENDED = (Status.MERGED, Status.DISCARDED)


def parent_of(s: Session) -> str | None:
    """The id of the session that started ``s``, or None for a lead."""
    p = s.options.get("parent")
    return str(p["id"]) if isinstance(p, dict) and p.get("id") else None


def depth_of(s: Session) -> int:
    p = s.options.get("parent")
    return int(p.get("depth") or 1) if isinstance(p, dict) else 0


def resolve_parent(store: Store, ref: str) -> Session:
    """The parent named by ``ref`` (an id or unique prefix); a clear error otherwise."""
    try:
        parent = store.resolve_session(ref)
    except NotFound:
        raise NotFound(
            f"unknown parent session {ref.strip()!r}: no session has that id",
            hint="name the parent by its id (pa ls --all shows them)",
        ) from None
    if parent.status == Status.DISCARDED:
        raise Conflict(
            f"parent session {parent.id} was discarded: it cannot start sessions",
            hint=f"pa restore {parent.id} first, or start the session without a parent",
        )
    return parent


def children(store: Store, sid: str, *, live_only: bool = False) -> list[Session]:
    """The sessions ``sid`` started, oldest first."""
    return [s for s in store.sessions(parent=sid) if not (live_only and s.status in _ENDED)]


def admit(store: Store, settings: Settings, parent: Session) -> dict[str, Any]:
    """The ``options["parent"]`` tag of a new child of ``parent``; refuses (before anything
    is made) a child deeper than ``mcp.max_depth`` or one over ``mcp.max_children``.
    Call with ``ADMIT`` held up to the insert."""
    return check_room(store, settings, parent, 1)


def check_room(store: Store, settings: Settings, parent: Session, n: int) -> dict[str, Any]:
    """Refuse ``n`` more children of ``parent`` past a cap; the tag each of them gets."""
    depth = depth_of(parent) + 1
    max_depth = mcp_cap(settings, "max_depth")
    if depth > max_depth:
        raise Conflict(
            f"session {parent.id} is at depth {depth - 1}: a child of it would be at depth "
            f"{depth}, deeper than mcp.max_depth = {max_depth}",
            hint=f"start it from a session higher up, or raise mcp.max_depth in {config_path()}",
        )
    max_children = mcp_cap(settings, "max_children")
    live = children(store, parent.id, live_only=True)
    if len(live) + n > max_children:
        more = "" if n == 1 else f"; {n} more would make {len(live) + n}"
        raise Conflict(
            f"session {parent.id} already has {len(live)} children that are not merged or "
            f"discarded{more}: mcp.max_children = {max_children}",
            hint="merge or discard one of them first (pa ls --children-of "
            f"{parent.id}), or raise mcp.max_children in {config_path()}",
        )
    return {"id": parent.id, "depth": depth}


def refuse_parent_branch(store: Store, s: Session, target: str) -> None:
    """Refuse merging ``s`` into a branch its parent (or a session above that) works on."""
    seen = {s.id}
    pid = parent_of(s)
    while pid and pid not in seen:
        seen.add(pid)
        try:
            up = store.session(pid)
        except (NotFound, PAError, KeyError):
            return  # a parent deleted from the store guards nothing any more
        if up.repo_id == s.repo_id and target in _branches(up):
            who = "its parent" if pid == parent_of(s) else "a session above it"
            raise Conflict(
                f"session {s.id} cannot be merged into {target}: {who}, session {up.id}, "
                f"is working on that branch",
                hint=f"merge it into another branch (pa merge {s.id} --into BRANCH), or let "
                f"session {up.id} bring the work in itself (git merge {s.branch} in its "
                "worktree)",
            )
        pid = parent_of(up)


def _branches(s: Session) -> set[str]:
    """The session's branch, and what its worktree has checked out now."""
    out = {s.branch}
    wt = Path(s.worktree)
    if s.status != Status.DISCARDED and wt.is_dir():
        cur = git.current_branch(wt)
        if cur:
            out.add(cur)
    return out
