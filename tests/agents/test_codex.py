"""Codex adapter: exec/resume argv, the per-session CODEX_HOME, and the captured JSONL."""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from parallel_agents.agents.base import TurnContext
from parallel_agents.agents.codex import MAX_ARGV_PROMPT, CodexAgent

from .conftest import NO_CTX, FakeBin, MakeCtx, capture_lines, kinds, of_kind, parse_all

A = CodexAgent()
THREAD = "01a22807-f6d6-7650-a045-e9ac85e45f12"
REC_THREAD = "00000000-0000-4000-8000-000000000001"  # recorded (scripts/record-captures)


def _ctx(
    make_ctx: MakeCtx, fake_bin: FakeBin, settings: dict[str, Any] | None = None, **kw: Any
) -> TurnContext:
    return make_ctx(settings={"binary": fake_bin("codex"), **(settings or {})}, **kw)


# -- argv ---------------------------------------------------------------------------------
def test_first_turn_argv(make_ctx: MakeCtx, fake_bin: FakeBin) -> None:
    ctx = _ctx(make_ctx, fake_bin, model="gpt-5.5", prompt="--help me\n$(rm -rf /)")
    launch = A.build(ctx)
    assert launch.argv == [
        ctx.settings["binary"],
        "exec",
        "--json",
        "--skip-git-repo-check",
        "--sandbox",
        "workspace-write",
        "-m",
        "gpt-5.5",
        "--",
        "--help me\n$(rm -rf /)",
    ]
    assert launch.stdin is None  # /dev/null: piped stdin would be appended to the prompt
    assert launch.env == {"CODEX_HOME": str(ctx.session_dir / "codex-home")}


def test_resume_argv(make_ctx: MakeCtx, fake_bin: FakeBin) -> None:
    ctx = _ctx(
        make_ctx, fake_bin, turn=2, agent_session_id=THREAD, model="gpt-5.5", prompt="now say hi"
    )
    assert A.build(ctx).argv == [
        ctx.settings["binary"],
        "exec",
        "resume",
        "--json",
        "--skip-git-repo-check",
        "-c",
        'sandbox_mode="workspace-write"',  # `exec resume` has no --sandbox
        "-m",
        "gpt-5.5",
        "--",
        THREAD,
        "now say hi",
    ]


def test_sandbox_settings(make_ctx: MakeCtx, fake_bin: FakeBin) -> None:
    ctx = _ctx(
        make_ctx,
        fake_bin,
        settings={"sandbox": "danger-full-access", "approval_policy": "never", "config": ["a=1"]},
    )
    argv = A.build(ctx).argv
    assert argv[4:10] == [
        "--sandbox",
        "danger-full-access",
        "-c",
        'approval_policy="never"',
        "-c",
        "a=1",
    ]
    ctx = _ctx(make_ctx, fake_bin, settings={"bypass_sandbox": True})
    assert "--dangerously-bypass-approvals-and-sandbox" in A.build(ctx).argv
    assert "--sandbox" not in A.build(ctx).argv


def test_huge_prompt_goes_through_stdin(make_ctx: MakeCtx, fake_bin: FakeBin) -> None:
    prompt = "x" * (MAX_ARGV_PROMPT + 1)
    launch = A.build(_ctx(make_ctx, fake_bin, prompt=prompt))
    assert launch.argv[-2:] == ["--", "-"]
    assert launch.stdin == prompt.encode()


# -- CODEX_HOME -----------------------------------------------------------------------------
USER_CONFIG = """model = "gpt-5.5"
model_provider = "corp"

[model_providers.corp]
name = "corp"
base_url = "http://127.0.0.1:9/v1"
env_key = "CORP_KEY"
wire_api = "responses"

[profiles.fast]
model = "gpt-5.5-mini"
"""


