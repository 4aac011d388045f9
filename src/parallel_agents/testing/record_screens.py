"""Record the panes of the interactive CLIs (Claude Code, Codex) in tmux: each ``Screen``
is started, optionally sent a prompt, and captured once its text shows (``tests/fixtures/
captures/tui``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parallel_agents.testing.agent_env import (
    agent_env,
    base_environ,
    find_agent,
)
from parallel_agents.testing.capture_normalizer import HOME, WORK, Normalizer
from parallel_agents.testing.model_server import ScriptedModelServer
from parallel_agents.testing.recordings import TIMEOUT, cli_version, make_git_repo, script_sessions

TUI_SIZE = ("130", "45")


@dataclass(frozen=True)
class Screen:
    """One pane of an interactive CLI: started in tmux, optionally sent a prompt, captured once
    ``until`` shows (then once the pane stops changing)."""

    agent: str
    name: str
    args: tuple[str, ...] = ()
    key: str = "rec-write"
    trusted: bool = True  # the folder is pre-trusted (no trust dialog)
    key_approved: bool = True  # Claude: the API key is pre-approved (no key dialog)
    ready: str | None = None  # wait for this before typing the prompt
    prompt: str | None = None
    until: str = ""


# As pa starts it (adapter defaults): a pinned model, and permission prompts shown.
CLAUDE_TUI = ("--model", "claude-sonnet-4-5", "--permission-mode", "default")

SCREENS: tuple[Screen, ...] = (
    Screen(
        "claude", "claude_trust_dialog.txt", CLAUDE_TUI, trusted=False, until="Quick safety check"
    ),
    Screen(
        "claude",
        "claude_api_key_dialog.txt",
        CLAUDE_TUI,
        key_approved=False,
        until="Detected a custom",
    ),
    Screen("claude", "claude_idle.txt", CLAUDE_TUI, until="? for shortcuts"),
    Screen(
        "claude",
        "claude_busy.txt",
        CLAUDE_TUI,
        key="rec-busy",
        ready="? for shortcuts",
        prompt="create hello",
        until="esc to interrupt",
    ),
    Screen(
        "claude",
        "claude_write_permission.txt",
        CLAUDE_TUI,
        ready="? for shortcuts",
        prompt="create hello",
        until="Do you want to create hello.txt?",
    ),
    Screen(
        "claude",
        "claude_bash_permission.txt",
        CLAUDE_TUI,
        key="rec-deny",
        ready="? for shortcuts",
        prompt="make hello",
        until="Do you want to proceed?",
    ),
    Screen("codex", "codex_trust.txt", trusted=False, until="Trust this folder?"),
    Screen("codex", "codex_idle.txt", until="? for shortcuts"),
    Screen(
        "codex",
        "codex_exec_approval.txt",
        args=("-a", "on-request", "-s", "workspace-write"),
        key="rec-escalate",
        ready="? for shortcuts",
        prompt="make a file",
        until="Would you like to run the following command?",
    ),
)

_TUI_SESSIONS: list[dict[str, Any]] = [
    # The model takes its time, so the busy screen stays up while it is captured.
    {"match": "rec-busy", "turns": [{"text": "Done.", "delay": 30}]},
    # Codex asks before a command that the model wants to run outside its sandbox.
    {
        "match": "rec-escalate",
        "turns": [
            {
                "say": "Creating the file.",
                "tool": {
                    "name": "exec_command",
                    "arguments": {
                        "cmd": "touch ../outside.txt",
                        "sandbox_permissions": "require_escalated",
                        "justification": "Need to create a file outside the workspace",
                    },
                },
            },
            {"text": "Created it."},
        ],
    },
]


def _tmux(sock: Path, *args: str) -> str:
    argv = ["tmux", "-S", str(sock), "-f", os.devnull, *args]
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30).stdout


# Screens some CLIs show now and then before their prompt (Codex 0.171.0 offers a new model),
# answered so the screen being recorded comes up: (text on the pane, keys to press).
DISMISS = (("2. Use existing model", "2"),)


def _wait_pane(sock: Path, text: str, what: str) -> str:
    deadline = time.monotonic() + TIMEOUT
    screen = ""
    while time.monotonic() < deadline:
        try:
            screen = _tmux(sock, "capture-pane", "-p", "-t", "rec")
        except subprocess.CalledProcessError:
            raise RuntimeError(f"{what}: the CLI exited before {text!r} showed") from None
        if text in screen:
            return screen
        for shown, keys in DISMISS:
            if shown in screen and shown not in text:
                # The digit alone answers; an Enter could confirm the next dialog too.
                _tmux(sock, "send-keys", "-t", "rec", keys)
                time.sleep(1)
        time.sleep(0.2)
    raise RuntimeError(f"{what}: {text!r} never showed; the pane:\n{screen}")


def _settled(sock: Path, text: str) -> str:
    """The pane once it has stopped changing (animations aside, at most a few seconds)."""
    screen = _tmux(sock, "capture-pane", "-p", "-t", "rec")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        time.sleep(0.7)
        again = _tmux(sock, "capture-pane", "-p", "-t", "rec")
        if again == screen:
            break
        if text in again:
            screen = again
    return screen


def record_tui(out: Path, prefix: Path, log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Record the pane text of the interactive CLIs (Claude Code, Codex) into ``out/tui``."""
    if shutil.which("tmux") is None:
        raise RuntimeError("tmux is not installed: apt-get install tmux")
    target = out / "tui"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    norm = Normalizer()
    entries: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="pa-captures-tui-") as tmp,
        ScriptedModelServer([*_TUI_SESSIONS, *script_sessions()]) as server,
    ):
        root = Path(tmp)
        norm.add_path(root, "/tmp/example")
        for index, screen in enumerate(SCREENS):
            binary = find_agent(screen.agent, prefix)
            if binary is None:
                missing = f"{screen.agent} is not installed"
                raise RuntimeError(f"{missing}: run scripts/install-agents.sh")
            version = cli_version(binary, screen.agent)
            base = root / f"s{index}"
            work, home = base / "work", base / "home"
            make_git_repo(work)
            norm.add_path(work, WORK)
            norm.add_path(home, HOME)
            env = agent_env(
                screen.agent,
                home,
                server_url=server.url,
                api_key=screen.key,
                workdir=work if screen.trusted else None,
            )
            if screen.agent == "claude" and not screen.key_approved:
                config = home / ".claude.json"
                data = json.loads(config.read_text(encoding="utf-8"))
                data["customApiKeyResponses"] = {"approved": [], "rejected": []}
                config.write_text(json.dumps(data), encoding="utf-8")
            env = {
                **base_environ(),
                "TERM": "xterm-256color",
                "LANG": "C.UTF-8",
                "HOME": str(home),
                **env,
            }
            sock = base / "tmux.sock"
            log(f"tui/{screen.name}")
            _tmux(
                sock,
                "new-session",
                "-d",
                "-s",
                "rec",
                "-x",
                TUI_SIZE[0],
                "-y",
                TUI_SIZE[1],
                "-c",
                str(work),
                "env",
                "-i",
                *(f"{k}={v}" for k, v in env.items()),
                str(binary),
                *screen.args,
            )
            try:
                if screen.prompt is not None:
                    _wait_pane(sock, screen.ready or "", f"tui/{screen.name}")
                    _tmux(sock, "send-keys", "-t", "rec", "-l", screen.prompt)
                    time.sleep(0.3)  # the TUI reads a paste burst before Enter as text
                    _tmux(sock, "send-keys", "-t", "rec", "Enter")
                _wait_pane(sock, screen.until, f"tui/{screen.name}")
                text = _settled(sock, screen.until)
            finally:
                subprocess.run(
                    ["tmux", "-S", str(sock), "kill-server"], capture_output=True, check=False
                )
            (target / screen.name).write_text(norm(text), encoding="utf-8")
            entries.append(
                {
                    "file": f"tui/{screen.name}",
                    "version": version,
                    "argv": [screen.agent, *screen.args],
                    "tmux": f"{TUI_SIZE[0]}x{TUI_SIZE[1]}",
                    "prompt": screen.prompt,
                    "exit_code": None,
                }
            )
    return entries
