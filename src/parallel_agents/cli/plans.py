"""Plan commands (issue 15 §1): `pa plan run|ls|show|stop|resume|import`."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import click

from parallel_agents.cli._group import PAGroup, client
from parallel_agents.cli._output import ago, emit_json, table, text_cell, tty

# Task and plan states (store/_groups.py), as the dashboard's status colours go.
_STYLE = {
    "waiting": "dim",
    "starting": "cyan",
    "running": "cyan",
    "done": "green",
    "merged": "blue",
    "failed": "bold red",
    "stopped": "magenta",
    "skipped": "yellow",
    "discarded": "dim",
    "finished": "blue",
}


def state_cell(state: str) -> str:
    """A state for a table: coloured on a terminal (an unknown one plain, never markup
    rich refuses)."""
    style = _STYLE.get(state)
    if not tty() or style is None:
        return text_cell(state)
    return f"[{style}]{state}[/]"


@click.group("plan", cls=PAGroup)
def plan() -> None:
    """Plans: a TOML file of tasks with dependencies, run as sessions in order.

    The format: docs/plan.schema.json and the README's Plans section.
    """


@plan.command("run")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--name", help="The plan's name (default: name = in the file, else plan-<id>).")
@click.option("--json", "as_json", is_flag=True)
def run(file: str, name: str | None, as_json: bool) -> None:
    """Check FILE and start its plan: every task whose dependencies are met starts now,
    the others when they are. FILE - reads the plan from stdin.

    Refused whole, starting nothing, when the file has a problem (each is named).
    """
    from parallel_agents.errors import UsageError

    if file == "-":
        text, source, folder = sys.stdin.read(), "the plan on stdin", Path.cwd()
    else:
        path = Path(file).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"cannot read the plan {file}: {e}") from e
        source, folder = str(path), path.absolute().parent
    out = client().plan_run(text, source=source, folder=str(folder), cwd=str(Path.cwd()), name=name)
    if as_json:
        emit_json(out)
        return
    _print(out)
    click.echo(f"follow it: pa plan show {out['plan']['name']}")


@plan.command("ls")
@click.option("--json", "as_json", is_flag=True)
def ls(as_json: bool) -> None:
    """List plans: their state and how many tasks are in each state."""
    plans = client().plans()
    if as_json:
        emit_json(plans)
        return
    if not plans:
        click.echo("no plans (start one: pa plan run plan.toml)")
        return
    rows = [
        [
            text_cell(p["name"]),
            state_cell(p["state"]),
            str(p["tasks"]),
            ", ".join(f"{n} {s}" for s, n in sorted(p["counts"].items())),
            ago(p["created_at"]),
        ]
        for p in plans
    ]
    table(["PLAN", "STATE", "TASKS", "BY STATE", "AGE"], rows)


@plan.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def show(name: str, as_json: bool) -> None:
    """A plan's tasks: state, session, check, merged, and why a task waits."""
    c = client()
    c.refresh()
    out = c.plan(name)
    if as_json:
        emit_json(out)
    else:
        _print(out)


@plan.command("stop")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def stop(name: str, as_json: bool) -> None:
    """Start no more tasks and stop the sessions at work (pa plan resume continues)."""
    out = client().plan_stop(name)
    if as_json:
        emit_json(out)
        return
    _print(out)
    click.echo(f"stopped {', '.join(out['stopped']) or 'no running task'}; continue: "
               f"pa plan resume {out['plan']['name']}")


@plan.command("resume")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def resume(name: str, as_json: bool) -> None:
    """Continue a plan after pa plan stop, a crash or a reboot (nothing starts twice)."""
    out = client().plan_resume(name)
    if as_json:
        emit_json(out)
        return
    _print(out)
    if out["continued"]:
        click.echo(f"continued: {', '.join(out['continued'])}")


