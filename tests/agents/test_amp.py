"""Amp adapter: argv and the Claude-compatible stream from the amp-sdk types
(docs/agent-protocols.md §7)."""

from __future__ import annotations

import json
from typing import Any

from parallel_agents.agents.amp import AmpAgent
from parallel_agents.agents.base import TurnContext

from .conftest import FakeBin, MakeCtx, kinds, of_kind, parse_all

A = AmpAgent()
THREAD = "T-7f3c2a10-1b2c-4d5e-8f90-123456789abc"


def _ctx(
    make_ctx: MakeCtx, fake_bin: FakeBin, settings: dict[str, Any] | None = None, **kw: Any
) -> TurnContext:
    return make_ctx(settings={"binary": fake_bin("amp"), **(settings or {})}, **kw)


def test_argv(make_ctx: MakeCtx, fake_bin: FakeBin) -> None:
    ctx = _ctx(make_ctx, fake_bin, prompt="-do it")
    launch = A.build(ctx)
    assert launch.argv == [
        ctx.settings["binary"],
        "--execute",
        "--stream-json",
        "--dangerously-allow-all",
    ]
    assert launch.stdin == b"-do it"  # the SDK writes the prompt on stdin
    ctx = _ctx(
        make_ctx,
        fake_bin,
        turn=2,
        agent_session_id=THREAD,
        prompt="more",
        settings={"allow_all": False, "mode": "rush"},
    )
    assert A.build(ctx).argv == [
        ctx.settings["binary"],
        "threads",
        "continue",
        THREAD,
        "--execute",
        "--stream-json",
        "--mode",
        "rush",
    ]


STREAM = [
    {
        "type": "system",
        "subtype": "init",
        "session_id": THREAD,
        "cwd": "/w",
        "tools": ["Bash"],
        "mcp_servers": [],
    },
    {
        "type": "assistant",
        "message": {
            "id": "m1",
            "type": "message",
            "role": "assistant",
            "model": "x",
            "content": [
                {"type": "text", "text": "Creating it."},
                {
                    "type": "tool_use",
                    "id": "tu1",
                    "name": "create_file",
                    "input": {"path": "hello.txt", "content": "hi"},
                },
            ],
            "stop_reason": None,
            "stop_sequence": None,
        },
        "parent_tool_use_id": None,
        "session_id": THREAD,
    },
    {
        "type": "user",
        "message": {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "tu1", "content": "ok", "is_error": False}
            ],
        },
        "parent_tool_use_id": None,
        "session_id": THREAD,
    },
    {
        "type": "result",
        "subtype": "success",
        "is_error": False,
        "duration_ms": 5123,
        "num_turns": 3,
        "result": "Done.",
        "session_id": THREAD,
        "usage": {"input_tokens": 1200, "output_tokens": 84},
    },
]


def test_stream() -> None:
    state: dict[str, object] = {}
    events = parse_all(A, [json.dumps(x) for x in STREAM], state)
    assert kinds(events) == [
        "status",
        "message",
        "tool_call",
        "tool_result",
        "file_change",
        "usage",
    ]
    assert of_kind(events, "file_change") == [{"path": "hello.txt", "kind": "add"}]
    assert of_kind(events, "usage") == [
        {"input_tokens": 1200, "output_tokens": 84, "cached_tokens": 0, "cost_usd": None}
    ]
    assert A.agent_session_id(state) == THREAD
    end = A.finish(0, "", state)
    assert end.ok and end.result == "Done."


def test_error_result() -> None:
    line = {
        "type": "result",
        "subtype": "error_during_execution",
        "is_error": True,
        "duration_ms": 1,
        "num_turns": 1,
        "error": "Out of credits",
        "session_id": THREAD,
    }
    state: dict[str, object] = {}
    assert "error" not in kinds(parse_all(A, [json.dumps(line)], state))
    end = A.finish(1, "", state)
    assert not end.ok and end.error == "Out of credits" and end.reason == "error_during_execution"
    line = {
        "type": "result",
        "subtype": "error_max_turns",
        "is_error": True,
        "duration_ms": 1,
        "num_turns": 9,
        "error": "max turns",
        "session_id": THREAD,
    }
    state = {}
    parse_all(A, [json.dumps(line)], state)
    assert A.finish(1, "", state).reason == "max_turns"
