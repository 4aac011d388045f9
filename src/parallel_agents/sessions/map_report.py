"""A map (or reduce) group's report and its outcomes (issue 15 §4): where each item's
session writes its outcome record, how the end of its turn is collected into its task,
and the table `pa map show` prints.

The end of a mapper's turn (``turn_ended``, from ``Turns.after_turn``) moves its task to
``done`` / ``failed`` / ``stopped`` with an outcome: the mapper's own record when it wrote
a valid one to ``$PA_OUTCOME`` (``map_items.read_outcome``), else one derived from how the
turn ended, saying so. ``sync`` does the same for every task whose session ended without
that hook running (stopped while queued, merged, discarded, a crash), so a group's report
is always up to date. Nothing here starts sessions (``mapreduce`` does): the end of a
turn must not reach up to the orchestrator.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from pathlib import Path
from typing import Any

from parallel_agents.errors import NotFound, PAError, UsageError
from parallel_agents.models import Session, Status
from parallel_agents.sessions import map_items
from parallel_agents.store import Group, GroupTask, Store

BUSY = ("waiting", "starting", "running")
# A task's state once its session's turn ended so.
TASK_STATE = {
    Status.IDLE: "done",
    Status.FAILED: "failed",
    Status.INTERRUPTED: "failed",
    Status.STOPPED: "stopped",
    Status.MERGED: "merged",
    Status.DISCARDED: "discarded",
}
ENDED = ("done", "failed", "stopped", "merged", "discarded")


def outcome_file(home: Path, gid: str, key: str) -> Path:
    """Where task ``key``'s session writes its outcome record (``$PA_OUTCOME``): in pa's
    home, outside every worktree, so it never lands in a diff or a merge."""
    return home / "groups" / gid / "outcomes" / f"{key}.json"



def name_free(store: Store, name: str | None) -> None:
    """Refuse a group name that is taken, before any work is done under it."""
    if name is not None and any(g.name == name for g in store.groups()):
        raise UsageError(
            f"a group named {name!r} exists already",
            hint="choose another --name (see pa map ls), or leave it out for a fresh one",
        )


def group_of(store: Store, ref: str, kind: str | None = None) -> Group:
    """The group ``ref`` (id or name); NotFound with a hint that lists them."""
    try:
        g = store.group(ref)
    except NotFound:
        raise NotFound(f"no group {ref!r}", hint="list the map groups: pa map ls") from None
    if kind is not None and g.kind != kind:
        raise UsageError(
            f"{g.name} is a group of kind {g.kind!r}, not a {kind} group",
            hint="list the map groups: pa map ls",
        )
    return g



# -- outcomes --------------------------------------------------------------------------
def turn_ended(store: Store, s: Session) -> None:
    """A session's turn ended (``Turns.after_turn``): when it works for a map or reduce
    group, collect its outcome into its task."""
    link = s.options.get("group")
    if not isinstance(link, dict) or "id" not in link or "key" not in link:
        return
    try:
        g = store.group(str(link["id"]))
        t = store.group_task(g.id, str(link["key"]))
    except NotFound:
        return
    if g.kind in ("map", "reduce"):  # the other kinds move their tasks themselves
        _collect(store, g, t, store.session(s.id))


def _collect(store: Store, g: Group, t: GroupTask, s: Session) -> None:
    """Move task ``t`` to the state its session ended in, with the turn's outcome."""
    if s.status.active:
        return  # a follow-up runs: its own end collects
    turn = store.last_turn(s.id)
    n = turn.n if turn is not None else 0
    to = TASK_STATE.get(s.status, "failed")
    outcome: dict[str, Any] | None = None
    if t.outcome.get("turn") != n or t.state in ("starting", "running"):
        outcome = _outcome(store.home, g.id, t.key, s, n)
    store.move_task(
        g.id, t.key, to, expect=["starting", "running", *ENDED], session_id=s.id, outcome=outcome
    )
    maybe_done(store, g.id)


def _outcome(home: Path, gid: str, key: str, s: Session, n: int) -> dict[str, Any]:
    """Turn ``n``'s outcome: the record the session wrote (taken, so a later turn that
    writes none is not credited with it), else one derived from how the turn ended."""
    live = outcome_file(home, gid, key)
    kept = live.with_name(f"{key}.turn-{n}.json")
    with contextlib.suppress(FileNotFoundError):  # (another reader took it first)
        os.replace(live, kept)
    record, why = map_items.read_outcome(kept)
    ended = s.status.value
    if record is not None:
        return {**record, "source": "record", "turn": n, "ended": ended}
    ok = s.status in (Status.IDLE, Status.MERGED)
    return {
        "status": "success" if ok else "failure",
        "summary": (s.error or f"the turn ended {ended}")[: map_items.MAX_SUMMARY],
        "source": "derived",
        "note": f"{why}; derived from how the turn ended ({ended})",
        "turn": n,
        "ended": ended,
    }


