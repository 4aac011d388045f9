"""`pa pair`: pairing mode (issue 16 §5), the main checkout shows a session's files."""

from __future__ import annotations

from typing import Any

import click

from parallel_agents.cli._group import client
from parallel_agents.cli._output import emit_json, table, text_cell


def _print_status(rows: list[dict[str, Any]]) -> None:
    if not rows:
        click.echo("no pairing is active")
        return
    table(
        ["SESSION", "CHECKOUT", "WAS ON", "STATE"],
        [
            [
                text_cell(str(r.get("sid", "?"))),
                text_cell(str(r.get("repo", r.get("record", "")))),
                text_cell(str(r.get("branch") or (r.get("head") or "")[:12])),
                text_cell(
                    "syncing" if r.get("syncing") else str(r.get("diverged") or "broken record")
                ),
            ]
            for r in rows
        ],
    )


@click.command()
@click.argument("session_id", required=False)
@click.option("--stop", "stop_", is_flag=True, help="Put the main checkout back as it was.")
@click.option("--keep", is_flag=True, help="With --stop: leave pa/pair/<id> (your commits).")
@click.option("--json", "as_json", is_flag=True)
def pair(session_id: str | None, stop_: bool, keep: bool, as_json: bool) -> None:
    """Show SESSION_ID's files in its repository's main checkout, kept in sync as the
    agent works, so your dev server and IDE see them. `pa pair status` lists pairings;
    `pa pair --stop` puts the checkout back exactly as it was.

    Refused on a checkout with changes (modified, staged or untracked files). The
    checkout moves to a temporary branch pa/pair/<id>; pa stops syncing (and says so in
    `pa pair status`) when you edit, commit or switch there. `--stop` refuses while
    the checkout holds changes of yours: commit them on pa/pair/<id>, then
    `--stop --keep` puts the checkout back and leaves that branch.
    """
    from parallel_agents.errors import UsageError

    cl = client()
    if session_id == "status":
        rows = cl.pair_status()
        if as_json:
            emit_json({"pairings": rows})
        else:
            _print_status(rows)
        return
    if keep and not stop_:
        raise UsageError("--keep goes with --stop", hint="pa pair --stop ID --keep")
    if stop_:
        d = cl.pair_stop(session_id, keep=keep)
        if as_json:
            emit_json(d)
            return
        where = d["branch"] or f"detached HEAD {d['head'][:12]}"
        click.echo(f"{d['repo']} is back on {where}")
        if d.get("kept_branch"):
            click.echo(f"kept branch {d['kept_branch']}")
        return
    if session_id is None:
        raise UsageError("name the session to pair with", hint="pa pair ID (or pa pair status)")
    d = cl.pair(session_id)
    if as_json:
        emit_json(d)
        return
    click.echo(f"{d['repo']} now shows session {d['sid']} on branch {d['temp_branch']}")
    click.echo(f"pa pair --stop {d['sid']} puts it back on {d['branch'] or d['head'][:12]}")
