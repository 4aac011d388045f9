"""Amp (`amp`): ``--execute --stream-json`` with the prompt on stdin.

From the ``@sourcegraph/amp-sdk`` source (docs/agent-protocols.md §7; not run here: Amp
talks only to its own servers):

- New thread: ``amp --execute --stream-json [--dangerously-allow-all]``; follow-up:
  ``amp threads continue <thread_id> --execute --stream-json``. The prompt is written on
  stdin, as the SDK does. Auth is the user's ``AMP_API_KEY`` (passed through).
- The stream is Claude-Code compatible (``system/init``, ``assistant``, ``user``,
  ``result``); thread ids look like ``T-<uuid>``. ``result`` carries ``error`` (a string)
  on failure, ``usage`` without a cost, counted per invocation.
"""

from __future__ import annotations

from typing import Any

from parallel_agents.agents import _common as c
from parallel_agents.agents.base import (
    Agent,
    Launch,
    NormEvent,
    TurnContext,
    TurnState,
    record_usage,
)
from parallel_agents.agents.claude import ClaudeAgent


class AmpAgent(ClaudeAgent):
    name = "amp"
    supported_versions = None  # not run here (docs/agent-protocols.md §6/§7)
    binary = "amp"
    install_hint = "npm install -g @sourcegraph/amp"
    supports_resume = True
    required_flags = ("--execute", "--stream-json")
    waiting_patterns = ()
    idle_patterns = ()

    def build(self, ctx: TurnContext) -> Launch:
        s = ctx.settings
        binary = self.resolve_binary(s)
        argv = [binary]
        if ctx.resume:
            argv += ["threads", "continue", str(ctx.agent_session_id)]
        argv += ["--execute", "--stream-json"]
        if c.setting_bool(s, "allow_all", True):
            argv.append("--dangerously-allow-all")
        if s.get("mode"):
            argv += ["--mode", str(s["mode"])]
        argv += c.extra_args(s)
        return Launch(argv=argv, stdin=ctx.prompt.encode("utf-8"))

    def build_interactive(self, ctx: TurnContext) -> Launch:
        return Agent.build_interactive(self, ctx)

    def _usage(self, obj: dict[str, Any], state: TurnState) -> NormEvent | None:
        u = obj.get("usage")
        if not isinstance(u, dict):
            return None
        return record_usage(
            state,
            input_tokens=int(c.num(u.get("input_tokens"))),
            output_tokens=int(c.num(u.get("output_tokens"))),
            cached_tokens=int(c.num(u.get("cache_read_input_tokens"))),
        )
