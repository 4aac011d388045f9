"""Gemini CLI (`gemini`): ``--output-format stream-json`` and ``--resume <session_id>``.

Verified against Gemini CLI 0.61.0 (docs/agent-protocols.md §3):

- The prompt goes in the equals form ``--prompt=<text>`` (a prompt starting with ``-``
  stays a prompt); stdin is closed (``-p`` appends piped stdin to the prompt).
- In an untrusted folder ``--yolo``/``--approval-mode yolo`` is silently downgraded to
  ``default``: ``--skip-trust`` trusts the worktree for the run.
- Assistant text arrives as ``delta`` chunks: they are joined into one message, emitted
  when the agent does something else (tool call, result) or the process ends.
- ``result.stats`` counts this invocation only (a resumed run reports just its own
  requests), so usage is not cumulative. There is no cost field.
- Exit codes (docs): 0 ok, 1 error, 41 auth, 42 input error, 53 turn limit.
"""

from __future__ import annotations

from typing import Any

from parallel_agents.agents import _common as c
from parallel_agents.agents.base import (
    MAX_RAW,
    TAIL,
    Agent,
    Launch,
    NormEvent,
    TurnContext,
    TurnEnd,
    TurnState,
    record_usage,
)
from parallel_agents.models import EventKind

FILE_TOOLS = {"write_file": "modify", "replace": "modify", "edit": "modify"}
_EXIT_REASONS = {53: "max_turns"}


class GeminiAgent(Agent):
    name = "gemini"
    result_record = "result"
    supported_versions = ("0.61.0", "0.61.0")
    binary = "gemini"
    install_hint = "npm install -g @google/gemini-cli@0.61.0"
    supports_resume = True
    required_flags = ("--output-format", "--resume", "--approval-mode", "--skip-trust")
    waiting_patterns = (
        "Allow once",
        "No, suggest changes (esc)",
        "Apply this change?",
        "Allow execution of",
        "Do you trust the files in this folder?",
    )

    DEFAULT_APPROVAL_MODE = "yolo"

    def build(self, ctx: TurnContext) -> Launch:
        s = ctx.settings
        binary = self.resolve_binary(s)
        argv = [binary, "--output-format", "stream-json"]
        argv += ["--approval-mode", str(s.get("approval_mode") or self.DEFAULT_APPROVAL_MODE)]
        if c.setting_bool(s, "skip_trust", True):
            argv.append("--skip-trust")
        model = ctx.model or s.get("model")
        if model:
            argv += ["-m", str(model)]
        if ctx.resume:
            argv += ["--resume", str(ctx.agent_session_id)]
        argv += c.extra_args(s)
        argv.append(f"--prompt={ctx.prompt}")
        return Launch(argv=argv)

    # -- reading ----------------------------------------------------------------------
    def parse_line(self, line: str, state: TurnState) -> list[NormEvent]:
        try:
            obj = c.json_object(line)
            evs = None if obj is None else self._parse(obj, state)
            return [c.raw(line)] if evs is None else evs
        except Exception:
            return [c.raw(line)]

    @staticmethod
    def _flush_text(state: TurnState) -> list[NormEvent]:
        text = state.pop("pending_text", None)
        if isinstance(text, str) and text.strip():
            return [NormEvent(EventKind.MESSAGE, {"text": c.clip(text)})]
        return []

    def _parse(self, obj: dict[str, Any], state: TurnState) -> list[NormEvent] | None:
        kind = obj.get("type")
        if kind == "init":
            sid = obj.get("session_id")
            if isinstance(sid, str) and sid:
                state["agent_session_id"] = sid
            return [
                NormEvent(
                    EventKind.STATUS,
                    {"state": "running", "session_id": sid, "model": obj.get("model")},
                )
            ]
        if kind == "message":
            if obj.get("role") != "assistant":
                return []  # the prompt echoed back
            text = c.s(obj.get("content"))
            if obj.get("delta"):
                pending = c.s(state.get("pending_text")) + text
                state["pending_text"] = pending[-MAX_RAW:]
                state["last_text"] = (c.s(state.get("last_text")) + text)[-MAX_RAW:]
                return []
            state["last_text"] = c.clip(text)
            out = c.flush_errors(state) + self._flush_text(state)
            if text.strip():
                out.append(NormEvent(EventKind.MESSAGE, {"text": c.clip(text)}))
            return out
        if kind == "tool_use":
            out = c.flush_errors(state) + self._flush_text(state)
            state["last_text"] = ""
            tid = c.s(obj.get("tool_id"))
            name = c.s(obj.get("tool_name"))
            params = obj.get("parameters")
            path = params.get("file_path") if isinstance(params, dict) else None
            c.remember(state, "tools", tid, {"name": name, "path": path})
            out.append(
                NormEvent(EventKind.TOOL_CALL, {"name": name, "input": c.cap(params), "id": tid})
            )
            return out
        if kind == "tool_result":
            out = c.flush_errors(state) + self._flush_text(state)
            tid = c.s(obj.get("tool_id"))
            ok = obj.get("status") == "success"
            err = obj.get("error")
            output = obj.get("output")
            if not ok and isinstance(err, dict):
                output = err.get("message") or output
            out.append(
                NormEvent(EventKind.TOOL_RESULT, {"ok": ok, "output": c.tail(output), "id": tid})
            )
            tools = state.get("tools")
            info = tools.get(tid) if isinstance(tools, dict) else None
            if ok and isinstance(info, dict) and info.get("name") in FILE_TOOLS:
                path = info.get("path")
                if isinstance(path, str) and path:
                    kind_ = FILE_TOOLS[c.s(info.get("name"))]
                    out.append(NormEvent(EventKind.FILE_CHANGE, {"path": path, "kind": kind_}))
            return out
        if kind == "error":
            msg = c.clip(obj.get("message"), TAIL * 2)
            if obj.get("severity") == "warning":
                return [NormEvent(EventKind.ERROR, {"message": msg, "severity": "warning"})]
            c.defer_error(state, msg)
            return []
        if kind == "result":
            return self._result(obj, state)
        return None

    def _result(self, obj: dict[str, Any], state: TurnState) -> list[NormEvent]:
        text_events = self._flush_text(state)
        error: str | None = None
        if obj.get("status") == "success":
            last = state.get("last_text")
            c.set_end(state, ok=True, result=last if isinstance(last, str) and last else None)
        else:
            err = obj.get("error")
            error = c.s(err.get("message") if isinstance(err, dict) else err) or "gemini failed"
            c.set_end(state, ok=False, error=c.clip(error, TAIL * 2))
        out = c.flush_errors(state, drop=error) + text_events
        stats = obj.get("stats")
        if isinstance(stats, dict):
            out.append(
                record_usage(
                    state,
                    input_tokens=int(c.num(stats.get("input_tokens", stats.get("input")))),
                    output_tokens=int(c.num(stats.get("output_tokens"))),
                    cached_tokens=int(c.num(stats.get("cached"))),
                )
            )
        return out

    def after_exit(self, ctx: TurnContext, state: TurnState) -> list[NormEvent]:
        end = state.get("end")
        drop = end.get("error") if isinstance(end, dict) else None
        return self._flush_text(state) + c.flush_errors(
            state, drop=drop if isinstance(drop, str) else None
        )

    def finish(self, exit_code: int | None, stderr_tail: str, state: TurnState) -> TurnEnd:
        end = super().finish(exit_code, stderr_tail, state)
        if not end.ok and end.reason is None and exit_code in _EXIT_REASONS:
            end.reason = _EXIT_REASONS[exit_code]
        return end
