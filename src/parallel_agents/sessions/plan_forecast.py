"""The conflict forecast inside a plan (issue 15 §1: "tasks the conflict forecast predicts
will collide are flagged before they start").

Two flags, both in a task's outcome and so in ``pa plan show`` (its NOTE column and
``--json``), both only for tasks the plan does not already keep apart (a ``conflicts_with``
pair, or a dependency, whose work the task starts on):

- ``forecast_start``, once, when the task starts: another task of the plan at work or
  done but unmerged has changed a path the task's prompt names (its worktree against its
  base: committed, uncommitted and new files).
- ``forecast``, whenever a task of the plan changes state: the repo's conflict forecast
  (``review.conflicts``, the one behind ``pa conflicts``, with its cache) over every live
  session of the repo, the plan's and others': for each task at work or done but
  unmerged, the tasks (or other sessions) its work is forecast to conflict with, and its
  base when it no longer merges cleanly into it. A person sees the pair before the merge
  queue refuses the second one.

Git runs only when a task changes state or starts, never per pass per task.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parallel_agents import git
from parallel_agents.errors import PAError
from parallel_agents.store import Group, GroupTask

if TYPE_CHECKING:
    from parallel_agents.sessions.orchestrator import App

STARTED = ("running", "done", "stopped")  # work that may collide, not merged yet

# A token of a prompt that looks like a path: has a '/' or a file extension.
_TOKEN = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_./-]*")


def _kept_apart(t: GroupTask, tasks: dict[str, GroupTask]) -> set[str]:
    """The tasks the plan already keeps from colliding with ``t``: its conflicts_with
    partners (either side naming the other) and its dependencies, transitively (their
    work is its base), and the tasks that depend on it."""
    out = set(t.spec.get("conflicts_with", []))
    out |= {k for k, o in tasks.items() if t.key in o.spec.get("conflicts_with", [])}

    def ancestors(key: str, seen: set[str]) -> set[str]:
        for d in tasks[key].spec.get("depends_on", []) if key in tasks else []:
            if d not in seen:
                seen.add(d)
                ancestors(d, seen)
        return seen

    out |= ancestors(t.key, set())
    out |= {k for k in tasks if t.key in ancestors(k, set())}
    return out


def prompt_paths(prompt: str) -> set[str]:
    """Words of a prompt that look like paths (``src/app.py``, ``shared.txt``, ``docs/``)."""
    out = set()
    for tok in _TOKEN.findall(prompt):
        tok = tok.rstrip(".")
        if "/" in tok or re.search(r"\.[A-Za-z0-9]{1,8}$", tok):
            out.add(tok.removeprefix("./"))
    return out


def _names(path: str, tokens: set[str]) -> bool:
    """Does a prompt naming ``tokens`` name the changed ``path``? The path itself, a
    trailing part of it (``app.py`` for ``src/app.py``) or a folder holding it."""
    return any(
        path == tok or path.endswith("/" + tok) or path.startswith(tok.rstrip("/") + "/")
        for tok in tokens
    )


def changed_paths(app: App, sid: str) -> set[str]:
    """What a session changed against its base: its worktree (committed, uncommitted and
    new files) or, without one, its latest checkpoint."""
    from parallel_agents.sessions import review

    s = app.store.session(sid)
    wt = Path(s.worktree)
    if wt.is_dir():
        tracked = git.run(["diff", "--name-only", "-z", s.base_commit], wt, check=False)
        new = git.run(["ls-files", "-z", "--others", "--exclude-standard"], wt, check=False)
        return {p for p in (tracked.text + new.text).split("\0") if p}
    head = review.session_head(app.store, s)
    if head is None:
        return set()
    repo_path = Path(app.store.repo(s.repo_id).path)
    r = git.run(["diff", "--name-only", "-z", s.base_commit, head], repo_path, check=False)
    return {p for p in r.text.split("\0") if p}


def before_start(app: App, t: GroupTask, tasks: dict[str, GroupTask]) -> dict[str, Any] | None:
    """The ``forecast_start`` flag of a task about to start, or None: the paths its prompt
    names that other unmerged tasks of the plan (not kept apart from it) have changed."""
    tokens = prompt_paths(str(t.spec.get("prompt") or ""))
    if not tokens:
        return None
    apart = _kept_apart(t, tasks)
    hits: list[dict[str, Any]] = []
    for k, o in sorted(tasks.items()):
        if k == t.key or k in apart or o.state not in STARTED or o.session_id is None:
            continue
        try:
            paths = sorted(p for p in changed_paths(app, o.session_id) if _names(p, tokens))
        except PAError:
            continue
        if paths:
            hits.append({"with": k, "session": o.session_id, "paths": paths})
    if not hits:
        return None
    said = "; ".join(f"{h['with']} ({_state(tasks, h['with'])}) changed {', '.join(h['paths'])}"
                     for h in hits)
    return {"tasks": hits, "note": f"started while {said}, which its prompt names"}


def _state(tasks: dict[str, GroupTask], key: str) -> str:
    return "at work" if tasks[key].state == "running" else f"{tasks[key].state}, unmerged"


def _forecast(app: App, rid: int, target: str) -> dict[str, Any]:
    """The forecast of every live, unmerged session of repo ``rid`` against the tip of
    ``target``: ``pa conflicts`` groups sessions by their base, and a task stacked on
    another's work (``after = "done"``) has a commit for one, yet merges into ``target``
    like the rest. Shares ``pa conflicts``' cache of merges."""
    from parallel_agents.git import forecast
    from parallel_agents.models import Status
    from parallel_agents.sessions import review

    st = app.store
    repo_path = Path(st.repo(rid).path)
    live = [
        s for s in st.sessions() if s.repo_id == rid and s.status.live and s.status != Status.MERGED
    ]
    base = git.rev_parse(repo_path, f"refs/heads/{target}")
    if not live or base is None:
        return {}
    heads = review._session_heads(st, repo_path, live)
    key = f"conflict-cache:{rid}"
    raw = st.kv_get(key) or {}
    cache: dict[tuple[str, str], list[str]] = {tuple(k.split(":", 1)): v for k, v in raw.items()}
    fc = forecast.forecast(repo_path, base, heads, cache)
    if len(cache) > 5000:
        cache = dict(list(cache.items())[-5000:])
    st.kv_set(key, {f"{a}:{b}": v for (a, b), v in cache.items()})
    pairs = {frozenset((c.a, c.b)): c.paths for c in fc.conflicts}
    return {"sessions": fc.sessions, "pairs": pairs}


