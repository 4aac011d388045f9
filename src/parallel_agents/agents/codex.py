"""OpenAI Codex CLI (`codex`): ``codex exec --json`` and ``codex exec resume <thread_id>``.

Verified against Codex 0.171.0 (docs/agent-protocols.md §2):

- stdin must be closed (/dev/null): piped stdin is appended to the prompt. The prompt is
  the last argv element after ``--`` (so a prompt starting with ``-`` stays a prompt);
  prompts too long for one argv element go on stdin with ``-`` as the prompt argument.
- ``exec resume`` has no ``--sandbox``/``-C``: the sandbox goes in as ``-c sandbox_mode=…``.
- ``turn.completed.usage`` is cumulative over the thread: per-turn usage is the delta
  against the previous turn's totals (``state['usage_base']``). There is no cost field.
- Each session gets its own ``CODEX_HOME`` under the session folder, seeded from the user's
  ``$CODEX_HOME`` (or ``~/.codex``): config.toml (model providers, profiles) copied with the
  worktree marked trusted, ``auth.json`` symlinked so a token refresh lands in the user's
  file, instructions/rules/prompts/skills linked. Parallel sessions never share a config,
  a session store or the TUI's app-server daemon.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tomllib
from pathlib import Path
from typing import Any

from parallel_agents.agents import _common as c
from parallel_agents.agents.base import (
    TAIL,
    Agent,
    Launch,
    NormEvent,
    TurnContext,
    TurnState,
    ensure_dir,
    record_usage,
)
from parallel_agents.models import EventKind

# Longest prompt passed as one argv element (Linux caps one argument at 128 KiB).
MAX_ARGV_PROMPT = 100_000
_KINDS = {"add": "add", "delete": "delete", "update": "modify", "modify": "modify"}
_LINKED = ("AGENTS.md", "AGENTS.override.md", "rules", "prompts", "skills", "plugins")


def _toml_str(s: str) -> str:
    # A JSON string is a valid TOML basic string.
    return json.dumps(s, ensure_ascii=False)


class CodexAgent(Agent):
    name = "codex"
    binary = "codex"
    install_hint = "npm install -g @openai/codex@0.171.0"
    supports_resume = True
    result_record = "turn.completed"
    supported_versions = ("0.95.0", "0.171.0")
    help_args = ("exec", "--help")
    required_flags = ("--json", "--skip-git-repo-check", "--sandbox")
    waiting_patterns = (
        "Would you like to run the following command?",
        "Press enter to confirm or esc to cancel",
        "Yes, proceed (y)",
        "Trust this folder?",
        "1. Trust and continue",
        # The model-upgrade screen (0.171.0, e.g. "Meet GPT-6 Sol") before the first prompt.
        "2. Use existing model",
    )
    idle_patterns = ("? for shortcuts",)

    DEFAULT_SANDBOX = "workspace-write"

    # -- environment -----------------------------------------------------------------
    def codex_home(self, ctx: TurnContext) -> Path:
        """The session's CODEX_HOME, created on first use and kept for every turn."""
        dst = ensure_dir(ctx.session_dir / "codex-home")
        configured = c.user_env(ctx, "CODEX_HOME")
        src = Path(configured) if configured else c.home_dir() / ".codex"
        config = dst / "config.toml"
        if not config.exists():
            text = ""
            with contextlib.suppress(OSError):
                text = (src / "config.toml").read_text(encoding="utf-8")
            config.write_text(text, encoding="utf-8")
            if src.is_dir():
                for f in src.glob("*.config.toml"):  # v2 profiles: -p NAME
                    shutil.copyfile(f, dst / f.name)
            for name in ("auth.json", *_LINKED):
                target, link = src / name, dst / name
                if target.exists() and not (link.exists() or link.is_symlink()):
                    try:
                        link.symlink_to(target)
                    except OSError:
                        if target.is_file():
                            shutil.copyfile(target, link)
        self._trust(config, ctx.worktree)
        return dst

    @staticmethod
    def _trust(config: Path, worktree: Path) -> None:
        """Append ``[projects."<worktree>"] trust_level = "trusted"`` unless already there."""
        text = config.read_text(encoding="utf-8")
        try:
            projects = tomllib.loads(text).get("projects")
        except tomllib.TOMLDecodeError:
            return  # the user's file is broken: codex will say so, not us
        projects = projects if isinstance(projects, dict) else {}
        add = []
        for p in dict.fromkeys((str(worktree), str(worktree.resolve()))):
            if p not in projects:
                add.append(f'\n[projects.{_toml_str(p)}]\ntrust_level = "trusted"\n')
        if not add:
            return
        sep = "" if not text or text.endswith("\n") else "\n"
        new = text + sep + "".join(add)
        try:
            tomllib.loads(new)
        except tomllib.TOMLDecodeError:
            # e.g. `projects = { ... }` as an inline table cannot be extended: leave the
            # file alone (exec runs with --skip-git-repo-check; the TUI asks once).
            return
        config.write_text(new, encoding="utf-8")

    def _env(self, ctx: TurnContext) -> dict[str, str]:
        if not c.setting_bool(ctx.settings, "isolate_home", True):
            return {}
        return {"CODEX_HOME": str(self.codex_home(ctx))}

    # -- starting ---------------------------------------------------------------------
    def _model_flags(self, ctx: TurnContext) -> list[str]:
        s = ctx.settings
        out: list[str] = []
        model = ctx.model or s.get("model")
        if model:
            out += ["-m", str(model)]
        if s.get("approval_policy"):
            out += ["-c", f"approval_policy={_toml_str(str(s['approval_policy']))}"]
        for kv in c.setting_list(s, "config"):
            out += ["-c", kv]
        return out

    def build(self, ctx: TurnContext) -> Launch:
        s = ctx.settings
        binary = self.resolve_binary(s)
        sandbox = str(s.get("sandbox") or self.DEFAULT_SANDBOX)
        bypass = c.setting_bool(s, "bypass_sandbox", False)
        argv = [binary, "exec"]
        if ctx.resume:
            argv += ["resume", "--json", "--skip-git-repo-check"]
            if bypass:
                argv.append("--dangerously-bypass-approvals-and-sandbox")
            else:  # `exec resume` has no --sandbox flag
                argv += ["-c", f"sandbox_mode={_toml_str(sandbox)}"]
        else:
            argv += ["--json", "--skip-git-repo-check"]
            if bypass:
                argv.append("--dangerously-bypass-approvals-and-sandbox")
            else:
                argv += ["--sandbox", sandbox]
        argv += self._model_flags(ctx)
        argv += c.extra_args(s)
        argv.append("--")
        if ctx.resume:
            argv.append(str(ctx.agent_session_id))
        stdin: bytes | None = None
        if len(ctx.prompt.encode("utf-8")) > MAX_ARGV_PROMPT:
            argv.append("-")
            stdin = ctx.prompt.encode("utf-8")
        else:
            argv.append(ctx.prompt)
        return Launch(argv=argv, env=self._env(ctx), stdin=stdin)

    def build_interactive(self, ctx: TurnContext) -> Launch:
        s = ctx.settings
        binary = self.resolve_binary(s)
        argv = [binary]
        if ctx.resume:
            argv.append("resume")
        notify = json.dumps(c.hook_argv(ctx.session_id, "notify"), ensure_ascii=False)
        argv += ["--no-daemon", "-c", f"notify={notify}"]
        if c.setting_bool(s, "bypass_sandbox", False):
            argv.append("--dangerously-bypass-approvals-and-sandbox")
        else:
            argv += ["--sandbox", str(s.get("sandbox") or self.DEFAULT_SANDBOX)]
            argv += ["--ask-for-approval", str(s.get("interactive_approval") or "on-request")]
        model = ctx.model or s.get("model")
        if model:
            argv += ["-m", str(model)]
        for kv in c.setting_list(s, "config"):
            argv += ["-c", kv]
        argv += c.extra_args(s)
        tail = [str(ctx.agent_session_id)] if ctx.resume else []
        if ctx.prompt:
            tail.append(ctx.prompt)
        if tail:
            argv += ["--", *tail]
        return Launch(argv=argv, env=self._env(ctx))

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
        if kind == "thread.started":
            tid = obj.get("thread_id")
            if isinstance(tid, str) and tid:
                state["agent_session_id"] = tid
            return [NormEvent(EventKind.STATUS, {"state": "running", "thread_id": tid})]
        if kind == "turn.started":
            return c.flush_errors(state)
        if kind in ("item.started", "item.updated", "item.completed"):
            item = obj.get("item")
            if not isinstance(item, dict):
                return None
            evs = self._item(kind, item, state)
            return None if evs is None else c.flush_errors(state) + evs
        if kind == "item.plan.delta":
            return []
        if kind == "turn.completed":
            return self._completed(obj, state)
        if kind == "turn.failed":
            err = obj.get("error")
            msg = c.s(err.get("message") if isinstance(err, dict) else err) or "turn failed"
            c.set_end(state, ok=False, error=c.clip(msg, TAIL * 2))
            return c.flush_errors(state, drop=msg)
        if kind == "error":
            msg = c.s(obj.get("message"))
            if msg.startswith("Reconnecting..."):
                return [NormEvent(EventKind.STATUS, {"state": "running", "note": c.clip(msg)})]
            c.defer_error(state, msg or "error")  # often repeated by turn.failed
            return []
        if kind == "request_user_input":
            return [
                NormEvent(
                    EventKind.STATUS,
                    {"state": "needs_input", "questions": c.cap(obj.get("questions"))},
                )
            ]
        return None

    def _item(self, kind: str, item: dict[str, Any], state: TurnState) -> list[NormEvent] | None:
        itype = item.get("type")
        iid = c.s(item.get("id"))
        done = kind == "item.completed"
        if itype == "agent_message":
            text = c.s(item.get("text"))
            if not done or not text.strip():
                return []
            state["last_text"] = c.clip(text)
            return [NormEvent(EventKind.MESSAGE, {"text": c.clip(text)})]
        if itype in ("reasoning", "plan"):
            text = c.s(item.get("text"))
            if not done or not text.strip():
                return []
            return [NormEvent(EventKind.MESSAGE, {"text": c.clip(text), itype: True})]
        if itype == "command_execution":
            cmd = c.s(item.get("command"))
            if kind == "item.started":
                return [
                    NormEvent(
                        EventKind.TOOL_CALL, {"name": "shell", "input": {"command": cmd}, "id": iid}
                    )
                ]
            if not done:
                return []
            code = item.get("exit_code")
            return [
                NormEvent(
                    EventKind.COMMAND,
                    {
                        "command": cmd,
                        "exit_code": code if isinstance(code, int) else None,
                        "output": c.tail(item.get("aggregated_output")),
                        "id": iid,
                        "status": item.get("status"),
                    },
                )
            ]
        if itype == "file_change":
            if not done or item.get("status") == "failed":
                return []
            changes = item.get("changes")
            out = []
            for ch in changes if isinstance(changes, list) else []:
                if isinstance(ch, dict) and isinstance(ch.get("path"), str):
                    kind_ = _KINDS.get(c.s(ch.get("kind")), "modify")
                    out.append(
                        NormEvent(EventKind.FILE_CHANGE, {"path": ch["path"], "kind": kind_})
                    )
            return out
        if itype in ("mcp_tool_call", "collab_tool_call", "web_search"):
            if itype == "mcp_tool_call":
                name = f"{c.s(item.get('server'))}.{c.s(item.get('tool'))}".strip(".")
                inp = item.get("arguments")
            elif itype == "collab_tool_call":
                name, inp = c.s(item.get("tool")) or "collab", item.get("prompt")
            else:
                name, inp = "web_search", {"query": item.get("query")}
            if kind == "item.started":
                return [
                    NormEvent(EventKind.TOOL_CALL, {"name": name, "input": c.cap(inp), "id": iid})
                ]
            if not done:
                return []
            err = item.get("error")
            ok = item.get("status") not in ("failed", "declined") and not err
            res = item.get("result")
            output = c.s(err.get("message") if isinstance(err, dict) else err) if err else ""
            if not output and isinstance(res, dict):
                output = c.text_of(res.get("content")) or json.dumps(c.cap(res))
            return [
                NormEvent(EventKind.TOOL_RESULT, {"ok": ok, "output": c.tail(output), "id": iid})
            ]
        if itype == "todo_list":
            items = item.get("items")
            if not done or not isinstance(items, list):
                return []
            lines = [
                f"[{'x' if isinstance(i, dict) and i.get('completed') else ' '}] "
                f"{c.s(i.get('text') if isinstance(i, dict) else i)}"
                for i in items[:100]
            ]
            return [NormEvent(EventKind.MESSAGE, {"text": "\n".join(lines), "plan": True})]
        if itype == "error":
            # A warning (e.g. unknown model metadata): the turn goes on.
            return [NormEvent(EventKind.ERROR, {"message": c.clip(item.get("message"), TAIL * 2)})]
        return None

    def _completed(self, obj: dict[str, Any], state: TurnState) -> list[NormEvent]:
        out = c.flush_errors(state)
        u = obj.get("usage")
        if isinstance(u, dict):
            out.append(
                record_usage(
                    state,
                    input_tokens=int(c.num(u.get("input_tokens"))),
                    output_tokens=int(c.num(u.get("output_tokens"))),
                    cached_tokens=int(c.num(u.get("cached_input_tokens"))),
                    cumulative=True,
                )
            )
        last = state.get("last_text")
        c.set_end(state, ok=True, result=last if isinstance(last, str) else None)
        return out

    def after_exit(self, ctx: TurnContext, state: TurnState) -> list[NormEvent]:
        c.carry_usage(state)
        end = state.get("end")
        drop = end.get("error") if isinstance(end, dict) else None
        if not isinstance(end, dict):
            pending = state.get("pending_errors")
            if isinstance(pending, list) and pending:
                # No turn.failed line (killed?): the last error is the best explanation.
                c.set_end(state, ok=False, error=c.s(pending[-1]))
                drop = c.s(pending[-1])
        return c.flush_errors(state, drop=drop if isinstance(drop, str) else None)
