"""Helpers shared by the built-in adapters (private: not part of the plugin interface).

Rules every parser here follows:

- a line that is not a JSON object, or whose ``type`` is unknown, becomes one ``raw`` event;
- payloads are bounded: message text at ``MAX_RAW``, outputs at ``TAIL`` (their end),
  tool inputs with long strings cut, so a 10 MB line never becomes a 10 MB event;
- errors that end the turn are *not* emitted as events by the parser: they go into
  ``state["end"]`` and the supervisor reports them once from ``TurnEnd``. Errors that may
  turn out to be the fatal one are held back in ``state`` (:func:`defer_error`) and released
  with the next line, or dropped if the turn then ends with the same text.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from parallel_agents.agents.base import MAX_RAW, TAIL, NormEvent, TurnContext, TurnState
from parallel_agents.models import EventKind

__all__ = [
    "cap",
    "carry_usage",
    "clip",
    "defer_error",
    "env_defaults",
    "extra_args",
    "flush_errors",
    "hook_argv",
    "json_object",
    "num",
    "raw",
    "remember",
    "set_end",
    "setting_bool",
    "setting_list",
    "tail",
    "text_of",
]

# Longest string kept inside a tool input / structured payload.
CAP_STR = 2000
CAP_ITEMS = 100
CAP_DEPTH = 8


def raw(line: str, **extra: Any) -> NormEvent:
    return NormEvent(EventKind.RAW, {"text": line[:MAX_RAW], **extra})


def json_object(line: str) -> dict[str, Any] | None:
    """The line as a JSON object, or None (not JSON, not an object, too deep…)."""
    s = line.strip()
    if not s.startswith("{"):
        return None
    try:
        obj = json.loads(s)
    except (ValueError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


def clip(text: Any, n: int = MAX_RAW) -> str:
    """The start of ``text`` (messages: the beginning matters)."""
    s = text if isinstance(text, str) else ("" if text is None else str(text))
    return s if len(s) <= n else s[:n] + f"… [{len(s) - n} more characters]"


def tail(text: Any, n: int = TAIL) -> str:
    """The end of ``text`` (command output: the end matters)."""
    s = text if isinstance(text, str) else ("" if text is None else str(text))
    return s if len(s) <= n else f"[{len(s) - n} characters before] …" + s[-n:]


def cap(obj: Any, depth: int = 0) -> Any:
    """A JSON-able copy of ``obj`` with long strings and lists cut."""
    if isinstance(obj, str):
        return clip(obj, CAP_STR)
    if obj is None or isinstance(obj, bool | int | float):
        return obj
    if depth >= CAP_DEPTH:
        return clip(json.dumps(obj, default=str), CAP_STR)
    if isinstance(obj, Mapping):
        out: dict[str, Any] = {}
        for i, (k, v) in enumerate(obj.items()):
            if i >= CAP_ITEMS:
                out["…"] = f"{len(obj) - CAP_ITEMS} more keys"
                break
            out[str(k)] = cap(v, depth + 1)
        return out
    if isinstance(obj, list | tuple):
        items = [cap(v, depth + 1) for v in obj[:CAP_ITEMS]]
        if len(obj) > CAP_ITEMS:
            items.append(f"… {len(obj) - CAP_ITEMS} more items")
        return items
    return clip(str(obj), CAP_STR)


def text_of(content: Any) -> str:
    """Text of a message/tool-result ``content``: a string or a list of content blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, Mapping):
                t = block.get("text")
                if isinstance(t, str):
                    parts.append(t)
                elif block.get("type") == "image":
                    parts.append("[image]")
        return "\n".join(parts)
    if isinstance(content, Mapping):
        t = content.get("text")
        return t if isinstance(t, str) else ""
    return ""


def num(v: Any) -> float:
    """A number from whatever the CLI printed (int, float, numeric string); else 0."""
    if isinstance(v, bool):
        return 0.0
    if isinstance(v, int | float):
        return float(v) if v == v else 0.0  # NaN -> 0
    if isinstance(v, str):
        try:
            f = float(v)
        except ValueError:
            return 0.0
        return f if f == f else 0.0
    return 0.0


def s(v: Any) -> str:
    return v if isinstance(v, str) else ("" if v is None else str(v))