def maybe_done(store: Store, gid: str) -> None:
    g = store.group(gid)
    if g.state == "running" and not any(t.state in BUSY for t in store.group_tasks(gid)):
        store.set_group(gid, state="done")


def sync(store: Store, g: Group) -> None:
    """Collect the outcome of every task whose session ended unseen by ``turn_ended``
    (stopped while queued, discarded, merged, or a crash came first)."""
    for t in store.group_tasks(g.id):
        if t.state == "waiting":
            continue
        sid = t.session_id or store.task_session(g.id, t.key)
        if sid is None:
            continue
        try:
            s = store.session(sid)
        except NotFound:
            continue
        if s.status.active:
            if t.state == "starting":  # made, not recorded (a crash, or being made now)
                store.move_task(g.id, t.key, "running", expect=["starting"], session_id=s.id)
            continue
        turn = store.last_turn(s.id)
        n = turn.n if turn is not None else 0
        if (
            t.state in ("starting", "running")
            or t.outcome.get("turn") != n
            or t.state != TASK_STATE.get(s.status, "failed")
        ):
            _collect(store, g, t, s)
    maybe_done(store, g.id)


# -- the report ------------------------------------------------------------------------
def report(store: Store, ref: str) -> dict[str, Any]:
    """A group's table: each item with its state, session, outcome, diff size and check."""
    g = group_of(store, ref)
    sync(store, g)
    g = store.group(g.id)
    tasks = store.group_tasks(g.id)
    checks = store.check_summaries()
    repo_path = _repo_path(store, g)
    rows = []
    for t in tasks:
        s = session_or_none(store, t.session_id)
        rows.append(
            {
                "key": t.key,
                "item": t.spec.get("item", t.key),
                "state": t.state,
                "session": s.id if s else None,
                "status": s.status.value if s else None,
                "branch": s.branch if s else None,
                "outcome": t.outcome or None,
                "diff": _diff_size(store, repo_path, s),
                "check": checks.get(s.id) if s else None,
                "started_at": t.started_at,
                "ended_at": t.ended_at,
            }
        )
    counts = {
        "items": len(tasks),
        # Waiting or starting with no session: pa stopped while starting them (resume).
        "not_started": sum(1 for r in rows if r["state"] in BUSY and not r["session"]),
        "states": dict(Counter(t.state for t in tasks)),
        "outcomes": dict(Counter(t.outcome.get("status") for t in tasks if t.outcome)),
    }
    out = {"group": g.to_json(), "counts": counts, "items": rows}
    reduces = []
    for rid in g.spec.get("reduces") or []:
        with contextlib.suppress(NotFound):
            rg = store.group(rid)
            rt = store.group_tasks(rid)
            reduces.append(
                {
                    "id": rg.id,
                    "name": rg.name,
                    "state": rg.state,
                    "session": rt[0].session_id if rt else None,
                    "merged": [e["key"] for e in rg.spec.get("merged", [])],
                }
            )
    out["reduces"] = reduces
    return out


def map_groups(store: Store) -> list[dict[str, Any]]:
    """Every map group, oldest first, with its items counted by state."""
    out = []
    for g in store.groups("map"):
        if g.state == "running":
            sync(store, g)
            g = store.group(g.id)
        tasks = store.group_tasks(g.id)
        out.append(
            {
                **g.to_json(),
                "items": len(tasks),
                "states": dict(Counter(t.state for t in tasks)),
                "outcomes": dict(Counter(t.outcome.get("status") for t in tasks if t.outcome)),
            }
        )
    return out


def _repo_path(store: Store, g: Group) -> Path | None:
    if g.repo_id is None:
        return None
    p = Path(store.repo(g.repo_id).path)
    return p if (p / ".git").exists() else None


def session_or_none(store: Store, sid: str | None) -> Session | None:
    if sid is None:
        return None
    try:
        return store.session(sid)
    except NotFound:
        return None


def _diff_size(store: Store, repo: Path | None, s: Session | None) -> dict[str, int] | None:
    """Files and lines the session's last checkpoint changed against its base (None
    before its first turn ended)."""
    from parallel_agents.git import diffs

    if repo is None or s is None:
        return None
    head = store.latest_checkpoint_commit(s.id)
    if head is None:
        return None
    try:
        files = diffs.diff_files(repo, s.base_commit, head)
    except PAError:
        return None
    return {
        "files": len(files),
        "added": sum(f.additions for f in files),
        "deleted": sum(f.deletions for f in files),
    }
