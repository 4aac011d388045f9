"""Status signals of interactive sessions: hook payloads, Codex notify, pane text.

The payloads are the ones Claude Code 2.1.332 and Codex 0.171.0 send from their TUIs (the
headless equivalents are recorded in tests/fixtures/captures by scripts/record-captures); the
screens are the captured tmux panes in tests/fixtures/captures/tui.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from parallel_agents.agents.tui import classify_pane, patterns_for
from parallel_agents.cli.interactive import run_hook
from parallel_agents.models import Signal, Status
from parallel_agents.sessions import interactive
from parallel_agents.sessions.interactive import hook_signal
from parallel_agents.sessions.orchestrator import App

from .conftest import BANNER, CAPTURES, fake_session, pa_cli, wait_screen

NOTIFY_PERMISSION = {
    "session_id": "a333de83-4f7a-497a-99e2-be7f2a4693ad",
    "transcript_path": "/tmp/example/home/.claude/projects/-tmp-example-work2/a333de83.jsonl",
    "cwd": "/tmp/example/work2",
    "prompt_id": "11e21538-2924-4412-ad7d-e19b45991fda",
    "hook_event_name": "Notification",
    "message": "Claude needs your permission",
    "notification_type": "permission_prompt",
}
STOP = {
    "session_id": "a333de83-4f7a-497a-99e2-be7f2a4693ad",
    "cwd": "/tmp/example/work2",
    "permission_mode": "default",
    "hook_event_name": "Stop",
    "stop_hook_active": False,
    "last_assistant_message": "Done. Created hello.txt.",
    "background_tasks": [],
    "session_crons": [],
}
IDLE_PROMPT = {**NOTIFY_PERMISSION, "message": "Claude is waiting for your input"}
IDLE_PROMPT["notification_type"] = "idle_prompt"
PERMISSION_REQUEST = {
    "session_id": "d81225d1-562a-4cd9-a300-2147d8f77b3a",
    "cwd": "/tmp/exp/work",
    "permission_mode": "default",
    "hook_event_name": "PermissionRequest",
    "tool_name": "Write",
    "tool_input": {"file_path": "/tmp/exp/work/hello.txt", "content": "hello\n"},
    "permission_suggestions": [{"type": "setMode", "mode": "acceptEdits"}],
}
POST_TOOL = {"session_id": "d81225d1", "hook_event_name": "PostToolUse", "tool_name": "Write"}
PROMPT = {"session_id": "d81225d1", "hook_event_name": "UserPromptSubmit", "prompt": "create hello"}
CODEX_DONE = {
    "type": "agent-turn-complete",
    "thread-id": "01a2280c-d025-75e2-9e38-7587b59006a1",
    "turn-id": "01a2280c-e28b-7333-a8e7-988be37f700c",
    "cwd": "/tmp/example/cwork2",
    "client": "codex-tui",
    "input-messages": ["make a file"],
    "last-assistant-message": "Created hello.txt.",
}
CODEX_TITLE = {
    **CODEX_DONE,
    "thread-id": "01a2280c-e2d1-7f42-85ef-4845fd1a531c",
    "input-messages": [
        "Generate a concise, single-line task title of at most 36 characters and under five "
        "words where possible. Start with an imperative verb.\n\nUser prompt:\nmake a file"
    ],
}


def test_hook_payloads_map_to_signals() -> None:
    assert hook_signal("PermissionRequest", PERMISSION_REQUEST).signal == Signal.NEEDS_INPUT
    out = hook_signal("Notification", NOTIFY_PERMISSION)
    assert out.signal == Signal.NEEDS_INPUT and out.late_permission_notice
    assert out.agent_session_id == NOTIFY_PERMISSION["session_id"]
    assert hook_signal("Notification", IDLE_PROMPT).signal == Signal.IDLE
    stop = hook_signal("Stop", STOP)
    assert stop.signal == Signal.IDLE and stop.message == "Done. Created hello.txt."
    assert hook_signal("UserPromptSubmit", PROMPT).prompt == "create hello"
    assert hook_signal("PostToolUse", POST_TOOL).signal == Signal.RUNNING
    assert hook_signal("SessionStart", {"hook_event_name": "SessionStart"}).signal is None
    assert hook_signal("SomethingNew", {}).signal is None
    done = hook_signal("notify", CODEX_DONE)
    assert done.signal == Signal.IDLE and done.agent_session_id == CODEX_DONE["thread-id"]
    assert hook_signal("notify", CODEX_TITLE).signal is None  # codex's side turn: not ours


@pytest.mark.parametrize(
    ("capture", "agent", "expected"),
    [
        ("claude_bash_permission.txt", "claude", Signal.NEEDS_INPUT),
        ("claude_write_permission.txt", "claude", Signal.NEEDS_INPUT),
        ("claude_trust_dialog.txt", "claude", Signal.NEEDS_INPUT),
        ("claude_api_key_dialog.txt", "claude", Signal.NEEDS_INPUT),
        ("claude_busy.txt", "claude", Signal.RUNNING),
        ("claude_idle.txt", "claude", Signal.IDLE),
        ("codex_exec_approval.txt", "codex", Signal.NEEDS_INPUT),
        ("codex_trust.txt", "codex", Signal.NEEDS_INPUT),
        ("codex_idle.txt", "codex", Signal.IDLE),
        ("claude_bash_permission.txt", None, Signal.NEEDS_INPUT),
        ("codex_exec_approval.txt", None, Signal.NEEDS_INPUT),
        ("claude_idle.txt", None, Signal.IDLE),
    ],
)
def test_captured_screens_classify(capture: str, agent: str | None, expected: Signal) -> None:
    from parallel_agents.agents import get_agent

    text = (CAPTURES / capture).read_text(encoding="utf-8")
    assert classify_pane(text, patterns_for(get_agent(agent) if agent else None)) == expected


def test_old_dialog_text_scrolled_up_does_not_count() -> None:
    old = (CAPTURES / "claude_bash_permission.txt").read_text(encoding="utf-8")
    idle = (CAPTURES / "claude_idle.txt").read_text(encoding="utf-8")
    filler = "\n".join(f"output line {i}" for i in range(40))
    assert classify_pane(old + "\n" + filler + "\n" + idle, patterns_for(None)) == Signal.IDLE
    assert classify_pane("plain text, nothing known\n", patterns_for(None)) is None


def hook(sid: str, event: str, payload: object, *, argv: bool = False) -> None:
    """`pa hook SID EVENT` as an agent runs it: JSON on stdin (claude) or as argv (codex)."""
    data = json.dumps(payload)
    p = pa_cli("hook", sid, event, *([data] if argv else []), input="" if argv else data)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "", "a hook must print nothing (the agent reads its stdout)"


def quick_hook(sid: str, event: str, payload: object) -> None:
    """The same, in this process (the command's body), to keep the test fast."""
    run_hook(sid, event, json.dumps(payload))


def test_pa_hook_moves_the_status_and_records_the_call(app: App, repo: Path, pa_home: Path) -> None:
    s = fake_session(app, repo, "echo")
    wait_screen(pa_home, s.id, BANNER)
    st = app.store
    assert st.session(s.id).status == Status.RUNNING

    hook(s.id, "PermissionRequest", PERMISSION_REQUEST)
    got = st.session(s.id)
    assert got.status == Status.NEEDS_INPUT and got.unread
    assert got.options["interactive"]["waiting"]["tool"] == "Write"
    assert got.agent_session_id == PERMISSION_REQUEST["session_id"]
    assert st.events(s.id, kinds=["attention"])[-1].payload == {"status": "needs_input"}

    quick_hook(s.id, "PostToolUse", POST_TOOL)  # the grant shows only as the tool's result
    assert st.session(s.id).status == Status.RUNNING
    # Notification{permission_prompt} arrives ~6 s after the dialog: stale once answered.
    quick_hook(s.id, "Notification", NOTIFY_PERMISSION)
    assert st.session(s.id).status == Status.RUNNING

    quick_hook(s.id, "Stop", STOP)
    got = st.session(s.id)
    assert got.status == Status.IDLE
    turn = st.last_turn(s.id)
    assert turn is not None and turn.status == "done" and turn.n == 1
    msgs = [e.payload["text"] for e in st.events(s.id, kinds=["message"])]
    assert msgs == ["Done. Created hello.txt."]

    quick_hook(s.id, "UserPromptSubmit", {**PROMPT, "prompt": "typed in the attached terminal"})
    assert st.session(s.id).status == Status.RUNNING
    turn = st.last_turn(s.id)
    assert turn is not None and turn.n == 2 and turn.prompt == "typed in the attached terminal"

    quick_hook(s.id, "notify", CODEX_TITLE)
    assert st.session(s.id).status == Status.RUNNING
    hook(s.id, "notify", CODEX_DONE, argv=True)
    assert st.session(s.id).status == Status.IDLE

    # Unknown events, garbage and unknown sessions: exit 0, print nothing, change nothing.
    quick_hook(s.id, "BrandNewEvent", {"hook_event_name": "BrandNewEvent"})
    quick_hook(s.id, "Stop", "not an object")
    quick_hook("ffffffff", "Stop", STOP)
    quick_hook("../../etc", "Stop", STOP)
    assert st.session(s.id).status == Status.IDLE
    log = (pa_home / "sessions" / s.id / interactive.HOOK_LOG).read_text().splitlines()
    assert [json.loads(line)["event"] for line in log][:3] == [
        "PermissionRequest",
        "PostToolUse",
        "Notification",
    ]
    assert not (pa_home / "sessions" / "ffffffff").exists()


def test_pa_hook_without_a_database_or_payload_exits_zero(pa_home: Path) -> None:
    p = pa_cli("hook", "deadbeef", "Stop", input="{not json")
    assert (p.returncode, p.stdout) == (0, "")
    for data in ("", "\x00\xff", "[]"):
        run_hook("deadbeef", "Stop", data)
    assert not (pa_home / "pa.db").exists()  # a stray hook creates nothing
