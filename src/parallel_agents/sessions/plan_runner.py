"""The plan driver (issue 15 §1): moves a plan's tasks on, one pass at a time.

``drive(app)`` is called by the server's loop (``ServerState._drive_plans``, on a
background thread, a few times a second while a plan is live) and by the plan routes
when no server runs. One pass per process at a time (``_lock``): the conflicts_with
rule and the order of merges need one scheduler. Each pass, for every live plan:

1. **Reconcile**: a task's state follows its session. Its turn ended idle: ``done``;
   failed: ``failed``; stopped or cut off (a reboot): ``stopped``; merged by anyone
   (``pa merge`` included, so a person's merge is noticed here): ``merged``, for good;
   discarded: ``discarded``; a follow-up made it work again: ``running``. A task left
   ``starting`` by a crash finds its session through the session's options
   (``Store.task_session``) or, without one, waits to start again.
2. **A finished turn**: a ``done`` task runs its ``check``; with ``auto_merge`` it then
   goes through the merge queue (``sessions.merge.merge_sessions``), which merges only
   when the result is clean (and the repo's check passes on it). Otherwise it waits for
   a person and its outcome says why. Once per turn: a follow-up that ends idle (a fix
   sent with `pa send`) is checked, and tried, again.
3. **Skip** the waiting tasks a failed, discarded or skipped dependency leaves behind.
4. **Start** every waiting task whose dependencies are satisfied and none of whose
   ``conflicts_with`` partners is starting or running: with ``after = "merged"`` on
   its base branch once every dependency is merged into it; with ``after = "done"`` on
   the dependencies' own work (the commit ``pa merge`` would merge; several are merged
   into one commit first).

Every move is a compare-and-set (``Store.move_task``): a pass that runs again, or once
more after a crash, cannot start a task twice.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parallel_agents import git
from parallel_agents.errors import Conflict, PAError
from parallel_agents.models import Session, Status
from parallel_agents.store import Group, GroupTask

if TYPE_CHECKING:
    from parallel_agents.sessions.orchestrator import App

log = logging.getLogger(__name__)

LIVE = ("running", "stopped")  # plan states the driver looks at
WORKING = ("starting", "running")
OVER = ("merged", "failed", "skipped", "discarded")  # nothing more happens by itself
GONE = ("failed", "skipped", "discarded")  # will not be merged: what depends on it skips
CONTINUE = (
    "Continue the task you were given: you were stopped before you finished. "
    "Check what is already done in this worktree first."
)

_lock = threading.Lock()
_forecast_marks: dict[str, tuple[tuple[str, str | None], ...]] = {}  # group -> last forecast's
_again = threading.Event()


def live_plans(app: App) -> bool:
    """Is any plan live? (The loop asks this between passes: one small query.)"""
    return any(g.state in LIVE for g in app.store.groups("plan"))


def drive(app: App) -> int:
    """One pass over every live plan; the number of task moves. A pass already running in
    this process runs once more instead (nothing waits for it)."""
    moves = 0
    _again.set()
    while _again.is_set():
        if not _lock.acquire(blocking=False):
            return moves
        try:
            _again.clear()
            for g in app.store.groups("plan"):
                if g.state in LIVE:
                    try:
                        moves += drive_group(app, g)
                    except Exception:  # one broken plan must not stop the others
                        log.exception("plan %s: the driver failed", g.name)
        finally:
            _lock.release()
    return moves


def locked() -> threading.Lock:
    """The driver's lock: a verb that changes what a pass decides (stop, resume) holds it."""
    return _lock


def drive_group(app: App, g: Group) -> int:
    from parallel_agents.sessions import plan_forecast

    moves = sum(_reconcile(app, g, t) for t in app.store.group_tasks(g.id))
    # The forecast runs git: only when a task changed state or a started task's work got
    # a new checkpoint (the server checkpoints a turn just after its session is idle, so
    # a task can be done before its work is there to forecast).
    marks = plan_forecast.marks(app, g)
    if moves or _forecast_marks.get(g.id) != marks:
        _forecast_marks[g.id] = marks
        try:
            plan_forecast.refresh(app, g)
        except Exception:  # a flag, never a reason for the plan to stall
            log.exception("plan %s: the forecast failed", g.name)
    if g.state != "running":
        return moves
    tasks = {t.key: t for t in app.store.group_tasks(g.id)}
    for t in tasks.values():
        if t.state == "done" and t.session_id is not None:  # attempts: after the pick
            moves += _after_done(app, g, t)
    tasks = {t.key: t for t in app.store.group_tasks(g.id)}
    moves += _skip(app, g, tasks)
    moves += _start_ready(app, g, tasks)
    tasks = {t.key: t for t in app.store.group_tasks(g.id)}
    if all(t.state in OVER for t in tasks.values()):
        app.store.set_group(g.id, state="finished")
    return moves


