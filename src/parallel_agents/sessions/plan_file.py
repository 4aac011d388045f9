"""Plan files (issue 15 §1): a TOML file that lists a plan's tasks, their dependencies and
how each one runs, read and checked before anything starts.

The format is written down as a JSON Schema in docs/plan.schema.json (the TOML document
as JSON); ``parse_plan`` checks everything the schema checks and what a schema cannot
say: duplicate ids, unknown ids in ``depends_on``/``conflicts_with``, cycles, agents the
registry does not know, a command agent without a program. Every problem is reported at
once, each naming its task, so one edit fixes the file.

    name = "login"
    [defaults]
    agent = "claude"
    auto_merge = true
    [[tasks]]
    id = "schema"
    prompt = "add the users table"
    [[tasks]]
    id = "api"
    prompt = "add the login endpoint"
    depends_on = ["schema"]
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from parallel_agents.errors import UsageError
from parallel_agents.runtime.base import KINDS

AFTER = ("merged", "done")
ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_TASKS = 1000  # a plan is read and shown whole; more is a mistake, not a plan
MAX_TITLE = 200

# What a task may say (and the defaults a plan may give every task).
TASK_KEYS = (
    "id", "title", "prompt", "agent", "model", "cmd", "repo", "base", "depends_on",
    "conflicts_with", "check", "attempts", "after", "auto_merge", "timeout", "runtime",
)
DEFAULT_KEYS = (
    "agent", "model", "cmd", "repo", "base", "after", "auto_merge", "check", "timeout", "runtime",
)
TOP_KEYS = ("name", "description", "defaults", "tasks")
SCHEMA_HINT = "the plan format: docs/plan.schema.json, and the README's Plans section"


@dataclass
class PlanTask:
    id: str
    prompt: str
    title: str
    agent: str
    model: str | None = None
    cmd: list[str] | None = None
    repo: str | None = None
    base: str | None = None
    depends_on: list[str] = field(default_factory=list)
    conflicts_with: list[str] = field(default_factory=list)
    check: str | None = None
    attempts: int = 1
    after: str = "merged"
    auto_merge: bool = False
    timeout: float | None = None
    runtime: str | None = None  # issue 19: local or ray (default: setting runtime.kind)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Plan:
    name: str | None
    description: str | None
    tasks: list[PlanTask]


class _Problems:
    """Every problem of one file, each naming where it is."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: str | None, text: str) -> None:
        self.items.append(f"{where}: {text}" if where else text)


def _where(tid: Any, i: int) -> str:
    return f"task {tid!r}" if isinstance(tid, str) and tid else f"task #{i + 1}"


def _str(p: _Problems, where: str, key: str, v: Any, *, empty_ok: bool = False) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str):
        p.add(where, f"{key} must be a string, not {_kind(v)}")
        return None
    if "\0" in v:
        p.add(where, f"{key} contains a NUL byte (\\0), which no program can receive")
        return None
    if not empty_ok and not v.strip():
        p.add(where, f"{key} is empty")
        return None
    return v


def _kind(v: Any) -> str:
    return {
        bool: "true/false", int: "a number", float: "a number", str: "a string",
        list: "a list", dict: "a table",
    }.get(type(v), type(v).__name__)


def _ids(p: _Problems, where: str, key: str, v: Any) -> list[str]:
    if v is None:
        return []
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        p.add(where, f"{key} must be a list of task ids (strings), e.g. {key} = [\"setup\"]")
        return []
    return list(dict.fromkeys(v))


def _cmd(p: _Problems, where: str, v: Any) -> list[str] | None:
    from parallel_agents.cmdline import split_cmd

    if v is None:
        return None
    if isinstance(v, str):
        try:
            return split_cmd(v)
        except UsageError as e:
            p.add(where, f"cmd: {e.message}")
            return None
    if isinstance(v, list) and v and all(isinstance(x, str) for x in v) and v[0]:
        if any("\0" in x for x in v):
            p.add(where, "cmd contains a NUL byte (\\0)")
            return None
        return list(v)
    p.add(where, "cmd must be a program and its arguments: a list of strings or one string")
    return None


