"""Test helpers that the project's and users' tests can import: the scripted model server,
its script format, and the environments that point each real agent CLI at it.

    from parallel_agents.testing import ScriptedModelServer, agent_env, base_environ

    with ScriptedModelServer([{"match": "k1", "turns": [{"run": "make"}, {"text": "ok"}]}]) as s:
        env = {**base_environ(), **agent_env("codex", home, server_url=s.url, api_key="k1")}
"""

from __future__ import annotations

from parallel_agents.testing.agent_env import (
    AGENT_NAMES,
    agent_env,
    agents_prefix,
    base_environ,
    find_agent,
)
from parallel_agents.testing.model_server import (
    RequestRecord,
    ScriptedModelServer,
    ScriptSource,
    serve_forever,
)
from parallel_agents.testing.script import Script, ScriptError, load_script

__all__ = [
    "AGENT_NAMES",
    "RequestRecord",
    "Script",
    "ScriptError",
    "ScriptSource",
    "ScriptedModelServer",
    "agent_env",
    "agents_prefix",
    "base_environ",
    "find_agent",
    "load_script",
    "serve_forever",
]
