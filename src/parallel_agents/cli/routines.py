"""Routine commands (issue 17): `pa routine add|ls|show|pause|resume|rm|run|history`, and
the HTTP trigger's `token` and `calls`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click

from parallel_agents.cli._group import PAGroup, client
from parallel_agents.cli._output import emit_json, table, text_cell


@click.group("routine", cls=PAGroup)
def routine() -> None:
    """Routines: sessions started on a schedule (--cron, --every) or over HTTP (--api)."""


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _last(r: dict[str, Any]) -> str:
    if not r["runs"]:
        return "-"
    x = r["runs"][0]
    return f"#{x['run']} {x['status'] or x['state']}"


@routine.command("add")
@click.argument("name")
@click.option("--prompt", required=True,
              help="The prompt; may use {date} {branch} {commit} {pr_number} {text}.")
@click.option("--cron", multiple=True, help='A cron trigger, e.g. "0 7 * * 1-5" (repeatable).')
@click.option("--tz", help="The --cron triggers' IANA time zone (default: this machine's).")
@click.option("--every", multiple=True, help="An interval trigger: 30m, 2h, 1d (repeatable).")
@click.option("--agent", help="The agent CLI (default: the configured one).")
@click.option("--cmd", help="Program for the command agent, split like a shell would.")
@click.option("--model", help="The agent's model.")
@click.option("--repo", help="Repository name or path (default: the current one).")
@click.option("--base", help="The branch each run starts from (default: the repo's).")
@click.option("--missed", type=click.Choice(["once", "skip"]), default="once",
              help="Due times passed while the server was down: one run, or none.")
@click.option("--overlap", type=click.Choice(["skip", "queue", "allow"]), default="skip",
              help="When the previous run is still working.")
@click.option("--on-push", "on_push", multiple=True, metavar="BRANCH",
              help="A run when BRANCH gets a new commit (repeatable).")
@click.option("--on-pr", "on_pr", is_flag=True,
              help="A run for each new pull request (gh, polled every routines.pr_poll s).")
@click.option("--timeout", help="Stop a run's turn after this long: 30m, 2h.")
@click.option("--auto-merge", "auto_merge", is_flag=True,
              help="Merge a done run through the merge queue when the repo's check passes.")
@click.option("--api", is_flag=True,
              help="An HTTP trigger: POST /api/v1/routines/NAME/fire with a token shown once.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--max-unreviewed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Skip due times while this many runs wait unread in the inbox (0: no limit).")
def add(
    name: str, prompt: str, cron: tuple[str, ...], tz: str | None, every: tuple[str, ...],
    agent: str | None, cmd: str | None, model: str | None, repo: str | None,
    base: str | None, missed: str, overlap: str, as_json: bool,
    on_push: tuple[str, ...] = (), on_pr: bool = False, timeout: str | None = None,
    auto_merge: bool = False, max_unreviewed: int = 0, api: bool = False,
) -> None:
    """Add routine NAME; everything a run needs is checked now (nothing stored on error)."""
    from parallel_agents.cmdline import split_cmd

    out = client().routine_add(
        name, prompt, cron=list(cron), tz=tz, every=list(every), agent=agent,
        cmd=split_cmd(cmd) if cmd is not None else None, model=model,
        repo=repo, cwd=str(Path.cwd()), base=base, missed=missed, overlap=overlap,
        on_push=list(on_push), on_pr=on_pr, timeout=timeout, auto_merge=auto_merge,
        max_unreviewed=max_unreviewed,
        api=api,
    )
    if as_json:
        emit_json(out)
        return
    click.echo(f"added routine {out['name']}: next run {_when(out['next_due'])}")
    if "token" in out:
        _token_lines(out["name"], out["token"])


@routine.command("ls")
@click.option("--json", "as_json", is_flag=True)
def ls(as_json: bool) -> None:
    """List routines: triggers, next run, last result."""
    rows = client().routines()
    if as_json:
        emit_json(rows)
        return
    table(
        ["name", "triggers", "next run", "last"],
        [
            [
                text_cell(r["name"]), text_cell(", ".join(r["triggers"])),
                "paused" if r["paused"] else _when(r["next_due"]), text_cell(_last(r)),
            ]
            for r in rows
        ],
    )


def _print(r: dict[str, Any]) -> None:
    click.echo(f"{r['name']}  ({r['repo']}, agent {r['agent']})")
    click.echo(f"  triggers: {', '.join(r['triggers'])}")
    click.echo(f"  policies: missed {r['policies']['missed']}, overlap {r['policies']['overlap']}")
    click.echo(f"  next run: {'paused' if r['paused'] else _when(r['next_due'])}")
    _print_events(r)
    click.echo(f"  prompt:   {r['prompt']}")
    for x in r["runs"]:
        click.echo(f"  #{x['run']} {_when(x['created_at'])} {x['state']} {x['session'] or ''}")


def _print_events(r: dict[str, Any]) -> None:
    """The git-event triggers' marks and errors, the timeout and auto-merge policies."""
    pol = r["policies"]
    if "timeout" in pol or pol.get("auto_merge") or pol.get("max_unreviewed"):
        extra = [f"timeout {pol['timeout']:g}s"] if "timeout" in pol else []
        extra += ["auto-merge when the check passes"] if pol.get("auto_merge") else []
        if pol.get("max_unreviewed"):
            extra.append(f"at most {pol['max_unreviewed']} runs unread")
        click.echo(f"  also:     {', '.join(extra)}")
    for e in r.get("events", []):
        click.echo(f"  {e['trigger']}: seen {text_cell(e['seen'] or '-')}")
        if e["error"]:
            click.echo(f"    last trigger error: {text_cell(e['error'])}")


