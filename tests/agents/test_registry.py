"""The registry: built-ins and outside plugins through one entry-point group; clear errors."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from parallel_agents.agents import registry
from parallel_agents.agents.base import Agent, MissingBinary
from parallel_agents.errors import UsageError

from .conftest import FakeBin, MakeCtx

PACKAGES = {
    "claude": "@anthropic-ai/claude-code",
    "codex": "@openai/codex",
    "gemini": "@google/gemini-cli",
    "opencode": "opencode-ai",
    "aider": "aider-chat",
    "mini": "mini-swe-agent",
    "cursor": "cursor.com/install",
    "amp": "@sourcegraph/amp",
}


@pytest.fixture(autouse=True)
def fresh_registry() -> Iterator[None]:
    registry._plugins.cache_clear()
    registry.get_agent.cache_clear()
    yield
    registry._plugins.cache_clear()
    registry.get_agent.cache_clear()


def _plugin(tmp_path: Path, entries: str, module: str | None = None) -> Path:
    """A distribution on sys.path: a dist-info folder with entry_points.txt (and a module)."""
    root = tmp_path / "site"
    info = root / "pa_fake_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pa-fake-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[parallel_agents.agents]\n{entries}\n")
    if module is not None:
        (root / "pa_fake_plugin_mod.py").write_text(textwrap.dedent(module))
    return root


PLUGIN_MODULE = """
    from parallel_agents.agents.base import Agent, Launch

    class FakeAgent(Agent):
        name = "fakeagent"
        binary = "true"

        def build(self, ctx):
            return Launch(argv=["true"])

    class NotAnAgent:
        pass
"""


def test_builtins_load_as_agents() -> None:
    names = registry.available()
    assert set(PACKAGES) | {"command"} <= set(names)
    for name in registry.BUILTIN:
        agent = registry.get_agent(name)
        assert isinstance(agent, Agent)
        assert agent.name == name
        if name != "command":
            assert agent.install_hint and agent.required_flags


def test_entry_point_plugin_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = _plugin(tmp_path, "fakeagent = pa_fake_plugin_mod:FakeAgent", PLUGIN_MODULE)
    monkeypatch.syspath_prepend(str(site))
    assert "fakeagent" in registry.available()
    agent = registry.get_agent("fakeagent")
    assert type(agent).__name__ == "FakeAgent" and agent.name == "fakeagent"
    assert registry.get_agent("fakeagent") is agent  # one instance per name


def test_plugin_may_replace_a_builtin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = _plugin(tmp_path, "gemini = pa_fake_plugin_mod:FakeAgent", PLUGIN_MODULE)
    monkeypatch.syspath_prepend(str(site))
    assert type(registry.get_agent("gemini")).__name__ == "FakeAgent"


def test_broken_plugins_fail_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = _plugin(
        tmp_path,
        "missing = pa_no_such_module:X\nwrongtype = pa_fake_plugin_mod:NotAnAgent",
        PLUGIN_MODULE,
    )
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(UsageError) as exc:
        registry.get_agent("missing")
    assert "agent 'missing' is not available" in exc.value.message
    with pytest.raises(TypeError):
        registry.get_agent("wrongtype")


def test_unknown_agent() -> None:
    with pytest.raises(UsageError) as exc:
        registry.get_agent("no-such-agent")
    assert exc.value.message == "unknown agent 'no-such-agent'"
    assert exc.value.hint is not None and "claude" in exc.value.hint and "codex" in exc.value.hint


@pytest.mark.parametrize("name", sorted(PACKAGES))
def test_missing_binary_names_the_package(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_ctx: MakeCtx
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    agent = registry.get_agent(name)
    with pytest.raises(MissingBinary) as exc:
        agent.resolve_binary({})
    assert PACKAGES[name] in (exc.value.hint or ""), exc.value.hint
    # build() resolves the binary too, so the supervisor gets the same clear error.
    with pytest.raises(MissingBinary):
        agent.build(make_ctx())
    with pytest.raises(MissingBinary) as exc:
        agent.resolve_binary({"binary": "/nonexistent/pa-test-binary"})
    assert "/nonexistent/pa-test-binary" in exc.value.message


@pytest.mark.parametrize("name", sorted(PACKAGES))
def test_check_version_names_missing_flags(name: str, fake_bin: FakeBin) -> None:
    agent = registry.get_agent(name)
    binary = fake_bin(f"{name}-old", "#!/bin/sh\necho 'Usage: old-version [options]'\n")
    with pytest.raises(Exception) as exc:
        agent.check_version(binary)
    assert type(exc.value).__name__ == "AgentVersionError"
    assert agent.required_flags[0] in str(exc.value)
