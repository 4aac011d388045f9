"""Map-reduce over many agents (issue 15 §4): `pa map` starts one session per item under a
group of kind ``map``; `pa reduce` merges the successful mappers' work onto the base and
starts one reducer session on the result.

A map group is a group (store ``groups``) whose tasks are the items, in order; each
task's session is created with ``options.group = {"id", "key", "kind", "name"}``, so a
crash between making it and recording it leaves it findable (``Store.task_session``),
and the dashboard's sidebar lists it under its group. Sessions queue
within the usual running limits: nothing here schedules. How a task's end is collected
and the group's report: ``map_report``.

The reduce merges with ``git merge-tree --write-tree`` and ``commit-tree``, one mapper at
a time onto the previous result, never touching a working tree: a mapper that conflicts
with what is merged so far is skipped (and listed for the reducer), a change identical to
one merged already merges to the same tree (git's three-way merge takes identical
changes on both sides) and is listed as identical.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parallel_agents import git
from parallel_agents.agents import get_agent
from parallel_agents.config import Settings
from parallel_agents.errors import Conflict, PAError, UsageError
from parallel_agents.models import Session, Status
from parallel_agents.sessions import map_items
from parallel_agents.sessions.map_items import OUTCOME_ENV
from parallel_agents.sessions.map_report import (
    BUSY,
    group_of,
    maybe_done,
    name_free,
    outcome_file,
    report,
    session_or_none,
    sync,
)
from parallel_agents.sessions.views import session_json
from parallel_agents.store import Group, GroupTask, Store

if TYPE_CHECKING:
    from parallel_agents.sessions.orchestrator import App

PROMPT_ITEM = 200  # characters of an item or summary in the reducer's prompt


def max_items(settings: Settings) -> int:
    """``limits.max_map_items``: items one `pa map` may start."""
    value = settings.get("limits.max_map_items")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(
            f"limits.max_map_items must be a whole number, 1 or more (got {value!r})",
            hint="fix it in your config.toml, e.g. [limits] max_map_items = 500",
        )
    return value


def check_agent(app: App, agent: str | None, cmd: list[str] | None) -> str:
    """The agent's name, once it is known to be runnable (as ``App.new_session`` checks
    it), so a bad one is refused before any group or session exists."""
    from parallel_agents.agents.base import TurnContext

    name = agent or ("command" if cmd else app.settings.default_agent)
    adapter = get_agent(name)
    if name == "command":
        if not cmd:
            raise UsageError(
                "the command agent needs --cmd 'PROGRAM ARGS…'",
                hint="or choose a real agent with --agent (claude, codex, gemini, …)",
            )
        here = Path.cwd()
        adapter.build(TurnContext(prompt="", worktree=here, session_dir=here, turn=1, cmd=cmd))
    else:
        adapter.resolve_binary(app.settings.agent_settings(name))
    return name


# -- map -------------------------------------------------------------------------------
def start_map(
    app: App,
    template: str,
    items_text: str,
    *,
    repo: str | None = None,
    cwd: Path | None = None,
    agent: str | None = None,
    cmd: list[str] | None = None,
    model: str | None = None,
    base: str | None = None,
    name: str | None = None,
    timeout: float | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Check everything (template, items, their count, agent, repo, base), then make the
    group and one session per item; returns the group's report. ``env``: extra
    environment of every item's agent (as `pa new --env`)."""
    from parallel_agents.sessions import repos
    from parallel_agents.sessions.orchestrator import _start_point, check_env, check_text

    pieces = map_items.parse_template(template)
    items = map_items.parse_items(items_text)
    cap = max_items(app.settings)
    if len(items) > cap:
        raise UsageError(
            f"{len(items)} items are more than limits.max_map_items ({cap}) allows",
            hint="split the list into several maps, or raise limits.max_map_items in "
            "config.toml",
        )
    prompts = map_items.render(pieces, items)
    for what, value in (("group name", name), ("model", model), ("base", base)):
        if value is not None:
            check_text(what, value)
    if env:
        check_env(env)
    name_free(app.store, name)
    agent_name = check_agent(app, agent, cmd)
    r = app.find_repo(repo, cwd)
    repo_path = Path(r.path)
    if not (repo_path / ".git").exists():
        raise repos.missing_repo_error(r)
    base_ref, base_commit = _start_point(repo_path, base or r.base)
    if base_commit is None:
        raise UsageError(
            f"unknown base {base_ref!r}: it names no commit in {repo_path}",
            hint="pass an existing branch, tag or commit with --base",
        )
    spec = {
        "template": template,
        "agent": agent_name,
        "cmd": cmd,
        "model": model,
        "timeout": timeout,
        "base_ref": base_ref,
        "base_commit": base_commit,
        "items": len(items),
        "reduces": [],
    }
    tasks = [
        (str(i), {"item": it.text, "line": it.line, "prompt": p, "title": p})
        for i, (it, p) in enumerate(zip(items, prompts, strict=True), 1)
    ]
    g = app.store.create_group("map", name, r.id, spec, tasks)
    _write_env(app.store.home, g.id, env or {})
    start_tasks(app, g.id)
    return report(app.store, g.id)


