"""Aider adapter: argv and the text lines Aider prints (formats from Aider's source)."""

from __future__ import annotations

from typing import Any

import pytest

from parallel_agents.agents.aider import AiderAgent
from parallel_agents.agents.base import TurnContext

from .conftest import FakeBin, MakeCtx, kinds, of_kind, parse_all

A = AiderAgent()


def _ctx(
    make_ctx: MakeCtx, fake_bin: FakeBin, settings: dict[str, Any] | None = None, **kw: Any
) -> TurnContext:
    return make_ctx(settings={"binary": fake_bin("aider"), **(settings or {})}, **kw)


def test_first_turn_argv(make_ctx: MakeCtx, fake_bin: FakeBin) -> None:
    ctx = _ctx(make_ctx, fake_bin, model="sonnet", prompt="--yes; rm -rf /")
    launch = A.build(ctx)
    sd = ctx.session_dir
    assert launch.argv == [
        ctx.settings["binary"],
        "--message-file",
        str(sd / "turn-1.prompt.md"),
        "--yes-always",
        "--no-auto-commits",
        "--no-dirty-commits",
        "--no-pretty",
        "--no-stream",
        "--no-check-update",
        "--analytics-disable",
        "--no-gitignore",
        "--chat-history-file",
        str(sd / "aider.chat.history.md"),
        "--input-history-file",
        str(sd / "aider.input.history"),
        "--model",
        "sonnet",
    ]
    assert (sd / "turn-1.prompt.md").read_text() == "--yes; rm -rf /"
    assert launch.stdin is None


def test_follow_up_restores_the_chat(make_ctx: MakeCtx, fake_bin: FakeBin) -> None:
    state: dict[str, object] = {}
    first = _ctx(make_ctx, fake_bin)
    A.after_exit(first, state)
    history = A.agent_session_id(state)
    assert history == str(first.session_dir / "aider.chat.history.md")
    ctx = _ctx(make_ctx, fake_bin, turn=2, agent_session_id=history, prompt="more")
    argv = A.build(ctx).argv
    assert argv[-1] == "--restore-chat-history"
    assert argv[2] == str(ctx.session_dir / "turn-2.prompt.md")


def test_auto_commits_setting(make_ctx: MakeCtx, fake_bin: FakeBin) -> None:
    argv = A.build(_ctx(make_ctx, fake_bin, settings={"auto_commits": True})).argv
    assert "--no-auto-commits" not in argv and "--no-dirty-commits" not in argv


def test_edits_commits_and_cost_lines() -> None:
    lines = [
        "Aider v0.86.1",
        "Main model: anthropic/claude-sonnet-4-5 with diff edit format",
        "I'll add the function.",
        "Applied edit to src/app.py",
        "Creating empty file tests/test_app.py",
        "Commit 1a2b3c4 feat: add function",
        "Tokens: 2.1k sent, 120 received. Cost: $0.01 message, $0.01 session.",
        "Fixing the lint error.",
        "Tokens: 12k sent, 1.5k cache write, 9k cache hit, 300 received.",
        "Cost: $0.02 message, $0.03 session.",
    ]
    state: dict[str, object] = {}
    events = parse_all(A, lines, state)
    assert of_kind(events, "file_change") == [
        {"path": "src/app.py", "kind": "modify"},
        {"path": "tests/test_app.py", "kind": "add"},
    ]
    (commit,) = [p for p in of_kind(events, "status") if "commit" in p]
    assert commit["commit"] == "1a2b3c4" and commit["message"] == "feat: add function"
    usage = of_kind(events, "usage")[-1]
    assert usage == {
        "input_tokens": 14100,
        "output_tokens": 420,
        "cached_tokens": 9000,
        "cost_usd": 0.03,
    }
    assert state["usage"] == usage
    end = A.finish(0, "", state)
    assert end.ok and end.result is not None and "Fixing the lint error." in end.result


def test_api_error_with_exit_code_zero_fails_the_turn_once() -> None:
    lines = [
        "litellm.AuthenticationError: AnthropicException - invalid x-api-key",
        "Retrying in 0.2 seconds...",
        "litellm.AuthenticationError: AnthropicException - invalid x-api-key",
        "The API provider is not able to authenticate you. Check your API key.",
    ]
    state: dict[str, object] = {}
    events = parse_all(A, lines, state)
    assert kinds(events) == ["error", "raw"]  # the first try, released by the retry line
    events = A.after_exit(_fake_ctx(), state)
    assert kinds(events) == ["error"]  # the last error is the turn's, the one before is not
    end = A.finish(0, "", state)
    assert not end.ok and end.error == lines[-1]


def test_error_then_a_reply_is_not_a_failure() -> None:
    state: dict[str, object] = {}
    parse_all(
        A,
        [
            "litellm.RateLimitError: slow down",
            "Retrying in 1.0 seconds...",
            "Tokens: 1k sent, 10 received.",
        ],
        state,
    )
    assert A.finish(0, "", state).ok


@pytest.mark.parametrize("line", ["", "   ", "Tokens: lots sent"])
def test_odd_lines(line: str) -> None:
    assert "usage" not in kinds(A.parse_line(line, {}))


def _fake_ctx() -> TurnContext:
    from pathlib import Path

    return TurnContext(
        prompt="", worktree=Path("/nonexistent"), session_dir=Path("/nonexistent"), turn=1
    )
