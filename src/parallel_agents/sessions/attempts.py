"""Best-of-N attempts (issue 15 §2): one prompt, N sessions on one base, compared side by
side; one is picked (merged, or only marked) and the rest are discarded (archived, so
`pa restore` brings any of them back). A judge agent may rank them (``sessions.judge``).

An attempts group holds one task per attempt, keys "1".."N". Each attempt's session is
made with ``{"group": {"id", "key"}}`` in its options, so a crash between making it and
recording it on the task leaves it findable (``Store.task_session``). Task states follow
the sessions lazily: every read of the group (``tasks``) moves them on by compare and set,
so two readers at once move each task once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parallel_agents import git
from parallel_agents.agents import get_agent
from parallel_agents.config import config_path, max_attempts
from parallel_agents.errors import Conflict, NotFound, PAError, UsageError
from parallel_agents.models import Session, Status
from parallel_agents.store import Store
from parallel_agents.store._groups import Group, GroupTask

if TYPE_CHECKING:
    from parallel_agents.sessions.orchestrator import App

KIND = "attempts"
# The task state a session's status stands for, once its turn has ended.
_ENDED = {
    Status.IDLE: "done",
    Status.FAILED: "failed",
    Status.INTERRUPTED: "failed",
    Status.STOPPED: "stopped",
    Status.MERGED: "merged",
    Status.DISCARDED: "discarded",
}
_MOVABLE = ("starting", "running", "done", "failed", "stopped", "merged", "discarded")
# One pick at a time in this process: the server is the one writer of a PA_HOME.
_PICKING = threading.Lock()


def agents_for(n: int, agents: Sequence[str]) -> list[str]:
    """The agent of each of ``n`` attempts: round-robin over ``agents``."""
    return [agents[i % len(agents)] for i in range(n)]


def _check_count(app: App, n: int) -> None:
    cap = max_attempts(app.settings)
    if n < 1:
        raise UsageError(
            f"--attempts must be at least 1 (got {n})",
            hint="say how many sessions should try the prompt, e.g. --attempts 3",
        )
    if n > cap:
        raise UsageError(
            f"--attempts {n} is more than the setting limits.max_attempts allows ({cap})",
            hint=f"ask for at most {cap}, or raise limits.max_attempts in {config_path()}",
        )


def _check_agents(app: App, names: Sequence[str], cmd: list[str] | None) -> None:
    """Refuse, before anything is made, agents no attempt could start."""
    from parallel_agents.agents.base import TurnContext

    for name in dict.fromkeys(names):
        if not name:
            raise UsageError(
                "an empty agent name in --agent", hint="list agents with commas: claude,codex"
            )
        adapter = get_agent(name)
        if name == "command":
            if not cmd:
                raise UsageError(
                    "the command agent needs --cmd 'PROGRAM ARGS…'",
                    hint="or choose real agents with --agent claude,codex",
                )
            # Validates the program exists, as `pa new` does, before any git work.
            adapter.build(
                TurnContext(prompt="", worktree=Path.cwd(), session_dir=Path.cwd(), turn=1, cmd=cmd)
            )
        else:
            adapter.resolve_binary(app.settings.agent_settings(name))


def start(
    app: App,
    prompt: str,
    n: int,
    agents: Sequence[str] | None = None,
    *,
    repo: str | None = None,
    cmd: list[str] | None = None,
    model: str | None = None,
    base: str | None = None,
    title: str | None = None,
    timeout: float | None = None,
    env: dict[str, str] | None = None,
    name: str | None = None,
    parent: str | None = None,
    runtime: str | None = None,
) -> tuple[Group, list[Session]]:
    """Start ``n`` sessions on ``prompt``, all on one base commit, as one attempts group.

    Everything a user can get wrong (the count, an agent, the repo, the base) is refused
    before the group exists. The sessions take their places among the running ones like
    any other (queued past ``limits.max_running``). An attempt whose session cannot be
    made is a failed task; when none can be made the group is failed and the first
    error raised.
    """
    from parallel_agents.sessions.orchestrator import check_text, default_title

    _check_count(app, n)
    if not prompt.strip():
        raise UsageError("the prompt is empty", hint="say what the agents should do")
    check_text("prompt", prompt)
    names = list(agents) if agents else ["command" if cmd else app.settings.default_agent]
    _check_agents(app, names, cmd)
    if parent is not None:  # issue 18: room for all n children, before the group exists
        from parallel_agents.sessions import lineage

        lead = lineage.resolve_parent(app.store, parent)
        lineage.check_room(app.store, app.settings, lead, n)
        parent = lead.id
    r = app.find_repo(repo)
    repo_path = Path(r.path)
    base_ref = base or r.base or git.current_branch(repo_path) or "HEAD"
    # One commit for all: a base branch that moves while they start does not split them.
    base_commit = git.rev_parse(repo_path, base_ref)
    if base_commit is None:
        raise UsageError(
            f"unknown base {base_ref!r}: it names no commit in {repo_path}",
            hint="pass an existing branch, tag or commit with --base",
        )
    label = (title or default_title(prompt)).strip() or "attempt"
    spec = {
        "prompt": prompt,
        "agents": names,
        "n": n,
        "base_ref": base_ref,
        "base_commit": base_commit,
        "title": label,
    }
    tasks = [(str(i + 1), {"agent": a}) for i, a in enumerate(agents_for(n, names))]
    g = app.store.create_group(KIND, name, r.id, spec, tasks)
    made: list[Session] = []
    errors: list[PAError] = []
    for key, t in tasks:
        if not app.store.move_task(g.id, key, "starting", expect=["waiting"]):
            continue
        agent = str(t["agent"])
        try:
            s = app.new_session(
                prompt,
                repo=r.name,
                agent=agent,
                cmd=cmd if agent == "command" else None,
                model=model,
                base=base_ref,
                title=f"{label} [{key}/{n}]",
                timeout=timeout,
                env=env,
                options={"group": {"id": g.id, "key": key, "kind": g.kind, "name": g.name}},
                parent=parent,
                runtime=runtime,
            )
        except PAError as e:
            errors.append(e)
            app.store.move_task(
                g.id, key, "failed", expect=["starting"], outcome={"error": e.message},
                session_id=app.store.task_session(g.id, key),
            )  # fmt: skip
            continue
        app.store.move_task(g.id, key, "running", expect=["starting"], session_id=s.id)
        made.append(s)
    if not made:
        app.store.set_group(g.id, state="failed")
        raise PAError(
            f"no attempt of group {g.name} could start: {errors[0].message}", hint=errors[0].hint
        )
    return app.store.group(g.id), made


# -- reading a group ------------------------------------------------------------------
def group(store: Store, ref: str) -> Group:
    """The attempts group ``ref`` (id or name); a group of another kind is refused."""
    g = store.group(ref)
    if g.kind != KIND:
        raise UsageError(
            f"group {g.name} is a {g.kind} group, not attempts",
            hint="pa compare and pa pick work on groups made by pa new --attempts N",
        )
    return g


def tasks(store: Store, g: Group) -> list[GroupTask]:
    """The group's tasks, their states first brought up to date with their sessions."""
    for t in store.group_tasks(g.id):
        if not t.key.isdigit():
            continue  # a judge's task is the judge's to move (sessions.judge)
        sid = t.session_id or store.task_session(g.id, t.key)
        if sid is None or t.state in ("waiting", "picked") or not store.has_session(sid):
            continue
        s = store.session(sid)
        now = "running" if s.status.active else _ENDED.get(s.status, t.state)
        if t.state not in _MOVABLE or (t.state == "discarded" and g.state == "picked"):
            continue  # the person's verdict stays, also on a restored attempt
        if now != t.state or t.session_id is None:
            store.move_task(g.id, t.key, now, expect=[t.state], session_id=sid)
    return store.group_tasks(g.id)