@routine.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def show(name: str, as_json: bool) -> None:
    """A routine: its triggers, policies, next run and last runs."""
    out = client().routine(name)
    emit_json(out) if as_json else _print(out)


@routine.command("pause")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def pause(name: str, as_json: bool) -> None:
    """Start no runs of NAME until it is resumed."""
    out = client().routine_pause(name)
    emit_json(out) if as_json else click.echo(f"paused {name}")


@routine.command("resume")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def resume(name: str, as_json: bool) -> None:
    """Run NAME on its schedule again, from now on (due times while paused are not run)."""
    out = client().routine_resume(name)
    emit_json(out) if as_json else click.echo(f"resumed {name}: next run {_when(out['next_due'])}")


@routine.command("rm")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def rm(name: str, as_json: bool) -> None:
    """Remove routine NAME (its runs' sessions stay)."""
    out = client().routine_remove(name)
    emit_json(out) if as_json else click.echo(f"removed routine {name}")


@routine.command("run")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def run(name: str, as_json: bool) -> None:
    """Start a run of NAME now, whatever its schedule."""
    out = client().routine_run(name)
    if as_json:
        emit_json(out)
        return
    if out["state"] != "started":
        from parallel_agents.errors import PAError

        raise PAError(f"run #{out['run']} of {name} failed: {out['error']}")
    click.echo(f"run #{out['run']} of {name}: session {out['session']}")


@routine.command("history")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def history(name: str, as_json: bool) -> None:
    """NAME's runs, newest first: when, why, state and session."""
    runs = client().routine_history(name)
    if as_json:
        emit_json(runs)
        return
    table(
        ["run", "due", "reason", "state", "session", "status", "merge"],
        [
            [
                str(x["run"]), _when(x["due_at"]), text_cell(x["reason"]), text_cell(x["state"]),
                text_cell(x["session"] or "-"), text_cell(x["status"] or x["error"] or "-"),
                text_cell(_merge(x)),
            ]
            for x in runs
        ],
    )


def _merge(x: dict[str, Any]) -> str:
    m = x.get("merge")
    if not m:
        return "-"
    return f"{m['status']}: {m['why']}" if m.get("why") else str(m["status"])


# -- the HTTP trigger (issue 17: sessions/routine_api.py) -----------------------------------
def _token_lines(name: str, token: str) -> None:
    click.echo(f"token (shown this once, keep it secret): {token}")
    click.echo(f"fire it: POST /api/v1/routines/{name}/fire with 'Authorization: Bearer <token>'")


@routine.command("token")
@click.argument("name")
@click.option("--rotate", is_flag=True, help="Make a new token; the old one stops working now.")
@click.option("--json", "as_json", is_flag=True)
def token(name: str, rotate: bool, as_json: bool) -> None:
    """A new token for NAME's HTTP trigger (--rotate): the old one is revoked at once."""
    from parallel_agents.errors import UsageError

    if not rotate:
        raise UsageError(
            f"the token of {name} cannot be shown again (only its hash is kept)",
            hint=f"pa routine token {name} --rotate makes a new one and revokes the old one",
        )
    out = client().routine_token_rotate(name)
    emit_json(out) if as_json else _token_lines(name, out["token"])


@routine.command("calls")
@click.argument("name")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def calls(name: str, limit: int, as_json: bool) -> None:
    """Calls to NAME's HTTP trigger, newest first: when, from where, answer, run."""
    rows = client().routine_calls(name, limit)
    if as_json:
        emit_json(rows)
        return
    table(
        ["when", "from", "code", "run", "note"],
        [
            [
                _when(c["at"]), text_cell(c["remote"]), str(c["code"]),
                str(c["run"]) if c["run"] is not None else "-", text_cell(c["error"] or "-"),
            ]
            for c in rows
        ],
    )