def start_tasks(app: App, gid: str) -> int:
    """Start every task of group ``gid`` that has not started: one session each, made
    with ``options.group`` and ``$PA_OUTCOME``. Safe to run again after a crash: a task
    moves ``waiting → starting`` by compare and set, and a ``starting`` task whose
    session exists already is given that one, not a second. Returns sessions made."""
    store = app.store
    g = store.group(gid)
    spec = g.spec
    repo = store.repo(g.repo_id).name if g.repo_id is not None else None
    env = _read_env(store.home, gid)
    made = 0
    for t in store.group_tasks(gid):
        if t.state == "waiting":
            if not store.move_task(gid, t.key, "starting", expect=["waiting"]):
                continue
        elif t.state != "starting":
            continue
        sid = store.task_session(gid, t.key)
        if sid is None:
            out = outcome_file(store.home, gid, t.key)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.unlink(missing_ok=True)  # a record from an earlier run is not this one's
            prompt = str(t.spec["prompt"]) + map_items.outcome_instructions(out)
            title = _title(str(t.spec.get("title") or ""), g.name, t.key)
            try:
                s = app.new_session(
                    prompt,
                    repo=repo,
                    agent=spec.get("agent"),
                    cmd=spec.get("cmd"),
                    model=spec.get("model"),
                    base=spec.get("start") or spec.get("base_ref"),
                    title=title,
                    timeout=spec.get("timeout"),
                    env={**env, OUTCOME_ENV: str(out)},
                    # kind and name: the dashboard's sidebar lists the session under its group.
                    options={"group": {"id": gid, "key": t.key, "kind": g.kind, "name": g.name}},
                )
            except (PAError, OSError) as e:
                why = e.message if isinstance(e, PAError) else str(e)
                outcome: dict[str, Any] = {
                    "status": "failure",
                    "summary": f"pa could not start it: {why}",
                    "source": "pa",
                    "turn": 0,
                }
                store.move_task(gid, t.key, "failed", expect=["starting"], outcome=outcome)
                continue
            sid = s.id
            made += 1
        if g.kind == "reduce" and spec.get("base_commit"):
            _map_base(store, sid, spec)
        store.move_task(gid, t.key, "running", expect=["starting"], session_id=sid)
    maybe_done(store, gid)
    return made


def _map_base(store: Store, sid: str, spec: dict[str, Any]) -> None:
    """The reducer's worktree starts at the merged commit; its base is the map's, so its
    diff (and `pa merge`'s target) is everything the reduce brings to that branch."""
    s = store.session(sid)
    if (s.base_ref, s.base_commit) != (spec.get("base_ref"), spec["base_commit"]):
        store.update_session(sid, base_ref=spec.get("base_ref"), base_commit=spec["base_commit"])


def resume(app: App, ref: str) -> dict[str, Any]:
    """Start what a map (or reduce) group has not started yet: after pa stopped while
    starting its sessions. A task whose session was made (but not recorded) gets that
    one back: nothing starts twice. Returns the group's report."""
    g = group_of(app.store, ref)
    if g.kind not in ("map", "reduce"):
        raise UsageError(
            f"{g.name} is a group of kind {g.kind!r}, not a map or reduce group",
            hint="list the map groups: pa map ls",
        )
    start_tasks(app, g.id)
    return report(app.store, g.id)


def _env_file(home: Path, gid: str) -> Path:
    return home / "groups" / gid / "env.json"


def _write_env(home: Path, gid: str, env: dict[str, str]) -> None:
    """The group's extra environment, for every session it starts (now or on resume):
    in a 0600 file, never in the database, the events or the report."""
    path = _env_file(home, gid)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(env, f)


