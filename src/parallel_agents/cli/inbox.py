"""The inbox (issue 17): `pa inbox` lists routine runs waiting unread, `pa inbox read`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from parallel_agents.cli._group import PAGroup, client
from parallel_agents.cli._output import emit_json, status_cell, table, text_cell


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def _diff(d: dict[str, int] | None) -> str:
    if not d:
        return "-"
    return f"{d['files']} files +{d['additions']} -{d['deletions']}"


def _rows(runs: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            "●" if not x["read"] else " ",
            text_cell(x["routine"]), f"#{x['run']}", text_cell(x["session"]),
            status_cell(x["status"]), _when(x["created_at"]),
            f"${x['cost_usd']:.2f}" if x["cost_usd"] else "-", _diff(x["diff"]),
        ]
        for x in runs
    ]


@click.group("inbox", cls=PAGroup, invoke_without_command=True)
@click.option("--all", "show_all", is_flag=True, help="Every run with a session, read too.")
@click.option("--routine", help="Only this routine's runs.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def inbox(ctx: click.Context, show_all: bool, routine: str | None, as_json: bool) -> None:
    """Routine runs waiting for you, newest first: unread until you look at the session
    (pa show, pa diff, the dashboard, pa inbox read) or merge or discard it."""
    if ctx.invoked_subcommand is not None:
        return
    runs = client().inbox(all=show_all, routine=routine)
    if as_json:
        emit_json(runs)
        return
    if not runs:
        click.echo("the inbox is empty: no routine run waits unread" if not show_all
                   else "no routine run has a session yet")
        return
    table(["", "routine", "run", "session", "status", "when", "cost", "diff"], _rows(runs))


@inbox.command("read")
@click.argument("ids", nargs=-1)
@click.option("--all", "read_all", is_flag=True, help="Every unread run.")
@click.option("--routine", help="With --all: only this routine's runs.")
@click.option("--json", "as_json", is_flag=True)
def read(ids: tuple[str, ...], read_all: bool, routine: str | None, as_json: bool) -> None:
    """Mark the runs of sessions IDS (or --all) read: they leave the inbox."""
    marked = client().inbox_read(list(ids), all=read_all, routine=routine)
    if as_json:
        emit_json(marked)
        return
    click.echo(f"marked {len(marked)} run{'s' if len(marked) != 1 else ''} read")
