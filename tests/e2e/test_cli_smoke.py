"""The real agent CLIs, headless, against the scripted model server on 127.0.0.1.

Each CLI writes a file with its own write tool, answers, then its own session is resumed with
a follow-up that runs a shell command (mini-swe-agent has no resume). Each CLI also meets an
HTTP 401 and must fail visibly. The argv in ``CLIS`` is exactly what worked, per CLI version:

claude 2.1.332   claude -p PROMPT --output-format stream-json --verbose --model claude-sonnet-4-5
                        --permission-mode bypassPermissions
                 resume: same flags plus --resume=<session_id from system/init>
                 env: ANTHROPIC_BASE_URL=<server>, ANTHROPIC_API_KEY, IS_SANDBOX=1 (root),
                      HOME with a pre-seeded ~/.claude.json (onboarding, trust, key approval)
codex 0.171.0    codex exec --json --skip-git-repo-check --dangerously-bypass-approvals-and-sandbox
                        -m gpt-5.5 PROMPT        (stdin must be /dev/null)
                 resume: codex exec resume <thread_id> PROMPT --json --skip-git-repo-check
                        --dangerously-bypass-approvals-and-sandbox -m gpt-5.5
                 env: CODEX_HOME with config.toml: model_provider "pa" -> base_url <server>/v1,
                      wire_api "responses", env_key, request/stream_max_retries = 0
gemini 0.61.0    gemini -p PROMPT --output-format stream-json --yolo --skip-trust -m gemini-2.5-pro
                 resume: same flags plus --resume <session_id from init>
                 env: GOOGLE_GEMINI_BASE_URL=<server>, GEMINI_API_KEY, HOME with
                      ~/.gemini/settings.json security.auth.selectedType=gemini-api-key
opencode 1.18.33 opencode run --format json -m anthropic/claude-sonnet-4-5 --auto --dir WORKTREE
                        PROMPT
                 resume: opencode run --format json -m anthropic/claude-sonnet-4-5 --auto
                        --dir WORKTREE --session <sessionID> PROMPT
                 env: OPENCODE_CONFIG_CONTENT (provider.anthropic.options.baseURL=<server>/v1),
                      XDG dirs in a private HOME with ~/.config/opencode pre-seeded so it does
                      not npm-install its plugin package; without --dir it trusts an inherited
                      $PWD over its real cwd
mini 2.4.6       mini -t PROMPT -y --exit-immediately -m openai/gpt-4o -o TRAJ.json
                 env: OPENAI_BASE_URL=<server>/v1, OPENAI_API_KEY, MSWEA_CONFIGURED=true,
                      MSWEA_GLOBAL_CONFIG_DIR, MSWEA_SILENT_STARTUP=1, MSWEA_COST_TRACKING
All of them: cwd = the worktree, stdin = /dev/null; the env builders are in
parallel_agents.testing.agent_env.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from parallel_agents.testing import ScriptedModelServer

from .conftest import AgentBin, AgentEnviron, ModelServerFactory

pytestmark = pytest.mark.e2e

FIRST_FILE = ("hello.txt", "hello from the scripted model\n")
SECOND_FILE = ("notes/second.txt", "second turn\n")
FINAL_TEXT = "Done. Created hello.txt."
FOLLOW_UP_TEXT = "Follow-up done."
RUN_TIMEOUT = 90


def json_lines(text: str) -> list[dict[str, Any]]:
    events = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
    return events


@dataclass(frozen=True)
class Run:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def events(self) -> list[dict[str, Any]]:
        return json_lines(self.stdout)

    def explain(self) -> str:
        return (
            f"argv: {self.argv}\nexit: {self.returncode}\n"
            f"stdout:\n{self.stdout[-4000:]}\nstderr:\n{self.stderr[-4000:]}"
        )


def run_cli(argv: list[str], cwd: Path, env: dict[str, str]) -> Run:
    proc = subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    return Run(argv, proc.returncode, proc.stdout, proc.stderr)


# -- per-CLI knowledge: argv, session id, final answer, usage, error ----------------------


@dataclass(frozen=True)
class Cli:
    name: str
    first: Callable[[str, Path, Path], list[str]]  # (prompt, workdir, tmp) -> args after binary
    resume: Callable[[str, str, Path], list[str]] | None  # (session id, prompt, workdir)
    session_id: Callable[[Run], str]
    final_text: Callable[[Run, Path], str]  # the answer the CLI reports for its last turn
    usage_reported: Callable[[Run, Path], bool]
    reports_error: Callable[[Run, Path], bool]


CLAUDE_FLAGS = [
    "--output-format",
    "stream-json",
    "--verbose",
    "--model",
    "claude-sonnet-4-5",
    "--permission-mode",
    "bypassPermissions",
]


def _claude_result(run: Run) -> dict[str, Any]:
    return next(e for e in reversed(run.events) if e.get("type") == "result")


CODEX_FLAGS = [
    "--json",
    "--skip-git-repo-check",
    "--dangerously-bypass-approvals-and-sandbox",
    "-m",
    "gpt-5.5",
]
GEMINI_FLAGS = ["--output-format", "stream-json", "--yolo", "--skip-trust", "-m", "gemini-2.5-pro"]
OPENCODE_FLAGS = ["--format", "json", "-m", "anthropic/claude-sonnet-4-5", "--auto"]


def _mini_traj(tmp: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((tmp / "mini.traj.json").read_text())
    return data


CLIS = {
    # claude -p PROMPT <CLAUDE_FLAGS> [--resume=<session_id>]; as root needs IS_SANDBOX=1
    "claude": Cli(
        name="claude",
        first=lambda prompt, workdir, tmp: ["-p", prompt, *CLAUDE_FLAGS],
        resume=lambda sid, prompt, workdir: ["-p", prompt, f"--resume={sid}", *CLAUDE_FLAGS],
        session_id=lambda run: next(
            e["session_id"] for e in run.events if e.get("subtype") == "init"
        ),
        final_text=lambda run, tmp: str(_claude_result(run).get("result")),
        usage_reported=lambda run, tmp: (
            _claude_result(run)["usage"]["input_tokens"] > 0
            and _claude_result(run)["total_cost_usd"] > 0
        ),
        reports_error=lambda run, tmp: (
            _claude_result(run)["is_error"] is True
            and _claude_result(run).get("api_error_status") == 401
        ),
    ),
    # codex exec <CODEX_FLAGS> PROMPT | codex exec resume <thread_id> PROMPT <CODEX_FLAGS>
    "codex": Cli(
        name="codex",
        first=lambda prompt, workdir, tmp: ["exec", *CODEX_FLAGS, prompt],
        resume=lambda sid, prompt, workdir: ["exec", "resume", sid, prompt, *CODEX_FLAGS],
        session_id=lambda run: next(
            e["thread_id"] for e in run.events if e.get("type") == "thread.started"
        ),
        final_text=lambda run, tmp: [
            e["item"]["text"]
            for e in run.events
            if e.get("type") == "item.completed" and e["item"]["type"] == "agent_message"
        ][-1],
        usage_reported=lambda run, tmp: any(
            e.get("type") == "turn.completed" and e["usage"]["input_tokens"] > 0 for e in run.events
        ),
        reports_error=lambda run, tmp: any(
            e.get("type") == "turn.failed" and "401" in e["error"]["message"] for e in run.events
        ),
    ),
    # gemini -p PROMPT <GEMINI_FLAGS> [--resume <session_id>]
    "gemini": Cli(
        name="gemini",
        first=lambda prompt, workdir, tmp: ["-p", prompt, *GEMINI_FLAGS],
        resume=lambda sid, prompt, workdir: ["-p", prompt, "--resume", sid, *GEMINI_FLAGS],
        session_id=lambda run: next(e["session_id"] for e in run.events if e.get("type") == "init"),
        final_text=lambda run, tmp: [
            e["content"]
            for e in run.events
            if e.get("type") == "message" and e.get("role") == "assistant"
        ][-1],
        usage_reported=lambda run, tmp: any(
            e.get("type") == "result" and e["stats"]["input_tokens"] > 0 for e in run.events
        ),
        reports_error=lambda run, tmp: any(
            e.get("type") == "result" and e["status"] == "error" and "401" in json.dumps(e)
            for e in run.events
        ),
    ),
    # opencode run <OPENCODE_FLAGS> --dir WORKTREE [--session <sessionID>] PROMPT
    "opencode": Cli(
        name="opencode",
        first=lambda prompt, workdir, tmp: ["run", *OPENCODE_FLAGS, "--dir", str(workdir), prompt],
        resume=lambda sid, prompt, workdir: [
            "run",
            *OPENCODE_FLAGS,
            "--dir",
            str(workdir),
            "--session",
            sid,
            prompt,
        ],
        session_id=lambda run: str(run.events[0]["sessionID"]),
        final_text=lambda run, tmp: [
            e["part"]["text"] for e in run.events if e.get("type") == "text"
        ][-1],
        usage_reported=lambda run, tmp: any(
            e.get("type") == "step_finish" and e["part"]["tokens"]["input"] > 0 for e in run.events
        ),
        reports_error=lambda run, tmp: any(
            e.get("type") == "error" and e["error"]["data"].get("statusCode") == 401
            for e in run.events
        ),
    ),
    # mini -t PROMPT -y --exit-immediately -m openai/gpt-4o -o TRAJ (no resume)
    "mini": Cli(
        name="mini",
        first=lambda prompt, workdir, tmp: [
            "-t",
            prompt,
            "-y",
            "--exit-immediately",
            "-m",
            "openai/gpt-4o",
            "-o",
            str(tmp / "mini.traj.json"),
        ],
        resume=None,  # mini-swe-agent has no session to resume
        session_id=lambda run: "",
        final_text=lambda run, tmp: str(_mini_traj(tmp)["info"]["submission"]).rstrip("\n"),
        usage_reported=lambda run, tmp: _mini_traj(tmp)["info"]["model_stats"]["api_calls"] == 2,
        reports_error=lambda run, tmp: "AuthenticationError" in run.stdout + run.stderr,
    ),
}


def hello_script(key: str) -> list[dict[str, Any]]:
    path, content = FIRST_FILE
    return [
        {
            "match": key,
            "turns": [
                {"say": "I'll create the file.", "write": {"path": path, "content": content}},
                {"text": FINAL_TEXT},
                # the follow-up prompt (resumed session) continues here
                {"run": "mkdir -p notes && printf 'second turn\\n' > notes/second.txt"},
                {"text": FOLLOW_UP_TEXT},
            ],
        }
    ]


@pytest.mark.parametrize("name", list(CLIS))
def test_cli_writes_a_file_answers_and_resumes(
    name: str,
    agent_bin: AgentBin,
    model_server: ModelServerFactory,
    agent_environ: AgentEnviron,
    work_repo: Path,
    tmp_path: Path,
) -> None:
    cli = CLIS[name]
    binary = str(agent_bin(name))
    key = f"pa-e2e-{name}-key"
    server: ScriptedModelServer = model_server(hello_script(key))
    env = agent_environ(name, server, key, work_repo)

    first = run_cli(
        [binary, *cli.first("Create hello.txt, please.", work_repo, tmp_path)], work_repo, env
    )
    assert first.returncode == 0, first.explain()
    path, content = FIRST_FILE
    assert (work_repo / path).read_text() == content, first.explain()
    assert cli.final_text(first, tmp_path) == FINAL_TEXT, first.explain()
    assert cli.usage_reported(first, tmp_path), first.explain()
    assert [(r.session, r.turn) for r in server.turns()] == [(key, 0), (key, 1)]

    if cli.resume is None:
        return
    session_id = cli.session_id(first)
    assert session_id, first.explain()
    again = run_cli(
        [binary, *cli.resume(session_id, "Now add the notes file.", work_repo)], work_repo, env
    )
    assert again.returncode == 0, again.explain()
    second_path, second_content = SECOND_FILE
    assert (work_repo / second_path).read_text() == second_content, again.explain()
    assert cli.final_text(again, tmp_path) == FOLLOW_UP_TEXT, again.explain()
    assert cli.session_id(again) == session_id, again.explain()
    assert [r.turn for r in server.turns()] == [0, 1, 2, 3]


@pytest.mark.parametrize("name", list(CLIS))
def test_cli_fails_visibly_on_401(
    name: str,
    agent_bin: AgentBin,
    model_server: ModelServerFactory,
    agent_environ: AgentEnviron,
    work_repo: Path,
    tmp_path: Path,
) -> None:
    cli = CLIS[name]
    binary = str(agent_bin(name))
    key = f"pa-e2e-{name}-bad-key"
    script = [{"match": key, "turns": [{"error": {"status": 401, "message": "invalid api key"}}]}]
    server = model_server(script)
    env = agent_environ(name, server, key, work_repo)

    run = run_cli(
        [binary, *cli.first("Create hello.txt, please.", work_repo, tmp_path)], work_repo, env
    )
    assert run.returncode != 0, run.explain()
    assert cli.reports_error(run, tmp_path), run.explain()
    assert not (work_repo / FIRST_FILE[0]).exists()
    assert {r.status for r in server.turns()} == {401}
