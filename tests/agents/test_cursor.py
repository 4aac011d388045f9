"""Cursor CLI adapter: argv and the documented stream-json (docs/agent-protocols.md §6; the
CLI is not run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from parallel_agents.agents.base import MissingBinary, TurnContext
from parallel_agents.agents.cursor import CursorAgent

from .conftest import FakeBin, MakeCtx, kinds, of_kind, parse_all, write_exe

A = CursorAgent()
CHAT = "c6b62c6f-7ead-4fd6-9922-e952131177ff"

# The documented example stream, line for line.
DOC_STREAM = [
    {
        "type": "system",
        "subtype": "init",
        "apiKeySource": "login",
        "cwd": "/Users/user/project",
        "session_id": CHAT,
        "model": "Claude 4 Sonnet",
        "permissionMode": "default",
    },
    {
        "type": "user",
        "message": {
            "role": "user",
            "content": [{"type": "text", "text": "Read README.md and create a summary"}],
        },
        "session_id": CHAT,
    },
    {
        "type": "assistant",
        "message": {
            "role": "assistant",
            "content": [{"type": "text", "text": "I'll read the README.md file"}],
        },
        "session_id": CHAT,
    },
    {
        "type": "tool_call",
        "subtype": "started",
        "call_id": "toolu_vrtx_01NnjaR886UcE8whekg2MGJd",
        "tool_call": {"readToolCall": {"args": {"path": "README.md"}}},
        "session_id": CHAT,
    },
    {
        "type": "tool_call",
        "subtype": "completed",
        "call_id": "toolu_vrtx_01NnjaR886UcE8whekg2MGJd",
        "tool_call": {
            "readToolCall": {
                "args": {"path": "README.md"},
                "result": {"success": {"content": "# Project", "totalLines": 54}},
            }
        },
        "session_id": CHAT,
    },
    {
        "type": "result",
        "subtype": "success",
        "is_error": False,
        "duration_ms": 1234,
        "duration_api_ms": 1234,
        "result": "<full text>",
        "session_id": CHAT,
        "request_id": "<id>",
        "usage": {
            "inputTokens": 740,
            "outputTokens": 307,
            "cacheReadTokens": 28160,
            "cacheWriteTokens": 0,
        },
    },
]


def _ctx(
    make_ctx: MakeCtx, fake_bin: FakeBin, settings: dict[str, Any] | None = None, **kw: Any
) -> TurnContext:
    return make_ctx(settings={"binary": fake_bin("cursor-agent"), **(settings or {})}, **kw)


def test_argv(make_ctx: MakeCtx, fake_bin: FakeBin) -> None:
    ctx = _ctx(make_ctx, fake_bin, model="gpt-5", prompt="-summarise")
    assert A.build(ctx).argv == [
        ctx.settings["binary"],
        "-p",
        "--output-format",
        "stream-json",
        "--model",
        "gpt-5",
        "--force",
        "--trust",
        "--",
        "-summarise",
    ]
    ctx = _ctx(
        make_ctx,
        fake_bin,
        turn=2,
        agent_session_id=CHAT,
        prompt="again",
        settings={"force": False, "trust": False},
    )
    assert A.build(ctx).argv == [
        ctx.settings["binary"],
        "-p",
        "--output-format",
        "stream-json",
        "--resume",
        CHAT,
        "--",
        "again",
    ]


def test_binary_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(MissingBinary) as exc:
        A.resolve_binary({})
    assert "cursor-agent" in exc.value.message and "cursor.com/install" in (exc.value.hint or "")
    agent = write_exe(tmp_path / "bin" / "agent")
    monkeypatch.setenv("PATH", str(agent.parent))
    assert A.resolve_binary({}) == str(agent)


def test_documented_stream() -> None:
    state: dict[str, object] = {}
    events = parse_all(A, [json.dumps(x) for x in DOC_STREAM], state)
    assert kinds(events) == ["status", "message", "tool_call", "tool_result", "usage"]
    assert of_kind(events, "tool_call")[0] == {
        "name": "read",
        "input": {"path": "README.md"},
        "id": "toolu_vrtx_01NnjaR886UcE8whekg2MGJd",
    }
    assert of_kind(events, "tool_result")[0]["output"] == "# Project"
    assert of_kind(events, "usage")[0] == {
        "input_tokens": 740,
        "output_tokens": 307,
        "cached_tokens": 28160,
        "cost_usd": None,
    }
    assert A.agent_session_id(state) == CHAT
    end = A.finish(0, "", state)
    assert end.ok and end.result == "<full text>"


def test_shell_write_thinking_and_failures() -> None:
    lines = [
        {"type": "thinking", "subtype": "delta", "text": "Hmm, ", "session_id": "c"},
        {"type": "thinking", "subtype": "delta", "text": "let me run it.", "session_id": "c"},
        {"type": "thinking", "subtype": "completed", "session_id": "c"},
        {
            "type": "tool_call",
            "subtype": "completed",
            "call_id": "s1",
            "tool_call": {
                "shellToolCall": {
                    "args": {"command": "false"},
                    "result": {"success": {"exitCode": 1, "stdout": "", "stderr": "boom"}},
                }
            },
        },
        {
            "type": "tool_call",
            "subtype": "completed",
            "call_id": "s2",
            "tool_call": {
                "shellToolCall": {
                    "args": {"command": "rm -rf /"},
                    "result": {"rejected": {"command": "rm -rf /", "reason": "not allowed"}},
                }
            },
        },
        {
            "type": "tool_call",
            "subtype": "completed",
            "call_id": "w1",
            "tool_call": {
                "writeToolCall": {
                    "args": {"path": "a.txt", "fileText": "x"},
                    "result": {"success": {"path": "a.txt"}},
                }
            },
        },
    ]
    events = parse_all(A, [json.dumps(x) for x in lines])
    assert kinds(events) == ["message", "tool_result", "tool_result", "tool_result", "file_change"]
    assert events[0].payload == {"text": "Hmm, let me run it.", "reasoning": True}
    assert events[1].payload == {"ok": False, "output": "boom", "id": "s1"}
    assert events[2].payload == {"ok": False, "output": "not allowed", "id": "s2"}
    assert events[4].payload == {"path": "a.txt", "kind": "modify"}


def test_failure_prints_no_json() -> None:
    # Cursor prints nothing on stdout when it fails: stderr and the exit code explain.
    end = A.finish(1, "Error: not logged in\n", {})
    assert not end.ok and end.error == "exit code 1: Error: not logged in"