def attempt_tasks(all_tasks: list[GroupTask]) -> list[GroupTask]:
    """The attempts among a group's tasks (a judge's run is a task too)."""
    return [t for t in all_tasks if t.key.isdigit()]


def _duration(store: Store, sid: str) -> float | None:
    now = time.time()
    spans = [
        (t.ended_at or now) - t.started_at for t in store.turns(sid) if t.started_at is not None
    ]
    return round(sum(spans), 3) if spans else None


def _usage(store: Store, sid: str) -> dict[str, Any]:
    turns = store.turns(sid)
    costs = [t.cost_usd for t in turns if t.cost_usd is not None]
    return {
        "input_tokens": sum(t.input_tokens for t in turns),
        "output_tokens": sum(t.output_tokens for t in turns),
        "cost_usd": round(sum(costs), 6) if costs else None,
    }


def _diff_size(store: Store, s: Session) -> dict[str, Any]:
    from parallel_agents.git import diffs
    from parallel_agents.sessions import review

    try:
        base, target, _ = review.diff_range(store, s, None)
        files = diffs.diff_files(Path(store.repo(s.repo_id).path), base, target)
    except PAError as e:
        return {"files": None, "additions": None, "deletions": None, "diff_error": e.message}
    return {
        "files": len(files),
        "additions": sum(f.additions for f in files),
        "deletions": sum(f.deletions for f in files),
    }


