"""Where agent processes run: detached local processes (and tmux for interactive ones),
or a Ray cluster (issue 19), behind ``base.Runtime``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from parallel_agents.runtime.base import Runtime


def make_runtime(
    kind: str, *, home: Path, ray_address: str | None = None, ray_repo_url: str | None = None
) -> Runtime:
    """The runtime called ``kind``; Ray's is imported only here, when a session uses it."""
    if kind == "local":
        from parallel_agents.runtime.local import LocalRuntime

        return LocalRuntime()
    if kind == "ray":
        from parallel_agents.runtime.ray_runtime import RayRuntime

        return RayRuntime(home=home, address=ray_address, repo_url=ray_repo_url)
    from parallel_agents.errors import UsageError

    raise UsageError(f"unknown runtime {kind!r}", hint="use local or ray")