def marks(app: App, g: Group) -> tuple[tuple[str, str | None], ...]:
    """What ``refresh`` forecasts from, cheaply (no git): each started task's session and
    its latest checkpoint."""
    st = app.store
    return tuple(
        (str(t.session_id), st.latest_checkpoint_commit(str(t.session_id)))
        for t in st.group_tasks(g.id)
        if t.state in STARTED and t.session_id
    )


def refresh(app: App, g: Group) -> int:
    """Record each started task's ``forecast`` (see the module); the number changed."""
    st = app.store
    tasks = {t.key: t for t in st.group_tasks(g.id)}
    started = {k: t for k, t in tasks.items() if t.state in STARTED and t.session_id}
    key_of = {t.session_id: k for k, t in tasks.items() if t.session_id}
    fcs: dict[tuple[int, str], dict[str, Any]] = {}
    changed = 0
    for k, t in started.items():
        try:
            rid = st.session(str(t.session_id)).repo_id
            where = (rid, str(t.spec.get("target")))
            if where not in fcs:
                fcs[where] = _forecast(app, *where)
        except PAError:
            continue
        fc = fcs[where]
        f = fc.get("sessions", {}).get(str(t.session_id))
        if f is None or f.error:
            continue
        apart = _kept_apart(t, tasks)
        flags: list[dict[str, Any]] = []
        for other in f.conflicts_with:
            ok = key_of.get(other)
            if ok in apart:
                continue
            paths = fc["pairs"].get(frozenset((str(t.session_id), other)), [])
            flags.append({"with": ok or other, "task": ok, "session": other, "paths": paths})
        if not f.clean_with_base:
            paths = list(f.base_conflict_paths)
            flag = {"with": t.spec.get("target"), "base": True, "paths": paths}
            flag["tasks"] = _merged_by(app, t, tasks, set(paths), apart)
            flags.append(flag)
        now = {"flags": flags, "note": _note(flags)} if flags else None
        if now == t.outcome.get("forecast"):
            continue
        outcome = {key: v for key, v in t.outcome.items() if key != "forecast"}
        if now:
            outcome["forecast"] = now
        changed += int(st.move_task(g.id, k, t.state, expect=[t.state], outcome=outcome))
    return changed


def _merged_by(
    app: App, t: GroupTask, tasks: dict[str, GroupTask], paths: set[str], apart: set[str]
) -> list[str]:
    """The plan's tasks merged into ``t``'s target that changed the paths it conflicts in
    there (git runs only for a task that no longer merges cleanly)."""
    out = []
    for k, o in sorted(tasks.items()):
        if o.state != "merged" or o.session_id is None or k in apart:
            continue
        if o.spec.get("target") != t.spec.get("target"):
            continue
        try:
            if changed_paths(app, o.session_id) & paths:
                out.append(k)
        except PAError:
            continue
    return out


def _note(flags: list[dict[str, Any]]) -> str:
    parts = []
    for f in flags:
        where = f" in {', '.join(f['paths'])}" if f["paths"] else ""
        if f.get("base"):
            by = f" (merged there by task {', '.join(f['tasks'])})" if f.get("tasks") else ""
            parts.append(f"no longer merges cleanly into {f['with']}{where}{by}")
        elif f.get("task"):
            parts.append(f"collides with task {f['with']}{where}")
        else:
            parts.append(f"collides with session {f['with']} (not in this plan){where}")
    return "forecast: " + "; ".join(parts)


def note(outcome: dict[str, Any]) -> str:
    """The forecast line of a task for ``pa plan show`` ('' when none)."""
    parts = []
    fs = outcome.get("forecast_start")
    if fs:
        parts.append(f"flagged before it started: {fs['note']}")
    fc = outcome.get("forecast")
    if fc:
        parts.append(str(fc["note"]))
    return "; ".join(parts)
