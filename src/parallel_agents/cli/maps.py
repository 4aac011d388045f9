"""Map-reduce commands (issue 15 §4): `pa map` (and `pa map show`, `ls`, `resume`), `pa reduce`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from parallel_agents.cli._group import client
from parallel_agents.cli._output import ago, emit_json, status_cell, table, text_cell


def _env(pairs: tuple[str, ...]) -> dict[str, str] | None:
    from parallel_agents.errors import UsageError

    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--env {pair!r} is not KEY=VALUE")
        env[key] = value
    return env or None


def _read_items(source: str) -> str:
    from parallel_agents.errors import UsageError

    if source == "-":
        return sys.stdin.read()
    try:
        return Path(source).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(
            f"cannot read the items file {source}: {e}",
            hint="give a UTF-8 text file with one item a line, or - to read stdin",
        ) from None


@click.group("map", invoke_without_command=True)
@click.option(
    "--template",
    help="The prompt of each item: {item} is the whole line, {FIELD} a key of a JSON-lines "
    "item; {{ and }} are literal braces.",
)
@click.option(
    "--items",
    "items_from",
    metavar="FILE|-",
    help="The items, one a line (or one JSON object a line); - reads stdin.",
)
@click.option("--repo", "repo_ref", help="Repo name or path (default: the repo around cwd).")
@click.option(
    "--agent",
    help="Agent of every item (default: the default_agent setting; `command` with --cmd).",
)
@click.option("--cmd", help="Program for the command agent, split like a shell would.")
@click.option("--model", help="Model passed to the agent (default: agents.<agent>.model).")
@click.option("--base", help="Branch, tag or commit to start from (default: current branch).")
@click.option("--name", help="Name of the group (default: map-<id>).")
@click.option(
    "--env",
    "env_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Extra environment for the agent (repeatable); kept out of logs, events and reports.",
)
@click.option("--timeout", type=float, help="Stop a turn after this many seconds (0: none).")
@click.option("--json", "as_json", is_flag=True, help="Print the group's report as JSON.")
@click.pass_context
def map_group(
    ctx: click.Context,
    template: str | None,
    items_from: str | None,
    repo_ref: str | None,
    agent: str | None,
    cmd: str | None,
    model: str | None,
    base: str | None,
    name: str | None,
    env_pairs: tuple[str, ...],
    timeout: float | None,
    as_json: bool,
) -> None:
    """Start one session per item, all under one map group.

    Each agent's prompt is the template filled with its item, plus how to report its
    outcome: a JSON object {"status": "success"|"failure"|"skip", "summary": "…"} written
    to the file $PA_OUTCOME names. Sessions past limits.max_running wait as `queued`.
    Then: `pa map show GROUP`, and `pa reduce GROUP` once every item has ended.
    """
    from parallel_agents.cmdline import split_cmd
    from parallel_agents.errors import UsageError

    if ctx.invoked_subcommand is not None:
        if template is not None or items_from is not None:
            raise UsageError("--template and --items start a map; they go without a sub-command")
        return
    if template is None or items_from is None:
        raise UsageError(
            "pa map needs --template and --items",
            hint="e.g. pa map --template 'fix the lint errors in {item}' --items files.txt",
        )
    rep = client().map_start(
        template,
        _read_items(items_from),
        repo=repo_ref,
        agent=agent,
        cmd=split_cmd(cmd) if cmd is not None else None,
        model=model,
        base=base,
        name=name,
        timeout=timeout or None,  # 0: no limit
        env=_env(env_pairs),
    )
    if as_json:
        emit_json(rep)
        return
    g = rep["group"]
    sessions = [i for i in rep["items"] if i["session"]]
    queued = sum(1 for i in sessions if i["status"] == "queued")
    click.echo(
        f"map group {g['name']} ({g['id']}): {len(rep['items'])} items, "
        f"{len(sessions)} sessions started ({queued} queued)"
    )
    failed = [i for i in rep["items"] if i["state"] == "failed"]
    for i in failed:
        summary = (i["outcome"] or {}).get("summary", "")
        click.echo(f"  item {i['key']} failed: {text_cell(summary)}", err=True)
    click.echo(f"watch it: pa map show {g['name']}   then: pa reduce {g['name']}")


def _outcome_cell(o: dict[str, Any] | None) -> str:
    if not o:
        return "-"
    word = str(o.get("status"))
    return f"{word}*" if o.get("source") != "record" else word


def _diff_cell(d: dict[str, Any] | None) -> str:
    if not d:
        return "-"
    return f"{d['files']} +{d['added']} -{d['deleted']}"


def _check_cell(c: dict[str, Any] | None) -> str:
    if not c:
        return "-"
    return "pass" if c.get("ok") else ("timeout" if c.get("timed_out") else "fail")


@map_group.command("show")
@click.argument("group")
@click.option("--json", "as_json", is_flag=True)
def show(group: str, as_json: bool) -> None:
    """A map (or reduce) group's report: each item's state, session, outcome, diff size
    (files, +lines, -lines) and last check. An outcome with * was derived from how the
    turn ended (no valid record)."""
    rep = client().map_report(group)
    if as_json:
        emit_json(rep)
        return
    g, counts = rep["group"], rep["counts"]
    states = ", ".join(f"{n} {s}" for s, n in sorted(counts["states"].items()))
    click.echo(
        f"{g['name']} ({g['id']}): {g['kind']}, {g['state']}; {counts['items']} items: {states}"
    )
    rows = [
        [
            i["key"],
            text_cell(str(i["item"])[:50]),
            status_cell(i["state"]),
            i["session"] or "-",
            _outcome_cell(i["outcome"]),
            text_cell(str((i["outcome"] or {}).get("summary", ""))[:60]),
            _diff_cell(i["diff"]),
            _check_cell(i["check"]),
        ]
        for i in rep["items"]
    ]
    table(["#", "item", "state", "session", "outcome", "summary", "diff", "check"], rows)
    if counts.get("not_started"):
        click.echo(
            f"{counts['not_started']} items never started (pa stopped while starting them): "
            f"pa map resume {g['name']}",
            err=True,
        )
    for r in rep.get("reduces") or []:
        click.echo(f"reduce {r['name']}: {r['state']}, session {r['session'] or '-'}")


@map_group.command("resume")
@click.argument("group")
@click.option("--json", "as_json", is_flag=True)
def resume(group: str, as_json: bool) -> None:
    """Start the items of a map group that never started (pa stopped while starting
    them); an item whose session was made already keeps it: nothing starts twice."""
    rep = client().map_resume(group)
    if as_json:
        emit_json(rep)
        return
    g = rep["group"]
    running = sum(1 for i in rep["items"] if i["state"] == "running")
    click.echo(f"{g['name']}: {running} of {rep['counts']['items']} items running")


@map_group.command("ls")
@click.option("--json", "as_json", is_flag=True)
def ls(as_json: bool) -> None:
    """Every map group: its state and its items counted by state."""
    groups = client().maps()
    if as_json:
        emit_json(groups)
        return
    rows = [
        [
            g["id"],
            text_cell(g["name"]),
            status_cell(g["state"]),
            str(g["items"]),
            ", ".join(f"{n} {s}" for s, n in sorted(g["states"].items())),
            ago(g["created_at"]),
        ]
        for g in groups
    ]
    table(["id", "name", "state", "items", "states", "created"], rows)


@click.command("reduce")
@click.argument("group")
@click.option("--agent", help="The reducer's agent (default: the default_agent setting).")
@click.option("--cmd", help="Program for the command agent, split like a shell would.")
@click.option("--model", help="Model passed to the agent (default: agents.<agent>.model).")
@click.option("--prompt", "extra", help="More instructions, added to the reducer's prompt.")
@click.option("--name", help="Name of the reduce group (default: <map name>-reduce).")
@click.option(
    "--env",
    "env_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Extra environment for the agent (repeatable); kept out of logs, events and reports.",
)
@click.option("--timeout", type=float, help="Stop a turn after this many seconds (0: none).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def reduce(
    group: str,
    agent: str | None,
    cmd: str | None,
    model: str | None,
    extra: str | None,
    name: str | None,
    env_pairs: tuple[str, ...],
    timeout: float | None,
    as_json: bool,
) -> None:
    """Merge a map group's successful items onto its base and start a reducer on that.

    Every item whose outcome is success is merged, one by one and without a working
    tree, where it merges cleanly (identical changes do); the reducer's prompt lists what
    is merged, what conflicted and what failed, and asks it to integrate, dedupe and
    summarise. Refused while any item still runs.
    """
    from parallel_agents.cmdline import split_cmd

    res = client().reduce(
        group,
        agent=agent,
        cmd=split_cmd(cmd) if cmd is not None else None,
        model=model,
        prompt=extra,
        name=name,
        timeout=timeout or None,  # 0: no limit
        env=_env(env_pairs),
    )
    if as_json:
        emit_json(res)
        return
    s = res["session"]
    click.echo(
        f"reduce group {res['group']['name']}: session {s['id']} {s['status']} on {s['branch']}"
    )
    click.echo(
        f"merged {len(res['merged'])}, identical {len(res['identical'])}, "
        f"conflicting {len(res['conflicts'])}, not merged {len(res['not_merged'])}"
    )
    for e in res["conflicts"]:
        click.echo(f"  item {e['key']} conflicts in {', '.join(e['paths'][:5])}")
