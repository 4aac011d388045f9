"""`pa runtime` (issue 19): where sessions run; `pa runtime nodes` lists the Ray nodes."""

from __future__ import annotations

from typing import Any

import click

from parallel_agents.cli._group import PAGroup, client
from parallel_agents.cli._output import emit_json, table, text_cell


@click.group("runtime", cls=PAGroup)
def runtime() -> None:
    """Where sessions run: the Ray cluster's nodes, their slots and agent CLIs."""


def _row(n: dict[str, Any]) -> list[str]:
    clis = ", ".join(
        f"{name} {c.get('version') or '?'}" for name, c in sorted(n["clis"].items())
    )
    sessions = ", ".join(f"{s['id']} ({s['agent']}, {s['status']})" for s in n["sessions"])
    return [
        n["id"][:12], n["address"], "yes" if n["alive"] else "no",
        f"{n['free']}/{n['slots']}" if n["slots"] else "-",
        clis or "-", text_cell(sessions) if sessions else "-",
    ]  # fmt: skip


@runtime.command("nodes")
@click.option("--refresh", is_flag=True, help="Probe every node's CLIs now (not the cache).")
@click.option("--json", "as_json", is_flag=True)
def nodes(refresh: bool, as_json: bool) -> None:
    """The Ray cluster's nodes: alive, free/total pa_agent slots, the agent CLIs on each
    node's PATH with their versions, and the pa sessions running there."""
    found = client().runtime_nodes(refresh=refresh)
    if as_json:
        emit_json(found)
        return
    table(["node", "address", "alive", "slots free", "CLIs", "sessions"],
          [_row(n) for n in found])  # fmt: skip
