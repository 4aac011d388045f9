"""The real Claude Code TUI in pa's tmux against the scripted model server.

The model asks to Write a file; in permission mode `default` the TUI asks the person. The
status must become needs_input from the hook (PermissionRequest, injected with --settings),
not from the pane; `pa send ID 1` answers; the Stop hook makes it idle; the file is there.
The user's home has no Claude config at all: first-run, trust and API-key dialogs must be
pre-answered through the per-session config dir, never by pressing Enter.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from parallel_agents.agents.tui import TRUST
from parallel_agents.models import Status
from parallel_agents.runtime import tmux
from parallel_agents.store import Store
from parallel_agents.testing import ScriptedModelServer
from parallel_agents.testing.agent_env import base_environ

from .conftest import ROOT, pa_cli, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

CLAUDE = ROOT / ".agents" / "bin" / "claude"
KEY = "sk-ant-test-tui-permission-0001"
CONTENT = "hello from the claude TUI\n"
SCRIPT = [
    {
        "match": "tui-permission",
        "turns": [
            {"say": "I'll create the file.", "write": {"path": "hello.txt", "content": CONTENT}},
            {"text": "Done. Created hello.txt."},
        ],
    }
]


def status(home: Path, sid: str) -> tuple[Status, dict[str, object]]:
    st = Store(home)
    try:
        s = st.session(sid)
        return s.status, s.options
    finally:
        st.close()


def test_claude_permission_prompt_hook_send_idle(repo: Path, pa_home: Path, tmp_path: Path) -> None:
    if not CLAUDE.exists():
        pytest.skip(f"{CLAUDE} is missing: run scripts/install-agents.sh to install Claude Code")
    # Claude's hooks run `python -m parallel_agents hook …`: the real `pa` must have it.
    registered = subprocess.run(
        [sys.executable, "-m", "parallel_agents", "hook", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert registered.returncode == 0, (
        "`pa hook` is not a command of `pa`: cli/__init__.py's COMMANDS must map it"
    )
    user_home = tmp_path / "user-home"  # a fresh user: no ~/.claude.json, no ~/.claude
    user_home.mkdir()
    config = tmp_path / "pa.toml"
    config.write_text(
        "[agents.claude]\n"
        f"binary = {json.dumps(str(CLAUDE))}\n"
        'permission_mode = "default"\n'
        'model = "claude-sonnet-4-5"\n'
    )
    with ScriptedModelServer(SCRIPT) as server:
        env = {
            **base_environ(),
            "HOME": str(user_home),
            "PA_HOME": str(pa_home),
            "PA_CONFIG": str(config),
            "ANTHROPIC_BASE_URL": server.url,
            "ANTHROPIC_API_KEY": KEY,
            "IS_SANDBOX": "1",
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_ERROR_REPORTING": "1",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        }
        made = pa_cli(
            "new", "--interactive", "--agent", "claude", "create hello", "--json",
            env=env, cwd=repo,
        )  # fmt: skip
        assert made.returncode == 0, made.stdout + made.stderr
        sid = json.loads(made.stdout)["id"]
        worktree = Path(json.loads(made.stdout)["worktree"])

        # Watch the pane and the status side by side; nobody calls the pane fallback here.
        prompt_seen = needs_seen = None
        deadline = time.monotonic() + 60
        screen = ""
        while time.monotonic() < deadline and (prompt_seen is None or needs_seen is None):
            screen = tmux.capture(pa_home, sid)
            assert not any(p.search(screen) for p in TRUST), f"a first-run dialog:\n{screen}"
            if prompt_seen is None and "Do you want to create hello.txt?" in screen:
                prompt_seen = time.monotonic()
            st, _ = status(pa_home, sid)
            if needs_seen is None and st == Status.NEEDS_INPUT:
                needs_seen = time.monotonic()
            assert st in (Status.RUNNING, Status.NEEDS_INPUT), (st, screen)
            time.sleep(0.05)
        assert prompt_seen is not None, f"no permission prompt on the pane:\n{screen}"
        assert needs_seen is not None, "the status never became needs_input"
        assert needs_seen - prompt_seen < 2.0  # PermissionRequest fires as the dialog opens
        _, opts = status(pa_home, sid)
        info = opts["interactive"]
        assert isinstance(info, dict) and info["signal"]["source"] == "hook"
        hooks = [
            json.loads(line)["event"]
            for line in (pa_home / "sessions" / sid / "hooks.jsonl").read_text().splitlines()
        ]
        assert "PermissionRequest" in hooks and "UserPromptSubmit" in hooks
        assert not (worktree / "hello.txt").exists()

        answered = pa_cli("send", sid, "1", env=env, cwd=repo)
        assert answered.returncode == 0, answered.stderr
        wait_for(lambda: status(pa_home, sid)[0] == Status.IDLE, 30, "idle after the Stop hook")
        assert (worktree / "hello.txt").read_text() == CONTENT
        db = Store(pa_home)
        try:
            turn = db.last_turn(sid)
            assert turn is not None and (turn.n, turn.status) == (1, "done")
            assert [e.payload["text"] for e in db.events(sid, kinds=["message"])] == [
                "Done. Created hello.txt."
            ]
            attention = [e.payload["status"] for e in db.events(sid, kinds=["attention"])]
            assert attention == ["needs_input", "idle"]
            assert db.session(sid).agent_session_id  # from the hooks: a follow-up resumes it
        finally:
            db.close()
        hooks = [
            json.loads(line)["event"]
            for line in (pa_home / "sessions" / sid / "hooks.jsonl").read_text().splitlines()
        ]
        assert hooks[-1] == "Stop" and "PostToolUse" in hooks

        # The dialogs were answered by config, in the session's own config dir.
        seeded = json.loads(
            (pa_home / "sessions" / sid / "claude-config" / ".claude.json").read_text()
        )
        assert seeded["hasCompletedOnboarding"] is True
        assert seeded["projects"][str(worktree.resolve())]["hasTrustDialogAccepted"] is True
        assert KEY[-20:] in seeded["customApiKeyResponses"]["approved"]
        assert not (user_home / ".claude.json").exists()
        assert [r.session for r in server.turns()] == ["tui-permission", "tui-permission"]

        stopped = pa_cli("stop", sid, env=env, cwd=repo)
        assert stopped.returncode == 0, stopped.stderr
        assert tmux.pane(pa_home, sid) is None
        assert status(pa_home, sid)[0] == Status.IDLE  # a finished turn stays finished
