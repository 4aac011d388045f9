"""Gemini CLI adapter: argv and the captured stream-json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from parallel_agents.agents.base import TurnContext
from parallel_agents.agents.gemini import GeminiAgent

from .conftest import NO_CTX, FakeBin, MakeCtx, capture_lines, kinds, of_kind, parse_all

A = GeminiAgent()
SID = "ad4b7ae6-0beb-42b4-9538-479ba31a2baa"
REC_SID = "00000000-0000-4000-8000-000000000001"  # recorded (scripts/record-captures)


def _ctx(
    make_ctx: MakeCtx, fake_bin: FakeBin, settings: dict[str, Any] | None = None, **kw: Any
) -> TurnContext:
    return make_ctx(settings={"binary": fake_bin("gemini"), **(settings or {})}, **kw)


def test_first_turn_argv(make_ctx: MakeCtx, fake_bin: FakeBin) -> None:
    ctx = _ctx(make_ctx, fake_bin, model="gemini-2.5-pro", prompt="-y do it")
    launch = A.build(ctx)
    assert launch.argv == [
        ctx.settings["binary"],
        "--output-format",
        "stream-json",
        "--approval-mode",
        "yolo",
        "--skip-trust",
        "-m",
        "gemini-2.5-pro",
        "--prompt=-y do it",
    ]
    assert launch.stdin is None and launch.env == {}


def test_resume_argv(make_ctx: MakeCtx, fake_bin: FakeBin) -> None:
    ctx = _ctx(make_ctx, fake_bin, turn=2, agent_session_id=SID, prompt="again")
    assert A.build(ctx).argv == [
        ctx.settings["binary"],
        "--output-format",
        "stream-json",
        "--approval-mode",
        "yolo",
        "--skip-trust",
        "--resume",
        SID,
        "--prompt=again",
    ]


def test_settings(make_ctx: MakeCtx, fake_bin: FakeBin) -> None:
    ctx = _ctx(make_ctx, fake_bin, settings={"approval_mode": "auto_edit", "skip_trust": False})
    argv = A.build(ctx).argv
    assert argv[3:5] == ["--approval-mode", "auto_edit"] and "--skip-trust" not in argv


def test_check_version_against_the_captured_help(captures: Path, fake_bin: FakeBin) -> None:
    helptext = captures / "gemini" / "help_0.61.0.txt"
    A.check_version(fake_bin("gemini", f"#!/bin/sh\ncat '{helptext}'\n"))


@pytest.mark.parametrize("name", ["stream_json_tool.jsonl", "stream_json_error.jsonl"])
def test_every_captured_line_is_understood(captures: Path, name: str) -> None:
    state: dict[str, object] = {}
    events = parse_all(A, capture_lines(captures / "gemini" / name), state)
    assert "raw" not in kinds(events)
    assert state["agent_session_id"]


def test_tool_turn(captures: Path) -> None:
    state: dict[str, object] = {}
    events = parse_all(A, capture_lines(captures / "gemini" / "stream_json_tool.jsonl"), state)
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
    assert [p["text"] for p in of_kind(events, "message")] == [
        "I'll create the file.",
        "Done. Created hello.txt.",
    ]
    tid = "write_file__write_file_1767225600000_0"  # the clock, normalized by the recorder
    assert of_kind(events, "tool_call")[0] == {
        "name": "write_file",
        "input": {"file_path": "/tmp/example/work/hello.txt", "content": "hello\n"},
        "id": tid,
    }
    assert of_kind(events, "tool_result")[0] == {"ok": True, "output": "", "id": tid}
    assert of_kind(events, "file_change")[0]["path"] == "/tmp/example/work/hello.txt"
    # Per invocation (a resumed run reports only its own requests): not cumulative.
    assert of_kind(events, "usage") == [
        {"input_tokens": 2400, "output_tokens": 84, "cached_tokens": 0, "cost_usd": None}
    ]
    assert A.agent_session_id(state) == REC_SID
    end = A.finish(0, "", state)
    assert end.ok and end.result == "Done. Created hello.txt."


def test_api_error_fails_the_turn_with_the_cli_text(captures: Path) -> None:
    state: dict[str, object] = {}
    events = parse_all(A, capture_lines(captures / "gemini" / "stream_json_error.jsonl"), state)
    events += A.after_exit(NO_CTX, state)
    assert "error" not in kinds(events)
    end = A.finish(144, "", state)
    assert not end.ok
    assert end.error is not None and "API key not valid. Please pass a valid API key." in end.error


def test_deltas_are_joined_into_one_message() -> None:
    lines = [
        {"type": "init", "session_id": "s", "model": "m"},
        {"type": "message", "role": "assistant", "content": "Hel", "delta": True},
        {"type": "message", "role": "assistant", "content": "lo", "delta": True},
    ]
    state: dict[str, object] = {}
    events = parse_all(A, [json.dumps(x) for x in lines], state)
    assert kinds(events) == ["status"]
    # The process died before a result: the text is not lost.
    assert [e.payload for e in A.after_exit(NO_CTX, state)] == [{"text": "Hello"}]
    end = A.finish(53, "turn limit", state)
    assert not end.ok and end.reason == "max_turns"


def test_warning_events_and_failed_tools() -> None:
    lines = [
        {"type": "error", "severity": "warning", "message": "loop detected"},
        {
            "type": "tool_use",
            "tool_name": "run_shell_command",
            "tool_id": "t1",
            "parameters": {"command": "false"},
        },
        {
            "type": "tool_result",
            "tool_id": "t1",
            "status": "error",
            "error": {"type": "x", "message": "exit 1"},
        },
    ]
    events = parse_all(A, [json.dumps(x) for x in lines])
    assert kinds(events) == ["error", "tool_call", "tool_result"]
    assert events[2].payload == {"ok": False, "output": "exit 1", "id": "t1"}