def test_codex_home_is_seeded_from_the_users(
    make_ctx: MakeCtx, fake_bin: FakeBin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = tmp_path / "user-codex"
    user.mkdir()
    (user / "config.toml").write_text(USER_CONFIG)
    (user / "auth.json").write_text('{"OPENAI_API_KEY": "sk-user"}')
    (user / "fast.config.toml").write_text('model = "x"\n')
    (user / "AGENTS.md").write_text("be nice\n")
    monkeypatch.setenv("CODEX_HOME", str(user))
    ctx = _ctx(make_ctx, fake_bin)
    home = Path(A.build(ctx).env["CODEX_HOME"])
    cfg = tomllib.loads((home / "config.toml").read_text())
    assert cfg["model_provider"] == "corp"
    assert cfg["model_providers"]["corp"]["env_key"] == "CORP_KEY"
    assert cfg["profiles"]["fast"]["model"] == "gpt-5.5-mini"
    assert cfg["projects"][str(ctx.worktree)]["trust_level"] == "trusted"
    assert (home / "auth.json").is_symlink()  # a token refresh writes the user's file
    assert (home / "auth.json").resolve() == (user / "auth.json").resolve()
    assert (home / "fast.config.toml").read_text() == 'model = "x"\n'
    assert (home / "AGENTS.md").read_text() == "be nice\n"
    # The next turn reuses the home without duplicating the trust table (still valid TOML).
    ctx2 = _ctx(make_ctx, fake_bin, turn=2, agent_session_id=THREAD)
    A.build(ctx2)
    text = (home / "config.toml").read_text()
    tomllib.loads(text)
    assert text.count("[projects.") == 1
    # The user's own config file is untouched.
    assert (user / "config.toml").read_text() == USER_CONFIG


def test_codex_home_defaults_to_dot_codex_and_can_be_off(
    make_ctx: MakeCtx, fake_bin: FakeBin, isolated_home: Path
) -> None:
    (isolated_home / ".codex").mkdir()
    (isolated_home / ".codex" / "config.toml").write_text(
        'model = "m"\n[projects."/elsewhere"]\ntrust_level = "trusted"'
    )
    ctx = _ctx(make_ctx, fake_bin)
    home = Path(A.build(ctx).env["CODEX_HOME"])
    cfg = tomllib.loads((home / "config.toml").read_text())
    assert cfg["model"] == "m"
    assert set(cfg["projects"]) >= {"/elsewhere", str(ctx.worktree)}
    ctx = _ctx(make_ctx, fake_bin, settings={"isolate_home": False})
    assert "CODEX_HOME" not in A.build(ctx).env


def test_trust_is_not_forced_into_an_inline_projects_table(
    make_ctx: MakeCtx, fake_bin: FakeBin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = tmp_path / "user-codex"
    user.mkdir()
    inline = 'model = "m"\nprojects = { "/x" = { trust_level = "trusted" } }\n'
    (user / "config.toml").write_text(inline)
    monkeypatch.setenv("CODEX_HOME", str(user))
    home = Path(A.build(_ctx(make_ctx, fake_bin)).env["CODEX_HOME"])
    assert (home / "config.toml").read_text() == inline  # still valid, left as it was


def test_interactive_argv_with_notify(make_ctx: MakeCtx, fake_bin: FakeBin) -> None:
    ctx = _ctx(make_ctx, fake_bin, session_id="s9", prompt="-go", model="gpt-5.5")
    launch = A.build_interactive(ctx)
    argv = launch.argv
    assert argv[:3] == [ctx.settings["binary"], "--no-daemon", "-c"]
    notify = tomllib.loads(argv[3])["notify"]
    assert notify == [sys.executable, "-m", "parallel_agents", "hook", "s9", "notify"]
    assert argv[4:] == [
        "--sandbox",
        "workspace-write",
        "--ask-for-approval",
        "on-request",
        "-m",
        "gpt-5.5",
        "--",
        "-go",
    ]
    assert "CODEX_HOME" in launch.env
    resumed = A.build_interactive(
        _ctx(make_ctx, fake_bin, turn=2, agent_session_id=THREAD, prompt="")
    )
    assert resumed.argv[1] == "resume" and resumed.argv[-2:] == ["--", THREAD]


def test_pane_patterns_match_the_captured_screens(captures: Path) -> None:
    tui = captures / "tui"
    for name in ("codex_exec_approval.txt", "codex_trust.txt"):
        assert any(p in (tui / name).read_text() for p in A.waiting_patterns), name
    upsell = (
        "  Meet GPT-6 Sol\n\n› 1. Try new model\n  2. Use existing model\n\n  enter/esc confirm"
    )
    assert any(p in upsell for p in A.waiting_patterns)  # seen live with 0.171.0's TUI
    idle = (tui / "codex_idle.txt").read_text()
    assert any(p in idle for p in A.idle_patterns)
    assert not any(p in idle for p in A.waiting_patterns)


def test_check_version_reads_exec_help(captures: Path, fake_bin: FakeBin) -> None:
    helptext = captures / "codex" / "exec_help_0.171.0.txt"
    # The fake prints the exec help only when asked for `exec --help`.
    script = f'#!/bin/sh\n[ "$1 $2" = "exec --help" ] && cat \'{helptext}\' && exit 0\necho nope\n'
    A.check_version(fake_bin("codex", script))


# -- parsing ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    [
        "exec_json_full.jsonl",
        "exec_resume.jsonl",
        "exec_json_401.jsonl",
        "exec_json_unknown_model_warning.jsonl",
    ],
)
def test_every_captured_line_is_understood(captures: Path, name: str) -> None:
    state: dict[str, object] = {}
    events = parse_all(A, capture_lines(captures / "codex" / name), state)
    assert "raw" not in kinds(events)
    assert state["agent_session_id"]
    assert isinstance(state["end"], dict)


