"""Issue 17: the driver the server's loop runs: start the runs of routines that are due.

Exactly once per due time: the run row is inserted (UNIQUE(routine, due_at)) together with
the routine's next due time in one transaction BEFORE the session is made. A crash after
the claim leaves a ``claimed`` run without a session (never a second run for that time);
the session, once made, carries ``{"routine": {"name", "run"}}`` in its options, so a
claimed run whose session was made just before a crash is found again (``_adopt``).

Missed runs after downtime: ``once`` runs one session for all the due times that passed
(claimed under the newest one), ``skip`` runs none and waits for the next. Overlap, when
the previous run's session is still working: ``skip`` (the due time is recorded as
skipped), ``queue`` (the due time waits until it is done), ``allow``. Maximum unreviewed
runs (``max_unreviewed``, 0: no limit): with that many runs unread in the inbox, a due time
is recorded as skipped with the reason (``unreviewed_block``); `run NAME` is not limited.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from parallel_agents import git
from parallel_agents.errors import PAError
from parallel_agents.sessions import routine_events
from parallel_agents.sessions import routine_schedule as rs
from parallel_agents.store import Routine, RoutineRun

if TYPE_CHECKING:
    from parallel_agents.sessions.orchestrator import App

log = logging.getLogger(__name__)
# A claimed run older than this without a session was cut short by a crash (making a
# session takes seconds; passes run one at a time, so none is still making it).
ADOPT_AFTER = 30.0


def soonest(app: App) -> float | None:
    """The earliest next due time of an unpaused routine (for the loop's wake-ups)."""
    times = [r.next_due for r in app.store.routines() if not r.paused and r.next_due]
    return min(times) if times else None


def _adopt(app: App, now: float) -> None:
    """Settle runs claimed more than ADOPT_AFTER seconds ago that never recorded their
    session (the server died between the claim and the record): the session the run
    made, found by its tag, or ``failed``. Never a second session for that due time."""
    for x in app.store.claimed_runs():
        if now - x.created_at < ADOPT_AFTER:
            continue
        sid = app.store.routine_run_session(x.routine, x.n)
        if sid:
            app.store.finish_run(x.routine, x.n, "started", session_id=sid)
        else:
            app.store.finish_run(
                x.routine, x.n, "failed", error="pa stopped before the run's session was made"
            )


def drive(app: App, now: float | None = None) -> list[RoutineRun]:
    """One pass: every unpaused routine whose next due time has passed; the runs made."""
    now = time.time() if now is None else now
    _adopt(app, now)
    made: list[RoutineRun] = []
    for r in app.store.routines():
        if r.paused or r.next_due is None or r.next_due > now:
            continue
        try:
            run = _due(app, r, now)
        except Exception:
            log.exception("routine %s: pass failed", r.name)
            continue
        if run is not None:
            made.append(run)
    made += routine_events.drive(app, now, start, _busy, unreviewed_block)  # git events
    return made


def _busy(app: App, r: Routine) -> bool:
    for x in app.store.routine_runs(r.name, 5):
        if x.state == "claimed" and time.time() - x.created_at < ADOPT_AFTER:
            return True
        if x.session_id:
            try:
                if app.store.session(x.session_id).status.active:
                    return True
            except PAError:
                continue
    return False


def _due(app: App, r: Routine, now: float) -> RoutineRun | None:
    assert r.next_due is not None
    t_now = datetime.fromtimestamp(now, UTC)
    # Every due time that passed, from the one stored on: more than one after downtime.
    first = datetime.fromtimestamp(r.next_due, UTC)
    missed = [first, *rs.window(r.triggers, first, t_now)]
    nxt = rs.next_of(r.triggers, t_now)
    next_ts = nxt.timestamp() if nxt else None
    overlap = r.policies.get("overlap", "skip")
    if overlap != "allow" and _busy(app, r):
        if overlap == "queue":
            return None  # next_due stays: the pass after the previous run ends starts it
        run = app.store.claim_run(r.name, missed[-1].timestamp(), "overlap", next_ts)
        if run is not None:
            app.store.finish_run(r.name, run.n, "skipped", error="the previous run was still going")
        return None
    if len(missed) > 1 and r.policies.get("missed", "once") == "skip":
        app.store.set_routine(r.name, next_due=next_ts)
        return None
    blocked = unreviewed_block(app, r)
    if blocked:  # issue 17: --max-unreviewed
        run = app.store.claim_run(r.name, missed[-1].timestamp(), "unreviewed", next_ts)
        if run is not None:
            app.store.finish_run(r.name, run.n, "skipped", error=blocked)
        return None
    reason = "schedule" if len(missed) == 1 else f"missed x{len(missed)}"
    run = app.store.claim_run(r.name, missed[-1].timestamp(), reason, next_ts)
    if run is None:
        return None
    return start(app, r, run)


def unreviewed_block(app: App, r: Routine) -> str | None:
    """Why ``r`` may not start a run now under its ``max_unreviewed`` policy (its unread
    runs in the inbox whose sessions are neither merged nor discarded), or None."""
    cap = int(r.policies.get("max_unreviewed") or 0)
    if cap <= 0:
        return None
    waiting = app.store.unread_runs(r.name)
    if waiting < cap:
        return None
    return (
        f"{waiting} runs wait unreviewed in the inbox (--max-unreviewed {cap}):"
        " read, merge or discard them (pa inbox)"
    )


def prompt_for(
    app: App, r: Routine, due_at: float, extra: dict[str, str] | None = None
) -> tuple[str, str]:
    """The run's prompt with its placeholders filled, and the branch it starts from.

    ``extra`` holds what the trigger brings (``pr_number``, ``text``, a pushed ``commit``);
    a placeholder no trigger filled is empty."""
    repo = app.store.repo(r.repo_id)
    path = Path(repo.path)
    branch = r.base or repo.base or git.current_branch(path) or "HEAD"
    commit = git.rev_parse(path, f"refs/heads/{branch}") or ""
    # {date} is the day in the routine's own zone (its first --cron's --tz): a 00:30
    # Tokyo job run from a UTC machine names the Tokyo day.
    zones = [t["tz"] for t in r.triggers if t.get("kind") == "cron"]
    tz = rs.zone(zones[0]) if zones else None
    date = datetime.fromtimestamp(due_at, tz).date().isoformat()
    values = {"date": date, "branch": branch, "commit": commit, "pr_number": "", "text": ""}
    values.update(extra or {})
    return r.prompt.format(**values), branch


def start(
    app: App, r: Routine, run: RoutineRun, extra: dict[str, str] | None = None
) -> RoutineRun:
    """Make the claimed run's session and record it (or record why it failed)."""
    try:
        prompt, branch = prompt_for(app, r, run.due_at, extra)
        s = app.new_session(
            prompt,
            repo=app.store.repo(r.repo_id).name,
            agent=r.agent,
            cmd=r.cmd if r.agent == "command" else None,
            model=r.model,
            base=branch,
            title=f"{r.name} #{run.n}",
            options={"routine": {"name": r.name, "run": run.n}},
            timeout=r.policies.get("timeout"),  # --timeout: the supervisor stops the turn
        )
    except PAError as e:
        app.store.finish_run(r.name, run.n, "failed", error=e.message)
        run.state, run.error = "failed", e.message
        return run
    app.store.finish_run(r.name, run.n, "started", session_id=s.id)
    run.state, run.session_id = "started", s.id
    return run
