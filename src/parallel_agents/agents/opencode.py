"""OpenCode (`opencode run --format json`), resumed with ``--session <ses_id>``.

Verified against OpenCode 1.18.33 (docs/agent-protocols.md §5 and its ``run`` source):

- The prompt goes on **stdin** with no message argument: ``run`` wraps every argv message
  containing a space in double quotes (``"fix the bug"`` reaches the model *with* the
  quotes), while piped stdin is taken verbatim when there is no message argument.
- OpenCode resolves its directory from ``$PWD`` before ``cwd``; the server's own PWD would
  leak in through the environment, so PWD is set to the worktree.
- ``run`` auto-rejects permission requests unless ``--auto`` (default on here: the agent
  works in its own worktree; set ``auto = false`` to keep OpenCode's rules).
- The session id comes from every event's ``sessionID``. Usage and cost arrive per step
  (``step_finish``) and are summed; a turn ends at a ``step_finish`` whose reason is not
  ``tool-calls``. A resumed run reports only its own steps (not cumulative).
"""

from __future__ import annotations

from typing import Any

from parallel_agents.agents import _common as c
from parallel_agents.agents.base import (
    TAIL,
    Agent,
    Launch,
    NormEvent,
    TurnContext,
    TurnState,
    record_usage,
)
from parallel_agents.models import EventKind

FILE_TOOLS = {"write", "edit", "patch", "multiedit"}


