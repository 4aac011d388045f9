"""Claude Code adapter: argv, environment, hooks, and the captured stream-json as fixtures."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest

from parallel_agents.agents.base import AgentVersionError, TurnContext
from parallel_agents.agents.claude import ClaudeAgent
from parallel_agents.agents.claude_hooks import HOOK_EVENTS
from parallel_agents.errors import UsageError

from .conftest import NO_CTX, FakeBin, MakeCtx, capture_lines, is_root, kinds, of_kind, parse_all

A = ClaudeAgent()
SID = "01defc1a-91a5-444c-aad1-613c47385ad8"
# The recorded session (scripts/record-captures numbers the ids in order of appearance).
REC_SID = "00000000-0000-4000-8000-000000000001"


def _ctx(
    make_ctx: MakeCtx, fake_bin: FakeBin, settings: dict[str, Any] | None = None, **kw: Any
) -> TurnContext:
    return make_ctx(settings={"binary": fake_bin("claude"), **(settings or {})}, **kw)


# -- argv ---------------------------------------------------------------------------------
def test_first_turn_argv_stdin_and_env(make_ctx: MakeCtx, fake_bin: FakeBin) -> None:
    ctx = _ctx(make_ctx, fake_bin, model="claude-sonnet-4-5", prompt='-rf "$(x)"\nnext')
    launch = A.build(ctx)
    assert launch.argv == [
        ctx.settings["binary"],
        "-p",
        "--output-format",
        "stream-json",
        "--verbose",
        "--input-format",
        "stream-json",
        "--model",
        "claude-sonnet-4-5",
        "--permission-mode",
        "acceptEdits",
        "--allowedTools",
        "Bash",
        "Edit",
        "Write",
        "Read",
    ]
    # The prompt travels on stdin as one stream-json user message, never in argv.
    assert launch.stdin is not None
    msg = json.loads(launch.stdin.decode("utf-8"))
    assert msg == {"type": "user", "message": {"role": "user", "content": '-rf "$(x)"\nnext'}}
    assert launch.stdin.endswith(b"\n") and launch.stdin.count(b"\n") == 1
    assert launch.env == {"DISABLE_AUTOUPDATER": "1"}
    assert launch.cwd is None


def test_resume_uses_equals_form(make_ctx: MakeCtx, fake_bin: FakeBin) -> None:
    ctx = _ctx(make_ctx, fake_bin, turn=2, agent_session_id=SID, model="claude-sonnet-4-5")
    argv = A.build(ctx).argv
    assert argv[-1] == f"--resume={SID}"
    assert "--resume" not in argv and SID not in argv


def test_settings_shape_the_command(make_ctx: MakeCtx, fake_bin: FakeBin) -> None:
    ctx = _ctx(
        make_ctx,
        fake_bin,
        settings={
            "permission_mode": "plan",
            "allowed_tools": "Bash(git *),Edit",
            "disallowed_tools": ["WebFetch"],
            "max_turns": 7,
            "append_system_prompt": "-be brief",
            "args": ["--effort", "low"],
            "model": "opus",
        },
    )
    argv = A.build(ctx).argv
    assert argv[7:] == [
        "--model",
        "opus",
        "--permission-mode",
        "plan",
        "--allowedTools",
        "Bash(git *),Edit",  # a string is handed to Claude whole: it splits it itself
        "--disallowedTools",
        "WebFetch",
        "--max-turns",
        "7",
        "--append-system-prompt=-be brief",
        "--effort",
        "low",
    ]
    # A list keeps rules with spaces intact.
    ctx = _ctx(make_ctx, fake_bin, settings={"allowed_tools": ["Bash(git *)", "Edit"]})
    argv = A.build(ctx).argv
    i = argv.index("--allowedTools")
    assert argv[i + 1 : i + 3] == ["Bash(git *)", "Edit"]
    # An empty list drops the flag.
    ctx = _ctx(make_ctx, fake_bin, settings={"allowed_tools": []})
    assert "--allowedTools" not in A.build(ctx).argv


def test_pa_mcp_gives_the_agent_pa_own_tools(make_ctx: MakeCtx, fake_bin: FakeBin) -> None:
    """issue 18: ``pa_mcp = true`` makes a lead agent: --mcp-config names `pa mcp` (this very
    interpreter, the session's id set), and the mcp__pa tools are allowed, so a headless run
    calls them without a permission prompt."""
    plain = A.build(_ctx(make_ctx, fake_bin))
    assert not any(a.startswith("--mcp-config") for a in plain.argv)
    assert "mcp__pa" not in plain.argv
    ctx = _ctx(make_ctx, fake_bin, settings={"pa_mcp": True}, session_id="s-lead")
    argv = A.build(ctx).argv
    config = ctx.session_dir / "pa-mcp.json"
    assert argv[-1] == f"--mcp-config={config}"  # equals form: the flag takes many values
    i = argv.index("--allowedTools")
    assert argv[i + 1 : i + 6] == ["Bash", "Edit", "Write", "Read", "mcp__pa"]
    assert json.loads(config.read_text()) == {
        "mcpServers": {
            "pa": {
                "command": sys.executable,
                "args": ["-m", "parallel_agents", "mcp"],
                "env": {"PA_SESSION_ID": "s-lead"},
            }
        }
    }
    # The user's own rules stay as given, the server's rule beside them; a string "true"
    # from the environment-style settings counts too.
    ctx = _ctx(make_ctx, fake_bin, settings={"pa_mcp": "true", "allowed_tools": "Bash,Edit"})
    argv = A.build(ctx).argv
    i = argv.index("--allowedTools")
    assert argv[i + 1 : i + 3] == ["Bash,Edit", "mcp__pa"]
    # An interactive lead gets the same server (the person answers any other prompt).
    argv = A.build_interactive(_ctx(make_ctx, fake_bin, settings={"pa_mcp": True})).argv
    assert argv[argv.index("--allowedTools") + 1] == "mcp__pa"
    assert f"--mcp-config={config}" in argv


def test_user_env_is_not_overridden(
    make_ctx: MakeCtx, fake_bin: FakeBin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISABLE_AUTOUPDATER", "0")
    assert A.build(_ctx(make_ctx, fake_bin)).env == {}
    monkeypatch.delenv("DISABLE_AUTOUPDATER")
    assert A.build(_ctx(make_ctx, fake_bin, env={"DISABLE_AUTOUPDATER": "0"})).env == {}


@pytest.mark.skipif(not is_root(), reason="the refusal only applies to root: run the suite as root to cover it")
def test_bypass_permissions_as_root_is_refused_clearly(
    make_ctx: MakeCtx, fake_bin: FakeBin, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = _ctx(make_ctx, fake_bin, settings={"permission_mode": "bypassPermissions"})
    with pytest.raises(UsageError) as exc:
        A.build(ctx)
    assert "root" in exc.value.message and "IS_SANDBOX" in (exc.value.hint or "")
    monkeypatch.setenv("IS_SANDBOX", "1")
    assert "bypassPermissions" in A.build(ctx).argv


# -- interactive ----------------------------------------------------------------------------
def test_interactive_injects_hooks_and_a_seeded_config_dir(
    make_ctx: MakeCtx, fake_bin: FakeBin, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-0123456789-abcdefghijklmnopqrst")
    user_cfg = isolated_home / ".claude"
    user_cfg.mkdir()
    (user_cfg / ".credentials.json").write_text('{"token": "t"}')
    (isolated_home / ".claude.json").write_text(json.dumps({"userID": "u1", "projects": {}}))
    ctx = _ctx(make_ctx, fake_bin, prompt="-start here", session_id="s42", model="sonnet")
    launch = A.build_interactive(ctx)
    hooks_file = ctx.session_dir / "claude-hooks.json"
    assert launch.argv == [
        ctx.settings["binary"],
        "--model",
        "sonnet",
        "--permission-mode",
        "acceptEdits",
        "--settings",
        str(hooks_file),
        "--",
        "-start here",
    ]
    hooks = json.loads(hooks_file.read_text())["hooks"]
    assert set(hooks) == set(HOOK_EVENTS)
    for ev, entries in hooks.items():
        (entry,) = entries
        cmd = entry["hooks"][0]["command"]
        assert shlex.split(cmd) == [sys.executable, "-m", "parallel_agents", "hook", "s42", ev]
        assert ("matcher" in entry) == ev.startswith(("PreToolUse", "PostToolUse", "Permission"))
    cfg = Path(launch.env["CLAUDE_CONFIG_DIR"])
    assert cfg == ctx.session_dir / "claude-config"
    data = json.loads((cfg / ".claude.json").read_text())
    assert data["userID"] == "u1"  # the user's own settings are kept
    assert data["hasCompletedOnboarding"] is True
    assert data["projects"][str(ctx.worktree)]["hasTrustDialogAccepted"] is True
    assert data["customApiKeyResponses"]["approved"] == ["abcdefghijklmnopqrst"]
    assert (cfg / ".credentials.json").resolve() == (user_cfg / ".credentials.json").resolve()
    assert (cfg / "projects").resolve() == (user_cfg / "projects").resolve()
    # A resumed interactive turn keeps the same dir and does not duplicate the approval.
    ctx2 = _ctx(make_ctx, fake_bin, turn=2, agent_session_id=SID, prompt="")
    launch2 = A.build_interactive(ctx2)
    assert launch2.argv[1:] == [
        "--permission-mode",
        "acceptEdits",
        f"--resume={SID}",
        "--settings",
        str(hooks_file),
    ]
    data2 = json.loads((cfg / ".claude.json").read_text())
    assert data2["customApiKeyResponses"]["approved"] == ["abcdefghijklmnopqrst"]
    plain = A.build_interactive(_ctx(make_ctx, fake_bin, settings={"isolate_config": False}))
    assert "CLAUDE_CONFIG_DIR" not in plain.env


def test_pane_patterns_match_the_captured_screens(captures: Path) -> None:
    tui = captures / "tui"

    def waiting(name: str) -> bool:
        text = (tui / name).read_text()
        return any(p in text for p in A.waiting_patterns)

    def idle(name: str) -> bool:
        text = (tui / name).read_text()
        return any(p in text for p in A.idle_patterns)

    for name in (
        "claude_bash_permission.txt",
        "claude_write_permission.txt",
        "claude_trust_dialog.txt",
        "claude_api_key_dialog.txt",
    ):
        assert waiting(name), name
        assert not idle(name), name
    assert idle("claude_idle.txt") and not waiting("claude_idle.txt")
    assert not idle("claude_busy.txt") and not waiting("claude_busy.txt")


def test_check_version_against_the_captured_help(captures: Path, fake_bin: FakeBin) -> None:
    helptext = captures / "claude" / "help_2.1.332.txt"
    good = fake_bin("claude", f"#!/bin/sh\ncat '{helptext}'\n")
    A.check_version(good)
    old = fake_bin("claude-old", "#!/bin/sh\necho 'Usage: claude [options] --print --verbose'\n")
    with pytest.raises(AgentVersionError) as exc:
        A.check_version(old)
    assert "--input-format" in exc.value.message
    assert "@anthropic-ai/claude-code" in (exc.value.hint or "")


# -- parsing the captures ---------------------------------------------------------------------
STREAMS = [
    "stream_api_error_401.jsonl",
    "stream_error_max_turns.jsonl",
    "stream_include_hook_events.jsonl",
    "stream_partial_messages.jsonl",
    "stream_permission_denied.jsonl",
    "stream_resume.jsonl",
    "stream_session_id_bypass.jsonl",
    "stream_stdin_input.jsonl",
    "stream_worktree.jsonl",
    "stream_write_acceptEdits.jsonl",
    "json_output.json",
]


@pytest.mark.parametrize("name", STREAMS)
def test_every_captured_line_is_understood(captures: Path, name: str) -> None:
    state: dict[str, object] = {}
    events = parse_all(A, capture_lines(captures / "claude" / name), state)
    assert "raw" not in kinds(events), name
    assert state.get("agent_session_id")
    assert isinstance(state.get("end"), dict)
    json.dumps(state)


def test_tool_turn(captures: Path) -> None:
    state: dict[str, object] = {}
    events = parse_all(
        A, capture_lines(captures / "claude" / "stream_write_acceptEdits.jsonl"), state
    )
    assert kinds(events) == [
        "status",
        "message",
        "tool_call",
        "tool_result",
        "file_change",
        "message",
        "usage",
    ]
    assert of_kind(events, "status")[0]["session_id"] == REC_SID
    call = of_kind(events, "tool_call")[0]
    assert call == {
        "name": "Write",
        "input": {"file_path": "/tmp/example/work/hello.txt", "content": "hello\n"},
        "id": call["id"],
    }
    assert call["id"].startswith("toolu_")
    assert of_kind(events, "tool_result")[0]["ok"] is True
    assert of_kind(events, "tool_result")[0]["id"] == call["id"]
    assert of_kind(events, "file_change") == [
        {"path": "/tmp/example/work/hello.txt", "kind": "add"}
    ]
    assert of_kind(events, "usage") == [
        {
            "input_tokens": 2400,
            "output_tokens": 84,
            "cached_tokens": 0,
            "cost_usd": 0.008459999999999999,
        }
    ]
    assert A.agent_session_id(state) == REC_SID
    end = A.finish(0, "", state)
    assert end.ok and end.result == "Done. Created hello.txt." and end.error is None


@pytest.mark.parametrize("drop_delta_field", [False, True])
def test_resume_reports_the_per_turn_delta(captures: Path, drop_delta_field: bool) -> None:
    first: dict[str, object] = {}
    parse_all(A, capture_lines(captures / "claude" / "stream_write_acceptEdits.jsonl"), first)
    assert first["usage_total"] == {
        "input_tokens": 2400.0,
        "output_tokens": 84.0,
        "cached_tokens": 0.0,
        "cost_usd": 0.008459999999999999,
    }
    lines = capture_lines(captures / "claude" / "stream_resume.jsonl")
    if drop_delta_field:  # older CLIs: only the cumulative modelUsage / total_cost_usd
        obj = json.loads(lines[-1])
        del obj["model_usage_since_last_result"]
        lines[-1] = json.dumps(obj)
    second: dict[str, object] = {"usage_base": first["usage_total"]}
    events = parse_all(A, lines, second)
    (usage,) = of_kind(events, "usage")
    assert usage["input_tokens"] == 1200 and usage["output_tokens"] == 42
    assert usage["cost_usd"] == pytest.approx(0.00423)
    assert second["usage"] == usage
    assert second["usage_total"]["cost_usd"] == pytest.approx(0.01269)  # type: ignore[index]
    assert second["agent_session_id"] == REC_SID  # the same session id after a resume


def test_api_error_401_fails_the_turn_with_the_cli_text_once(captures: Path) -> None:
    state: dict[str, object] = {}
    lines = capture_lines(captures / "claude" / "stream_api_error_401.jsonl")
    events = parse_all(A, lines, state) + A.after_exit(NO_CTX, state)
    assert "error" not in kinds(events)  # the supervisor reports TurnEnd.error once
    end = A.finish(1, "", state)
    assert not end.ok
    assert end.error == "Invalid API key · Fix external API key"
    assert end.reason == "api_error"
    assert end.result is None


def test_api_error_without_result_line_still_explains(captures: Path) -> None:
    state: dict[str, object] = {}
    lines = capture_lines(captures / "claude" / "stream_api_error_401.jsonl")[:2]
    parse_all(A, lines, state)
    assert A.after_exit(NO_CTX, state) == []
    end = A.finish(1, "", state)
    assert not end.ok and end.error == "Invalid API key · Fix external API key"


def test_max_turns_is_reported_with_reason(captures: Path) -> None:
    state: dict[str, object] = {}
    parse_all(A, capture_lines(captures / "claude" / "stream_error_max_turns.jsonl"), state)
    end = A.finish(1, "", state)
    assert not end.ok
    assert end.reason == "max_turns"
    assert end.error == "Reached maximum number of turns (1)"


def test_permission_denied_is_an_error_event_but_the_turn_succeeds(captures: Path) -> None:
    state: dict[str, object] = {}
    events = parse_all(
        A, capture_lines(captures / "claude" / "stream_permission_denied.jsonl"), state
    )
    (err,) = of_kind(events, "error")
    assert err["message"].startswith("permission denied for Bash: Output redirection")
    assert of_kind(events, "tool_result")[0]["ok"] is False
    assert "file_change" not in kinds(events)
    assert A.finish(0, "", state).ok


def test_control_request_means_needs_input(captures: Path) -> None:
    lines = [
        ln
        for ln in capture_lines(captures / "claude" / "stream_control_request_can_use_tool.txt")
        if ln.startswith("{")
    ]
    events = parse_all(A, lines)
    (needs,) = [p for p in of_kind(events, "status") if p["state"] == "needs_input"]
    (request,) = [json.loads(ln) for ln in lines if '"control_request"' in ln]
    assert needs["tool"] == "Bash" and needs["request_id"] == request["request_id"]


def test_hook_lines_before_init_and_partial_messages(captures: Path) -> None:
    events = parse_all(A, capture_lines(captures / "claude" / "stream_include_hook_events.jsonl"))
    hooks = [p["hook"] for p in of_kind(events, "status") if "hook" in p]
    assert hooks[:2] == ["SessionStart:startup", "UserPromptSubmit"]
    partial = parse_all(A, capture_lines(captures / "claude" / "stream_partial_messages.jsonl"))
    # stream_event deltas are skipped: each text appears once, from the complete line.
    assert [p["text"] for p in of_kind(partial, "message")] == [
        "I'll create the file.",
        "Done. Created hello.txt.",
    ]


def test_hook_payloads_are_not_stream_lines(captures: Path) -> None:
    # What `pa hook` receives on stdin: documented here so the hook reader can rely on it.
    for line in capture_lines(captures / "claude" / "hook_stdin_payloads.jsonl"):
        obj = json.loads(line)
        assert obj["hook_event_name"] in HOOK_EVENTS
        assert obj["session_id"]


def test_live_only_lines(captures: Path) -> None:
    """Lines seen from the real 2.1.332 but not in the captures: retries and rate limits."""
    retry = json.dumps(
        {
            "type": "system",
            "subtype": "api_retry",
            "attempt": 1,
            "max_retries": 10,
            "retry_delay_ms": 550,
            "error_status": None,
            "error": "unknown",
            "session_id": "x",
        }
    )
    rate = json.dumps(
        {"type": "rate_limit_event", "rate_limit_info": {"status": "allowed_warning"}}
    )
    events = parse_all(A, [retry, rate, json.dumps({"type": "stream_event", "event": {}})])
    assert kinds(events) == ["status", "status"]
    assert "retry 1/10" in events[0].payload["note"]
