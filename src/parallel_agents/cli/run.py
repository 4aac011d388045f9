"""`pa run`: a session's run script, detached, with its ports' URLs (issue 16 §1)."""

from __future__ import annotations

import click

from parallel_agents.cli._group import client
from parallel_agents.cli._output import emit_json, printable, run_lines


@click.command()
@click.argument("session_id")
@click.option("--stop", is_flag=True, help="End the run script (its whole process group).")
@click.option("--json", "as_json", is_flag=True)
def run(session_id: str, stop: bool, as_json: bool) -> None:
    """Start the repo's run script in SESSION_ID's worktree, detached, with its ports."""
    cl = client()
    r = cl.run_stop(session_id) if stop else cl.run_start(session_id)
    if as_json:
        emit_json(r)
        return
    if stop:
        click.echo(f"stopped the run script of {r['session']}")
        return
    for k, v in run_lines(r):
        click.echo(f"{k:>14}: {printable(v)}")
