"""A session as JSON, built in one place for every caller (the server's routes, the
in-process client). Plain data in, plain dicts out: no FastAPI, nothing from the server.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from parallel_agents.models import Session, Turn


def session_json(s: Session) -> dict[str, Any]:
    """The session's fields, plus whether its worktree is still on disk."""
    d = s.to_json()
    d["worktree_exists"] = Path(s.worktree).is_dir()
    parent = s.options.get("parent")  # issue 18: the lead that started it (lineage.py)
    d["parent"] = parent.get("id") if isinstance(parent, dict) else None
    return d


def session_with_turns(
    s: Session,
    turns: Iterable[Turn],
    run: dict[str, Any] | None = None,
    children: Iterable[Session] = (),
) -> dict[str, Any]:
    """One session in full: ``session_json`` and every turn (GET /sessions/{id}), and
    its run script's status (issue 16 §1: ``workspace_run.status``) when given, and the
    sessions it started (issue 18: ``lineage.children``)."""
    d = session_json(s)
    d["turns"] = [t.to_json() for t in turns]
    d["children"] = [{"id": c.id, "title": c.title, "status": c.status.value} for c in children]
    if run is not None:
        d["run"] = run
    return d
