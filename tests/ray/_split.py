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
from tests.ray.conftest import start_cluster

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'parallel-agents[ray]'")

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
    envs = [{"PATH": with_cli}, {"PATH": bare}]
    with start_cluster(workers=2, slots=slots, node_env=envs) as (c, _):
        a, b = c.pa_workers
        yield {"cluster": c, "with_cli": a, "without": b, "bin": only, "path": with_cli}


def claude_session(
    tmp: Path, repo: Path, env: dict[str, str], server_url: str, prompt: str = "write hello"
) -> str:
    """`pa new --agent claude --runtime ray` (the real CLI, against the scripted model
    server at ``server_url``); the session's id once its turn ended."""
    import json

    from parallel_agents.testing import agent_env
    from parallel_agents.testing.agent_env import DEFAULT_MODELS
    from tests.conftest import pa

    cli_env = agent_env(CLI, tmp / "claude-home", server_url=server_url, api_key="k")
    cli_env["PATH"] = env["PATH"]
    pairs = [f"--env={k}={v}" for k, v in cli_env.items()]
    s = json.loads(pa(
        "new", prompt, "--agent", CLI, "--model", DEFAULT_MODELS[CLI], "--runtime", "ray",
        *pairs, "--json", cwd=repo, env=env, check=True, timeout=240,
    ).stdout)  # fmt: skip
    sid = str(s["id"])
    pa("wait", sid, "--timeout", "240", cwd=repo, env=env, timeout=300)
    return sid


SCRIPT = [{"match": "", "turns": [
    {"say": "Writing it.", "write": {"path": "hello.txt", "content": "hello from a node\n"}},
    {"text": "Done: hello.txt written."},
]}]  # fmt: skip
