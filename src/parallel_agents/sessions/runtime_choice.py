"""Which runtime a new session runs on (issue 19), checked before anything is made."""

from __future__ import annotations

from typing import Any

from parallel_agents.config import Settings
from parallel_agents.errors import UsageError
from parallel_agents.runtime.base import KINDS


def check(
    settings: Settings, runtime: str | None, *, interactive: bool, agent: str | None = None
) -> str:
    """The runtime kind a new session gets: ``runtime`` (``pa new --runtime``), else the
    setting ``runtime.kind``. Refused before any git work: an unknown kind, an interactive
    session on Ray (local only for now), a Ray cluster that cannot be reached, a CLI
    ``agent`` that no node of the cluster has."""
    kind = runtime or settings.runtime_kind()
    if kind not in KINDS:
        raise UsageError(f"unknown runtime {kind!r}", hint="use --runtime local or --runtime ray")
    if kind == "local":
        return kind
    if interactive:
        raise UsageError(
            "interactive sessions run on this machine only: the ray runtime does not take"
            " them yet",
            hint="drop --interactive, or use --runtime local"
            + (" (runtime.kind is ray in your settings)" if runtime is None else ""),
        )
    from parallel_agents.runtime.ray_runtime import connect, namespace_for

    ray = connect(settings.ray_address(), namespace_for(settings.home))
    binaries = cli_binaries(settings) if agent and agent != "command" else {}
    if agent in binaries:
        from parallel_agents.runtime import ray_probe

        ray_probe.pick_node(ray, settings.home, str(agent), binaries)
    return kind


def cli_binaries(settings: Settings) -> dict[str, str]:
    """The program of each CLI agent pa knows (``agents.<name>.binary``, else the
    adapter's own): what a Ray node is probed for. The command agent has none."""
    from parallel_agents.agents.registry import available, get_agent
    from parallel_agents.errors import PAError

    out: dict[str, str] = {}
    for name in available():
        if name == "command":
            continue
        try:
            program = settings.agent_settings(name).get("binary") or get_agent(name).binary
        except (PAError, ImportError, TypeError):
            continue  # an outside adapter that does not load: nothing to look for
        if program:
            out[name] = str(program)
    return out


def launch_extra(settings: Settings, agent: str) -> dict[str, Any]:
    """What the Ray runtime needs to place a session's actor (``LaunchSpec.extra``)."""
    return {"agent": agent, "binaries": cli_binaries(settings)}