# -- end of turn and deferred errors --------------------------------------------------
def set_end(
    state: TurnState,
    *,
    ok: bool,
    error: str | None = None,
    result: str | None = None,
    reason: str | None = None,
) -> None:
    state["end"] = {"ok": ok, "error": error, "result": result, "reason": reason}


def defer_error(state: TurnState, message: str) -> None:
    pending = state.setdefault("pending_errors", [])
    if isinstance(pending, list) and len(pending) < 50:
        pending.append(clip(message, TAIL * 4))


def flush_errors(state: TurnState, drop: str | None = None) -> list[NormEvent]:
    """Release held-back errors as events, except one equal to ``drop`` (the fatal one)."""
    pending = state.pop("pending_errors", None)
    if not isinstance(pending, list):
        return []
    out = []
    fatal = clip(drop, TAIL * 4).strip() if drop is not None else None
    for msg in pending:
        if fatal is not None and isinstance(msg, str) and msg.strip() == fatal:
            continue
        out.append(NormEvent(EventKind.ERROR, {"message": s(msg)}))
    return out


def carry_usage(state: TurnState) -> None:
    """A turn without usage (failed, killed) passes the previous totals on unchanged, so
    the next resumed turn's delta is not computed against zero."""
    base = state.get("usage_base")
    if "usage_total" not in state and isinstance(base, dict) and base:
        state["usage_total"] = dict(base)


def remember(state: TurnState, key: str, item_id: str, value: dict[str, Any]) -> None:
    """Keep a small JSON-able record per tool id (bounded: the oldest go first)."""
    table = state.get(key)
    if not isinstance(table, dict):
        table = {}
        state[key] = table
    table[item_id] = value
    while len(table) > 200:
        table.pop(next(iter(table)))


# -- settings and environment ---------------------------------------------------------
def setting_list(settings: Mapping[str, Any], key: str, default: Iterable[str] = ()) -> list[str]:
    """A list setting given as a TOML array or a comma/space separated string."""
    v = settings.get(key, None)
    if v is None:
        return list(default)
    if isinstance(v, str):
        return [p for p in v.replace(",", " ").split() if p]
    if isinstance(v, list | tuple):
        return [str(p) for p in v]
    return [str(v)]


def setting_bool(settings: Mapping[str, Any], key: str, default: bool) -> bool:
    v = settings.get(key, None)
    if v is None:
        return default
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "yes", "on")
    return bool(v)


def extra_args(settings: Mapping[str, Any]) -> list[str]:
    """``[agents.<name>] args = [...]``: appended to every headless command line."""
    v = settings.get("args", None)
    if isinstance(v, str):
        import shlex

        return shlex.split(v)
    if isinstance(v, list | tuple):
        return [str(a) for a in v]
    return []


def user_env(ctx: TurnContext, key: str) -> str | None:
    """A variable as the agent will see it before our additions: repo/session env, then ours."""
    if key in ctx.env:
        return ctx.env[key]
    return os.environ.get(key)


def env_defaults(ctx: TurnContext, values: Mapping[str, str]) -> dict[str, str]:
    """``values`` minus anything the user already set (never override the user's env)."""
    return {k: v for k, v in values.items() if user_env(ctx, k) is None}


def hook_argv(session_id: str, event: str) -> list[str]:
    """``pa hook <session> <event>`` run with this very interpreter (no PATH lookup)."""
    exe = sys.executable or shutil.which("python3") or "python3"
    return [exe, "-m", "parallel_agents", "hook", session_id, event]


# The name agents know pa's own MCP server by: Claude Code calls its tools mcp__pa__<tool>.
PA_MCP_SERVER = "pa"


def pa_mcp_server(ctx: TurnContext) -> dict[str, Any]:
    """``pa mcp`` (stdio) as an agent's MCP server entry, run with this very interpreter (no
    PATH lookup). The session's id is set explicitly, not only inherited, so what the agent
    starts through it is linked to this session whatever the CLI passes on (issue 18)."""
    exe = sys.executable or shutil.which("python3") or "python3"
    env = {"PA_SESSION_ID": ctx.session_id} if ctx.session_id else {}
    return {"command": exe, "args": ["-m", "parallel_agents", "mcp"], "env": env}


def home_dir() -> Path:
    return Path(os.environ.get("HOME") or Path.home())