def test_full_turn(captures: Path) -> None:
    state: dict[str, object] = {}
    events = parse_all(A, capture_lines(captures / "codex" / "exec_json_full.jsonl"), state)
    assert kinds(events) == [
        "status",
        "message",
        "tool_call",
        "command",
        "message",
        "file_change",
        "message",
        "usage",
    ]
    (cmd,) = of_kind(events, "command")
    assert (
        cmd["command"] == "/bin/bash -lc 'cat README.md'"
        and cmd["exit_code"] == 0
        and cmd["id"] == "item_1"
    )
    assert cmd["output"] == "# example\n"
    assert of_kind(events, "file_change") == [
        {"path": "/tmp/example/work/hello.txt", "kind": "add"}
    ]
    # Three model calls of 1200 + 42 tokens (the recording's script).
    assert of_kind(events, "usage") == [
        {"input_tokens": 3600, "output_tokens": 126, "cached_tokens": 0, "cost_usd": None}
    ]
    assert A.agent_session_id(state) == REC_THREAD
    end = A.finish(0, "", state)
    assert end.ok and end.result == "Created hello.txt."


def test_resume_usage_is_a_delta_of_cumulative_totals(captures: Path) -> None:
    first: dict[str, object] = {}
    parse_all(A, capture_lines(captures / "codex" / "exec_json_full.jsonl"), first)
    second: dict[str, object] = {"usage_base": first["usage_total"]}
    events = parse_all(A, capture_lines(captures / "codex" / "exec_resume.jsonl"), second)
    # turn.completed reports the thread's totals (3600 -> 4800): the turn is the difference.
    assert of_kind(events, "usage") == [
        {"input_tokens": 1200, "output_tokens": 42, "cached_tokens": 0, "cost_usd": None}
    ]
    assert second["usage_total"] == {
        "input_tokens": 4800.0,
        "output_tokens": 168.0,
        "cached_tokens": 0.0,
    }
    assert second["agent_session_id"] == REC_THREAD


def test_reasoning_items_and_cached_tokens() -> None:
    """Lines of the real 0.171.0 that the scripted server cannot provoke (no reasoning items,
    no prompt caching), so the recorded captures lack them."""
    lines = [
        {"type": "thread.started", "thread_id": THREAD},
        {"type": "turn.started"},
        {
            "type": "item.completed",
            "item": {"id": "item_0", "type": "reasoning", "text": "**Planning file creation**"},
        },
        {
            "type": "turn.completed",
            "usage": {
                "input_tokens": 6000,
                "cached_input_tokens": 1500,
                "cache_write_input_tokens": 0,
                "output_tokens": 150,
                "reasoning_output_tokens": 30,
            },
        },
    ]
    events = parse_all(A, [json.dumps(x) for x in lines])
    assert of_kind(events, "message")[0].get("reasoning") is True
    assert of_kind(events, "usage") == [
        {"input_tokens": 6000, "output_tokens": 150, "cached_tokens": 1500, "cost_usd": None}
    ]