def _settings(
    p: _Problems, where: str | None, t: Mapping[str, Any], keys: tuple[str, ...]
) -> None:
    for k in t:
        if k not in keys:
            p.add(where, f"unknown key {k!r} (known: {', '.join(keys)})")


def _options(
    p: _Problems, where: str, t: Mapping[str, Any], base: dict[str, Any]
) -> dict[str, Any]:
    """The run options of a task (or the defaults), checked; ``base``: the defaults."""
    o = dict(base)
    for key in ("agent", "model", "repo", "base", "check"):
        if key in t:
            o[key] = _str(p, where, key, t[key])
    if "cmd" in t:
        o["cmd"] = _cmd(p, where, t["cmd"])
    if "after" in t:
        after = t["after"]
        if after not in AFTER:
            p.add(where, f"after must be \"merged\" or \"done\", not {after!r}")
        else:
            o["after"] = after
    if "auto_merge" in t:
        if not isinstance(t["auto_merge"], bool):
            p.add(where, f"auto_merge must be true or false, not {_kind(t['auto_merge'])}")
        else:
            o["auto_merge"] = t["auto_merge"]
    if "timeout" in t:
        v = t["timeout"]
        if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
            p.add(where, "timeout must be a number of seconds above 0")
        else:
            o["timeout"] = float(v)
    if "runtime" in t:
        if t["runtime"] not in KINDS:
            p.add(where, f"runtime must be \"local\" or \"ray\", not {t['runtime']!r}")
        else:
            o["runtime"] = t["runtime"]
    return o