def _print(out: dict[str, Any]) -> None:
    p = out["plan"]
    click.echo(f"plan {p['name']} ({p['id']}): {p['state']}")
    rows = []
    for t in out["tasks"]:
        chk = t.get("check")
        check = "-" if not chk else ("pass" if chk["ok"] else "fail")
        o = t.get("outcome") or {}
        why = next((o[k] for k in ("waiting", "held", "skipped", "error", "note") if o.get(k)), "")
        if t.get("forecast"):
            why = f"{why}; {t['forecast']}" if why else t["forecast"]
        rows.append(
            [
                text_cell(t["key"]),
                state_cell(t["state"]),
                t["session"] or (f"{t['attempts']['n']} attempts" if t.get("attempts") else "-"),
                check,
                "yes" if t["merged"] else "no",
                text_cell(", ".join(t["spec"].get("depends_on") or []) or "-"),
                text_cell(why[:240]),
            ]
        )
    table(["TASK", "STATE", "SESSION", "CHECK", "MERGED", "AFTER", "NOTE"], rows)


# -- import: ccpm epics, GitHub issues ------------------------------------------------------
@plan.command("import")
@click.argument("epic", required=False, type=click.Path(file_okay=False, exists=True))
@click.option("--gh-label", metavar="LABEL", help="The open GitHub issues with this label (gh).")
@click.option("--repo", "gh_repo", metavar="OWNER/NAME",
              help="With --gh-label: the GitHub repo (default: gh's, the one around here).")
@click.option(
    "--out", "out_path", type=click.Path(dir_okay=False), help="Write the plan to this file."
)
@click.option("--agent", help="The agent of every task (default: the default_agent setting).")
@click.option("--auto-merge", is_flag=True, help="Merge each task when it is ready (auto_merge).")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON instead of TOML.")
def import_(
    epic: str | None,
    gh_label: str | None,
    gh_repo: str | None,
    out_path: str | None,
    agent: str | None,
    auto_merge: bool,
    as_json: bool,
) -> None:
    """Make a plan file from a ccpm epic folder (epic.md and numbered task files whose
    front matter holds depends_on, parallel and conflicts_with), or, with --gh-label,
    from GitHub issues read through gh.

    A task file's body is its prompt, its name its title; closed tasks are left out (and
    so are dependencies on them); parallel: false keeps the task from running beside any
    other. An issue is task issue-N (its title and body the prompt), its "depends on #N"
    lines its dependencies; an issue an open PR fixes ("Fixes #N") is left out, and so
    is a dependency outside the plan (each said on stderr). Check the result with
    pa plan run.
    """
    from parallel_agents.errors import UsageError

    if (epic is None) == (gh_label is None):
        raise UsageError(
            "say where the tasks come from: an EPIC folder or --gh-label LABEL (one of them)",
            hint="pa plan import .claude/epics/NAME, or pa plan import --gh-label LABEL",
        )
    if gh_repo and not gh_label:
        raise UsageError("--repo goes with --gh-label", hint="pa plan import --gh-label L --repo R")
    if gh_label is not None:
        doc = _gh_plan(gh_label, gh_repo, agent, auto_merge)
    else:
        assert epic is not None
        doc = ccpm_plan(Path(epic), agent=agent, auto_merge=auto_merge)
    if as_json:
        emit_json(doc)
        return
    text = plan_text(doc)
    if out_path:
        Path(out_path).write_text(text, encoding="utf-8")
        click.echo(f"wrote {out_path}: {len(doc['tasks'])} tasks; start it: pa plan run {out_path}")
    else:
        click.echo(text, nl=False)


def _gh_plan(label: str, repo: str | None, agent: str | None, auto_merge: bool) -> dict[str, Any]:
    """The plan of GitHub issues, checked as pa plan run checks it (a cycle among the
    issues' "depends on" lines is named here, not at run time); notes on stderr."""
    from parallel_agents.sessions.plan_file import parse_plan
    from parallel_agents.sessions.plan_import_gh import gh_plan

    doc, notes = gh_plan(label, repo=repo, agent=agent, auto_merge=auto_merge)
    for n in notes:
        click.echo(f"note: {n}", err=True)
    # Any agent that needs no cmd will do here: only the graph and the fields are checked.
    parse_plan(plan_text(doc), source=f"the issues labelled {label!r}",
               default_agent=agent or "claude")
    return doc


_NUMBERED = re.compile(r"(\d+)\.md")
_CLOSED = ("closed", "completed", "done")