def test_failed_turn_carries_totals_forward() -> None:
    state: dict[str, object] = {"usage_base": {"input_tokens": 6000.0}}
    parse_all(A, ['{"type":"turn.failed","error":{"message":"boom"}}'], state)
    A.after_exit(NO_CTX, state)
    assert state["usage_total"] == {"input_tokens": 6000.0}


def test_401_fails_with_the_cli_text_once(captures: Path) -> None:
    state: dict[str, object] = {}
    events = parse_all(A, capture_lines(captures / "codex" / "exec_json_401.jsonl"), state)
    events += A.after_exit(NO_CTX, state)
    assert kinds(events) == ["status"] * 6  # thread.started + 5 "Reconnecting..." notes
    end = A.finish(1, "", state)
    assert not end.ok
    assert end.error == (
        "unexpected status 401 Unauthorized: invalid x-api-key, "
        "url: http://127.0.0.1:18081/v1/responses"
    )


def test_error_without_turn_failed_still_explains() -> None:
    state: dict[str, object] = {}
    parse_all(A, ['{"type":"turn.started"}', '{"type":"error","message":"stream broke"}'], state)
    assert A.after_exit(NO_CTX, state) == []
    end = A.finish(1, "", state)
    assert not end.ok and end.error == "stream broke"


def test_non_fatal_error_is_released_by_the_next_line() -> None:
    events = parse_all(
        A,
        [
            '{"type":"error","message":"hiccup"}',
            '{"type":"item.completed","item":{"id":"item_0","type":"agent_message","text":"ok"}}',
        ],
    )
    assert kinds(events) == ["error", "message"]


def test_warning_item_is_an_error_event(captures: Path) -> None:
    state: dict[str, object] = {}
    events = parse_all(
        A, capture_lines(captures / "codex" / "exec_json_unknown_model_warning.jsonl"), state
    )
    (err,) = of_kind(events, "error")
    assert err["message"].startswith("Model metadata for `gpt-5-codex` not found")
    assert A.finish(0, "", state).ok


def test_other_item_types() -> None:
    lines = [
        {
            "type": "item.started",
            "item": {
                "id": "i1",
                "type": "mcp_tool_call",
                "server": "gh",
                "tool": "pr",
                "arguments": {"n": 1},
                "status": "in_progress",
            },
        },
        {
            "type": "item.completed",
            "item": {
                "id": "i1",
                "type": "mcp_tool_call",
                "server": "gh",
                "tool": "pr",
                "arguments": {"n": 1},
                "result": {"content": [{"type": "text", "text": "done"}]},
                "error": None,
                "status": "completed",
            },
        },
        {
            "type": "item.completed",
            "item": {
                "id": "i2",
                "type": "todo_list",
                "items": [{"text": "a", "completed": True}, {"text": "b", "completed": False}],
            },
        },
        {
            "type": "item.completed",
            "item": {
                "id": "i3",
                "type": "file_change",
                "changes": [{"path": "x.py", "kind": "update"}, {"path": "y.py", "kind": "delete"}],
                "status": "completed",
            },
        },
        {"type": "request_user_input", "id": "r", "call_id": "c", "questions": ["ok?"]},
        {"type": "item.completed", "item": {"id": "i4", "type": "brand_new_thing"}},
    ]
    events = parse_all(A, [json.dumps(x) for x in lines])
    assert kinds(events) == [
        "tool_call",
        "tool_result",
        "message",
        "file_change",
        "file_change",
        "status",
        "raw",
    ]
    assert events[0].payload == {"name": "gh.pr", "input": {"n": 1}, "id": "i1"}
    assert events[1].payload == {"ok": True, "output": "done", "id": "i1"}
    assert events[2].payload["text"] == "[x] a\n[ ] b"
    assert [e.payload["kind"] for e in events[3:5]] == ["modify", "delete"]
    assert events[5].payload["state"] == "needs_input"
