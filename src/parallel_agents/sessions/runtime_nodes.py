"""`pa runtime nodes` (issue 19): the Ray cluster's nodes, their ``pa_agent`` slots, the
agent CLIs (and versions) each has, and the pa sessions whose actor lives there."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from parallel_agents.models import Status
from parallel_agents.sessions import runtime_choice

if TYPE_CHECKING:
    from parallel_agents.sessions.orchestrator import App


def nodes(app: App, *, refresh: bool = False) -> list[dict[str, Any]]:
    """Each node: id, address, alive, slots and free slots, CLIs (agent -> binary, path,
    version; probed or from the cache, ``refresh``: probed now) and sessions there."""
    from parallel_agents.runtime import ray_probe
    from parallel_agents.runtime.ray_runtime import connect, namespace_for

    settings = app.settings
    ray = connect(settings.ray_address(), namespace_for(settings.home))
    found = ray_probe.agent_nodes(ray)
    binaries = runtime_choice.cli_binaries(settings)
    clis = ray_probe.node_clis(ray, settings.home, found, binaries, refresh=refresh)
    where = sessions_by_node(app)
    return [
        {**n, "clis": clis.get(n["id"], {}), "sessions": where.get(n["id"], [])}
        for n in found
    ]


def sessions_by_node(app: App) -> dict[str, list[dict[str, Any]]]:
    """The live Ray sessions (their actor holds a slot) by the node of their latest
    started turn (its ``ray.json``, written when the node started it)."""
    out: dict[str, list[dict[str, Any]]] = {}
    live = [st for st in Status if st.live]
    for s in app.store.sessions(statuses=live):
        if app.sup.runtime_kind(s) != "ray":
            continue
        last = app.store.last_turn(s.id)
        node = None
        for n in range(last.n if last else 0, 0, -1):
            try:
                data = json.loads((app.sup.turn_files(s.id, n).dir / "ray.json").read_text())
            except (OSError, ValueError):
                continue
            node = data.get("node") if isinstance(data, dict) else None
            break
        if node:
            row = {"id": s.id, "title": s.title, "agent": s.agent, "status": str(s.status)}
            out.setdefault(str(node), []).append(row)
    return out
