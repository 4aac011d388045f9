"""What the capture recorder records: the scripted model's sessions (a recording picks one
with its API key), the world each recording runs in (a fresh git repository, a private
home), and every CLI recording with its argv (``RECORDINGS``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parallel_agents.testing.agent_env import (
    base_environ,
)

TIMEOUT = 180.0

# Every session of every agent's script; a recording picks its session with the API key.
USAGE = {"input_tokens": 1200, "output_tokens": 42}


def script_sessions() -> list[dict[str, Any]]:
    write = {
        "say": "I'll create the file.",
        "write": {"path": "hello.txt", "content": "hello\n"},
        "usage": USAGE,
    }
    done = {"text": "Done. Created hello.txt.", "usage": USAGE}
    return [
        # A file edit with its tool result, a final message, then a resumed follow-up.
        {"match": "rec-write", "turns": [write, done, {"text": "Follow-up done.", "usage": USAGE}]},
        # A shell command, a file edit, a final message (Codex's full turn).
        {
            "match": "rec-full",
            "turns": [
                {"say": "I'll look around first.", "run": "cat README.md", "usage": USAGE},
                write,
                {"text": "Created hello.txt.", "usage": USAGE},
                {"text": "Follow-up done.", "usage": USAGE},
            ],
        },
        # A command the CLI's default permission mode refuses (output redirection).
        {
            "match": "rec-deny",
            "turns": [
                {"say": "Creating it.", "run": "echo hello > hello.txt", "usage": USAGE},
                {"text": "I could not run the command.", "usage": USAGE},
            ],
        },
        # Two tool calls in a row: --max-turns 1 stops after the first.
        {
            "match": "rec-turns",
            "turns": [
                {"say": "Step one.", "run": "echo one", "usage": USAGE},
                {"say": "Step two.", "run": "echo two", "usage": USAGE},
                {"text": "Done.", "usage": USAGE},
            ],
        },
        # mini-swe-agent: two commands, the second one submits.
        {
            "match": "rec-mini",
            "turns": [
                {
                    "say": "Creating the file.",
                    "run": "echo hello > hello.txt && cat hello.txt",
                    "usage": USAGE,
                },
                {
                    "say": "Submitting.",
                    "run": "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT && git status --short",
                    "usage": USAGE,
                },
            ],
        },
        {"match": "rec-401", "turns": [{"error": {"status": 401, "message": "invalid x-api-key"}}]},
        {
            "match": "rec-400",
            "turns": [
                {
                    "error": {
                        "status": 400,
                        "message": "API key not valid. Please pass a valid API key.",
                    }
                }
            ],
        },
    ]


@dataclass
class Ctx:
    """One recording's world: its repository, its home, and what earlier recordings learned."""

    work: Path
    home: Path
    learned: dict[str, str]


ArgsFn = Callable[[Ctx], list[str]]


@dataclass(frozen=True)
class Recording:
    agent: str
    name: str  # file name under <out>/<agent>/
    args: ArgsFn  # argv after the binary
    key: str = ""  # API key; selects the script session ("" = help texts, no server use)
    group: str = ""  # recordings of one group share repo and home (a resumed session)
    stdin: str | None = None
    stop_at: str | None = None  # end the CLI once a stdout line contains this
    output: str | None = None  # record this file (relative to the group dir) instead of stdout
    learn: Callable[[str], dict[str, str]] | None = None  # remember ids for later recordings
    show_input: bool = False  # prefix the output with the stdin lines (">>> ...")
    env: dict[str, str] = field(default_factory=dict)
    retries: int = 0  # Codex: how often it retries a failed request (its "Reconnecting" lines)
    notify: bool = False  # Codex: record its notify program's payloads into notify.jsonl


def _first_json(stdout: str, pick: Callable[[dict[str, Any]], str | None]) -> dict[str, str]:
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            found = pick(obj)
            if found:
                return {"session": found}
    return {}


def _claude_sid(stdout: str) -> dict[str, str]:
    return _first_json(
        stdout, lambda o: o.get("session_id") if o.get("subtype") == "init" else None
    )


def _codex_thread(stdout: str) -> dict[str, str]:
    return _first_json(
        stdout, lambda o: o.get("thread_id") if o.get("type") == "thread.started" else None
    )


def _gemini_sid(stdout: str) -> dict[str, str]:
    return _first_json(stdout, lambda o: o.get("session_id") if o.get("type") == "init" else None)


def _opencode_sid(stdout: str) -> dict[str, str]:
    return _first_json(stdout, lambda o: o.get("sessionID"))


CLAUDE = ["--output-format", "stream-json", "--verbose", "--model", "claude-sonnet-4-5"]

