"""Plans (issue 15 §1): the verbs behind `pa plan run|ls|show|stop|resume`.

A plan is a group of kind ``plan`` (``store/_groups.py``) with one task per task of its
file (``plan_file.py``); the driver (``plan_runner.py``) moves the tasks on. ``run``
checks the whole file, and everything a task needs to start (its repo, a base branch
to start from and merge into, the agent's program) before it records anything: a plan
that cannot start is refused whole, not half-run.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parallel_agents import git
from parallel_agents.config import config_path, max_attempts
from parallel_agents.errors import Conflict, PAError, UsageError
from parallel_agents.sessions import plan_attempts, plan_runner
from parallel_agents.sessions.plan_file import ID, SCHEMA_HINT, PlanTask, parse_plan
from parallel_agents.store import Group

if TYPE_CHECKING:
    from parallel_agents.models import Repo
    from parallel_agents.sessions.orchestrator import App


def run(
    app: App,
    text: str,
    *,
    source: str = "the plan file",
    folder: Path | None = None,
    cwd: Path | None = None,
    name: str | None = None,
) -> Group:
    """Check the plan in ``text`` and record it (its tasks ``waiting``); the driver starts
    them. ``folder``: where relative repo paths in the file start (the file's folder);
    ``cwd``: the repo of tasks that name none is the one around it."""
    plan = parse_plan(text, source=source, default_agent=app.settings.default_agent)
    name = name or plan.name
    if name is not None and not ID.fullmatch(name):
        raise UsageError(
            f"{name!r} is not a plan name", hint="letters, digits, '.', '_' and '-' (64 at most)"
        )
    problems: list[str] = []
    specs: list[tuple[str, dict[str, Any]]] = []
    repos: dict[str | None, Repo] = {}
    for t in plan.tasks:
        try:
            r = repos.get(t.repo) or _repo(app, t.repo, folder, cwd)
            repos[t.repo] = r
            specs.append((t.id, _spec(app, t, r)))
        except PAError as e:
            problems.append(f"task {t.id!r}: {e.message}")
    if problems:
        listing = "\n".join(f"  - {x}" for x in problems)
        raise UsageError(
            f"{source}: {len(problems)} task(s) cannot start:\n{listing}", hint=SCHEMA_HINT
        )
    first = repos[plan.tasks[0].repo]
    spec = {"source": source, "description": plan.description}
    return app.store.create_group("plan", name, first.id, spec, specs)


def _repo(app: App, ref: str | None, folder: Path | None, cwd: Path | None) -> Repo:
    if ref is None:
        return app.find_repo(None, cwd)
    if app.store.repo_by_name(ref) is None:
        p = Path(ref).expanduser()
        if not p.is_absolute():
            p = (folder or cwd or Path.cwd()) / p
        ref = str(p)
    return app.find_repo(ref, cwd)


def _spec(app: App, t: PlanTask, r: Repo) -> dict[str, Any]:
    """What the driver needs of a task, checked now: its base is a branch of its repo
    (it starts from it and merges into it), and its agent's program is there."""
    from parallel_agents.agents import get_agent

    repo_path = Path(r.path)
    target = t.base or r.base or git.current_branch(repo_path)
    if not target or git.rev_parse(repo_path, f"refs/heads/{target}") is None:
        raise UsageError(
            f"base {target or 'HEAD'!r} is not a branch of {r.name} ({repo_path}); a plan's "
            "tasks start from a branch and merge into it",
            hint="set base = \"BRANCH\" for it or in [defaults]",
        )
    adapter = get_agent(t.agent)
    if t.agent == "command":
        assert t.cmd
        prog = t.cmd[0]
        if ("/" not in prog and shutil.which(prog) is None) or (
            Path(prog).is_absolute() and not Path(prog).exists()
        ):
            raise UsageError(f"the program {prog!r} of its cmd was not found")
    else:
        adapter.resolve_binary(app.settings.agent_settings(t.agent))
    cap = max_attempts(app.settings)
    if t.attempts > cap:
        raise UsageError(
            f"attempts = {t.attempts} is more than the setting limits.max_attempts allows ({cap})",
            hint=f"ask for at most {cap}, or raise limits.max_attempts in {config_path()}",
        )
    spec = t.to_json()
    spec.update(repo=r.name, target=target)
    if t.agent != "command":
        spec["cmd"] = None
    return spec


# -- views -----------------------------------------------------------------------------------
def counts(app: App, g: Group) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in app.store.group_tasks(g.id):
        out[t.state] = out.get(t.state, 0) + 1
    return out


def listing(app: App) -> list[dict[str, Any]]:
    out = []
    for g in app.store.groups("plan"):
        d = g.to_json()
        d["counts"] = counts(app, g)
        d["tasks"] = sum(d["counts"].values())
        out.append(d)
    return out


def show(app: App, ref: str) -> dict[str, Any]:
    g = plan_group(app, ref)
    checks = app.store.check_summaries()
    tasks = [plan_runner.task_view(app, t, checks) for t in app.store.group_tasks(g.id)]
    return {"plan": g.to_json(), "tasks": tasks, "counts": counts(app, g)}


def plan_group(app: App, ref: str) -> Group:
    g = app.store.group(ref)
    if g.kind != "plan":
        raise Conflict(f"{ref!r} is a group of {g.kind}, not a plan", hint="see pa plan ls")
    return g


# -- stop and resume -------------------------------------------------------------------------
def stop(app: App, ref: str) -> dict[str, Any]:
    """No task starts any more; the sessions of the tasks at work are stopped (their work
    stays in their worktrees; ``resume`` continues them)."""
    g = plan_group(app, ref)
    if g.state == "finished":
        raise Conflict(f"plan {g.name} is finished: nothing to stop")
    app.store.set_group(g.id, state="stopped")
    stopped: list[str] = []
    with plan_runner.locked():  # a pass under way ends first: it may be starting a task
        for t in app.store.group_tasks(g.id):
            sid = t.session_id or (
                app.store.task_session(g.id, t.key) if t.state == "starting" else None
            )
            if t.state not in plan_runner.WORKING:
                continue
            for one in [sid] if sid else plan_attempts.session_ids(app, t):
                try:
                    app.stop(one)
                    if t.key not in stopped:
                        stopped.append(t.key)
                except PAError:
                    continue  # it ended meanwhile: the next pass records how
        plan_runner.drive_group(app, app.store.group(g.id))
    out = show(app, g.id)
    out["stopped"] = stopped
    return out


def resume(app: App, ref: str) -> dict[str, Any]:
    """Continue a plan after `pa plan stop`, a server crash or a reboot: tasks cut off
    get a follow-up in their own sessions, skipped tasks are looked at again, the rest
    goes on as it was. Nothing that started starts twice."""
    g = plan_group(app, ref)
    with plan_runner.locked():
        app.store.set_group(g.id, state="running")
        continued = plan_runner.continue_stopped(app, app.store.group(g.id))
    out = show(app, g.id)
    out["continued"] = continued
    return out
