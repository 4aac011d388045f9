"""A Ray cluster on this machine whose two worker nodes differ in one thing: the first
has the pinned ``claude`` CLI on its PATH, the second has no agent CLI at all (issue 19:
placement by CLI). Each node's PATH is its raylet's environment (``env_vars``), which the
node's workers (and so the probe and the session actors) inherit."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from parallel_agents.testing import find_agent

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'parallel-agents[ray]'")
cluster_utils = pytest.importorskip("ray.cluster_utils")

CLI = "claude"


def claude_binary() -> Path:
    found = find_agent(CLI)
    if found is None:
        if os.environ.get("CI") or os.environ.get("PA_REQUIRE_AGENTS"):
            pytest.fail(f"{CLI} is not installed: run scripts/install-agents.sh")
        pytest.skip(f"{CLI} not installed: run scripts/install-agents.sh")
    return found


def bare_path() -> str:
    """This PATH without any folder that has an agent CLI pa knows."""
    names = ("claude", "codex", "gemini", "opencode", "mini", "aider", "amp", "cursor-agent")
    dirs = os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep)
    return os.pathsep.join(d for d in dirs if not any((Path(d) / n).exists() for n in names))


@contextmanager
def split_cluster(tmp: Path, slots: int = 2) -> Iterator[dict[str, Any]]:
    """Yields the cluster, ``with_cli`` and ``without`` (worker node ids), ``bin`` (the
    folder holding only ``claude``, for pa's own PATH) and ``path`` (PATH with it)."""
    binary = claude_binary()
    only = tmp / "only-claude"
    only.mkdir(parents=True, exist_ok=True)
    if not (only / CLI).exists():
        (only / CLI).symlink_to(binary)
    bare = bare_path()
    with_cli = f"{only}{os.pathsep}{bare}"
    old = {k: os.environ.get(k) for k in ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "PATH")}
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ["PATH"] = bare  # the head (and the driver side) has no CLI either
    c = cluster_utils.Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
    )
    try:
        a = c.add_node(num_cpus=1, resources={"pa_agent": slots}, env_vars={"PATH": with_cli})
        b = c.add_node(num_cpus=1, resources={"pa_agent": slots}, env_vars={"PATH": bare})
        c.wait_for_nodes()
        yield {"cluster": c, "with_cli": a.node_id, "without": b.node_id, "bin": only,
               "path": with_cli}  # fmt: skip
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if ray.is_initialized():
            ray.shutdown()
        c.shutdown()
