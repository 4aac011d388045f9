"""Issue 17: the routine verbs (add, list, show, pause, resume, remove, run now, history).

Everything a run needs is checked at ``add`` (triggers, zone, interval, repo, agent, base,
prompt placeholders), so a routine never fails at run time for a reason known before.
The driver that starts runs is ``routine_runner``.
"""

from __future__ import annotations

import string
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parallel_agents import config, git
from parallel_agents.agents.registry import get_agent
from parallel_agents.errors import UsageError
from parallel_agents.sessions import routine_events
from parallel_agents.sessions import routine_schedule as rs
from parallel_agents.store import Routine, RoutineRun

if TYPE_CHECKING:
    from parallel_agents.sessions.orchestrator import App

# {pr_number} and {text} are filled by the triggers that carry them (--on-pr, --api) and
# are empty for the others, so one prompt serves every trigger of a routine.
PLACEHOLDERS = ("date", "branch", "commit", "pr_number", "text")
MISSED = ("once", "skip")
OVERLAP = ("skip", "queue", "allow")


def check_prompt(prompt: str) -> None:
    """Refuse a prompt that names a placeholder pa does not fill (or a broken brace)."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(prompt) if f is not None]
    except ValueError as e:
        raise UsageError(
            f"invalid prompt template: {e}", hint="write a literal brace as {{ or }}"
        ) from None
    for f in fields:
        if f not in PLACEHOLDERS:
            raise UsageError(
                f"unknown placeholder {{{f}}} in the prompt",
                hint=f"use {', '.join('{' + p + '}' for p in PLACEHOLDERS)}; "
                "a literal brace is {{",
            )


def add(
    app: App,
    name: str,
    prompt: str,
    *,
    cron: list[str] | None = None,
    tz: str | None = None,
    every: list[str] | None = None,
    agent: str | None = None,
    cmd: list[str] | None = None,
    model: str | None = None,
    repo: str | None = None,
    cwd: Path | None = None,
    base: str | None = None,
    missed: str = "once",
    overlap: str = "skip",
    now: float | None = None,
    on_push: list[str] | None = None,
    on_pr: bool = False,
    timeout: str | None = None,
    auto_merge: bool = False,
    max_unreviewed: int = 0,
    api_hash: str | None = None,
) -> Routine:
    """Add routine ``name``. ``api_hash``: the hash of its HTTP trigger's token
    (``routine_api.new_token``), for a routine fired over HTTP."""
    from parallel_agents.sessions.orchestrator import check_text

    now = time.time() if now is None else now
    for what, value in (("name", name), ("prompt", prompt), ("model", model), ("base", base)):
        if value is not None:
            check_text(what, value)
    for arg in cmd or []:
        check_text("--cmd", arg)
    if not name.strip() or "/" in name:
        raise UsageError(f"invalid routine name {name!r}", hint="a short name without slashes")
    if not prompt.strip():
        raise UsageError("the prompt is empty", hint="say what the agent should do each run")
    check_prompt(prompt)
    if missed not in MISSED or overlap not in OVERLAP:
        raise UsageError(
            f"unknown policy (missed {missed!r}, overlap {overlap!r})",
            hint=f"--missed {'|'.join(MISSED)}, --overlap {'|'.join(OVERLAP)}",
        )
    if max_unreviewed < 0:
        raise UsageError(
            f"--max-unreviewed {max_unreviewed} is below 0", hint="0 means no limit"
        )
    triggers = [rs.cron_trigger(c, tz) for c in cron or []]
    floor = config.routine_min_interval(app.settings)
    triggers += [rs.every_trigger(e, now, floor) for e in every or []]
    if not triggers and not on_push and not on_pr and api_hash is None:
        raise UsageError(
            "a routine needs a trigger",
            hint='add --cron "0 7 * * 1-5", --every 30m, --on-push BRANCH, --on-pr or --api',
        )
    if tz and not cron:
        raise UsageError("--tz applies to --cron triggers", hint='add --cron "EXPR"')
    agent_name = agent or ("command" if cmd else str(app.settings.default_agent))
    get_agent(agent_name)
    if agent_name == "command" and not cmd:
        raise UsageError("the command agent needs --cmd", hint='e.g. --cmd "./run.sh"')
    r = app.find_repo(repo, cwd)
    target = base or r.base or git.current_branch(Path(r.path))
    if not target or git.rev_parse(Path(r.path), f"refs/heads/{target}") is None:
        raise UsageError(
            f"base {target or 'HEAD'!r} is not a branch of {r.name}", hint="pass --base BRANCH"
        )
    triggers += routine_events.triggers(Path(r.path), on_push or [], on_pr)
    events_policies = routine_events.policies(Path(r.path), timeout, auto_merge)
    after = datetime.fromtimestamp(now, UTC)
    nxt = rs.next_of(triggers, after)
    # One transaction: a crash never leaves an --api routine without its token.
    with app.store.tx():
        added = app.store.add_routine(
            Routine(
                id=0, name=name, prompt=prompt, agent=agent_name, cmd=cmd, model=model,
                repo_id=r.id, base=base, triggers=triggers,
                policies={
                    "missed": missed, "overlap": overlap, "max_unreviewed": max_unreviewed,
                    **events_policies,
                },
                paused=False,
                next_due=nxt.timestamp() if nxt else None, created_at=now,
            )
        )
        if api_hash is not None:  # issue 17: the HTTP trigger (sessions/routine_api.py)
            app.store.set_routine_token(added.id, api_hash)
    return added


def view(app: App, r: Routine, runs: int = 1) -> dict[str, Any]:
    """A routine as JSON: its triggers described, its next run and its last runs."""
    last = app.store.routine_runs(r.name, runs)
    return {
        "name": r.name,
        "prompt": r.prompt,
        "agent": r.agent,
        "cmd": r.cmd,
        "model": r.model,
        "repo": app.store.repo(r.repo_id).name,
        "base": r.base,
        "triggers": [rs.describe(t) for t in r.triggers]
        + (["api"] if app.store.routine_token_hash(r.id) else []),
        "policies": r.policies,
        "paused": r.paused,
        "next_due": None if r.paused else r.next_due,
        "runs": [run_view(app, x) for x in last],
        **routine_events.watch_view(app, r),  # events seen, last trigger error
    }


def run_view(app: App, x: RoutineRun) -> dict[str, Any]:
    status = None
    if x.session_id:
        try:
            status = str(app.store.session(x.session_id).status)
        except Exception:  # removed since: the run still shows
            status = None
    return {
        "run": x.n, "due_at": x.due_at, "reason": x.reason, "state": x.state,
        "session": x.session_id, "status": status, "error": x.error, "created_at": x.created_at,
        **routine_events.merge_view(app, x),  # auto-merge outcome
    }


def listing(app: App) -> list[dict[str, Any]]:
    return [view(app, r) for r in app.store.routines()]


def show(app: App, name: str) -> dict[str, Any]:
    return view(app, app.store.routine(name), runs=10)


def pause(app: App, name: str) -> dict[str, Any]:
    app.store.routine(name)
    app.store.set_routine(name, paused=1)
    return show(app, name)


def resume(app: App, name: str, now: float | None = None) -> dict[str, Any]:
    """Resume from now on: due times that passed while paused are not run."""
    r = app.store.routine(name)
    nxt = rs.next_of(r.triggers, datetime.fromtimestamp(time.time() if now is None else now, UTC))
    app.store.set_routine(name, paused=0, next_due=nxt.timestamp() if nxt else None)
    return show(app, name)


def remove(app: App, name: str) -> dict[str, Any]:
    out = show(app, name)
    app.store.remove_routine(name)
    return out


def history(app: App, name: str) -> list[dict[str, Any]]:
    app.store.routine(name)
    return [run_view(app, x) for x in app.store.routine_runs(name)]


def run_now(app: App, name: str) -> dict[str, Any]:
    """Start a run now, whatever the schedule (the overlap policy does not apply)."""
    from parallel_agents.sessions import routine_runner

    r = app.store.routine(name)
    run = app.store.claim_run(name, time.time(), "manual", None, advance=False)
    assert run is not None  # a fresh time: nothing else claimed it
    return run_view(app, routine_runner.start(app, r, run))
