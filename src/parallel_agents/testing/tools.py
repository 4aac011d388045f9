"""Turn a script's abstract actions into the tool calls of whichever CLI is asking.

The CLI is recognised from the tools its request declares: Claude Code ``Bash``/``Write``,
OpenCode ``bash``/``write``, Gemini CLI ``run_shell_command``/``write_file``, Codex
``exec_command``/``shell_command``/``shell`` and ``apply_patch``, mini-swe-agent ``bash``.
Arguments are filled only where the tool's schema declares them; when a write tool needs an
absolute path and the working directory is unknown, the write goes through the shell tool.
"""

from __future__ import annotations

import json
import posixpath
import shlex
from typing import Any

from parallel_agents.testing.conversation import Conversation, ToolCall, ToolSpec
from parallel_agents.testing.script import ModelTurn, RawTool, Run, Write

__all__ = ["TranslationError", "submit_command", "translate_actions"]

SUBMIT_MARKER = "COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"

_SHELL_TOOLS = (
    "Bash",
    "bash",
    "run_shell_command",
    "exec_command",
    "shell_command",
    "shell",
    "local_shell",
    "run_terminal_cmd",
)
_WRITE_TOOLS = ("Write", "write", "write_file", "apply_patch")
_PATH_PARAMS = ("file_path", "filePath", "path", "absolute_path")
_COMMAND_PARAMS = ("command", "cmd")


class TranslationError(RuntimeError):
    """The request declares no tool that can carry the scripted action."""


def translate_actions(turn: ModelTurn, conv: Conversation, id_prefix: str) -> tuple[ToolCall, ...]:
    """The concrete tool calls for ``turn`` (a final text turn for mini becomes a submit)."""
    actions = list(turn.actions)
    calls: list[ToolCall] = []
    for index, action in enumerate(actions):
        call_id = f"{id_prefix}_{index}"
        if isinstance(action, Run):
            calls.append(_shell_call(call_id, action.command, conv))
        elif isinstance(action, Write):
            calls.append(_write_call(call_id, action, conv))
        else:
            calls.append(_raw_call(call_id, action, conv))
    if not calls and conv.is_mini_swe_agent:
        # mini-swe-agent only stops when the model runs the submit command.
        calls.append(_shell_call(f"{id_prefix}_0", submit_command(turn.text or ""), conv))
    return tuple(calls)


def submit_command(text: str) -> str:
    """mini-swe-agent's finish protocol: the marker line, then the submission."""
    return f"echo {SUBMIT_MARKER} && printf '%s\\n' {shlex.quote(text)}"


def _find(conv: Conversation, names: tuple[str, ...]) -> ToolSpec | None:
    for name in names:
        spec = conv.tools.get(name)
        if spec is not None:
            return spec
    return None


def _shell_call(call_id: str, command: str, conv: Conversation) -> ToolCall:
    spec = _find(conv, _SHELL_TOOLS)
    if spec is None:
        raise TranslationError(
            f"no shell tool among the declared tools {sorted(conv.tools)}; "
            "use {tool: {name, arguments}} in the script"
        )
    if spec.custom:
        return ToolCall(id=call_id, name=spec.name, custom_input=command)
    param = next((p for p in _COMMAND_PARAMS if p in spec.properties), "command")
    value: Any = ["bash", "-lc", command] if param in spec.array_params else command
    arguments: dict[str, Any] = {param: value}
    if "description" in spec.properties:
        arguments["description"] = _describe(command)
    return ToolCall(id=call_id, name=spec.name, arguments=arguments)


def _describe(command: str) -> str:
    first = command.strip().splitlines()[0] if command.strip() else command
    return f"Run: {first[:60]}"


def _write_call(call_id: str, action: Write, conv: Conversation) -> ToolCall:
    spec = _find(conv, _WRITE_TOOLS)
    cwd = conv.working_directory()
    if spec is not None and spec.name == "apply_patch":
        if action.content.endswith("\n") or not action.content:
            patch = _add_file_patch(action.path, action.content)
            if spec.custom:
                return ToolCall(id=call_id, name=spec.name, custom_input=patch)
            param = "input" if "input" in spec.properties or not spec.properties else None
            if param is not None:
                return ToolCall(id=call_id, name=spec.name, arguments={param: patch})
    elif spec is not None and cwd is not None:
        path_param = next((p for p in _PATH_PARAMS if p in spec.properties), None)
        if path_param is not None and "content" in spec.properties:
            target = posixpath.join(cwd, action.path)
            return ToolCall(
                id=call_id,
                name=spec.name,
                arguments={path_param: target, "content": action.content},
            )
    return _shell_call(call_id, _write_command(action), conv)


def _add_file_patch(path: str, content: str) -> str:
    lines = content.split("\n")[:-1] if content else []
    body = "".join(f"+{line}\n" for line in lines)
    return f"*** Begin Patch\n*** Add File: {path}\n{body}*** End Patch\n"


def _write_command(action: Write) -> str:
    target = shlex.quote(action.path)
    parent = posixpath.dirname(action.path)
    prefix = f"mkdir -p {shlex.quote(parent)} && " if parent else ""
    return f"{prefix}printf '%s' {shlex.quote(action.content)} > {target}"


def _raw_call(call_id: str, action: RawTool, conv: Conversation) -> ToolCall:
    spec = conv.tools.get(action.name)
    if spec is not None and spec.custom:
        raw = action.arguments.get("input", "")
        text = raw if isinstance(raw, str) else json.dumps(raw)
        return ToolCall(id=call_id, name=action.name, custom_input=text)
    return ToolCall(id=call_id, name=action.name, arguments=dict(action.arguments))