# -- 1. reconcile ----------------------------------------------------------------------------
_STATE_OF = {
    Status.IDLE: "done",
    Status.FAILED: "failed",
    Status.STOPPED: "stopped",
    Status.INTERRUPTED: "stopped",
    Status.MERGED: "merged",
    Status.DISCARDED: "discarded",
}


def task_state_for(s: Session) -> str:
    """The task state a session's status stands for."""
    return "running" if s.status.active else _STATE_OF[s.status]


def _reconcile(app: App, g: Group, t: GroupTask) -> int:
    from parallel_agents.sessions import plan_attempts

    st = app.store
    if t.state == "starting":
        if plan_attempts.is_attempts(t):
            agid = t.outcome.get("attempts") or plan_attempts.found(app, g, t)
            if agid is not None:
                made = {**t.outcome, "attempts": agid}
                return int(st.move_task(g.id, t.key, "running", expect=["starting"], outcome=made))
        else:
            sid = t.session_id or st.task_session(g.id, t.key)
            if sid is not None:
                return int(
                    st.move_task(g.id, t.key, "running", expect=["starting"], session_id=sid)
                )
        # Claimed, but no session was made: the process died in between (the pass holds
        # the lock, so no start is under way). It starts again, once.
        note = {**t.outcome, "note": "its start was cut short; it waits to start again"}
        return int(st.move_task(g.id, t.key, "waiting", expect=["starting"], outcome=note))
    if t.session_id is None and t.outcome.get("attempts") and t.state not in ("skipped", "merged"):
        return plan_attempts.reconcile(app, g, t, task_state_for)  # no pick yet
    # Merged is final: its work is in the target whatever becomes of the session after
    # (a discard to clean up does not undo the merge, nor restart what depends on it).
    if t.session_id is None or t.state in ("waiting", "skipped", "merged"):
        return 0
    try:
        s = st.session(t.session_id)
    except PAError:
        return 0
    want = task_state_for(s)
    if want == t.state:
        return 0
    outcome = dict(t.outcome)
    outcome["session_status"] = s.status.value
    if s.error:
        outcome["error"] = s.error
    elif want in ("done", "running", "merged"):
        outcome.pop("error", None)
    if want == "merged":
        outcome.pop("waiting", None)
    return int(st.move_task(g.id, t.key, want, expect=[t.state], outcome=outcome))


# -- 2. a finished turn: check, auto-merge -----------------------------------------------
def _after_done(app: App, g: Group, t: GroupTask) -> int:
    """Once per turn of a done task's session: run its check (if any); with auto_merge
    merge it through the merge queue when the check passes and it merges cleanly. What
    is left to a person, and why, goes in its outcome (``waiting``)."""
    from parallel_agents.sessions import review
    from parallel_agents.sessions.merge import merge_sessions

    st = app.store
    assert t.session_id is not None
    s = st.session(t.session_id)
    if s.status != Status.IDLE or t.outcome.get("seen_turn") == s.turns:
        return 0
    outcome = {**t.outcome, "seen_turn": s.turns}
    outcome.pop("waiting", None)

    def wait(why: str) -> int:
        outcome["waiting"] = why
        return int(st.move_task(g.id, t.key, "done", expect=["done"], outcome=outcome))

    check = t.spec.get("check")
    if check:
        try:
            rec = review.run_check(st, app.settings, s, command=check)
        except PAError as e:
            rec = {"ok": False, "exit_code": None, "output_tail": e.message}
        outcome["check"] = {"ok": rec["ok"], "exit_code": rec.get("exit_code")}
        if not rec["ok"]:
            return wait(
                f"its check failed ({check}: exit {rec.get('exit_code')}); fix it "
                f"(pa send {s.id} ...) or merge it as it is: pa merge {s.id}"
            )
    if not t.spec.get("auto_merge"):
        return wait(f"waits for your review: pa diff {s.id}, then pa merge {s.id}")
    target = str(t.spec["target"])
    try:
        res = merge_sessions(app, [s.id], into=target)
    except PAError as e:
        return wait(f"not merged: {e.message}")
    [item] = res["items"]
    if item["status"] in ("merged", "up_to_date"):
        outcome["merged_into"] = target
        outcome["commit"] = item.get("commit")
        if item["status"] == "up_to_date":
            outcome["note"] = f"it changed nothing that {target} did not have already"
        return int(st.move_task(g.id, t.key, "merged", expect=["done"], outcome=outcome))
    if item["status"] == "conflict":
        why = f"it conflicts with {target} in {', '.join(item.get('conflict_paths') or [])}"
    elif item["status"] == "check_failed":
        why = "the repo's check failed on the merged result"
    else:
        why = f"{item['status'].replace('_', ' ')} {item.get('detail') or ''}".strip()
    return wait(f"not merged: {why}; pa merge {s.id} when it is ready")


