"""Claude Code (`claude`): headless ``-p`` with stream-json in and out, and the TUI with hooks.

Verified against Claude Code 2.1.332 (docs/agent-protocols.md §1):

- ``-p --output-format stream-json`` needs ``--verbose``; the prompt goes on stdin as one
  stream-json user line (``--input-format stream-json``), so no prompt text is ever parsed
  as a flag and no prompt is too long for argv. The process exits at stdin EOF + result.
- Follow-ups: ``--resume=<session_id>`` in the equals form the SDK uses (a value starting
  with ``-`` cannot become a flag); the session id stays the same across resumes.
- ``--permission-mode bypassPermissions`` (like ``--dangerously-skip-permissions``) is
  refused as root unless ``IS_SANDBOX=1``; the default here is ``acceptEdits`` plus
  ``--allowedTools Bash Edit Write Read``, which works headless for any user.
- ``pa_mcp = true`` (issue 18): ``--mcp-config=<file>`` naming ``pa mcp`` and the allowed-tool
  rule ``mcp__pa`` (every tool of that server), which headless runs need: without a rule
  Claude answers "Claude requested permissions to use mcp__pa__…" and runs nothing. The
  stdio server inherits Claude's environment, the config's ``env`` added
  (docs/agent-protocols.md §1.9).
- Usage: ``total_cost_usd``/``modelUsage`` are cumulative over a resumed session;
  ``model_usage_since_last_result`` is this run's delta and is preferred.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from parallel_agents.agents import _common as c
from parallel_agents.agents.base import (
    MAX_RAW,
    TAIL,
    Agent,
    Launch,
    NormEvent,
    TurnContext,
    TurnState,
    ensure_dir,
    record_usage,
)
from parallel_agents.agents.claude_hooks import HOOK_EVENTS, hook_entry
from parallel_agents.errors import UsageError
from parallel_agents.models import EventKind

# Tools whose successful result means a file was written, and where the path is.
FILE_TOOLS = {
    "write": "add_or_modify",
    "edit": "modify",
    "multiedit": "modify",
    "notebookedit": "modify",
    "create_file": "add",
    "edit_file": "modify",
}
_PATH_KEYS = ("file_path", "path", "notebook_path", "filePath")

_REASONS = {
    "error_max_turns": "max_turns",
    "error_max_budget_usd": "max_budget",
    "error_max_structured_output_retries": "max_structured_output_retries",
    "max_turns": "max_turns",
    "api_error": "api_error",
    "aborted_streaming": "aborted",
    "aborted_tools": "aborted",
}


# modelUsage counters and the matching fields of a result's own ``usage`` object.
_RUN_USAGE_FIELDS = (("input_tokens", "input_tokens"), ("output_tokens", "output_tokens"))


def _path_of(inp: Any) -> str | None:
    if isinstance(inp, dict):
        for k in _PATH_KEYS:
            v = inp.get(k)
            if isinstance(v, str) and v:
                return v
    return None


def _tool_rules(value: Any, default: tuple[str, ...]) -> list[str]:
    """Tool rules: a list stays one argv element per rule; a string is passed whole and
    Claude splits it (commas/spaces outside parentheses, e.g. ``"Bash(git *),Edit"``)."""
    if value is None:
        return list(default)
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list | tuple):
        return [str(v) for v in value if str(v).strip()]
    return [str(value)]


def _model_sums(models: Any) -> dict[str, float]:
    """Sum the per-model camelCase counters of ``modelUsage``-like objects."""
    out = {"input_tokens": 0.0, "output_tokens": 0.0, "cached_tokens": 0.0, "cost_usd": 0.0}
    if not isinstance(models, dict):
        return out
    for m in models.values():
        if not isinstance(m, dict):
            continue
        out["input_tokens"] += c.num(m.get("inputTokens"))
        out["output_tokens"] += c.num(m.get("outputTokens"))
        out["cached_tokens"] += c.num(m.get("cacheReadInputTokens"))
        out["cost_usd"] += c.num(m.get("costUSD"))
    return out


class ClaudeAgent(Agent):
    name = "claude"
    binary = "claude"
    install_hint = "npm install -g @anthropic-ai/claude-code@2.1.332"
    supports_resume = True
    result_record = "result"
    supported_versions: tuple[str, str] | None = ("2.1.197", "2.1.332")
    required_flags: tuple[str, ...] = (
        "--output-format",
        "--input-format",
        "--verbose",
        "--resume",
        "--permission-mode",
        "--allowedTools",
        "--settings",
    )
    # Pane text (2.1.332, docs/agent-protocols.md §1.8, §9): the TUI waits for the person.
    waiting_patterns: tuple[str, ...] = (
        "Do you want to proceed?",
        "Do you want to create",
        "Do you want to make this edit",
        "❯ 1. Yes",
        "Esc to cancel · Tab to amend",
        "Quick safety check",
        "Detected a custom API key",
    )
    idle_patterns: tuple[str, ...] = ("? for shortcuts",)

    DEFAULT_PERMISSION_MODE = "acceptEdits"
    DEFAULT_ALLOWED_TOOLS: tuple[str, ...] = ("Bash", "Edit", "Write", "Read")

    # -- starting -----------------------------------------------------------------
    def _permission_mode(self, ctx: TurnContext) -> str:
        mode = str(ctx.settings.get("permission_mode") or self.DEFAULT_PERMISSION_MODE)
        if (
            mode == "bypassPermissions"
            and hasattr(os, "geteuid")
            and os.geteuid() == 0
            and c.user_env(ctx, "IS_SANDBOX") != "1"
        ):
            raise UsageError(
                "claude refuses permission_mode 'bypassPermissions' when run as root",
                hint="set IS_SANDBOX=1 in the environment if this machine is a sandbox, "
                "or use permission_mode = 'acceptEdits' with allowed_tools",
            )
        return mode

    def _common_flags(self, ctx: TurnContext, *, interactive: bool) -> list[str]:
        s = ctx.settings
        args: list[str] = []
        model = ctx.model or s.get("model")
        if model:
            args += ["--model", str(model)]
        args += ["--permission-mode", self._permission_mode(ctx)]
        default_tools = () if interactive else self.DEFAULT_ALLOWED_TOOLS
        tools = _tool_rules(s.get("allowed_tools"), default_tools)
        lead = c.setting_bool(s, "pa_mcp", False)
        if lead:  # its tools run without a prompt: the rule names the whole server
            tools.append(f"mcp__{c.PA_MCP_SERVER}")
        if tools:
            args += ["--allowedTools", *tools]
        denied = _tool_rules(s.get("disallowed_tools"), ())
        if denied:
            args += ["--disallowedTools", *denied]
        if s.get("max_turns"):
            args += ["--max-turns", str(int(s["max_turns"]))]
        if s.get("append_system_prompt"):
            args.append(f"--append-system-prompt={s['append_system_prompt']}")
        if ctx.resume:
            args.append(f"--resume={ctx.agent_session_id}")
        if lead:
            # Equals form: --mcp-config takes several values and would swallow what follows.
            args.append(f"--mcp-config={self.write_pa_mcp_config(ctx)}")
        return args

    def write_pa_mcp_config(self, ctx: TurnContext) -> Path:
        """``pa_mcp = true``: an MCP config with pa's own server, so the agent can start,
        wait for, read and follow up sessions of its own (a lead agent, issue 18)."""
        servers = {c.PA_MCP_SERVER: c.pa_mcp_server(ctx)}
        path = ensure_dir(ctx.session_dir) / "pa-mcp.json"
        path.write_text(json.dumps({"mcpServers": servers}, indent=2) + "\n", encoding="utf-8")
        return path

    def _env(self, ctx: TurnContext) -> dict[str, str]:
        return c.env_defaults(ctx, {"DISABLE_AUTOUPDATER": "1"})

    def build(self, ctx: TurnContext) -> Launch:
        binary = self.resolve_binary(ctx.settings)
        argv = [
            binary,
            "-p",
            "--output-format",
            "stream-json",
            "--verbose",
            "--input-format",
            "stream-json",
            *self._common_flags(ctx, interactive=False),
            *c.extra_args(ctx.settings),
        ]
        line = {"type": "user", "message": {"role": "user", "content": ctx.prompt}}
        stdin = (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8")
        return Launch(argv=argv, env=self._env(ctx), stdin=stdin)

    def build_interactive(self, ctx: TurnContext) -> Launch:
        binary = self.resolve_binary(ctx.settings)
        flags = self._common_flags(ctx, interactive=True)
        mode = flags[flags.index("--permission-mode") + 1]
        settings_file = self.write_hook_settings(ctx)
        argv = [binary, *flags, "--settings", str(settings_file)]
        argv += c.extra_args(ctx.settings)
        if ctx.prompt:
            argv += ["--", ctx.prompt]
        env = self._env(ctx)
        # isolate_config = false: the user's own config (first-run/trust dialogs may show,
        # and are caught by waiting_patterns); e.g. for macOS keychain logins, which are
        # keyed by the config dir.
        if c.setting_bool(ctx.settings, "isolate_config", True):
            env["CLAUDE_CONFIG_DIR"] = str(self.seed_config_dir(ctx, permission_mode=mode))
        return Launch(argv=argv, env=env)

    def write_hook_settings(self, ctx: TurnContext) -> Path:
        """A settings file whose hooks run ``pa hook <session> <event>`` (payload on stdin)."""
        hooks = {ev: [hook_entry(ctx.session_id, ev)] for ev in HOOK_EVENTS}
        path = ensure_dir(ctx.session_dir) / "claude-hooks.json"
        path.write_text(json.dumps({"hooks": hooks}, indent=2) + "\n", encoding="utf-8")
        return path

    def seed_config_dir(self, ctx: TurnContext, *, permission_mode: str = "") -> Path:
        """A per-session ``CLAUDE_CONFIG_DIR`` where the TUI shows no first-run dialogs.

        The copy of the user's ``.claude.json`` gets onboarding done, the worktree trusted
        and the env API key approved (docs/agent-protocols.md §1.8). Credentials, user
        settings, CLAUDE.md, agents/commands/skills/plugins and ``projects`` (the transcripts, so
        ``--resume`` works from headless and interactive turns alike) are symlinks to the
        user's own, so a token refresh lands in the user's file.
        """
        dst = ensure_dir(ctx.session_dir / "claude-config")
        configured = c.user_env(ctx, "CLAUDE_CONFIG_DIR")
        src_dir = Path(configured) if configured else c.home_dir() / ".claude"
        src_json = src_dir / ".claude.json" if configured else c.home_dir() / ".claude.json"
        target = dst / ".claude.json"
        data: dict[str, Any] = {}
        for candidate in (target, src_json):
            try:
                loaded = json.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(loaded, dict):
                data = loaded
                break
        data["hasCompletedOnboarding"] = True
        projects = data.get("projects")
        if not isinstance(projects, dict):
            projects = data["projects"] = {}
        for p in {str(ctx.worktree), str(ctx.worktree.resolve())}:
            entry = projects.get(p)
            if not isinstance(entry, dict):
                entry = projects[p] = {}
            entry["hasTrustDialogAccepted"] = True
            entry.setdefault("hasCompletedProjectOnboarding", True)
        key = c.user_env(ctx, "ANTHROPIC_API_KEY")
        if key:
            resp = data.get("customApiKeyResponses")
            if not isinstance(resp, dict):
                resp = data["customApiKeyResponses"] = {}
            approved = [a for a in resp.get("approved") or [] if isinstance(a, str)]
            if key[-20:] not in approved:
                approved.append(key[-20:])
            resp["approved"] = approved
            resp["rejected"] = [r for r in resp.get("rejected") or [] if r != key[-20:]]
        if permission_mode == "bypassPermissions":
            data["bypassPermissionsModeAccepted"] = True
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
        for name in (
            ".credentials.json",
            "settings.json",
            "CLAUDE.md",
            "agents",
            "commands",
            "skills",
            "plugins",
            "projects",
        ):
            src = src_dir / name
            link = dst / name
            if name == "projects":
                ensure_dir(src)
            if not src.exists() or link.is_symlink() or link.exists():
                continue
            try:
                link.symlink_to(src)
            except OSError:
                continue
        return dst

    # -- reading ------------------------------------------------------------------
    def parse_line(self, line: str, state: TurnState) -> list[NormEvent]:
        try:
            obj = c.json_object(line)
            if obj is None:
                return [c.raw(line)]
            evs = self.parse_obj(obj, state)
            return [c.raw(line)] if evs is None else evs
        except Exception:  # a parser must never raise: keep the line
            return [c.raw(line)]

    def parse_obj(self, obj: dict[str, Any], state: TurnState) -> list[NormEvent] | None:
        """Events for one decoded line; None means "not understood" (-> raw)."""
        kind = obj.get("type")
        sid = obj.get("session_id")
        if isinstance(sid, str) and sid and kind in ("system", "result"):
            state["agent_session_id"] = sid
        if kind == "system":
            return self._system(obj, state)
        if kind == "assistant":
            return self._assistant(obj, state)
        if kind == "user":
            return self._user(obj, state)
        if kind == "result":
            return self._result(obj, state)
        if kind == "control_request":
            return self._control_request(obj, state)
        if kind == "rate_limit_event":
            info = obj.get("rate_limit_info")
            status = info.get("status") if isinstance(info, dict) else None
            return [_status(f"rate limit: {status or 'unknown'}")]
        if kind == "conversation_reset":
            return [_status("conversation reset")]
        if kind in ("stream_event", "control_response", "keep_alive", "prompt_suggestion"):
            return []  # partial deltas: the complete assistant line follows
        return None

    def _system(self, obj: dict[str, Any], state: TurnState) -> list[NormEvent] | None:
        sub = obj.get("subtype")
        if sub == "init":
            state["model"] = obj.get("model")
            return [
                NormEvent(
                    EventKind.STATUS,
                    {
                        "state": "running",
                        "session_id": obj.get("session_id"),
                        "model": obj.get("model"),
                        "permission_mode": obj.get("permissionMode"),
                        "cwd": obj.get("cwd"),
                    },
                )
            ]
        if sub == "permission_denied":
            tid = obj.get("tool_use_id")
            denied = state.setdefault("denied", [])
            if isinstance(denied, list) and isinstance(tid, str) and len(denied) < 200:
                denied.append(tid)
            tool = c.s(obj.get("tool_name")) or "a tool"
            msg = f"permission denied for {tool}: {c.s(obj.get('message'))}".rstrip(": ")
            return [NormEvent(EventKind.ERROR, {"message": c.clip(msg, TAIL * 2), "id": tid})]
        if sub == "api_retry":
            note = f"API request failed, retry {obj.get('attempt')}/{obj.get('max_retries')}"
            err = obj.get("error_status") or obj.get("error")
            return [_status(f"{note} ({err})" if err else note)]
        if sub == "hook_started":
            return []
        if sub == "hook_response":
            return [
                NormEvent(
                    EventKind.STATUS,
                    {
                        "state": "running",
                        "hook": obj.get("hook_name"),
                        "outcome": obj.get("outcome"),
                        "exit_code": obj.get("exit_code"),
                    },
                )
            ]
        if sub == "status":
            return [_status(c.s(obj.get("status")) or "status")]
        if isinstance(sub, str) and sub:
            return [_status(sub)]
        return None

    def _assistant(self, obj: dict[str, Any], state: TurnState) -> list[NormEvent] | None:
        msg = obj.get("message")
        if not isinstance(msg, dict):
            return None
        content = msg.get("content")
        if obj.get("error") or obj.get("is_api_error_message"):
            # A synthetic message carrying an API error (e.g. 401): the result line that
            # follows ends the turn with the same text. Hold it back to report it once.
            text = c.text_of(content) or c.s(obj.get("error")) or "API error"
            c.defer_error(state, text)
            if not isinstance(state.get("end"), dict):
                c.set_end(state, ok=False, error=text, reason="api_error")
            return []
        out = c.flush_errors(state)
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        if not isinstance(content, list):
            return out
        for block in content:
            if not isinstance(block, dict):
                continue
            btype = block.get("type")
            if btype == "text":
                text = c.s(block.get("text"))
                if text.strip():
                    state["last_text"] = c.clip(text, MAX_RAW)
                    out.append(NormEvent(EventKind.MESSAGE, {"text": c.clip(text)}))
            elif btype in ("tool_use", "server_tool_use"):
                tid = c.s(block.get("id"))
                name = c.s(block.get("name"))
                inp = block.get("input")
                c.remember(state, "tools", tid, {"name": name, "path": _path_of(inp)})
                out.append(
                    NormEvent(EventKind.TOOL_CALL, {"name": name, "input": c.cap(inp), "id": tid})
                )
        return out

    def _user(self, obj: dict[str, Any], state: TurnState) -> list[NormEvent] | None:
        msg = obj.get("message")
        if not isinstance(msg, dict):
            return None
        out = c.flush_errors(state)
        content = msg.get("content")
        if not isinstance(content, list):
            return out  # the prompt echoed back: the supervisor knows it already
        structured = obj.get("tool_use_result")
        for block in content:
            if not isinstance(block, dict) or block.get("type") != "tool_result":
                continue
            tid = c.s(block.get("tool_use_id"))
            ok = not bool(block.get("is_error"))
            text = c.text_of(block.get("content"))
            out.append(
                NormEvent(EventKind.TOOL_RESULT, {"ok": ok, "output": c.tail(text), "id": tid})
            )
            if ok:
                change = self._file_change(state, tid, structured)
                if change is not None:
                    out.append(change)
        return out

    def _file_change(self, state: TurnState, tid: str, structured: Any) -> NormEvent | None:
        if isinstance(structured, dict):
            path = structured.get("filePath")
            kind = {"create": "add", "update": "modify"}.get(c.s(structured.get("type")))
            if isinstance(path, str) and path and kind:
                return NormEvent(EventKind.FILE_CHANGE, {"path": path, "kind": kind})
        tools = state.get("tools")
        info = tools.get(tid) if isinstance(tools, dict) else None
        if isinstance(info, dict):
            name = c.s(info.get("name")).lower()
            path = info.get("path")
            if name in FILE_TOOLS and isinstance(path, str) and path:
                kind = FILE_TOOLS[name]
                return NormEvent(
                    EventKind.FILE_CHANGE,
                    {"path": path, "kind": "modify" if kind == "add_or_modify" else kind},
                )
        return None

    def _control_request(self, obj: dict[str, Any], state: TurnState) -> list[NormEvent]:
        req = obj.get("request")
        if isinstance(req, dict) and req.get("subtype") == "can_use_tool":
            return [
                NormEvent(
                    EventKind.STATUS,
                    {
                        "state": "needs_input",
                        "tool": req.get("tool_name"),
                        "input": c.cap(req.get("input")),
                        "request_id": obj.get("request_id"),
                    },
                )
            ]
        return []

    def _result(self, obj: dict[str, Any], state: TurnState) -> list[NormEvent]:
        subtype = c.s(obj.get("subtype"))
        is_error = bool(obj.get("is_error")) or subtype.startswith("error")
        text = obj.get("result")
        text = text if isinstance(text, str) else None
        error: str | None = None
        if is_error:
            errs = obj.get("errors")
            if isinstance(errs, list) and errs:
                error = "; ".join(c.s(e) for e in errs)
            elif isinstance(obj.get("error"), str | dict):
                e = obj["error"]
                error = c.s(e.get("message") if isinstance(e, dict) else e)
            error = error or text or f"{self.name} stopped: {subtype or 'error'}"
            reason = _REASONS.get(subtype) or _REASONS.get(c.s(obj.get("terminal_reason")))
            c.set_end(state, ok=False, error=c.clip(error, TAIL * 2), reason=reason or subtype)
        else:
            result = c.clip(text) if text is not None else state.get("last_text")
            c.set_end(state, ok=True, result=result if isinstance(result, str) else None)
        out = c.flush_errors(state, drop=error)
        usage = self._usage(obj, state)
        if usage is not None:
            out.append(usage)
        denials = obj.get("permission_denials")
        seen = state.get("denied") if isinstance(state.get("denied"), list) else []
        if isinstance(denials, list):
            for d in denials[:50]:
                if isinstance(d, dict) and d.get("tool_use_id") not in (seen or []):
                    msg = f"permission denied for {c.s(d.get('tool_name')) or 'a tool'}"
                    out.append(NormEvent(EventKind.ERROR, {"message": msg}))
        return out

    def _usage(self, obj: dict[str, Any], state: TurnState) -> NormEvent | None:
        """Per-turn usage; ``state['usage_total']`` keeps the session's running totals."""
        base = state.get("usage_base") if isinstance(state.get("usage_base"), dict) else {}
        base = base or {}
        since = obj.get("model_usage_since_last_result")
        models = obj.get("modelUsage")
        if isinstance(since, dict):
            delta = _model_sums(since)
        elif isinstance(models, dict) and models:
            total = _model_sums(models)
            u = obj.get("usage")
            if isinstance(u, dict) and all(
                total[k] == c.num(u.get(f)) for k, f in _RUN_USAGE_FIELDS
            ):
                # Releases without the delta field (2.1.197) count modelUsage for this run
                # only: it equals the run's own ``usage``. Cumulative totals would not.
                delta = total
            else:
                delta = {k: max(0.0, v - c.num(base.get(k))) for k, v in total.items()}
        else:
            u = obj.get("usage")
            u = u if isinstance(u, dict) else {}
            spent = c.num(obj.get("total_cost_usd")) - c.num(base.get("cost_usd"))
            delta = {
                "input_tokens": c.num(u.get("input_tokens")),
                "output_tokens": c.num(u.get("output_tokens")),
                "cached_tokens": c.num(u.get("cache_read_input_tokens")),
                "cost_usd": max(0.0, spent),
            }
        ev = record_usage(
            state,
            input_tokens=int(delta["input_tokens"]),
            output_tokens=int(delta["output_tokens"]),
            cached_tokens=int(delta["cached_tokens"]),
            cost_usd=delta["cost_usd"],
        )
        state["usage_total"] = {k: c.num(base.get(k)) + v for k, v in delta.items()}
        return ev

    def after_exit(self, ctx: TurnContext, state: TurnState) -> list[NormEvent]:
        c.carry_usage(state)
        end = state.get("end")
        drop = end.get("error") if isinstance(end, dict) else None
        return c.flush_errors(state, drop=drop if isinstance(drop, str) else None)


def _status(note: str, state: str = "running") -> NormEvent:
    return NormEvent(EventKind.STATUS, {"state": state, "note": c.clip(note, TAIL)})
