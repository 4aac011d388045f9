"""Record the agent captures that the adapter tests replay (``tests/fixtures/captures``).

Each recording runs a real, pinned agent CLI (``.agents/bin``, installed by
``scripts/install-agents.sh``) against the :class:`ScriptedModelServer` on 127.0.0.1, in a
fresh git repository and a private home, and stores what the CLI printed. Machine-specific
details (temp paths, ports, random ids, clocks, pids) are rewritten to stable placeholders,
so two recordings on different machines give the same files and the tests can name values.

    scripts/record-captures                     # every agent, into tests/fixtures/captures
    scripts/record-captures claude codex        # only these agents
    python -m parallel_agents.testing.record_captures --out DIR [AGENT...]

``manifest.json`` beside the captures lists, per file, the CLI version, the argv (normalized)
and the exit code, so a reader can tell how each capture was produced.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parallel_agents.testing.agent_env import (
    agent_env,
    agents_prefix,
    base_environ,
    codex_env,
    find_agent,
)
from parallel_agents.testing.model_server import ScriptedModelServer

__all__ = ["RECORDINGS", "Normalizer", "Recording", "main", "record_agent"]

# Stable names that replace the machine's own.
WORK = "/tmp/example/work"
HOME = "/tmp/example/home"
PORT = "18081"
STAMP = "2026-01-01T00:00:00.000Z"
EPOCH_MS = "1767225600000"
TIMEOUT = 180.0

# Every session of every agent's script; a recording picks its session with the API key.
USAGE = {"input_tokens": 1200, "output_tokens": 42}


def _sessions() -> list[dict[str, Any]]:
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


class Normalizer:
    """Rewrites one agent's machine-specific details to stable placeholders.

    Ids are numbered in order of first appearance across all of the agent's files, so a
    session id that a resumed run repeats keeps the same placeholder in both files.
    """

    _UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
    _OPENCODE_ID = re.compile(r"\b(ses|msg|prt)_[0-9a-zA-Z]{20,}\b")
    _ISO = re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z\b")
    _EPOCH_MS = re.compile(r"(?<![\d.])1[6-9]\d{11}(?![\d.])")
    _EPOCH_S = re.compile(r"(?<![\d.])1[6-9]\d{8}(\.\d+)?(?![\d.])")
    # Timings: duration_ms, ttft_ms, totalLatencyMs, ...
    _DURATION = re.compile(r'"(duration|\w+_ms|\w+Ms)":\s*\d+(\.\d+)?')
    _HTTP_DATE = re.compile(r"\b[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT\b")
    # Claude's TUI spinner picks a random verb ("✻ Germinating…").
    _SPINNER = re.compile(r"^[✻✶✳✢·✽*] [A-Z][a-z]+…", re.MULTILINE)
    _SOCKET = re.compile(r"/tmp/cc-socks/\d+\.sock")

    def __init__(self) -> None:
        self.paths: list[tuple[str, str]] = []
        self.ids: dict[str, str] = {}

    def add_path(self, real: Path, placeholder: str) -> None:
        for variant in {str(real), str(real.resolve())}:
            self.paths.append((variant, placeholder))
            # Claude names its per-project folders after the path, every other char a dash.
            slug = re.sub(r"[^A-Za-z0-9]", "-", variant)
            self.paths.append((slug, re.sub(r"[^A-Za-z0-9]", "-", placeholder)))
        self.paths.sort(key=lambda p: -len(p[0]))

    def _id(self, kind: str, value: str, make: Callable[[int], str]) -> str:
        key = f"{kind}:{value}"
        if key not in self.ids:
            self.ids[key] = make(sum(1 for k in self.ids if k.startswith(f"{kind}:")) + 1)
        return self.ids[key]

    def __call__(self, text: str) -> str:
        for real, placeholder in self.paths:
            text = text.replace(real, placeholder)
        text = self._UUID.sub(
            lambda m: self._id("uuid", m[0], lambda n: f"00000000-0000-4000-8000-{n:012d}"), text
        )
        text = self._OPENCODE_ID.sub(
            lambda m: self._id(m[1], m[0], lambda n: f"{m[1]}_example{n:04d}"), text
        )
        text = self._ISO.sub(STAMP, text)
        text = self._EPOCH_MS.sub(EPOCH_MS, text)
        text = self._EPOCH_S.sub("1767225600", text)
        text = self._DURATION.sub(lambda m: f'"{m[1]}":0', text)
        text = self._HTTP_DATE.sub("Thu, 01 Jan 2026 00:00:00 GMT", text)
        text = self._SPINNER.sub("✻ Working…", text)
        return self._SOCKET.sub("/tmp/cc-socks/1000.sock", text)


def _git_repo(path: Path) -> None:
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


def _run(argv: list[str], rec: Recording, ctx: Ctx, env: dict[str, str]) -> tuple[int, str]:
    """Run the CLI; with ``stop_at``, end it once it prints that (it would wait forever)."""
    proc = subprocess.Popen(
        argv,
        cwd=ctx.work,
        env=env,
        stdin=subprocess.PIPE if rec.stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if rec.stop_at is None:
        try:
            out, _err = proc.communicate(rec.stdin, timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _err = proc.communicate()
            raise RuntimeError(f"{rec.agent}/{rec.name}: no exit within {TIMEOUT:.0f}s") from None
        return proc.returncode, out
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(rec.stdin or "")
    proc.stdin.flush()
    lines: list[str] = []
    deadline = time.monotonic() + TIMEOUT
    for line in proc.stdout:  # the CLI flushes per line; the deadline bounds a silent CLI
        lines.append(line)
        if rec.stop_at in line or time.monotonic() > deadline:
            break
    proc.kill()
    proc.wait()
    return proc.returncode, "".join(lines)


def _version(binary: Path, agent: str) -> str:
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


def record_agent(
    agent: str, out: Path, binary: Path, log: Callable[[str], None]
) -> list[dict[str, Any]]:
    """Record every capture of ``agent`` into ``out/agent``; returns the manifest entries."""
    version = _version(binary, agent)
    target = out / agent
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    norm = Normalizer()
    entries: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix=f"pa-captures-{agent}-") as tmp,
        ScriptedModelServer(_sessions()) as server,
    ):
        root = Path(tmp)
        norm.add_path(root, "/tmp/example")
        host = server.url.rstrip("/").split("://", 1)[1]
        norm.paths.insert(0, (host, f"127.0.0.1:{PORT}"))
        learned: dict[str, dict[str, str]] = {}
        for index, rec in enumerate(r for r in RECORDINGS if r.agent == agent):
            group = rec.group or f"solo{index}"
            base = root / group
            ctx = Ctx(work=base / "work", home=base / "home", learned=learned.get(group, {}))
            if not ctx.work.exists():
                _git_repo(ctx.work)
            norm.add_path(ctx.work, WORK)
            norm.add_path(ctx.home, HOME)
            env = {**base_environ(), "HOME": str(ctx.home)}
            if rec.key:
                env.update(
                    agent_env(
                        agent, ctx.home, server_url=server.url, api_key=rec.key, workdir=ctx.work
                    )
                )
            if rec.retries or rec.notify:
                notify = None
                if rec.notify:
                    # Codex passes the payload as argv[1]; one JSON object per line.
                    notify = [
                        "/bin/sh",
                        "-c",
                        f"printf '%s\\n' \"$1\" >> '{base}/notify.jsonl'",
                        "notify",
                    ]
                env.update(
                    codex_env(
                        ctx.home,
                        base_url=f"{server.url.rstrip('/')}/v1",
                        api_key=rec.key,
                        workdir=ctx.work,
                        retries=rec.retries,
                        notify=notify,
                    )
                )
            env.update(rec.env)
            argv = [str(binary), *rec.args(ctx)]
            log(f"{agent}/{rec.name}")
            code, stdout = _run(argv, rec, ctx, env)
            if rec.learn is not None:
                learned[group] = rec.learn(stdout)
            text = stdout
            if rec.output is not None:
                text = (base / rec.output).read_text(encoding="utf-8")
            if rec.name.endswith(".jsonl"):
                text = "".join(f"{ln}\n" for ln in text.splitlines() if ln.strip())
            if rec.show_input and rec.stdin:
                text = "".join(f">>> {ln}\n" for ln in rec.stdin.splitlines()) + text
            if not text.strip():
                raise RuntimeError(f"{agent}/{rec.name}: the CLI printed nothing (exit {code})")
            name = rec.name.replace("help.txt", f"help_{version}.txt")
            (target / name).write_text(norm(text), encoding="utf-8")
            entries.append(
                {
                    "file": f"{agent}/{name}",
                    "version": version,
                    "argv": [agent, *(norm(a) for a in argv[1:])],
                    "exit_code": code,
                }
            )
    return entries


# -- TUI screens (tmux panes) ------------------------------------------------------------------
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
        ScriptedModelServer([*_TUI_SESSIONS, *_sessions()]) as server,
    ):
        root = Path(tmp)
        norm.add_path(root, "/tmp/example")
        for index, screen in enumerate(SCREENS):
            binary = find_agent(screen.agent, prefix)
            if binary is None:
                missing = f"{screen.agent} is not installed"
                raise RuntimeError(f"{missing}: run scripts/install-agents.sh")
            version = _version(binary, screen.agent)
            base = root / f"s{index}"
            work, home = base / "work", base / "home"
            _git_repo(work)
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


def main(argv: Sequence[str] | None = None) -> int:
    agents = [*sorted({r.agent for r in RECORDINGS}), "tui"]
    parser = argparse.ArgumentParser(
        prog="record-captures",
        description="Re-record the agent captures the adapter tests replay, from the real "
        "pinned CLIs against the scripted model server (127.0.0.1 only).",
    )
    parser.add_argument("agents", nargs="*", metavar="AGENT", help=f"any of {', '.join(agents)}")
    parser.add_argument("--out", type=Path, required=True, help="the captures folder")
    parser.add_argument("--prefix", type=Path, default=None, help="where the CLIs are installed")
    args = parser.parse_args(argv)
    chosen = args.agents or agents
    unknown = [a for a in chosen if a not in agents]
    if unknown:
        parser.error(f"unknown agent(s) {', '.join(unknown)}; known: {', '.join(agents)}")
    prefix = args.prefix or agents_prefix()
    needed = {s.agent for s in SCREENS} if "tui" in chosen else set()
    missing = sorted({a for a in chosen if a != "tui"} | needed)
    missing = [a for a in missing if find_agent(a, prefix) is None]
    if missing:
        print(f"error: {', '.join(missing)} not installed in {prefix / 'bin'}", file=sys.stderr)
        print("hint: run scripts/install-agents.sh first", file=sys.stderr)
        return 1
    out: Path = args.out
    manifest_path = out / "manifest.json"
    manifest: dict[str, Any] = {}
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    for agent in chosen:
        binary = find_agent(agent, prefix)
        say = lambda m: print(f"recording {m}", flush=True)  # noqa: E731
        if agent == "tui":
            entries = record_tui(out, prefix, say)
        else:
            assert binary is not None
            entries = record_agent(agent, out, binary, say)
        manifest = {k: v for k, v in manifest.items() if not k.startswith(f"{agent}/")}
        manifest.update({e.pop("file"): e for e in entries})
    manifest_path.write_text(
        json.dumps(dict(sorted(manifest.items())), indent=2) + "\n", encoding="utf-8"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
