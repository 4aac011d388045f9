"""Cursor CLI (`cursor-agent`, newer installs call it `agent`): ``-p --output-format stream-json``.

From Cursor's documented output format and third-party captures (docs/agent-protocols.md
§6; not run here: the CLI installs through a curl script, not a registry):

- ``system/init`` (session_id = the chat id), ``user``, ``assistant`` (one line per text
  segment), ``tool_call`` started/completed with one ``<kind>ToolCall`` object,
  ``thinking`` deltas, and ``result`` with ``usage`` in camelCase (no cost).
- Follow-ups: ``--resume <chat_id>``. ``--force`` approves commands, ``--trust`` trusts the
  workspace in print mode. On failure no JSON is printed: the exit code and stderr say it.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from typing import Any

from parallel_agents.agents import _common as c
from parallel_agents.agents.base import (
    Agent,
    Launch,
    MissingBinary,
    NormEvent,
    TurnContext,
    TurnState,
    record_usage,
)
from parallel_agents.agents.claude import ClaudeAgent
from parallel_agents.models import EventKind

_FILE_KINDS = {"write": "modify", "edit": "modify", "delete": "delete"}


class CursorAgent(ClaudeAgent):
    name = "cursor"
    supported_versions = None  # not run here (docs/agent-protocols.md §6/§7)
    binary = "cursor-agent"
    install_hint = "curl https://cursor.com/install -fsS | bash"
    supports_resume = True
    required_flags = ("--output-format", "--resume")
    waiting_patterns = ()
    idle_patterns = ()

    def resolve_binary(self, settings: Mapping[str, Any]) -> str:
        if settings.get("binary"):
            return super().resolve_binary(settings)
        for name in ("cursor-agent", "agent"):
            found = shutil.which(name)
            if found:
                return found
        raise MissingBinary(
            "agent 'cursor' needs the 'cursor-agent' (or 'agent') program, which is not on PATH",
            hint=self.install_hint,
        )

    def build(self, ctx: TurnContext) -> Launch:
        s = ctx.settings
        binary = self.resolve_binary(s)
        argv = [binary, "-p", "--output-format", "stream-json"]
        model = ctx.model or s.get("model")
        if model:
            argv += ["--model", str(model)]
        if c.setting_bool(s, "force", True):
            argv.append("--force")
        if c.setting_bool(s, "trust", True):
            argv.append("--trust")
        if ctx.resume:
            argv += ["--resume", str(ctx.agent_session_id)]
        argv += c.extra_args(s)
        argv += ["--", ctx.prompt]
        return Launch(argv=argv)

    def build_interactive(self, ctx: TurnContext) -> Launch:
        return Agent.build_interactive(self, ctx)

    def parse_obj(self, obj: dict[str, Any], state: TurnState) -> list[NormEvent] | None:
        kind = obj.get("type")
        if kind == "tool_call":
            return c.flush_errors(state) + self._tool_call(obj, state)
        if kind == "thinking":
            text = c.s(obj.get("text"))
            if obj.get("subtype") == "delta":
                state["thinking"] = (c.s(state.get("thinking")) + text)[-20_000:]
                return []
            done = c.s(state.pop("thinking", "")) + text
            if done.strip():
                return [NormEvent(EventKind.MESSAGE, {"text": c.clip(done), "reasoning": True})]
            return []
        return super().parse_obj(obj, state)

    def _tool_call(self, obj: dict[str, Any], state: TurnState) -> list[NormEvent]:
        tid = c.s(obj.get("call_id"))
        call = obj.get("tool_call")
        if not isinstance(call, dict) or not call:
            return []
        key = next(iter(call))
        body = call.get(key)
        body = body if isinstance(body, dict) else {}
        name = key[: -len("ToolCall")] if key.endswith("ToolCall") else key
        if name == "function" and isinstance(body.get("name"), str):
            name = body["name"]
        args = body.get("args", body.get("arguments"))
        if obj.get("subtype") == "started":
            return [NormEvent(EventKind.TOOL_CALL, {"name": name, "input": c.cap(args), "id": tid})]
        res = body.get("result")
        res = res if isinstance(res, dict) else {}
        ok = "success" in res or (not res and obj.get("subtype") == "completed")
        detail = res.get("success") if ok else (res.get("error") or res.get("rejected") or res)
        if isinstance(detail, dict):
            text = ""
            for k in ("stdout", "content", "output", "message", "reason"):
                if isinstance(detail.get(k), str):
                    text = detail[k]
                    break
            if not text and isinstance(detail.get("stderr"), str):
                text = detail["stderr"]
            code = detail.get("exitCode")
            if isinstance(code, int) and code != 0:
                ok = False
        else:
            text = c.s(detail)
        out = [NormEvent(EventKind.TOOL_RESULT, {"ok": ok, "output": c.tail(text), "id": tid})]
        path = args.get("path") if isinstance(args, dict) else None
        if ok and name in _FILE_KINDS and isinstance(path, str) and path:
            out.append(NormEvent(EventKind.FILE_CHANGE, {"path": path, "kind": _FILE_KINDS[name]}))
        return out

    def _usage(self, obj: dict[str, Any], state: TurnState) -> NormEvent | None:
        u = obj.get("usage")
        if not isinstance(u, dict):
            return None
        return record_usage(
            state,
            input_tokens=int(c.num(u.get("inputTokens", u.get("input_tokens")))),
            output_tokens=int(c.num(u.get("outputTokens", u.get("output_tokens")))),
            cached_tokens=int(c.num(u.get("cacheReadTokens", u.get("cache_read_input_tokens")))),
        )