def _forecast(store: Store, g: Group, members: set[str]) -> dict[str, dict[str, Any]]:
    """Per attempt: clean with the base's tip? which live sessions outside the group it is
    forecast to conflict with (attempts at one task collide with each other by nature)."""
    from parallel_agents.sessions import review

    try:
        fc = review.conflicts(store, g.repo_id)
    except PAError as e:
        return {sid: {"clean_with_base": None, "with": [], "error": e.message} for sid in members}
    out: dict[str, dict[str, Any]] = {}
    for sid in members:
        f = fc["sessions"].get(sid)
        if f is None:
            continue
        out[sid] = {
            "clean_with_base": f.get("clean_with_base"),
            "base_paths": f.get("base_conflict_paths") or [],
            "with": [x for x in f.get("conflicts_with") or [] if x not in members],
        }
    return out


def compare(app: App, ref: str) -> dict[str, Any]:
    """One row per attempt: status, check, diff size, duration, tokens and cost, forecast
    conflicts with other live work, and the judge's score when one ranked them."""
    from parallel_agents.sessions import judge

    store = app.store
    g = judge.collect(app, group(store, ref))
    ts = attempt_tasks(tasks(store, g))
    sessions = {t.key: store.session(t.session_id) for t in ts if t.session_id}
    live = {s.id for s in sessions.values() if s.status.live}
    fc = _forecast(store, g, live) if live else {}
    verdict = g.spec.get("judge") or {}
    scores = {r["attempt"]: r for r in verdict.get("ranking") or []}
    rows = []
    for t in ts:
        row: dict[str, Any] = {
            "attempt": t.key,
            "agent": t.spec.get("agent"),
            "task": t.state,
            "session": t.session_id,
            "error": t.outcome.get("error"),
        }
        s = sessions.get(t.key)
        if s is not None:
            chk = store.last_check(s.id)
            row.update(
                status=s.status.value,
                title=s.title,
                branch=s.branch,
                error=s.error or row["error"],
                check=None
                if chk is None
                else {k: chk.get(k) for k in ("ok", "timed_out", "exit_code", "command", "turn")},
                duration_s=_duration(store, s.id),
                conflicts=fc.get(s.id),
            )
            row.update(_diff_size(store, s))
            row.update(_usage(store, s.id))
        rank = scores.get(t.key)
        row["score"] = rank["score"] if rank else None
        row["rank"] = rank["rank"] if rank else None
        row["reason"] = rank["reason"] if rank else None
        rows.append(row)
    return {"group": g.to_json(), "attempts": rows, "judge": verdict or None}