class OpenCodeAgent(Agent):
    name = "opencode"
    result_record = "step_finish"
    supported_versions = ("1.18.33", "1.18.33")
    binary = "opencode"
    install_hint = "npm install -g opencode-ai@1.18.33"
    supports_resume = True
    help_args = ("run", "--help")
    required_flags = ("--format", "--session", "--model")

    def build(self, ctx: TurnContext) -> Launch:
        s = ctx.settings
        binary = self.resolve_binary(s)
        argv = [binary, "run", "--format", "json"]
        model = ctx.model or s.get("model")
        if model:
            argv += ["-m", str(model)]
        if s.get("agent"):
            argv += ["--agent", str(s["agent"])]
        if ctx.resume:
            argv += ["--session", str(ctx.agent_session_id)]
        if c.setting_bool(s, "auto", True):
            argv.append("--auto")
        argv += c.extra_args(s)
        env = {"PWD": str(ctx.worktree)}
        env.update(c.env_defaults(ctx, {"OPENCODE_DISABLE_AUTOUPDATE": "1"}))
        return Launch(argv=argv, env=env, stdin=ctx.prompt.encode("utf-8"))

    # -- reading ----------------------------------------------------------------------
    def parse_line(self, line: str, state: TurnState) -> list[NormEvent]:
        try:
            obj = c.json_object(line)
            evs = None if obj is None else self._parse(obj, state)
            return [c.raw(line)] if evs is None else evs
        except Exception:
            return [c.raw(line)]

    def _parse(self, obj: dict[str, Any], state: TurnState) -> list[NormEvent] | None:
        kind = obj.get("type")
        if kind not in ("step_start", "text", "reasoning", "tool_use", "step_finish"):
            if kind == "error":
                return self._error(obj, state)
            if kind == "done":
                if not isinstance(state.get("end"), dict):
                    last = state.get("last_text")
                    c.set_end(state, ok=True, result=last if isinstance(last, str) else None)
                return c.flush_errors(state)
            return None
        out: list[NormEvent] = []
        sid = obj.get("sessionID")
        if isinstance(sid, str) and sid and not state.get("agent_session_id"):
            state["agent_session_id"] = sid
            out.append(NormEvent(EventKind.STATUS, {"state": "running", "session_id": sid}))
        part = obj.get("part")
        if not isinstance(part, dict):
            return out if out else None
        if kind == "step_start":
            return out
        out += c.flush_errors(state)
        if kind in ("text", "reasoning"):
            text = c.s(part.get("text"))
            if text.strip():
                payload: dict[str, Any] = {"text": c.clip(text)}
                if kind == "reasoning":
                    payload["reasoning"] = True
                else:
                    state["last_text"] = c.clip(text)
                out.append(NormEvent(EventKind.MESSAGE, payload))
            return out
        if kind == "tool_use":
            return out + self._tool(part)
        return out + self._step_finish(part, state)

    def _tool(self, part: dict[str, Any]) -> list[NormEvent]:
        name = c.s(part.get("tool"))
        tid = c.s(part.get("callID") or part.get("id"))
        st = part.get("state")
        st = st if isinstance(st, dict) else {}
        inp = st.get("input")
        ok = st.get("status") == "completed"
        output = st.get("output") if ok else (st.get("error") or st.get("output"))
        out = [
            NormEvent(EventKind.TOOL_CALL, {"name": name, "input": c.cap(inp), "id": tid}),
            NormEvent(EventKind.TOOL_RESULT, {"ok": ok, "output": c.tail(output), "id": tid}),
        ]
        if ok and name in FILE_TOOLS:
            meta = st.get("metadata")
            meta = meta if isinstance(meta, dict) else {}
            path = (inp.get("filePath") if isinstance(inp, dict) else None) or meta.get("filepath")
            if isinstance(path, str) and path:
                kind = "add" if name == "write" and meta.get("exists") is False else "modify"
                out.append(NormEvent(EventKind.FILE_CHANGE, {"path": path, "kind": kind}))
        return out

    def _step_finish(self, part: dict[str, Any], state: TurnState) -> list[NormEvent]:
        tokens = part.get("tokens")
        tokens = tokens if isinstance(tokens, dict) else {}
        cache = tokens.get("cache")
        cache = cache if isinstance(cache, dict) else {}
        acc = state.get("steps_usage")
        acc = acc if isinstance(acc, dict) else {}
        acc = {
            "input_tokens": c.num(acc.get("input_tokens")) + c.num(tokens.get("input")),
            "output_tokens": c.num(acc.get("output_tokens")) + c.num(tokens.get("output")),
            "cached_tokens": c.num(acc.get("cached_tokens")) + c.num(cache.get("read")),
            "cost_usd": c.num(acc.get("cost_usd")) + c.num(part.get("cost")),
        }
        state["steps_usage"] = acc
        if part.get("reason") == "tool-calls":
            return []
        last = state.get("last_text")
        c.set_end(state, ok=True, result=last if isinstance(last, str) else None)
        return [self._record(state)]

    @staticmethod
    def _record(state: TurnState) -> NormEvent:
        acc = state.get("steps_usage")
        acc = acc if isinstance(acc, dict) else {}
        state["usage_recorded"] = True
        return record_usage(
            state,
            input_tokens=int(c.num(acc.get("input_tokens"))),
            output_tokens=int(c.num(acc.get("output_tokens"))),
            cached_tokens=int(c.num(acc.get("cached_tokens"))),
            cost_usd=c.num(acc.get("cost_usd")),
        )

    def _error(self, obj: dict[str, Any], state: TurnState) -> list[NormEvent]:
        sid = obj.get("sessionID")
        if isinstance(sid, str) and sid and not state.get("agent_session_id"):
            state["agent_session_id"] = sid
        err = obj.get("error")
        msg = ""
        if isinstance(err, dict):
            data = err.get("data")
            if isinstance(data, dict) and data.get("message"):
                msg = c.s(data.get("message"))
                code = data.get("statusCode")
                if isinstance(code, int):
                    msg = f"{c.s(err.get('name')) or 'error'} {code}: {msg}"
            msg = msg or c.s(err.get("name"))
        else:
            msg = c.s(err)
        msg = c.clip(msg or "opencode reported an error", TAIL * 2)
        c.defer_error(state, msg)
        c.set_end(state, ok=False, error=msg)
        return []

    def after_exit(self, ctx: TurnContext, state: TurnState) -> list[NormEvent]:
        out: list[NormEvent] = []
        if state.get("steps_usage") and not state.get("usage_recorded"):
            out.append(self._record(state))
        end = state.get("end")
        drop = end.get("error") if isinstance(end, dict) else None
        return c.flush_errors(state, drop=drop if isinstance(drop, str) else None) + out
