"""Issue 17: routines started by git events, and the per-routine turn timeout and
auto-merge policies. ``routine_runner.drive`` calls ``drive`` once per pass.

Triggers (checked at ``add``, like every other trigger):

- ``{"kind": "push", "branch": "main", "start": <sha>}`` (``--on-push BRANCH``): a run
  when ``refs/heads/BRANCH`` of the routine's repo points at a commit other than the last
  one seen (at first ``start``, the commit it had at ``add``: no run for it). Several
  commits pushed between two passes give one run, for the newest; ``{commit}`` is it.
- ``{"kind": "pr", "after": <number>}`` (``--on-pr``): every ``routines.pr_poll`` seconds
  ``gh pr list`` (argv, in the repo) names the open pull requests; each one numbered above
  the highest handled so far (at first ``after``, the highest open at ``add``: those are
  not run) gives a run with ``{pr_number}``. GitHub numbers pull requests upwards, so a
  higher number is a newer pull request.

Exactly once per event: the run row carries the event (``<routine id>:push:<branch>:<sha>``
or ``<routine id>:pr:<number>``) under a UNIQUE index, claimed in the same transaction
that moves the trigger's ``seen`` mark, before the session is made; a crash after the
claim is settled like a scheduled run's (``routine_runner._adopt``). What went wrong with
a trigger (gh missing or logged out, the branch deleted) is stored as its error, shown by
``pa routine show``; the pass carries on. Paused, a routine keeps its marks moving and
starts nothing: what happened while paused is not run on resume (like due times).

Overlap applies as for scheduled runs: ``skip`` records the event's run as skipped,
``queue`` leaves the event waiting (its mark does not move), ``allow`` runs it.

Policies: ``timeout`` (seconds; the session's turn is stopped after it by the supervisor,
as for a plan task's ``timeout``) and ``auto_merge``: once a run's turn is done, the
session goes through the merge queue (``sessions.merge.merge_sessions``), which runs the
repo's configured check on the merged result and merges only when it passes and nothing
conflicts. A routine with ``--auto-merge`` needs that check (refused at ``add`` without
one): unattended work is never merged unchecked. Otherwise the outcome (check failed,
conflict, the turn failed) is recorded on the run for a person, once per turn.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parallel_agents import config, git
from parallel_agents.errors import PAError, UsageError
from parallel_agents.git.gh import gh_json
from parallel_agents.models import Status
from parallel_agents.sessions import routine_schedule as rs
from parallel_agents.store import Routine, RoutineRun

if TYPE_CHECKING:
    from parallel_agents.sessions.orchestrator import App

log = logging.getLogger(__name__)
# routine_runner's ``start``, ``_busy`` and ``unreviewed_block``, passed in (it imports
# this module).
Start = Callable[["App", Routine, RoutineRun, dict[str, str]], RoutineRun]
Busy = Callable[["App", Routine], bool]
Blocked = Callable[["App", Routine], "str | None"]
PR_FIELDS = "number,title,headRefName,url"
PR_LIST = ["pr", "list", "--state", "open", "--limit", "100", "--json", PR_FIELDS]
GH_TIMEOUT = 60.0  # seconds: a hung gh must not hold up the routine pass for long


# -- add: triggers and policies, checked whole --------------------------------------------
def push_trigger(repo_path: Path, branch: str) -> rs.Trigger:
    from parallel_agents.sessions.orchestrator import check_text

    check_text("--on-push", branch)
    sha = None
    if branch.strip() and not branch.startswith("-"):
        sha = git.rev_parse(repo_path, f"refs/heads/{branch}")
    if sha is None:
        raise UsageError(
            f"--on-push: {branch!r} is not a branch of {repo_path}",
            hint="name an existing branch (git branch --list shows them)",
        )
    return {"kind": "push", "branch": branch, "start": sha}


def pr_trigger(repo_path: Path) -> rs.Trigger:
    """The ``--on-pr`` trigger: gh is asked now, so a missing or logged-out gh is an error
    at ``add``; the open pull requests it names are not run."""
    prs = list_prs(repo_path)
    return {"kind": "pr", "after": max((p["number"] for p in prs), default=0)}


def triggers(repo_path: Path, on_push: list[str], on_pr: bool) -> list[rs.Trigger]:
    if len(set(on_push)) != len(on_push):
        raise UsageError("a branch is named twice in --on-push", hint="name each branch once")
    out = [push_trigger(repo_path, b) for b in on_push]
    return out + ([pr_trigger(repo_path)] if on_pr else [])


def policies(repo_path: Path, timeout: str | None, auto_merge: bool) -> dict[str, Any]:
    """``--timeout`` (seconds) and ``--auto-merge`` (which needs the repo's check)."""
    out: dict[str, Any] = {}
    if timeout is not None:
        out["timeout"] = float(rs.parse_interval(timeout))
    if auto_merge:
        if not config.load_repo_config(repo_path).check:
            raise UsageError(
                f"--auto-merge needs a check for {repo_path}: pa merges a run only when "
                "the repo's check passes on the merged result",
                hint=f'set check = "COMMAND" in {repo_path / config.REPO_FILE} '
                "(e.g. check = \"make test\"), or leave out --auto-merge",
            )
        out["auto_merge"] = True
    return out


# -- gh ------------------------------------------------------------------------------------
def list_prs(repo_path: Path) -> list[dict[str, Any]]:
    """The repo's open pull requests as ``gh pr list`` names them; a PAError saying what
    to do when gh is missing, logged out or failing."""
    data = gh_json(
        PR_LIST, cwd=repo_path, why="see new pull requests", timeout=GH_TIMEOUT,
        fail_hint=f"run `gh pr list` in {repo_path} to see why",
    )
    if not isinstance(data, list) or not all(
        isinstance(p, dict) and isinstance(p.get("number"), int) for p in data
    ):
        raise PAError(f"gh pr list answered unexpected JSON: {json.dumps(data)[:200]}")
    return data


# -- the pass ------------------------------------------------------------------------------
def drive(
    app: App, now: float, start: Start, busy: Busy, blocked: Blocked
) -> list[RoutineRun]:
    """One pass over every routine's event triggers and auto-merges; the runs made
    (``start`` makes a claimed run's session, ``busy``: the previous run still works,
    ``blocked``: why the ``max_unreviewed`` policy holds runs back, or None)."""
    made: list[RoutineRun] = []
    fire = _Fire(start, busy, blocked)
    for r in app.store.routines():
        try:
            for t in r.triggers:
                if t["kind"] == "push":
                    made += _push(app, r, t, now, fire)
                elif t["kind"] == "pr":
                    made += _prs(app, r, t, now, fire)
            if r.policies.get("auto_merge"):
                _auto_merge(app, r)
        except Exception:  # one routine must not stop the others, nor the loop
            log.exception("routine %s: event pass failed", r.name)
    return made


def _key(t: rs.Trigger) -> str:
    return f"push:{t['branch']}" if t["kind"] == "push" else "pr"


class _Fire:
    def __init__(self, start: Start, busy: Busy, blocked: Blocked) -> None:
        self.start, self.busy, self.blocked = start, busy, blocked

    def __call__(
        self, app: App, r: Routine, key: str, event: str, seen: str, reason: str,
        now: float, extra: dict[str, str],
    ) -> RoutineRun | bool | None:
        """Claim and start the event's run, by the overlap policy. False: it waits."""
        if r.paused:
            app.store.set_watch(r.id, key, seen=seen, error=None)
            return None
        overlap = r.policies.get("overlap", "skip")
        busy = overlap != "allow" and self.busy(app, r)
        if busy and overlap == "queue":
            return False
        run = app.store.claim_event(r.name, r.id, key, f"{r.id}:{event}", seen, reason, now)
        if run is None:
            return None
        held = "the previous run was still going" if busy else self.blocked(app, r)
        if held:  # the event is recorded as skipped: it is not run later
            app.store.finish_run(r.name, run.n, "skipped", error=held)
            return None
        return self.start(app, r, run, extra)


def _push(app: App, r: Routine, t: rs.Trigger, now: float, fire: _Fire) -> list[RoutineRun]:
    key = _key(t)
    w = app.store.watches(r.id).get(key)
    seen = (w.seen if w else None) or t["start"]
    path = Path(app.store.repo(r.repo_id).path)
    sha = git.rev_parse(path, f"refs/heads/{t['branch']}")
    if sha is None:
        error = f"branch {t['branch']!r} is gone from {path}"
        if w is None or w.error != error:
            app.store.set_watch(r.id, key, error=error, checked_at=now)
        return []
    if sha == seen:
        if w is not None and w.error:
            app.store.set_watch(r.id, key, error=None, checked_at=now)
        return []
    reason = f"push {t['branch']} {sha[:8]}"
    run = fire(app, r, key, f"push:{t['branch']}:{sha}", sha, reason, now, {"commit": sha})
    return [run] if isinstance(run, RoutineRun) else []


def _prs(app: App, r: Routine, t: rs.Trigger, now: float, fire: _Fire) -> list[RoutineRun]:
    key = _key(t)
    w = app.store.watches(r.id).get(key)
    poll = config.routine_pr_poll(app.settings)
    if w is not None and w.checked_at is not None and now - w.checked_at < poll:
        return []
    path = Path(app.store.repo(r.repo_id).path)
    try:
        prs = list_prs(path)
    except PAError as e:
        error = e.message + (f" ({e.hint})" if e.hint else "")
        app.store.set_watch(r.id, key, error=error, checked_at=now)
        return []
    app.store.set_watch(r.id, key, error=None, checked_at=now)
    high = int((w.seen if w and w.seen else None) or t["after"])
    made: list[RoutineRun] = []
    for p in sorted((p for p in prs if p["number"] > high), key=lambda p: p["number"]):
        n = int(p["number"])
        title = " ".join(str(p.get("title") or "").split())[:60]
        reason = f"pr #{n} {title}".strip()
        run = fire(app, r, key, f"pr:{n}", str(n), reason, now, {"pr_number": str(n)})
        if run is False:
            break  # queued: this one and the newer ones wait for the next look
        if isinstance(run, RoutineRun):
            made.append(run)
    return made


# -- auto-merge ----------------------------------------------------------------------------
_ENDED = {Status.FAILED: "failed", Status.STOPPED: "was stopped", Status.INTERRUPTED: "was cut off"}


def _auto_merge(app: App, r: Routine) -> None:
    """Each started run whose turn is done goes through the merge queue, once per turn."""
    from parallel_agents.sessions.merge import merge_sessions

    for x in app.store.runs_to_merge(r.name):
        assert x.session_id is not None
        rec = app.store.run_merge(r.name, x.n) or {}
        try:
            s = app.store.session(x.session_id)
        except PAError:
            app.store.set_run_merge(r.name, x.n, {"status": "gone", "settled": True})
            continue
        if s.status in (Status.MERGED, Status.DISCARDED):  # a person (or a crash) did it
            app.store.set_run_merge(r.name, x.n, {**rec, "status": s.status.value, "settled": True})
            continue
        if s.status.active or rec.get("turn") == s.turns:
            continue
        out: dict[str, Any] = {"turn": s.turns}
        if s.status != Status.IDLE:
            why = f"the run's turn {_ENDED.get(s.status, s.status.value)}"
            app.store.set_run_merge(r.name, x.n, {**out, "status": "left", "why": why})
            continue
        repo_path = Path(app.store.repo(r.repo_id).path)
        if not config.load_repo_config(repo_path).check:
            why = "the repo has no check configured any more"
            app.store.set_run_merge(r.name, x.n, {**out, "status": "left", "why": why})
            continue
        try:
            res = merge_sessions(app, [s.id])
        except PAError as e:
            app.store.set_run_merge(r.name, x.n, {**out, "status": "left", "why": e.message})
            continue
        [item] = res["items"]
        if item["status"] in ("merged", "up_to_date"):
            out.update(status="merged", commit=item.get("commit"), settled=True)
        elif item["status"] == "conflict":
            paths = ", ".join(item.get("conflict_paths") or [])
            out.update(status="left", why=f"it conflicts with its base in {paths}")
        elif item["status"] == "check_failed":
            out.update(status="left", why="the repo's check failed on the merged result")
        else:
            detail = f"{item['status'].replace('_', ' ')} {item.get('detail') or ''}".strip()
            out.update(status="left", why=detail)
        app.store.set_run_merge(r.name, x.n, out)


# -- views ---------------------------------------------------------------------------------
def watch_view(app: App, r: Routine) -> dict[str, Any]:
    """What each event trigger has seen and its last error (for ``pa routine show``)."""
    ws = app.store.watches(r.id)
    events = []
    for t in r.triggers:
        if t["kind"] not in ("push", "pr"):
            continue
        w = ws.get(_key(t))
        seen = (w.seen if w else None) or str(t.get("start") or t.get("after"))
        events.append({
            "trigger": rs.describe(t), "seen": seen, "error": w.error if w else None,
            "checked_at": w.checked_at if w else None,
        })
    errors = [e["error"] for e in events if e["error"]]
    return {"events": events, "trigger_error": errors[0] if errors else None}


def merge_view(app: App, x: RoutineRun) -> dict[str, Any]:
    """A run's auto-merge outcome (None when not tried): ``merged`` or ``left`` and why."""
    m = app.store.run_merge(x.routine, x.n)
    if m is None:
        return {"merge": None}
    return {"merge": {k: m.get(k) for k in ("status", "why", "commit") if m.get(k)}}
