"""OpenCode adapter: argv (prompt on stdin, PWD) and the captured JSON events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from parallel_agents.agents.base import TurnContext
from parallel_agents.agents.opencode import OpenCodeAgent

from .conftest import NO_CTX, FakeBin, MakeCtx, capture_lines, kinds, of_kind, parse_all

A = OpenCodeAgent()
SES = "ses_dd7f473c8ffeVbqhN9gR7Ev6M4"
REC_SES = "ses_example0001"  # the recorded session (scripts/record-captures)


def _ctx(
    make_ctx: MakeCtx, fake_bin: FakeBin, settings: dict[str, Any] | None = None, **kw: Any
) -> TurnContext:
    return make_ctx(settings={"binary": fake_bin("opencode"), **(settings or {})}, **kw)


def test_first_turn_argv(make_ctx: MakeCtx, fake_bin: FakeBin) -> None:
    ctx = _ctx(make_ctx, fake_bin, model="anthropic/claude-sonnet-4-5", prompt='fix "the" bug')
    launch = A.build(ctx)
    assert launch.argv == [
        ctx.settings["binary"],
        "run",
        "--format",
        "json",
        "-m",
        "anthropic/claude-sonnet-4-5",
        "--auto",
    ]
    # Verbatim on stdin: `run` would wrap an argv message containing spaces in quotes.
    assert launch.stdin == b'fix "the" bug'
    assert launch.env == {"PWD": str(ctx.worktree), "OPENCODE_DISABLE_AUTOUPDATE": "1"}


def test_resume_argv(make_ctx: MakeCtx, fake_bin: FakeBin) -> None:
    ctx = _ctx(
        make_ctx, fake_bin, turn=2, agent_session_id=SES, settings={"auto": False, "agent": "build"}
    )
    assert A.build(ctx).argv == [
        ctx.settings["binary"],
        "run",
        "--format",
        "json",
        "--agent",
        "build",
        "--session",
        SES,
    ]


@pytest.mark.parametrize(
    "name", ["run_json_tool.jsonl", "run_json_resume.jsonl", "run_json_401.jsonl"]
)
def test_every_captured_line_is_understood(captures: Path, name: str) -> None:
    state: dict[str, object] = {}
    events = parse_all(A, capture_lines(captures / "opencode" / name), state)
    assert "raw" not in kinds(events)
    assert state["agent_session_id"]


def test_tool_turn(captures: Path) -> None:
    state: dict[str, object] = {}
    events = parse_all(A, capture_lines(captures / "opencode" / "run_json_tool.jsonl"), state)
    events += A.after_exit(NO_CTX, state)
    assert kinds(events) == [
        "status",
        "message",
        "tool_call",
        "tool_result",
        "file_change",
        "message",
        "usage",
    ]
    assert of_kind(events, "tool_call")[0] == {
        "name": "write",
        "input": {"filePath": "/tmp/example/work/hello.txt", "content": "hello\n"},
        "id": "toolu_pac8a5e387000_0",  # the scripted server's stable call id
    }
    assert of_kind(events, "tool_result")[0]["output"] == "Wrote file successfully."
    assert of_kind(events, "file_change") == [
        {"path": "/tmp/example/work/hello.txt", "kind": "add"}
    ]
    (usage,) = of_kind(events, "usage")  # two steps summed, reported once
    assert usage["input_tokens"] == 2400 and usage["output_tokens"] == 84
    assert usage["cost_usd"] == pytest.approx(0.00846)
    assert A.agent_session_id(state) == REC_SES
    end = A.finish(0, "", state)
    assert end.ok and end.result == "Done. Created hello.txt."


def test_resume_keeps_the_session_and_counts_only_its_steps(captures: Path) -> None:
    state: dict[str, object] = {"usage_base": {"input_tokens": 2400.0}}
    events = parse_all(A, capture_lines(captures / "opencode" / "run_json_resume.jsonl"), state)
    assert state["agent_session_id"] == REC_SES
    (usage,) = of_kind(events, "usage")
    assert usage["input_tokens"] == 1200 and usage["cost_usd"] == pytest.approx(0.00423)


def test_401_fails_with_the_cli_text_once(captures: Path) -> None:
    state: dict[str, object] = {}
    events = parse_all(A, capture_lines(captures / "opencode" / "run_json_401.jsonl"), state)
    events += A.after_exit(NO_CTX, state)
    assert "error" not in kinds(events)
    end = A.finish(1, "", state)
    assert not end.ok and end.error == "APIError 401: invalid x-api-key"
    assert A.agent_session_id(state) == "ses_example0002"


def test_killed_mid_run_still_records_usage() -> None:
    line = {
        "type": "step_finish",
        "sessionID": "ses_x",
        "part": {
            "reason": "tool-calls",
            "tokens": {"input": 10, "output": 2, "cache": {"read": 3}},
            "cost": 0.5,
        },
    }
    state: dict[str, object] = {}
    assert kinds(parse_all(A, [json.dumps(line)], state)) == ["status"]
    (usage,) = A.after_exit(NO_CTX, state)
    assert usage.payload == {
        "input_tokens": 10,
        "output_tokens": 2,
        "cached_tokens": 3,
        "cost_usd": 0.5,
    }


def test_failed_tool_and_done_line() -> None:
    lines = [
        {
            "type": "tool_use",
            "sessionID": "s",
            "part": {
                "type": "tool",
                "tool": "bash",
                "callID": "c1",
                "state": {"status": "error", "input": {"command": "false"}, "error": "exit 1"},
            },
        },
        {"type": "done", "reason": "idle", "rejected": []},
    ]
    state: dict[str, object] = {}
    events = parse_all(A, [json.dumps(x) for x in lines], state)
    assert kinds(events) == ["status", "tool_call", "tool_result"]
    assert events[2].payload == {"ok": False, "output": "exit 1", "id": "c1"}
    assert A.finish(0, "", state).ok