def _front_matter(path: Path) -> tuple[dict[str, Any], str]:
    """(front matter, body) of a markdown file; every value read as text (ccpm writes
    numbers such as 001, which YAML would read as octal)."""
    import yaml

    from parallel_agents.errors import UsageError

    text = path.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return {}, text
    head, sep, body = text[3:].partition("\n---")
    if not sep:
        raise UsageError(f"{path}: its front matter (---) is not closed")
    try:
        meta = yaml.load(head, Loader=yaml.BaseLoader) or {}
    except yaml.YAMLError as e:
        raise UsageError(f"{path}: its front matter is not valid YAML: {e}") from e
    if not isinstance(meta, dict):
        raise UsageError(f"{path}: its front matter is not a mapping")
    return meta, body.partition("\n")[2].strip()


def _refs(value: Any) -> list[int]:
    """Task numbers of a depends_on / conflicts_with value: [001, 2], "001, 2" or [#12]."""
    items = value if isinstance(value, list) else str(value or "").strip("[]").split(",")
    return [int(x) for x in (str(i).strip().strip("'\"#") for i in items) if x.isdigit()]


def ccpm_plan(folder: Path, *, agent: str | None, auto_merge: bool) -> dict[str, Any]:
    from parallel_agents.errors import UsageError

    epic = folder / "epic.md"
    meta, body = _front_matter(epic) if epic.is_file() else ({}, "")
    files = sorted(
        (int(m.group(1)), p) for p in folder.iterdir() if (m := _NUMBERED.fullmatch(p.name))
    )
    if not files:
        raise UsageError(
            f"{folder} holds no numbered task files (001.md, 002.md, …)",
            hint="point pa plan import at one ccpm epic folder: .claude/epics/NAME",
        )
    tasks: list[dict[str, Any]] = []
    # A task's id is its file's name (001); references are numbers (1, 001, #1).
    stems = {n: path.stem for n, path in files}
    closed: set[str] = set()
    for _, path in files:
        fm, text = _front_matter(path)
        if str(fm.get("status", "")).lower() in _CLOSED:
            closed.add(path.stem)
            continue
        t: dict[str, Any] = {"id": path.stem, "title": str(fm.get("name") or path.stem)}
        t["prompt"] = text or t["title"]
        if agent:
            t["agent"] = agent
        for key in ("depends_on", "conflicts_with"):
            # An unknown number stays as it is: pa plan run names it.
            t[key] = [stems.get(r, str(r)) for r in _refs(fm.get(key))]
        t["parallel"] = str(fm.get("parallel", "true")).lower() != "false"
        tasks.append(t)
    ids = [t["id"] for t in tasks]
    for t in tasks:
        t["depends_on"] = [d for d in t["depends_on"] if d not in closed]
        partners = [c for c in t["conflicts_with"] if c in ids and c != t["id"]]
        if not t.pop("parallel"):
            partners = [i for i in ids if i != t["id"]]
        t["conflicts_with"] = partners
        for key in ("depends_on", "conflicts_with"):
            if not t[key]:
                del t[key]
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", str(meta.get("name") or folder.name)).strip("-.")
    doc: dict[str, Any] = {"name": name[:64] or "epic"}
    if body:
        doc["description"] = body
    if auto_merge:
        doc["defaults"] = {"auto_merge": True}
    doc["tasks"] = tasks
    return doc


def _toml_value(v: Any) -> str:
    import json

    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    s = str(v)
    if "\n" in s and "'''" not in s and not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", s):
        return "'''\n" + s + "'''"  # a literal: the markdown reads as written
    # A TOML basic string has JSON's escapes; DEL is the one control JSON leaves as is.
    return json.dumps(s, ensure_ascii=False).replace("\x7f", "\\u007f")


def plan_text(doc: dict[str, Any]) -> str:
    """``doc`` as a plan file (TOML)."""
    lines = [f"{k} = {_toml_value(doc[k])}" for k in ("name", "description") if k in doc]
    if "defaults" in doc:
        defaults = doc["defaults"].items()
        lines += ["", "[defaults]", *(f"{k} = {_toml_value(v)}" for k, v in defaults)]
    for t in doc["tasks"]:
        lines += ["", "[[tasks]]", *(f"{k} = {_toml_value(v)}" for k, v in t.items())]
    return "\n".join(lines) + "\n"
