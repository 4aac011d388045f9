"""Plan commands (issue 15 §1): `pa plan run|ls|show|stop|resume|import`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from parallel_agents.cli._group import PAGroup, client
from parallel_agents.cli._output import ago, emit_json, status_cell, table, text_cell


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
            status_cell(p["state"]),
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
        why = o.get("waiting") or o.get("held") or o.get("skipped") or o.get("error") or ""
        rows.append(
            [
                text_cell(t["key"]),
                status_cell(t["state"]),
                t["session"] or "-",
                check,
                "yes" if t["merged"] else "no",
                text_cell(", ".join(t["spec"].get("depends_on") or []) or "-"),
                text_cell(why[:120]),
            ]
        )
    table(["TASK", "STATE", "SESSION", "CHECK", "MERGED", "AFTER", "NOTE"], rows)

