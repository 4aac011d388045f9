"""Review verbs on sessions: which commits to diff, checkpoints at turn ends, checks.

The git-level work lives in ``review`` and ``merge``; this module maps sessions and
turns onto refs and records results in the store.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from . import git
from .errors import NotFound, UsageError
from .models import Session

if TYPE_CHECKING:
    from .service import App


def turn_ref(sid: str, n: int) -> str:
    return f"refs/pa/sessions/{sid}/turns/{n}"


def live_ref(sid: str) -> str:
    return f"refs/pa/sessions/{sid}/live"


def snapshot(app: App, s: Session) -> tuple[str, str | None]:
    """Commit for the session's current state; a note when the worktree is gone."""
    from . import review

    repo_path = Path(app.store.repo(s.repo_id).path)
    wt = Path(s.worktree)
    if wt.is_dir() and (wt / ".git").exists():
        return review.checkpoint(wt, live_ref(s.id), f"pa snapshot of {s.id}"), None
    archive = (s.options.get("archive") or {}).get("commit")
    if archive:
        return str(archive), f"note: session {s.id} is discarded; showing its archived state"
    head = git.rev_parse(repo_path, f"refs/heads/{s.branch}")
    if head is None:
        raise NotFound(f"session {s.id} has neither a worktree nor a branch left")
    return head, f"note: the worktree {s.worktree} is missing; showing the branch's commits only"


def diff_range(app: App, s: Session, turn: int | None) -> tuple[str, str, str | None]:
    """(base, target, note) of what the session (or one turn) changed."""
    repo_path = Path(app.store.repo(s.repo_id).path)
    if turn is None:
        target, note = snapshot(app, s)
        return s.base_commit, target, note
    end = git.rev_parse(repo_path, turn_ref(s.id, turn))
    if end is None:
        n_turns = len(app.store.turns(s.id))
        if 1 <= turn <= n_turns and turn == n_turns:
            target, note = snapshot(app, s)
            end = target
        else:
            raise UsageError(
                f"session {s.id} has no checkpoint for turn {turn}",
                hint=f"it has {n_turns} turn(s)",
            )
    start = s.base_commit if turn == 1 else git.rev_parse(repo_path, turn_ref(s.id, turn - 1))
    if start is None:
        raise UsageError(f"session {s.id} has no checkpoint for turn {turn - 1}")
    return start, end, None