def parse_plan(
    text: str,
    *,
    source: str = "the plan file",
    default_agent: str = "command",
    known_agent: Callable[[str], bool] | None = None,
) -> Plan:
    """The plan in ``text`` (TOML), checked; a UsageError listing every problem, each
    naming its task, when it is not valid. ``known_agent`` says whether an agent name
    is registered (default: the agent registry)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{source} is not valid TOML: {e}", hint=SCHEMA_HINT) from e
    p = _Problems()
    _settings(p, None, doc, TOP_KEYS)
    name = _str(p, "name", "name", doc.get("name"))
    if name is not None and not ID.fullmatch(name):
        p.add("name", f"{name!r} is not a plan name: letters, digits, '.', '_' and '-'")
        name = None
    description = _str(p, "description", "description", doc.get("description"), empty_ok=True)
    raw_defaults = doc.get("defaults", {})
    defaults: dict[str, Any] = {"agent": None, "after": "merged", "auto_merge": False}
    if not isinstance(raw_defaults, dict):
        p.add("defaults", "must be a table: [defaults]")
    else:
        _settings(p, "defaults", raw_defaults, DEFAULT_KEYS)
        defaults = _options(p, "defaults", raw_defaults, defaults)
    raw_tasks = doc.get("tasks")
    if not isinstance(raw_tasks, list) or not raw_tasks:
        p.add(None, "the plan has no tasks: add a [[tasks]] table with an id and a prompt")
        raw_tasks = []
    elif len(raw_tasks) > MAX_TASKS:
        p.add(None, f"the plan has {len(raw_tasks)} tasks; at most {MAX_TASKS} fit in one plan")
        raw_tasks = []
    tasks: list[PlanTask] = []
    seen: set[str] = set()
    for i, t in enumerate(raw_tasks):
        where = _where(t.get("id") if isinstance(t, dict) else None, i)
        if not isinstance(t, dict):
            p.add(where, "must be a table: [[tasks]]")
            continue
        _settings(p, where, t, TASK_KEYS)
        tid = t.get("id")
        if not isinstance(tid, str) or not tid:
            p.add(where, "has no id: give it id = \"a-name\"")
            continue
        if not ID.fullmatch(tid):
            p.add(where, "the id may hold letters, digits, '.', '_' and '-' (64 at most)")
            continue
        if tid in seen:
            p.add(where, "the id is used by two tasks; ids must be unique")
            continue
        seen.add(tid)
        prompt = t.get("prompt")
        if prompt is None or (isinstance(prompt, str) and not prompt.strip()):
            p.add(where, "the prompt is empty: say what the agent should do")
            prompt = None
        else:
            prompt = _str(p, where, "prompt", prompt)
        title = _str(p, where, "title", t.get("title"))
        if title is not None and len(title) > MAX_TITLE:
            p.add(where, f"the title is {len(title)} characters long; at most {MAX_TITLE} fit")
        attempts = t.get("attempts", 1)
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            p.add(where, "attempts must be a whole number from 1")
            attempts = 1
        o = _options(p, where, t, defaults)
        agent = o.get("agent") or ("command" if o.get("cmd") else default_agent)
        tasks.append(
            PlanTask(
                id=tid,
                prompt=prompt or "",
                title=" ".join((title or _first_line(prompt or "") or tid).split()),
                agent=agent,
                model=o.get("model"),
                cmd=o.get("cmd"),
                repo=o.get("repo"),
                base=o.get("base"),
                depends_on=_ids(p, where, "depends_on", t.get("depends_on")),
                conflicts_with=_ids(p, where, "conflicts_with", t.get("conflicts_with")),
                check=o.get("check"),
                attempts=attempts,
                after=o.get("after") or "merged",
                auto_merge=bool(o.get("auto_merge")),
                timeout=o.get("timeout"),
                runtime=o.get("runtime"),
            )
        )
    _check_graph(p, tasks)
    _check_agents(p, tasks, known_agent)
    if p.items:
        listing = "\n".join(f"  - {x}" for x in p.items)
        n = len(p.items)
        raise UsageError(
            f"{source} is not a valid plan ({n} problem{'s' if n > 1 else ''}):\n{listing}",
            hint=SCHEMA_HINT,
        )
    return Plan(name=name, description=description, tasks=tasks)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:72] if text.strip() else ""


def _check_graph(p: _Problems, tasks: list[PlanTask]) -> None:
    ids = {t.id for t in tasks}
    for t in tasks:
        where = f"task {t.id!r}"
        for key in ("depends_on", "conflicts_with"):
            for other in getattr(t, key):
                if other == t.id:
                    p.add(where, f"{key} names the task itself")
                elif other not in ids:
                    p.add(where, f"{key} names {other!r}, which is no task of this plan")
    for cycle in find_cycles({t.id: [d for d in t.depends_on if d in ids] for t in tasks}):
        p.add(
            f"task {cycle[0]!r}",
            "its dependencies form a cycle: " + " -> ".join([*cycle, cycle[0]]),
        )


def find_cycles(graph: Mapping[str, list[str]]) -> list[list[str]]:
    """Each dependency cycle of ``graph`` (task -> the tasks it depends on) once, in the
    order the tasks were written."""
    out: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(n: str) -> None:
        state[n] = 1
        path.append(n)
        for d in graph.get(n, []):
            if d == n:
                continue
            if state.get(d) == 1:
                out.append(path[path.index(d) :])
            elif d not in state:
                visit(d)
        path.pop()
        state[n] = 2

    for n in graph:
        if n not in state:
            visit(n)
    return out


def _check_agents(
    p: _Problems, tasks: list[PlanTask], known_agent: Callable[[str], bool] | None
) -> None:
    if known_agent is None:
        from parallel_agents.agents import available

        names = set(available())
        known_agent = names.__contains__
    for t in tasks:
        where = f"task {t.id!r}"
        if not known_agent(t.agent):
            from parallel_agents.agents import available

            p.add(where, f"unknown agent {t.agent!r} (known: {', '.join(available())})")
        elif t.agent == "command" and not t.cmd:
            p.add(where, "the command agent needs cmd = [\"PROGRAM\", \"ARG\", ...]")