# -- picking --------------------------------------------------------------------------
def pick(
    app: App,
    ref: str,
    key: str,
    *,
    merge: bool = True,
    strategy: str | None = None,
    into: str | None = None,
) -> dict[str, Any]:
    """Merge attempt ``key`` through the merge queue (or, ``merge=False``, only mark it)
    and discard every other attempt (archived: `pa restore` brings one back).

    Nothing is discarded unless the winner merged: a conflict or a failed check leaves
    the group as it was. A group is picked once.
    """
    from parallel_agents.sessions import merge as merge_service

    store = app.store
    with _PICKING:
        g = group(store, ref)
        ts = attempt_tasks(tasks(store, g))
        if g.spec.get("picked"):
            raise Conflict(
                f"group {g.name} was picked already: attempt {g.spec['picked']}",
                hint="the others were discarded and archived: pa restore SESSION brings "
                "one back (see pa compare)",
            )
        task = next((t for t in ts if t.key == key), None)
        if task is None:
            raise NotFound(
                f"group {g.name} has no attempt {key!r}",
                hint=f"its attempts: {', '.join(t.key for t in ts)}",
            )
        if task.session_id is None:
            why = task.outcome.get("error")
            raise Conflict(
                f"attempt {key} of group {g.name} has no session"
                + (f" (it could not start: {why})" if why else ""),
                hint="pick another attempt",
            )
        s = store.session(task.session_id)
        if s.status == Status.DISCARDED:
            raise Conflict(
                f"attempt {key} ({s.id}) was discarded", hint=f"pa restore {s.id}, then pick again"
            )
        merged: dict[str, Any] | None = None
        if merge and s.status != Status.MERGED:
            merged = merge_service.merge_sessions(app, [s.id], strategy=strategy, into=into)
            item = merged["items"][0]
            if item["status"] not in ("merged", "up_to_date"):
                detail = item.get("detail") or ", ".join(item.get("conflict_paths") or [])
                raise Conflict(
                    f"attempt {key} ({s.id}) did not merge: {item['status']}"
                    + (f" ({detail})" if detail else "")
                    + "; nothing was discarded",
                    hint=f"look at it (pa diff {s.id}), then pa merge {s.id} --fix-conflicts, "
                    f"or pick without merging: pa pick {g.name} {key} --no-merge",
                )
        outcome = {**task.outcome, "merged": bool(merge)}
        if merged is not None:
            outcome["commit"] = merged["items"][0].get("commit")
            outcome["into"] = merged.get("target_branch")
        store.move_task(g.id, key, "picked", outcome=outcome)
        spec = {**g.spec, "picked": key, "picked_at": time.time()}
        store.set_group(g.id, state="picked", spec=spec)
        discarded: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for t in ts:
            if t.key == key:
                continue
            sid = t.session_id or store.task_session(g.id, t.key)
            if sid is not None and store.session(sid).status != Status.DISCARDED:
                try:
                    _, archive = app.discard(sid)
                except PAError as e:
                    errors.append({"attempt": t.key, "session": sid, "error": e.message})
                    continue
                discarded.append({"attempt": t.key, "session": sid, "archive": archive.get("ref")})
            store.move_task(g.id, t.key, "discarded", session_id=sid)
    return {
        "group": store.group(g.id).to_json(),
        "picked": {"attempt": key, "session": s.id, "merged": bool(merge)},
        "merge": merged,
        "discarded": discarded,
        "errors": errors,
    }


def group_json(store: Store, g: Group) -> dict[str, Any]:
    """A group with its tasks, each with its session's id, status and title."""
    from parallel_agents.sessions.views import session_json

    d = g.to_json()
    out = []
    for t in tasks(store, g) if g.kind == KIND else store.group_tasks(g.id):
        tj = t.to_json()
        if t.session_id and store.has_session(t.session_id):
            tj["session_info"] = session_json(store.session(t.session_id))
        out.append(tj)
    d["tasks"] = out
    return d
