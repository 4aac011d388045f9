"""Issue 17: the inbox, where routine runs wait until the person looks at them.

What counts as "looked at" (``routine_runs.read_at`` set): ``pa inbox read ID|--all``, and
everything that goes through ``App.mark_read`` (opening the session in the dashboard,
``pa show``, ``pa logs``, attaching), and ``pa diff`` (its route calls ``seen``). A merged
or discarded run's session no longer counts as unread (``store._inbox``), whichever path
merged or discarded it. Marking is per session: a run is one session.

The diff size shown is the last turn's checkpoint against the session's base: two commits,
so the answer never changes and is cached; a run without a checkpoint yet shows none.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from parallel_agents.errors import PAError, UsageError
from parallel_agents.store import InboxRun

if TYPE_CHECKING:
    from parallel_agents.sessions.orchestrator import App

# (repo path, base commit, checkpoint commit) -> {files, additions, deletions}: commits are
# immutable, so an entry is right forever; the cap only bounds memory.
_SIZES: dict[tuple[str, str, str], dict[str, int]] = {}
_SIZES_MAX = 2048


def diff_size(app: App, sid: str) -> dict[str, int] | None:
    """Files and lines the session's last checkpoint changed, or None (none yet)."""
    from parallel_agents.git import diffs

    commit = app.store.latest_checkpoint_commit(sid)
    if commit is None:
        return None
    try:
        s = app.store.session(sid)
        repo = app.store.repo(s.repo_id).path
    except PAError:
        return None
    key = (repo, s.base_commit, commit)
    if key not in _SIZES:
        try:
            files = diffs.diff_files(Path(repo), s.base_commit, commit)
        except PAError:
            return None
        if len(_SIZES) >= _SIZES_MAX:
            _SIZES.clear()
        _SIZES[key] = {
            "files": len(files),
            "additions": sum(f.additions for f in files),
            "deletions": sum(f.deletions for f in files),
        }
    return dict(_SIZES[key])


def entry(app: App, x: InboxRun) -> dict[str, Any]:
    """One run as the inbox shows it (``pa inbox --json``, GET /api/v1/inbox)."""
    return {
        "routine": x.routine,
        "run": x.n,
        "session": x.session_id,
        "status": x.status,
        "reason": x.reason,
        "created_at": x.created_at,
        "read": not x.unread,
        "read_at": x.read_at,
        "cost_usd": x.cost_usd or None,
        "diff": diff_size(app, x.session_id),
    }


def listing(
    app: App, *, everything: bool = False, routine: str | None = None
) -> list[dict[str, Any]]:
    """Unread runs (``everything``: all runs with a session), newest first."""
    if routine is not None:
        app.store.routine(routine)  # an unknown name is an error, not an empty inbox
    return [entry(app, x) for x in app.store.inbox_runs(everything=everything, routine=routine)]


def unread_count(app: App) -> int:
    return len(app.store.inbox_runs())


def read(
    app: App, ids: list[str], *, everything: bool = False, routine: str | None = None
) -> list[str]:
    """Mark runs read: the sessions ``ids`` (prefixes resolve as everywhere), or with
    ``everything`` every unread run (of ``routine`` when given). The session ids marked."""
    if everything == bool(ids):
        raise UsageError(
            "name the runs' sessions, or --all", hint="pa inbox read ID…  |  pa inbox read --all"
        )
    if everything:
        if routine is not None:
            app.store.routine(routine)
        sids = [x.session_id for x in app.store.inbox_runs(routine=routine, limit=100_000)]
    else:
        sids = [app.store.resolve_session(i).id for i in ids]
    return seen(app, sids)


def seen(app: App, sids: list[str]) -> list[str]:
    """The person looked at these sessions: their runs are read (nothing when none is a
    routine run, or the disk is full)."""
    if app.store.read_only:
        return []
    return app.store.mark_runs_read(sids)


def board(app: App, runs: int = 5) -> list[dict[str, Any]]:
    """Every routine as the dashboard's Routines page shows it: ``routines.view`` with its
    last ``runs`` runs, each with (when it has a session) its cost, diff size and read."""
    from parallel_agents.sessions import routines

    out = []
    for r in app.store.routines():
        d = routines.view(app, r, runs=runs)
        known = {x.n: x for x in app.store.inbox_runs(everything=True, routine=r.name, limit=runs)}
        for x in d["runs"]:
            got = known.get(x["run"])
            x["cost_usd"] = got.cost_usd or None if got else None
            x["read"] = not got.unread if got else None
            x["diff"] = diff_size(app, got.session_id) if got else None
        out.append(d)
    return out