CODEX = [
    "--json",
    "--skip-git-repo-check",
    "--dangerously-bypass-approvals-and-sandbox",
    "-m",
    "gpt-5.5",
]

GEMINI = ["--yolo", "--skip-trust", "-m", "gemini-2.5-pro"]

OPENCODE = ["--format", "json", "-m", "anthropic/claude-sonnet-4-5", "--auto"]

PROMPT = "create hello.txt"

FOLLOW_UP = "now say something"

_USER_LINE = json.dumps(
    {
        "type": "user",
        "message": {"role": "user", "content": PROMPT},
        "parent_tool_use_id": None,
        "session_id": "",
    }
)


def _hook_settings(ctx: Ctx) -> str:
    from parallel_agents.agents.claude_hooks import HOOK_EVENTS

    log = ctx.work.parent / "hooks.jsonl"
    # Each payload on its own line; the hook prints nothing so it never alters the turn.
    command = f"cat >> '{log}'; echo >> '{log}'"
    hooks = {ev: [{"hooks": [{"type": "command", "command": command}]}] for ev in HOOK_EVENTS}
    return json.dumps({"hooks": hooks})


RECORDINGS: tuple[Recording, ...] = (
    # -- Claude Code ------------------------------------------------------------------------
    Recording("claude", "help.txt", lambda c: ["--help"]),
    Recording(
        "claude",
        "stream_write_acceptEdits.jsonl",
        lambda c: ["-p", PROMPT, *CLAUDE, "--permission-mode", "acceptEdits"],
        key="rec-write",
        group="write",
        learn=_claude_sid,
    ),
    Recording(
        "claude",
        "stream_resume.jsonl",
        lambda c: ["-p", FOLLOW_UP, *CLAUDE, f"--resume={c.learned['session']}"],
        key="rec-write",
        group="write",
    ),
    Recording(
        "claude",
        "json_output.json",
        lambda c: [
            "-p",
            PROMPT,
            "--output-format",
            "json",
            "--model",
            "claude-sonnet-4-5",
            "--permission-mode",
            "acceptEdits",
        ],
        key="rec-write",
    ),
    Recording(
        "claude",
        "stream_api_error_401.jsonl",
        lambda c: ["-p", PROMPT, *CLAUDE],
        key="rec-401",
    ),
    Recording(
        "claude",
        "stream_error_max_turns.jsonl",
        lambda c: [
            "-p",
            PROMPT,
            *CLAUDE,
            "--permission-mode",
            "bypassPermissions",
            "--max-turns",
            "1",
        ],
        key="rec-turns",
    ),
    Recording(
        "claude",
        "stream_permission_denied.jsonl",
        lambda c: ["-p", PROMPT, *CLAUDE],
        key="rec-deny",
    ),
    Recording(
        "claude",
        "stream_include_hook_events.jsonl",
        lambda c: [
            "-p",
            PROMPT,
            *CLAUDE,
            "--permission-mode",
            "acceptEdits",
            "--include-hook-events",
            "--settings",
            _hook_settings(c),
        ],
        key="rec-write",
    ),
    Recording(
        "claude",
        "hook_stdin_payloads.jsonl",
        lambda c: [
            "-p",
            PROMPT,
            *CLAUDE,
            "--permission-mode",
            "acceptEdits",
            "--settings",
            _hook_settings(c),
        ],
        key="rec-write",
        output="hooks.jsonl",
    ),
    Recording(
        "claude",
        "stream_partial_messages.jsonl",
        lambda c: [
            "-p",
            PROMPT,
            *CLAUDE,
            "--permission-mode",
            "acceptEdits",
            "--include-partial-messages",
        ],
        key="rec-write",
    ),
    Recording(
        "claude",
        "stream_session_id_bypass.jsonl",
        lambda c: [
            "-p",
            PROMPT,
            *CLAUDE,
            "--permission-mode",
            "bypassPermissions",
            "--session-id",
            "0b9e5b4e-5d1c-4a57-9a58-1f6f0c1f2a3b",
        ],
        key="rec-write",
    ),
    Recording(
        "claude",
        "stream_stdin_input.jsonl",
        lambda c: [
            "-p",
            "--input-format",
            "stream-json",
            *CLAUDE,
            "--permission-mode",
            "acceptEdits",
        ],
        key="rec-write",
        stdin=_USER_LINE + "\n",
    ),
    Recording(
        "claude",
        "stream_worktree.jsonl",
        lambda c: [
            "-p",
            PROMPT,
            *CLAUDE,
            "--permission-mode",
            "acceptEdits",
            "--worktree",
            "feat-x",
        ],
        key="rec-write",
    ),
    Recording(
        "claude",
        "stream_control_request_can_use_tool.txt",
        lambda c: [
            "-p",
            "--input-format",
            "stream-json",
            *CLAUDE,
            "--permission-prompt-tool",
            "stdio",
        ],
        key="rec-deny",
        stdin=_USER_LINE + "\n",
        stop_at='"control_request"',
        show_input=True,
    ),
    # -- Codex ------------------------------------------------------------------------------
    Recording("codex", "exec_help.txt", lambda c: ["exec", "--help"]),
    Recording(
        "codex",
        "exec_json_full.jsonl",
        lambda c: ["exec", *CODEX, PROMPT],
        key="rec-full",
        group="full",
        learn=_codex_thread,
    ),
    Recording(
        "codex",
        "exec_resume.jsonl",
        lambda c: ["exec", "resume", c.learned["session"], FOLLOW_UP, *CODEX],
        key="rec-full",
        group="full",
    ),
    Recording(
        "codex",
        "exec_json_401.jsonl",
        lambda c: ["exec", *CODEX, PROMPT],
        key="rec-401",
        retries=5,
    ),
    Recording(
        "codex",
        "notify_payloads.jsonl",
        lambda c: ["exec", *CODEX, PROMPT],
        key="rec-write",
        notify=True,
        output="notify.jsonl",
    ),
    Recording(
        "codex",
        "exec_json_unknown_model_warning.jsonl",
        lambda c: ["exec", *CODEX[:-1], "gpt-5-codex", PROMPT],
        key="rec-full",
    ),
    # -- Gemini CLI -------------------------------------------------------------------------
    Recording("gemini", "help.txt", lambda c: ["--help"]),
    Recording(
        "gemini",
        "stream_json_tool.jsonl",
        lambda c: ["-p", PROMPT, "--output-format", "stream-json", *GEMINI],
        key="rec-write",
        group="write",
        learn=_gemini_sid,
    ),
    Recording(
        "gemini",
        "json_output_resume.json",
        lambda c: [
            "-p",
            FOLLOW_UP,
            "--output-format",
            "json",
            *GEMINI,
            "--resume",
            c.learned["session"],
        ],
        key="rec-write",
        group="write",
    ),
    Recording(
        "gemini",
        "stream_json_error.jsonl",
        lambda c: ["-p", PROMPT, "--output-format", "stream-json", *GEMINI],
        key="rec-400",
    ),
    # -- OpenCode ---------------------------------------------------------------------------
    Recording(
        "opencode",
        "run_json_tool.jsonl",
        lambda c: ["run", *OPENCODE, "--dir", str(c.work), PROMPT],
        key="rec-write",
        group="write",
        learn=_opencode_sid,
    ),
    Recording(
        "opencode",
        "run_json_resume.jsonl",
        lambda c: [
            "run",
            *OPENCODE,
            "--dir",
            str(c.work),
            "--session",
            c.learned["session"],
            FOLLOW_UP,
        ],
        key="rec-write",
        group="write",
    ),
    Recording(
        "opencode",
        "run_json_401.jsonl",
        lambda c: ["run", *OPENCODE, "--dir", str(c.work), PROMPT],
        key="rec-401",
    ),
    # -- mini-swe-agent ---------------------------------------------------------------------
    Recording(
        "mini",
        "out.traj.json",
        lambda c: [
            "-t",
            "Create hello.txt containing hello",
            "-y",
            "--exit-immediately",
            "-m",
            "openai/gpt-4o",
            "-o",
            str(c.work.parent / "out.traj.json"),
        ],
        key="rec-mini",
        output="out.traj.json",
    ),
)


def make_git_repo(path: Path) -> None:
    """A fresh repository with one commit: where a recording's CLI works."""
    path.mkdir(parents=True)
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1"}
    for argv in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "config", "user.email", "captures@example.com"],
        ["git", "config", "user.name", "captures"],
    ):
        subprocess.run(argv, cwd=path, check=True, env=env)
    (path / "README.md").write_text("# example\n", encoding="utf-8")
    subprocess.run(["git", "add", "-A"], cwd=path, check=True, env=env)
    subprocess.run(["git", "commit", "-q", "-m", "initial"], cwd=path, check=True, env=env)


def cli_version(binary: Path, agent: str) -> str:
    """The CLI's version as it prints it (``unknown`` when it prints none), for the manifest."""
    proc = subprocess.run(
        [str(binary), "--version"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        env={**base_environ(), "HOME": tempfile.gettempdir()},
    )
    match = re.search(r"\d+\.\d+\.\d+", proc.stdout + proc.stderr)
    return match[0] if match else "unknown"
