"""Which agent CLIs each Ray node has, and where a session's actor goes (issue 19).

A small Ray task, pinned to one node, looks for each agent CLI pa knows on that node's
PATH and asks it ``--version``. Its answer is cached on this side (``ray-nodes.json``
under PA_HOME, per node id, for ``TTL`` seconds; a node not seen before, a changed set of
binaries or ``refresh`` probes again), so placing a session costs no probe most times.

Placement: a session of a CLI agent gets its actor only on a node with that CLI (the one
with the most free ``pa_agent`` slots), pinned there; a command agent goes wherever Ray
finds a slot. ``ray`` is passed in (imported only by ``ray_runtime.connect``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from parallel_agents.errors import PAError

RESOURCE = "pa_agent"
TTL = 600.0  # seconds a node's CLIs are trusted without probing it again
VERSION_TIMEOUT = 10.0  # seconds one `CLI --version` may take
PROBE_TIMEOUT = 60.0  # seconds the probe of one node may take, all its CLIs together
_CACHE = "ray-nodes.json"
_VERSION = re.compile(r"\d+\.\d+\.\d+")  # as the capture manifests read it (testing/)


class NoNodeForCli(PAError):
    """No node of the Ray cluster has the agent's CLI."""


def find_clis(binaries: dict[str, str], timeout: float = VERSION_TIMEOUT) -> dict[str, Any]:
    """Run on a node: each agent's binary (``agent -> program``) found on this PATH, with
    its path and version. A throw-away HOME: some CLIs write state even for --version."""
    found: dict[str, Any] = {}
    for agent, program in sorted(binaries.items()):
        path = shutil.which(program)
        if path is None:
            continue
        with tempfile.TemporaryDirectory(prefix="pa-probe-") as tmp:
            try:
                p = subprocess.run(
                    [path, "--version"], capture_output=True, text=True, timeout=timeout,
                    check=False, stdin=subprocess.DEVNULL, cwd=tmp,
                    env={**os.environ, "HOME": tmp, "NO_COLOR": "1"},
                )  # fmt: skip
                said = p.stdout + p.stderr
            except (OSError, subprocess.TimeoutExpired):
                said = ""
        m = _VERSION.search(said)
        found[agent] = {"binary": program, "path": path, "version": m[0] if m else None}
    return found


def agent_nodes(ray: Any) -> list[dict[str, Any]]:
    """Every node of the cluster: id, address, alive, and its ``pa_agent`` slots (total,
    free: Ray's own count, a moment behind the actors it places)."""
    from ray._private import state

    try:
        free = state.available_resources_per_node()  # type: ignore[no-untyped-call]
    except Exception:  # a DeveloperAPI: without it, slots show unknown, placement goes on
        free = {}
    out = []
    for n in ray.nodes():
        nid = str(n["NodeID"])
        total = float((n.get("Resources") or {}).get(RESOURCE, 0))
        alive = bool(n.get("Alive"))
        out.append({
            "id": nid,
            "address": str(n.get("NodeManagerAddress") or ""),
            "alive": alive,
            "slots": int(total),
            "free": int(float((free.get(nid) or {}).get(RESOURCE, 0))) if alive else 0,
            "free_known": bool(free),
        })  # fmt: skip
    return out


def _load(home: Path) -> dict[str, Any]:
    try:
        data = json.loads((home / _CACHE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save(home: Path, data: dict[str, Any]) -> None:
    # Per process and thread: the server's threads may probe at the same time.
    tmp = home / f".{_CACHE}.{os.getpid()}.{threading.get_ident()}"
    with contextlib.suppress(OSError):  # a cache: without it, the next call probes again
        home.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, home / _CACHE)


def node_clis(
    ray: Any, home: Path, nodes: list[dict[str, Any]], binaries: dict[str, str],
    *, refresh: bool = False,
) -> dict[str, dict[str, Any]]:
    """The CLIs of each alive node with slots (node id -> agent -> facts), from the cache
    or probed now (all stale nodes at once). A node whose probe fails has none."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    cache = _load(home)
    now = time.time()
    out: dict[str, dict[str, Any]] = {}
    pending: dict[str, Any] = {}
    task = ray.remote(num_cpus=0, max_retries=0)(find_clis)
    for n in nodes:
        if not n["alive"] or n["slots"] <= 0:
            continue
        hit = cache.get(n["id"])
        if (not refresh and isinstance(hit, dict) and hit.get("binaries") == binaries
                and now - float(hit.get("at", 0)) < TTL):
            out[n["id"]] = dict(hit.get("clis") or {})
            continue
        strategy = NodeAffinitySchedulingStrategy(node_id=n["id"], soft=False)
        pending[n["id"]] = task.options(scheduling_strategy=strategy).remote(binaries)
    for nid, ref in pending.items():
        try:
            clis = dict(ray.get(ref, timeout=PROBE_TIMEOUT))
        except Exception:  # the node went away or its worker could not start: none there
            with contextlib.suppress(Exception):  # already ended, or its node is gone
                ray.cancel(ref, force=True)
            out[nid] = {}
            continue
        out[nid] = clis
        cache[nid] = {"at": now, "binaries": binaries, "clis": clis}
    if pending:
        known = {n["id"] for n in nodes}  # a node gone from the cluster leaves the cache
        _save(home, {k: v for k, v in cache.items() if k in known})
    return out


def placement(
    ray: Any, home: Path, agent: str | None, binaries: dict[str, str]
) -> dict[str, Any]:
    """The actor options that place a session of ``agent``: for a CLI agent, pinned to the
    node with that CLI and the most free slots; SPREAD for a command agent (Ray's default
    fills one node to half before using the next). ``NoNodeForCli`` when no node has the
    CLI."""
    if not agent or agent not in binaries:
        return {"scheduling_strategy": "SPREAD"}
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    node = pick_node(ray, home, agent, binaries)
    return {"scheduling_strategy": NodeAffinitySchedulingStrategy(node_id=node, soft=False)}


def pick_node(ray: Any, home: Path, agent: str, binaries: dict[str, str]) -> str:
    """The node a session of ``agent`` goes to (most free slots among the nodes that have
    its CLI, then the most slots: one that is full queues the actor until a slot frees)."""
    nodes = agent_nodes(ray)
    clis = node_clis(ray, home, nodes, binaries)
    having = [n for n in nodes if agent in clis.get(n["id"], {})]
    if not having:
        # A cached "no" may be old: probe once more before refusing.
        clis = node_clis(ray, home, nodes, binaries, refresh=True)
        having = [n for n in nodes if agent in clis.get(n["id"], {})]
    if not having:
        probed = ", ".join(f"{n['id'][:12]} ({n['address']})" for n in nodes if n["id"] in clis)
        probed = probed or "none: no alive node has pa_agent slots"
        raise NoNodeForCli(
            f"no node of the Ray cluster has the {binaries[agent]!r} program of the {agent}"
            f" agent on its PATH (nodes probed: {probed})",
            hint="see `pa runtime nodes`; install the CLI on a worker node, then"
            " `pa runtime nodes --refresh`, or use --runtime local",
        )
    having.sort(key=lambda n: (-n["free"], -n["slots"], n["id"]))
    return str(having[0]["id"])
