"""Attempts inside a plan (issue 15 §1: a task may have ``attempts = N``).

Such a task starts as a best-of-N group (``sessions.attempts``: N sessions of its agent
on one base), named ``<plan>.<task>`` so a crash between making the group and recording
it on the task finds it again (nothing starts twice). The plan task has no session of its
own until a person picks one: while attempts work it is ``running``; once they have all
ended it is ``done`` and waits for ``pa compare`` / ``pa pick`` (with or without
``auto_merge``: which attempt is best is a person's call). ``pa pick`` merges the winner
through the merge queue and the task is ``merged``; ``pa pick --no-merge`` makes the
winner the task's session and the plan goes on as for any task (its check, auto_merge or
``pa merge``). Every attempt failing fails the task.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from parallel_agents.errors import PAError
from parallel_agents.models import Session
from parallel_agents.store import Group, GroupTask

if TYPE_CHECKING:
    from parallel_agents.sessions.orchestrator import App


def is_attempts(t: GroupTask) -> bool:
    return int(t.spec.get("attempts") or 1) > 1


def group_name(g: Group, t: GroupTask) -> str:
    return f"{g.name}.{t.key}"


def start(app: App, g: Group, t: GroupTask, base: str) -> str:
    """Start the task's attempts; the attempts group's id."""
    from parallel_agents.sessions import attempts

    spec = t.spec
    ag, _ = attempts.start(
        app,
        str(spec["prompt"]),
        int(spec["attempts"]),
        [str(spec["agent"])],
        repo=str(spec["repo"]),
        cmd=spec.get("cmd") if spec["agent"] == "command" else None,
        model=spec.get("model"),
        base=base,
        title=f"{g.name}/{t.key}: {spec['title']}",
        timeout=spec.get("timeout"),
        name=group_name(g, t),
        runtime=spec.get("runtime"),
    )
    return ag.id


def found(app: App, g: Group, t: GroupTask) -> str | None:
    """The attempts group a start cut short by a crash made, if it made one."""
    try:
        ag = app.store.group(group_name(g, t))
    except PAError:
        return None
    return ag.id if ag.kind == "attempts" else None


def reconcile(app: App, g: Group, t: GroupTask, state_of: Callable[[Session], str]) -> int:
    """Move a task whose attempts have no winner yet after its attempts; a pick makes the
    winner its session (from then on the plan follows that session: ``state_of``)."""
    from parallel_agents.sessions import attempts

    st = app.store
    ag = st.group(str(t.outcome["attempts"]))
    ts = attempts.attempt_tasks(attempts.tasks(st, ag))
    outcome = dict(t.outcome)
    picked = ag.spec.get("picked")
    if picked:
        winner = next(x for x in ts if x.key == picked)
        if winner.session_id is None:
            return 0
        s = st.session(winner.session_id)
        outcome.pop("waiting", None)
        outcome["picked"] = picked
        want = state_of(s)
        return int(st.move_task(g.id, t.key, want, expect=[t.state], session_id=s.id,
                                outcome=outcome))
    states = [x.state for x in ts]
    if any(x in ("waiting", "starting", "running") for x in states):
        want = "running"
    elif "done" in states:
        want = "done"
        outcome["waiting"] = (
            f"its {len(ts)} attempts ended: compare them (pa compare {ag.name}) and pick "
            f"one (pa pick {ag.name} ATTEMPT)"
        )
    elif "stopped" in states:
        want = "stopped"
    else:
        want = "failed"
        outcome["error"] = f"every attempt failed (pa compare {ag.name})"
    if want == t.state and outcome == t.outcome:
        return 0
    return int(st.move_task(g.id, t.key, want, expect=[t.state], outcome=outcome))


def session_ids(app: App, t: GroupTask) -> list[str]:
    """The sessions of a task's attempts (for `pa plan stop`)."""
    agid = t.outcome.get("attempts")
    if not agid:
        return []
    try:
        return [x.session_id for x in app.store.group_tasks(str(agid)) if x.session_id]
    except PAError:
        return []


def continue_stopped(app: App, t: GroupTask, message: str) -> bool:
    """`pa plan resume`: a follow-up to each attempt a stop or a reboot cut off."""
    from parallel_agents.models import Status

    sent = False
    for sid in session_ids(app, t):
        if app.store.session(sid).status in (Status.STOPPED, Status.INTERRUPTED):
            try:
                app.send(sid, message)
                sent = True
            except PAError:
                continue  # it stays stopped; pa compare shows it
    return sent


def view(t: GroupTask) -> dict[str, Any] | None:
    agid = t.outcome.get("attempts")
    return {"group": agid, "n": t.spec.get("attempts")} if agid else None
