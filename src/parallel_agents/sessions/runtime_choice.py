"""Which runtime a new session runs on (issue 19), checked before anything is made."""

from __future__ import annotations

from parallel_agents.config import Settings
from parallel_agents.errors import UsageError
from parallel_agents.runtime.base import KINDS


def check(settings: Settings, runtime: str | None, *, interactive: bool) -> str:
    """The runtime kind a new session gets: ``runtime`` (``pa new --runtime``), else the
    setting ``runtime.kind``. Refused before any git work: an unknown kind, an interactive
    session on Ray (local only for now), a Ray cluster that cannot be reached."""
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

    connect(settings.ray_address(), namespace_for(settings.home))
    return kind
