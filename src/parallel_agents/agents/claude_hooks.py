"""Claude Code's hooks in a TUI launched by pa: the events pa needs and the settings that run them.

Every hook runs ``pa hook <session> <event>`` with the hook's payload on stdin
(sessions.interactive turns those calls into statuses). Used by the adapter's own
settings file and by ``agents.tui.build_launch`` for any claude command line pa launches.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from parallel_agents.agents import _common as c
from parallel_agents.agents.base import TurnContext

# Hook events injected into the interactive TUI (the payload arrives on the hook's stdin).
# PermissionRequest fires as a permission dialog opens; Notification{permission_prompt}
# only ~6 s later (2.1.332). PostToolUseFailure marks a failed tool.
HOOK_EVENTS = (
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PermissionRequest",
    "PostToolUse",
    "PostToolUseFailure",
    "Notification",
    "Stop",
    "SessionEnd",
)
# Hooks about a tool: Claude Code runs them only with a matcher.
TOOL_HOOKS = frozenset({"PreToolUse", "PermissionRequest", "PostToolUse", "PostToolUseFailure"})


def hook_command(session_id: str, event: str) -> str:
    """The shell line Claude Code runs for a hook: ``pa hook <session> <event>``."""
    return shlex.join(c.hook_argv(session_id, event))


def hook_entry(session_id: str, event: str) -> dict[str, Any]:
    """One event's entry in a settings file's ``hooks``."""
    entry: dict[str, Any] = {
        "hooks": [{"type": "command", "command": hook_command(session_id, event)}]
    }
    if event in TOOL_HOOKS:
        entry = {"matcher": "*", **entry}
    return entry


def ensure_claude_hooks(argv: list[str], ctx: TurnContext) -> None:
    """Make sure a claude command line carries the hooks pa relies on.

    Hooks missing from its ``--settings`` file are added to the file; a command line with
    no ``--settings`` gets one (before ``--``). Settings given inline are left alone.
    """
    path: Path | None = None
    given = False
    for i, a in enumerate(argv):
        value = None
        if a == "--settings" and i + 1 < len(argv):
            value = argv[i + 1]
        elif a.startswith("--settings="):
            value = a.partition("=")[2]
        if value is None:
            continue
        given = True
        candidate = Path(value)
        if candidate.is_file():
            path = candidate
    data: Any = {}
    if path is not None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
    elif given:
        return
    if not isinstance(data, dict):
        return
    hooks = data.get("hooks")
    if not isinstance(hooks, dict):
        hooks = data["hooks"] = {}
    added = False
    for ev in HOOK_EVENTS:
        if ev in hooks:
            continue
        hooks[ev] = [hook_entry(ctx.session_id, ev)]
        added = True
    if path is None:
        path = ctx.session_dir / "pa-claude-hooks.json"
        at = argv.index("--") if "--" in argv else len(argv)
        argv[at:at] = ["--settings", str(path)]
    if added or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
