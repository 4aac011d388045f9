"""Fixtures for the real-CLI tier: installed agent binaries, the scripted model server, and an
isolated home per CLI run, so no test touches the real home or any network but 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from parallel_agents.testing import (
    ScriptedModelServer,
    ScriptSource,
    agent_env,
    agents_prefix,
    base_environ,
    find_agent,
)

AgentBin = Callable[[str], Path]
ModelServerFactory = Callable[[ScriptSource], ScriptedModelServer]
AgentEnviron = Callable[[str, ScriptedModelServer, str, Path], dict[str, str]]


@pytest.fixture
def agent_bin() -> AgentBin:
    """``agent_bin("codex")``: the installed CLI. Skips only when the installer never ran."""

    def resolve(name: str) -> Path:
        prefix = agents_prefix()
        found = find_agent(name, prefix)
        if found is not None:
            return found
        installed_nothing = not (prefix / "bin").is_dir()
        if (
            installed_nothing
            and not os.environ.get("CI")
            and not os.environ.get("PA_REQUIRE_AGENTS")
        ):
            pytest.skip(f"agent CLIs not installed in {prefix}: run scripts/install-agents.sh")
        pytest.fail(f"{name} missing from {prefix / 'bin'}: run scripts/install-agents.sh")

    return resolve


@pytest.fixture
def model_server() -> Iterator[ModelServerFactory]:
    """``model_server(script)``: a started scripted server, stopped after the test."""
    servers: list[ScriptedModelServer] = []

    def start(script: ScriptSource) -> ScriptedModelServer:
        server = ScriptedModelServer(script).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def work_repo(tmp_path: Path) -> Path:
    """A git repository with one commit, where the agent works."""
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1"}
    for argv in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "config", "user.email", "e2e@example.com"],
        ["git", "config", "user.name", "e2e"],
    ):
        subprocess.run(argv, cwd=repo, check=True, env=env)
    (repo / "README.md").write_text("# e2e\n")
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True, env=env)
    subprocess.run(["git", "commit", "-q", "-m", "initial"], cwd=repo, check=True, env=env)
    return repo


@pytest.fixture
def agent_environ(tmp_path: Path) -> AgentEnviron:
    """``agent_environ(name, server, api_key, workdir)``: the full env for one CLI run.

    The CLI's home (config, sessions, caches) lives under the test's tmp dir and survives
    between calls with the same name, so a resumed session finds its files.
    """

    def build(
        name: str, server: ScriptedModelServer, api_key: str, workdir: Path
    ) -> dict[str, str]:
        home = tmp_path / f"home-{name}"
        overrides = agent_env(name, home, server_url=server.url, api_key=api_key, workdir=workdir)
        return {**base_environ(), **overrides}

    return build