def _read_env(home: Path, gid: str) -> dict[str, str]:
    try:
        data = json.loads(_env_file(home, gid).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise PAError(f"cannot read the group's environment file: {e}") from e
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _title(prompt: str, group: str, key: str) -> str:
    """The item's prompt's first line (as `pa new` titles a session), and its place."""
    lines = [ln for ln in prompt.splitlines() if ln.strip()]
    first = " ".join(lines[0].split())[:60] if lines else "item"
    return f"{first} ({group} #{key})"


# -- reduce ----------------------------------------------------------------------------
@dataclass
class Merged:
    """What the reduce made of the mappers: the commit, and each mapper's fate."""

    commit: str
    merged: list[dict[str, Any]] = field(default_factory=list)
    identical: list[dict[str, Any]] = field(default_factory=list)  # already in: nothing new
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    not_merged: list[dict[str, Any]] = field(default_factory=list)  # failed, skipped, …


def reduce(
    app: App,
    ref: str,
    *,
    agent: str | None = None,
    cmd: list[str] | None = None,
    model: str | None = None,
    prompt: str | None = None,
    name: str | None = None,
    timeout: float | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Merge the successful mappers of map group ``ref`` onto its base (each where it
    merges cleanly) and start a reducer session on the result, told what is in, what
    conflicted and what failed. Refused while any mapper still works."""
    from parallel_agents.sessions import repos
    from parallel_agents.sessions.orchestrator import check_env, check_text

    store = app.store
    g = group_of(store, ref, "map")
    sync(store, g)
    tasks = store.group_tasks(g.id)
    sessions = {t.key: session_or_none(store, t.session_id) for t in tasks}
    busy = [
        t.key
        for t in tasks
        if t.state in BUSY or ((s := sessions[t.key]) is not None and s.status.active)
    ]
    if busy:
        shown = ", ".join(busy[:10]) + (" …" if len(busy) > 10 else "")
        raise Conflict(
            f"map group {g.name}: {len(busy)} of {len(tasks)} items are still running "
            f"(items {shown}); nothing was reduced",
            hint=f"wait for them (pa map show {g.name}) or stop them (pa stop ID), then "
            "reduce again",
        )
    for what, value in (("prompt", prompt), ("group name", name), ("model", model)):
        if value is not None:
            check_text(what, value)
    if env:
        check_env(env)
    name_free(store, name)
    agent_name = check_agent(app, agent, cmd)
    if g.repo_id is None:
        raise UsageError(f"map group {g.name} has no repository")
    r = store.repo(g.repo_id)
    repo_path = Path(r.path)
    if not (repo_path / ".git").exists():
        raise repos.missing_repo_error(r)
    done = _merge_all(repo_path, g, tasks, sessions)
    text = reducer_prompt(g, done, prompt)
    spec = {
        "map": g.id,
        "map_name": g.name,
        "agent": agent_name,
        "cmd": cmd,
        "model": model,
        "timeout": timeout,
        "base_ref": g.spec.get("base_ref"),
        "base_commit": g.spec.get("base_commit"),
        "start": done.commit,
        "merged": done.merged,
        "identical": done.identical,
        "conflicts": done.conflicts,
        "not_merged": done.not_merged,
    }
    title = f"reduce {g.name}: {len(done.merged) + len(done.identical)} of {len(tasks)} merged"
    rg = store.create_group(
        "reduce",
        name or _free_name(store, f"{g.name}-reduce"),
        g.repo_id,
        spec,
        [("reduce", {"prompt": text, "title": title})],
    )
    _write_env(store.home, rg.id, env or {})
    # The merged commit stays reachable whatever becomes of the reducer's branch.
    git.run(["update-ref", f"refs/pa/groups/{rg.id}/start", done.commit], repo_path)
    store.set_group(g.id, spec={**g.spec, "reduces": [*(g.spec.get("reduces") or []), rg.id]})
    start_tasks(app, rg.id)
    task = store.group_task(rg.id, "reduce")
    s = session_or_none(store, task.session_id)
    if s is None:
        raise PAError(
            f"the reducer could not start: {task.outcome.get('summary', task.state)}",
            hint=f"the merged work is kept ({done.commit[:12]}, refs/pa/groups/{rg.id}/start); "
            "fix the cause and run pa reduce again",
        )
    return {
        "group": store.group(rg.id).to_json(),
        "map": g.name,
        "session": session_json(s),
        "task": task.to_json(),
        "commit": done.commit,
        "merged": done.merged,
        "identical": done.identical,
        "conflicts": done.conflicts,
        "not_merged": done.not_merged,
    }


def _free_name(store: Store, stem: str) -> str:
    taken = {g.name for g in store.groups()}
    if stem not in taken:
        return stem
    n = 2
    while f"{stem}-{n}" in taken:
        n += 1
    return f"{stem}-{n}"


def _merge_all(
    repo: Path, g: Group, tasks: list[GroupTask], sessions: dict[str, Session | None]
) -> Merged:
    """Each successful mapper's work merged onto the previous result, in item order,
    starting at the map's base; no ref, index or file moves (the caller keeps the
    commit)."""
    from parallel_agents.git.merge_tree import merge_tree

    cur = str(g.spec["base_commit"])
    out = Merged(cur)
    for t in tasks:
        s = sessions[t.key]
        entry: dict[str, Any] = {
            "key": t.key,
            "item": t.spec.get("item", t.key),
            "state": t.state,
            "outcome": t.outcome.get("status"),
            "summary": t.outcome.get("summary", ""),
            "session": s.id if s else None,
            "branch": s.branch if s else None,
        }
        if (
            s is None
            or s.status == Status.DISCARDED
            or t.state not in ("done", "merged")
            or t.outcome.get("status") != "success"
        ):
            out.not_merged.append(entry)
            continue
        try:
            src = _source(repo, s)
        except PAError as e:
            entry["why"] = e.message
            out.not_merged.append(entry)
            continue
        entry["commit"] = src
        tree, paths = merge_tree(repo, cur, src)
        if paths:
            entry["paths"] = paths
            out.conflicts.append(entry)
            continue
        if tree == git.tree_of(repo, cur):
            out.identical.append(entry)  # everything it changed is merged already
            continue
        msg = f"pa reduce {g.name}: item {t.key}\n\n{entry['item']}\n\nsession {s.id}\n"
        cur = git.commit_tree(repo, tree, [cur, src], msg)
        out.merged.append(entry)
    out.commit = cur
    return out


def _source(repo: Path, s: Session) -> str:
    """The commit holding everything the mapper did (its uncommitted work as one commit
    on its HEAD, as `pa merge` takes it), or its branch when the worktree is gone."""
    from parallel_agents.git import merging
    from parallel_agents.sessions.merge import merge_ref

    wt = Path(s.worktree)
    if wt.is_dir() and (wt / ".git").exists():
        commit, _ = merging.source_commit(wt, merge_ref(s.id), f"{s.title}\n\npa session {s.id}\n")
        return commit
    head = git.rev_parse(repo, f"refs/heads/{s.branch}")
    if head is None:
        raise PAError(f"session {s.id} has neither a worktree nor a branch")
    return head


def _line(text: str) -> str:
    one = " ".join(str(text).split())
    return one if len(one) <= PROMPT_ITEM else one[: PROMPT_ITEM - 1] + "…"


def reducer_prompt(g: Group, m: Merged, extra: str | None) -> str:
    """The reducer's task: what is merged into its worktree, what is not and why."""
    n = int(g.spec.get("items") or 0)
    base = g.spec.get("base_ref") or "the base"
    lines = [
        f"You are the reducer of the map group {g.name}: {n} agents each worked alone on one "
        "item of this task:",
        "",
        *("    " + ln for ln in str(g.spec.get("template", "")).splitlines()),
        "",
        f"Your worktree is {base} with the work of {len(m.merged)} agents that succeeded "
        "already merged in, one after another, where it merged cleanly:",
    ]
    lines += [f"- item {e['key']}: {_line(e['item'])} — {_line(e['summary'])}" for e in m.merged]
    if m.identical:
        lines += ["", "These succeeded with changes already merged (identical to an earlier one):"]
        lines += [f"- item {e['key']}: {_line(e['item'])}" for e in m.identical]
    if m.conflicts:
        lines += [
            "",
            "These succeeded, but their changes conflict with the merged work, so they are NOT "
            "in your worktree; their work is in this repository (git show COMMIT):",
        ]
        lines += [
            f"- item {e['key']}: {_line(e['item'])} — conflicts in "
            f"{', '.join(e['paths'][:5])}; commit {e['commit']} (branch {e['branch']})"
            for e in m.conflicts
        ]
    if m.not_merged:
        lines += ["", "These did not succeed, so nothing of theirs was merged:"]
        lines += [
            f"- item {e['key']}: {_line(e['item'])} — {e['outcome'] or e['state']}: "
            f"{_line(e['summary'])}"
            for e in m.not_merged
        ]
    lines += [
        "",
        "What to do:",
        "1. Integrate: make the merged changes work together (run the tests if there are "
        "any), and bring in by hand what you can of the conflicting items.",
        "2. Dedupe: where several agents made the same or overlapping fixes, keep one.",
        "3. Summarise: end with a short summary of what is in, what is not, and why.",
    ]
    if extra and extra.strip():
        lines += ["", extra.strip()]
    return "\n".join(lines)