# -- 3. skip ---------------------------------------------------------------------------------
def _skip(app: App, g: Group, tasks: dict[str, GroupTask]) -> int:
    moves = 0
    changed = True
    while changed:  # a skip can make the tasks after it skip too
        changed = False
        for t in tasks.values():
            if t.state != "waiting":
                continue
            bad = [d for d in t.spec.get("depends_on", []) if tasks[d].state in GONE]
            if not bad:
                continue
            why = ", ".join(f"{d} {tasks[d].state}" for d in bad)
            outcome = {**t.outcome, "skipped": f"a dependency will not be merged: {why}"}
            if app.store.move_task(g.id, t.key, "skipped", expect=["waiting"], outcome=outcome):
                tasks[t.key] = app.store.group_task(g.id, t.key)
                moves += 1
                changed = True
    return moves


# -- 4. start --------------------------------------------------------------------------------
def _ready(t: GroupTask, tasks: dict[str, GroupTask]) -> bool:
    deps = [tasks[d] for d in t.spec.get("depends_on", [])]
    if t.spec.get("after") == "done":
        # A done task of attempts has no work to stack on until one is picked.
        return all(d.state == "merged" or (d.state == "done" and d.session_id) for d in deps)
    return all(d.state == "merged" for d in deps)


def _partners(t: GroupTask, tasks: dict[str, GroupTask]) -> set[str]:
    """conflicts_with goes both ways: either task naming the other is enough."""
    mine = set(t.spec.get("conflicts_with", []))
    return mine | {k for k, o in tasks.items() if t.key in o.spec.get("conflicts_with", [])}


def _start_ready(app: App, g: Group, tasks: dict[str, GroupTask]) -> int:
    from parallel_agents.sessions import plan_attempts, plan_forecast

    st = app.store
    working = {k for k, t in tasks.items() if t.state in WORKING}
    moves = 0
    for t in sorted(tasks.values(), key=lambda x: x.position):
        if t.state != "waiting" or not _ready(t, tasks):
            continue
        busy = sorted(_partners(t, tasks) & working)
        if busy:
            held = f"conflicts_with {', '.join(busy)}, which is running"
            if t.outcome.get("held") != held:
                held_out = {**t.outcome, "held": held}
                st.move_task(g.id, t.key, "waiting", expect=["waiting"], outcome=held_out)
            continue
        if not st.move_task(g.id, t.key, "starting", expect=["waiting"]):
            continue  # someone else moved it first
        working.add(t.key)
        moves += 1
        outcome = {k: v for k, v in t.outcome.items() if k not in ("held", "note")}
        try:
            flag = plan_forecast.before_start(app, t, tasks)
        except Exception:  # a flag, never a reason not to start
            log.exception("plan %s: the forecast of task %s failed", g.name, t.key)
            flag = None
        if flag:
            outcome["forecast_start"] = flag
        try:
            if plan_attempts.is_attempts(t):
                outcome["attempts"] = plan_attempts.start(app, g, t, _base(app, g, t, tasks))
                sid = None
            else:
                sid = _start(app, g, t, tasks)
        except Exception as e:  # never a retry loop: it failed to start, and says why
            outcome["error"] = e.message if isinstance(e, PAError) else f"could not start: {e!r}"
            st.move_task(g.id, t.key, "failed", expect=["starting"], outcome=outcome)
            working.discard(t.key)
            continue
        st.move_task(g.id, t.key, "running", expect=["starting"], session_id=sid, outcome=outcome)
        tasks[t.key] = st.group_task(g.id, t.key)
    return moves


def _base(app: App, g: Group, t: GroupTask, tasks: dict[str, GroupTask]) -> str:
    if t.spec.get("after") == "done" and t.spec.get("depends_on"):
        return _stacked_base(app, g, t, tasks)
    return str(t.spec["target"])


