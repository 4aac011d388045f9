"""agents.tui.build_launch and agents.claude_hooks.ensure_claude_hooks: the command line of an
agent's TUI carries the hooks pa relies on (issue 13 moved them out of sessions.interactive)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest

from parallel_agents.agents import get_agent
from parallel_agents.agents.base import TurnContext
from parallel_agents.agents.claude_hooks import HOOK_EVENTS, TOOL_HOOKS, ensure_claude_hooks
from parallel_agents.agents.tui import build_launch
from parallel_agents.errors import PAError


def _ctx(tmp_path: Path, cmd: list[str] | None = None) -> TurnContext:
    return TurnContext(
        prompt="hi",
        worktree=tmp_path,
        session_dir=tmp_path / "session",
        turn=1,
        cmd=cmd,
        session_id="s7",
    )


def _assert_pa_hook(entry: dict[str, Any], event: str) -> None:
    (hook,) = entry["hooks"]
    assert hook["type"] == "command"
    assert shlex.split(hook["command"]) == [
        sys.executable,
        "-m",
        "parallel_agents",
        "hook",
        "s7",
        event,
    ]
    assert (entry.get("matcher") == "*") == (event in TOOL_HOOKS)


def test_a_command_line_without_settings_gets_a_file_with_every_hook(tmp_path: Path) -> None:
    argv = ["claude", "--model", "x", "--", "the prompt"]
    ensure_claude_hooks(argv, _ctx(tmp_path))
    path = tmp_path / "session" / "pa-claude-hooks.json"
    assert argv == ["claude", "--model", "x", "--settings", str(path), "--", "the prompt"]
    hooks = json.loads(path.read_text())["hooks"]
    assert list(hooks) == list(HOOK_EVENTS)
    for ev, (entry,) in hooks.items():
        _assert_pa_hook(entry, ev)


def test_a_settings_file_keeps_its_hooks_and_gets_the_missing_ones(tmp_path: Path) -> None:
    own: dict[str, Any] = {"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "mine"}]}]}, "x": 1}
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(own))
    argv = ["claude", f"--settings={path}"]
    ensure_claude_hooks(argv, _ctx(tmp_path))
    assert argv == ["claude", f"--settings={path}"]
    data = json.loads(path.read_text())
    assert data["x"] == 1
    assert data["hooks"]["Stop"] == own["hooks"]["Stop"]
    assert set(data["hooks"]) == set(HOOK_EVENTS)
    _assert_pa_hook(data["hooks"]["PreToolUse"][0], "PreToolUse")


def test_inline_settings_are_left_alone(tmp_path: Path) -> None:
    argv = ["claude", "--settings", '{"hooks": {}}']
    ensure_claude_hooks(argv, _ctx(tmp_path))
    assert argv == ["claude", "--settings", '{"hooks": {}}']
    assert not (tmp_path / "session").exists()


def test_the_command_agent_runs_its_program_with_the_prompt_in_the_environment(
    tmp_path: Path,
) -> None:
    launch = build_launch(get_agent("command"), _ctx(tmp_path, cmd=["prog", "a b"]))
    assert launch.argv == ["prog", "a b"]
    assert launch.env == {"PA_PROMPT": "hi", "PA_TURN": "1", "PA_INTERACTIVE": "1"}
    with pytest.raises(PAError, match="needs --cmd"):
        build_launch(get_agent("command"), _ctx(tmp_path))
