"""Name -> adapter. Built-ins and outside adapters come through the same entry point group."""

from __future__ import annotations

import importlib
import importlib.util
from functools import cache
from importlib.metadata import entry_points

from parallel_agents.agents.base import Agent
from parallel_agents.errors import UsageError

ENTRY_POINT_GROUP = "parallel_agents.agents"

# Built-in adapters, imported lazily so `pa ls` does not load every parser.
BUILTIN: dict[str, str] = {
    "command": "parallel_agents.agents.command:CommandAgent",
    "claude": "parallel_agents.agents.claude:ClaudeAgent",
    "codex": "parallel_agents.agents.codex:CodexAgent",
    "gemini": "parallel_agents.agents.gemini:GeminiAgent",
    "opencode": "parallel_agents.agents.opencode:OpenCodeAgent",
    "aider": "parallel_agents.agents.aider:AiderAgent",
    "mini": "parallel_agents.agents.mini:MiniAgent",
    "cursor": "parallel_agents.agents.cursor:CursorAgent",
    "amp": "parallel_agents.agents.amp:AmpAgent",
}


def _load(spec: str) -> type[Agent]:
    mod, _, attr = spec.partition(":")
    cls = getattr(importlib.import_module(mod), attr)
    if not (isinstance(cls, type) and issubclass(cls, Agent)):
        raise TypeError(f"{spec} is not an Agent subclass")
    return cls


@cache
def _plugins() -> dict[str, str]:
    found: dict[str, str] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found[ep.name] = ep.value
    return found


def available() -> list[str]:
    names = set(_plugins())
    for name, spec in BUILTIN.items():
        mod = spec.partition(":")[0]
        if importlib.util.find_spec(mod) is not None:
            names.add(name)
    return sorted(names)


@cache
def get_agent(name: str) -> Agent:
    spec = _plugins().get(name) or BUILTIN.get(name)
    if spec is None:
        raise UsageError(
            f"unknown agent {name!r}",
            hint=f"choose one of: {', '.join(available())}",
        )
    try:
        cls = _load(spec)
    except ModuleNotFoundError as e:
        raise UsageError(f"agent {name!r} is not available: {e}") from e
    return cls()