def _start(app: App, g: Group, t: GroupTask, tasks: dict[str, GroupTask]) -> str:
    spec = t.spec
    base = _base(app, g, t, tasks)
    s = app.new_session(
        spec["prompt"],
        repo=spec["repo"],
        agent=spec["agent"],
        cmd=spec.get("cmd") if spec["agent"] == "command" else None,
        model=spec.get("model"),
        base=base,
        title=f"{g.name}/{t.key}: {spec['title']}",
        timeout=spec.get("timeout"),
        # The group task it runs for, in its options from the start: a crash before the
        # task records the session leaves it findable (Store.task_session); kind and
        # name are for the dashboard's sidebar, which lists it under the plan's heading.
        options={"group": {"id": g.id, "key": t.key, "kind": g.kind, "name": g.name}},
        runtime=spec.get("runtime"),
    )
    return s.id


def _stacked_base(app: App, g: Group, t: GroupTask, tasks: dict[str, GroupTask]) -> str:
    """The commit an ``after = "done"`` task starts from: its dependencies' work as
    ``pa merge`` would merge it (so merging them later finds it merged already), or the
    target branch for the ones merged; several are merged into one commit first."""
    from parallel_agents.sessions.merge import _source

    st = app.store
    repo_path = Path(app.find_repo(str(t.spec["repo"]), register=False).path)
    commits: list[str] = []
    for d in t.spec["depends_on"]:
        dep = tasks[d]
        if dep.state == "merged" or dep.session_id is None:
            continue
        s = st.session(dep.session_id)
        commit, _ = _source(app, s, Path(st.repo(s.repo_id).path))
        if commit not in commits:
            commits.append(commit)
    if not commits:
        return str(t.spec["target"])
    if any(tasks[d].state == "merged" for d in t.spec["depends_on"]):
        target = git.need(repo_path, f"refs/heads/{t.spec['target']}")
        commits.append(target)
    head = commits[0]
    for other in commits[1:]:
        r = git.run(["merge-tree", "--write-tree", head, other], repo_path, check=False)
        if r.returncode != 0:
            raise Conflict(
                f"task {t.key!r}: the work of its dependencies does not merge into one "
                f"base ({head[:10]} and {other[:10]} conflict)",
                hint="use after = \"merged\" for it, or resolve the conflict in one of them",
            )
        tree = r.text.split()[0]
        head = git.commit_tree(
            repo_path, tree, [head, other], f"pa plan {g.name}: base of task {t.key}\n"
        )
    if len(commits) > 1:
        ref = f"refs/pa/plans/{g.id}/{t.key}/base"
        git.run(["update-ref", ref, head], repo_path)  # keeps the merged base reachable
    return head


def continue_stopped(app: App, g: Group) -> list[str]:
    """Tasks a stop or a reboot cut off get a follow-up that continues them (resume);
    the tasks skipped meanwhile are looked at again. Returns the keys continued."""
    from parallel_agents.sessions import plan_attempts

    st = app.store
    out: list[str] = []
    for t in st.group_tasks(g.id):
        if t.state == "skipped":
            outcome = {k: v for k, v in t.outcome.items() if k != "skipped"}
            st.move_task(g.id, t.key, "waiting", expect=["skipped"], outcome=outcome)
        if t.state == "stopped" and t.session_id is None and t.outcome.get("attempts"):
            if plan_attempts.continue_stopped(app, t, CONTINUE):
                out.append(t.key)  # the next pass sees them at work
            continue
        if t.state != "stopped" or t.session_id is None:
            continue
        s = st.session(t.session_id)
        if s.status not in (Status.STOPPED, Status.INTERRUPTED):
            continue
        if not st.move_task(g.id, t.key, "running", expect=["stopped"]):
            continue
        try:
            app.send(s.id, CONTINUE)
        except PAError as e:
            failed = {**t.outcome, "error": e.message}
            st.move_task(g.id, t.key, "stopped", expect=["running"], outcome=failed)
            continue
        out.append(t.key)
    return out


def task_view(app: App, t: GroupTask, checks: dict[str, Any]) -> dict[str, Any]:
    from parallel_agents.sessions import plan_attempts, plan_forecast

    d = t.to_json()
    d["attempts"] = plan_attempts.view(t)
    d["session_status"] = None
    d["branch"] = None
    if t.session_id is not None:
        try:
            s = app.store.session(t.session_id)
            d["session_status"] = s.status.value
            d["branch"] = s.branch
        except PAError:
            pass
    d["check"] = checks.get(t.session_id) if t.session_id else None
    d["merged"] = t.state == "merged"
    d["forecast"] = plan_forecast.note(t.outcome) or None
    return d
