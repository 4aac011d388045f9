"""`pa` driving the real agent CLIs against the scripted model server, end to end.

Each test goes through the real `pa` command (a subprocess, its own PA_HOME and config file):
``pa new --agent NAME --env ...`` starts the pinned CLI from ``.agents/bin`` in the session's
worktree; the CLI talks to the scripted model server on 127.0.0.1, whose request log shows what
each CLI sent. Per CLI: a file written and a follow-up resumed in the CLI's own conversation,
an HTTP 401 that fails the turn with the CLI's error text, and the CLI's turn limit. Then ten
sessions of mixed agents share one server and must not cross worktrees.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from parallel_agents.testing import (
    AGENT_NAMES,
    RequestRecord,
    ScriptedModelServer,
    agent_env,
    agents_prefix,
    base_environ,
    find_agent,
)
from parallel_agents.testing.agent_env import DEFAULT_MODELS

from .conftest import ModelServerFactory

pytestmark = pytest.mark.e2e

FIRST = ("hello.txt", "hello from the scripted model\n")
SECOND = ("notes/second.txt", "second turn\n")
FIRST_PROMPT = "Create hello.txt, please."
FOLLOW_UP_PROMPT = "Now add notes/second.txt."
FINAL_TEXT = "Done. Created hello.txt."
FOLLOW_UP_TEXT = "Follow-up done."
TURN_TIMEOUT = 120.0  # generous: the machine is shared; a healthy turn takes seconds


# -- the pa command, isolated ------------------------------------------------------------


def require_binary(name: str) -> Path:
    """The pinned CLI; skip when it is not installed (fail instead in CI)."""
    found = find_agent(name)
    if found is not None:
        return Path(found)
    where = agents_prefix() / "bin" / name
    if os.environ.get("CI") or os.environ.get("PA_REQUIRE_AGENTS"):
        pytest.fail(f"{name} missing at {where}: run scripts/install-agents.sh")
    pytest.skip(f"{name} not installed at {where}: run scripts/install-agents.sh")


@dataclass
class PaCli:
    """Runs `pa` with a clean environment: no real credentials, its own config file."""

    tmp: Path
    repo: Path
    config: Path
    agent_settings: dict[str, dict[str, Any]] = field(default_factory=dict)

    def write_config(self) -> None:
        # pa's background server (started on demand) takes any free port: tests run next to
        # other servers, and the default port may be taken.
        lines = ["[server]", "port = 0"]
        for name, values in self.agent_settings.items():
            lines.append(f"[agents.{name}]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in values.items()]
        self.config.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def use(self, name: str, **settings: Any) -> None:
        binary = require_binary(name)
        self.agent_settings[name] = {"binary": str(binary), **settings}
        self.write_config()

    @property
    def environ(self) -> dict[str, str]:
        # base_environ drops every credential/config variable a CLI might read (and XDG_*),
        # so the agent sees only what --env gives it; PA_HOME comes from the autouse fixture.
        # HOME too is private: pa itself runs each CLI's --help once per process, with its
        # own environment, and some CLIs write into $HOME when they start.
        home = self.tmp / "pa-user-home"
        home.mkdir(exist_ok=True)
        return {**base_environ(), "PA_CONFIG": str(self.config), "HOME": str(home)}

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "parallel_agents", *args],
            cwd=self.repo,
            env=self.environ,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"pa {' '.join(args[:2])} failed ({proc.returncode}):\n"
                f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            )
        return proc

    def new(
        self,
        name: str,
        prompt: str,
        server: ScriptedModelServer,
        key: str,
        home: str,
        tweak: Callable[[Path, dict[str, str]], None] | None = None,
    ) -> dict[str, Any]:
        """`pa new` with the CLI's whole environment (from agent_env) passed as --env.

        ``tweak(home, env)`` may change the CLI's own config files or variables first.
        """
        env = agent_env(name, self.tmp / home, server_url=server.url, api_key=key)
        env["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
        if tweak is not None:
            tweak(self.tmp / home, env)
        pairs = [f"--env={k}={v}" for k, v in env.items()]
        proc = self(
            "new", prompt, "--agent", name, "--model", DEFAULT_MODELS[name], *pairs, "--json"
        )
        session: dict[str, Any] = json.loads(proc.stdout)
        return session

    def wait(self, *ids: str, timeout: float = TURN_TIMEOUT) -> subprocess.CompletedProcess[str]:
        proc = self("wait", *ids, "--timeout", str(timeout), check=False, timeout=timeout + 30)
        assert proc.returncode != 124, f"still working after {timeout}s: {proc.stderr}"
        return proc

    def show(self, sid: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self("show", sid, "--json").stdout)
        return data

    def logs(self, sid: str) -> list[dict[str, Any]]:
        out = self("logs", sid, "--json").stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def diff_paths(self, sid: str) -> set[str]:
        return set(self("diff", sid, "--name-only").stdout.split())

    def explain(self, sid: str) -> str:
        """Everything needed to debug a failed assertion: session, turns, events, stderr."""
        show = self("show", sid, "--json", check=False).stdout
        events = self("logs", sid, "--json", check=False).stdout
        turns = Path(os.environ["PA_HOME"]) / "sessions" / sid / "turns"
        stderr = "".join(
            f"\n{path}:\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(turns.glob("*/stderr"))
        )
        return f"show:\n{show[-4000:]}\nevents:\n{events[-8000:]}\nstderr:{stderr}"


@pytest.fixture
def pa_cli(tmp_path: Path, work_repo: Path) -> Iterator[PaCli]:
    cli = PaCli(tmp=tmp_path, repo=work_repo, config=tmp_path / "pa-config.toml")
    cli.write_config()
    yield cli
    # Stop whatever a failed test left running (pa stop ends the agent's process group).
    proc = cli("ls", "--json", check=False)
    if proc.returncode == 0:
        for s in json.loads(proc.stdout):
            if s["status"] in ("starting", "running", "queued"):
                cli("stop", s["id"], check=False)
    cli("server", "stop", check=False)


def write_turns(path: str, content: str, final: str) -> list[dict[str, Any]]:
    """Two model turns: write ``path`` with the CLI's own tool, then answer ``final``."""
    say = f"I'll write {path}."
    return [{"say": say, "write": {"path": path, "content": content}}, {"text": final}]


def events_of(events: list[dict[str, Any]], kind: str, turn: int | None = None) -> list[Any]:
    return [e["payload"] for e in events if e["kind"] == kind and turn in (None, e["turn"])]


def served_tokens(requests: list[RequestRecord]) -> tuple[int, int]:
    """Tokens the scripted server reported for these requests (input, output)."""
    usages = [r.usage for r in requests if r.usage is not None]
    return sum(u.input_tokens for u in usages), sum(u.output_tokens for u in usages)


def untouched(repo: Path) -> bool:
    """The main checkout has no change at all (agents work in their worktrees only)."""
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return status.stdout == ""


# -- 1. write, diff, follow-up in the CLI's own conversation ------------------------------


def lifecycle_script(name: str, key: str) -> list[dict[str, Any]]:
    first = write_turns(*FIRST, FINAL_TEXT)
    second = write_turns(*SECOND, FOLLOW_UP_TEXT)
    if name != "mini":
        # One conversation: the resumed CLI sends its whole history, so the server's turn
        # count (model turns already in the request) continues at the follow-up's turns.
        return [{"match": key, "turns": [*first, *second]}]
    # mini-swe-agent cannot resume: a follow-up is a fresh run whose task carries a summary
    # of the first run and then the new instruction. Its key matches no session; each run is
    # matched by a token in its task. The follow-up session is listed first, because its
    # task also quotes the first prompt (and so the first token).
    return [
        {"match": f"{key}-followup", "turns": second},
        {"match": f"{key}-first", "turns": first},
    ]


@pytest.mark.parametrize("name", AGENT_NAMES)
def test_pa_session_edits_diffs_and_resumes(
    name: str, pa_cli: PaCli, model_server: ModelServerFactory, work_repo: Path
) -> None:
    key = f"pa-life-{name}"
    server = model_server(lifecycle_script(name, key))
    pa_cli.use(name)
    resumes = name != "mini"
    first_prompt = FIRST_PROMPT if resumes else f"{FIRST_PROMPT} [{key}-first]"
    follow_prompt = FOLLOW_UP_PROMPT if resumes else f"{FOLLOW_UP_PROMPT} [{key}-followup]"
    first_key, follow_key = (key, key) if resumes else (f"{key}-first", f"{key}-followup")

    s = pa_cli.new(name, first_prompt, server, key if resumes else "pa-nomatch", f"home-{name}")
    sid = s["id"]
    worktree = Path(s["worktree"])
    assert pa_cli.wait(sid).returncode == 0, pa_cli.explain(sid)

    # The real CLI wrote the file in the session's worktree, never in the main checkout.
    path, content = FIRST
    assert (worktree / path).read_text() == content, pa_cli.explain(sid)
    assert untouched(work_repo)
    shown = pa_cli.show(sid)
    assert shown["status"] == "idle", pa_cli.explain(sid)
    (turn1,) = shown["turns"]
    assert turn1["status"] == "done" and turn1["input_tokens"] > 0, pa_cli.explain(sid)
    # The turn's usage is exactly what the model served for it (a delta, not a total).
    first_requests = [r for r in server.turns(first_key) if r.turn in (0, 1)]
    assert (turn1["input_tokens"], turn1["output_tokens"]) == served_tokens(first_requests)
    events = pa_cli.logs(sid)
    assert [r["text"] for r in events_of(events, "result", 1)] == [FINAL_TEXT], events
    assert events_of(events, "usage", 1), events
    if resumes:  # (mini's structured events come from its trajectory file, not a line)
        assert all(e["raw"] for e in events if e["kind"] in ("message", "usage")), events
    assert pa_cli.diff_paths(sid) == {path}
    diff = pa_cli("diff", sid).stdout
    assert f"+++ b/{path}" in diff and f"+{content.strip()}" in diff, diff
    first_session_id = shown["agent_session_id"]
    if resumes:
        assert first_session_id, pa_cli.explain(sid)

    # The follow-up: the same worktree and, where the CLI can resume, the same conversation.
    pa_cli("send", sid, follow_prompt)
    assert pa_cli.wait(sid).returncode == 0, pa_cli.explain(sid)
    second_path, second_content = SECOND
    assert (worktree / second_path).read_text() == second_content, pa_cli.explain(sid)
    assert (worktree / path).read_text() == content
    assert untouched(work_repo)
    shown = pa_cli.show(sid)
    assert shown["status"] == "idle", pa_cli.explain(sid)
    assert [t["status"] for t in shown["turns"]] == ["done", "done"], pa_cli.explain(sid)
    turn2 = shown["turns"][1]
    follow_turns = (2, 3) if resumes else (0, 1)
    follow_requests = [r for r in server.turns(follow_key) if r.turn in follow_turns]
    assert (turn2["input_tokens"], turn2["output_tokens"]) == served_tokens(follow_requests)
    events = pa_cli.logs(sid)
    assert [r["text"] for r in events_of(events, "result", 2)] == [FOLLOW_UP_TEXT], events
    assert pa_cli.diff_paths(sid) == {path, second_path}

    if resumes:
        assert shown["agent_session_id"] == first_session_id, pa_cli.explain(sid)
        # The follow-up's first request carried the earlier conversation: the server counted
        # two model turns in its history, and the first prompt and answer are in its body.
        assert [r.turn for r in server.turns(key)] == [0, 1, 2, 3]
        body = json.dumps(follow_requests[0].body)
        assert FIRST_PROMPT in body and FINAL_TEXT in body and FOLLOW_UP_PROMPT in body
    else:
        # A fresh run, told what the first one did.
        body = json.dumps(follow_requests[0].body)
        assert "Earlier run 1" in body and FIRST_PROMPT in body, body[:2000]


# -- 2. the model API refuses: the turn fails with the CLI's own words -------------------

# What each CLI says about the server's 401 "invalid api key" (checked against the pinned
# versions); pa must surface it as the session's error, not a generic "exit code 1".
ERROR_TEXT = {
    "claude": ("API Error: 401", "invalid api key"),  # "Failed to authenticate. API Error: 401 …"
    "codex": ("401 Unauthorized", "invalid api key"),  # "unexpected status 401 Unauthorized: …"
    "gemini": ("401", "invalid api key"),  # '[API Error: {"error":{"code":401,…}}]'
    "opencode": ("401", "invalid api key"),  # "APIError 401: invalid api key"
    "mini": ("AuthenticationError", "invalid api key"),  # litellm's exception, via trajectory
}


@pytest.mark.parametrize("name", AGENT_NAMES)
def test_pa_session_fails_with_the_cli_error_on_401(
    name: str, pa_cli: PaCli, model_server: ModelServerFactory, work_repo: Path
) -> None:
    key = f"pa-401-{name}"
    # 401, not 500: OpenCode retries a 500 with a long backoff.
    error = {"error": {"status": 401, "message": "invalid api key"}}
    server = model_server([{"match": key, "turns": [error]}])
    pa_cli.use(name)

    s = pa_cli.new(name, FIRST_PROMPT, server, key, f"home-{name}")
    sid = s["id"]
    assert pa_cli.wait(sid).returncode == 1, pa_cli.explain(sid)

    shown = pa_cli.show(sid)
    assert shown["status"] == "failed", pa_cli.explain(sid)
    (turn,) = shown["turns"]
    assert turn["status"] == "failed", pa_cli.explain(sid)
    for text in ERROR_TEXT[name]:
        assert text in shown["error"], pa_cli.explain(sid)
    assert turn["error"] == shown["error"]
    errors = [e["message"] for e in events_of(pa_cli.logs(sid), "error")]
    assert errors == [shown["error"]], errors  # reported once, not once per layer
    assert not events_of(pa_cli.logs(sid), "result")
    assert {(r.status, r.kind) for r in server.turns(key)} == {(401, "error")}
    assert not (Path(s["worktree"]) / FIRST[0]).exists()
    assert pa_cli.diff_paths(sid) == set()
    assert untouched(work_repo)


# -- 3. the CLI's own turn limit -----------------------------------------------------------


def _gemini_max_session_turns(home: Path, env: dict[str, str]) -> None:
    """Gemini CLI's limit lives in its own settings.json (``model.maxSessionTurns``)."""
    path = home / ".gemini" / "settings.json"
    settings = json.loads(path.read_text(encoding="utf-8"))
    settings.setdefault("model", {})["maxSessionTurns"] = 1
    path.write_text(json.dumps(settings), encoding="utf-8")


@dataclass(frozen=True)
class TurnLimit:
    settings: Mapping[str, Any] = field(default_factory=dict)  # [agents.<name>] in pa's config
    tweak: Callable[[Path, dict[str, str]], None] | None = None
    reason: str = "max_turns"
    error: str = ""  # in the session's error
    raw: str = ""  # in the raw line that ended the turn


TURN_LIMITS: dict[str, TurnLimit | str] = {
    # pa passes --max-turns; the result line says subtype "error_max_turns".
    "claude": TurnLimit(
        settings={"max_turns": 1},
        error="Reached maximum number of turns (1)",
        raw='"subtype":"error_max_turns"',
    ),
    # Not a pa setting: the user's own Gemini settings.json. Exit code 53 and a result line.
    "gemini": TurnLimit(
        tweak=_gemini_max_session_turns,
        error="Reached max session turns",
        raw="Reached max session turns",
    ),
    # mini-swe-agent's step limit (model calls), through pa's `config` setting (-c specs; the
    # default config file must come first). The trajectory's exit status is LimitsExceeded.
    "mini": TurnLimit(
        settings={"config": ["mini.yaml", "agent.step_limit=1"]},
        reason="limits_exceeded",
        error="LimitsExceeded",
    ),
    "codex": "codex exec has no turn or step limit (0.171.0: no flag, no config key)",
    "opencode": (
        "OpenCode's agent `steps` limit is not enforced: it only tells the model to stop "
        "(an assistant message) and keeps running the tools it still calls; nothing in "
        "`run --format json` marks it, so there is nothing to report"
    ),
}


@pytest.mark.parametrize("name", AGENT_NAMES)
def test_pa_session_reports_the_cli_turn_limit(
    name: str, pa_cli: PaCli, model_server: ModelServerFactory
) -> None:
    limit = TURN_LIMITS[name]
    if isinstance(limit, str):
        pytest.skip(limit)
    key = f"pa-limit-{name}"
    # A model that never stops calling tools.
    turns = [{"run": f"echo {n} > step-{n}.txt"} for n in range(6)]
    server = model_server([{"match": key, "turns": [*turns, {"text": "never reached"}]}])
    pa_cli.use(name, **limit.settings)

    s = pa_cli.new(name, FIRST_PROMPT, server, key, f"home-{name}", limit.tweak)
    sid = s["id"]
    assert pa_cli.wait(sid).returncode == 1, pa_cli.explain(sid)

    shown = pa_cli.show(sid)
    assert shown["status"] == "failed", pa_cli.explain(sid)
    assert shown["turns"][0]["status"] == "failed", pa_cli.explain(sid)
    assert limit.error in shown["error"], pa_cli.explain(sid)
    events = pa_cli.logs(sid)
    final = [e for e in events_of(events, "error") if e.get("reason")]
    assert [(e["message"], e["reason"]) for e in final] == [(shown["error"], limit.reason)]
    if limit.raw:
        assert any(limit.raw in (e["raw"] or "") for e in events), events
    assert not events_of(events, "result")
    # The limit cut the run short: one model call, one command.
    assert [r.turn for r in server.turns(key)] == [0], [(r.kind, r.turn) for r in server.requests]
    assert (Path(s["worktree"]) / "step-0.txt").exists()
    assert not (Path(s["worktree"]) / "step-1.txt").exists()


# -- 4. ten sessions, mixed agents, one server ----------------------------------------------


@dataclass(frozen=True)
class Planned:
    index: int
    agent: str
    key: str  # the API key, which the script matches: one script session per pa session
    path: str  # the one file this session must write
    content: str


def test_ten_mixed_sessions_share_one_server_and_never_cross_worktrees(
    pa_cli: PaCli, model_server: ModelServerFactory, work_repo: Path
) -> None:
    agents = [name for name in AGENT_NAMES for _ in range(2)]
    for name in AGENT_NAMES:
        pa_cli.use(name)
    plan = [
        Planned(i, name, f"pa-par-{i:02d}-{name}", f"out-{i:02d}-{name}.txt", f"{i} {name}\n")
        for i, name in enumerate(agents)
    ]
    server = model_server(
        [
            {"match": p.key, "turns": write_turns(p.path, p.content, f"Wrote {p.path}.")}
            for p in plan
        ]
    )

    def start(p: Planned) -> dict[str, Any]:
        return pa_cli.new(p.agent, f"Write {p.path}.", server, p.key, f"home-{p.index:02d}")

    # Created concurrently, as from several terminals; eight run at once (pa's default
    # limit) and the other two wait in the queue until a slot frees.
    with ThreadPoolExecutor(max_workers=4) as pool:
        sessions = list(pool.map(start, plan))
    ids = [s["id"] for s in sessions]
    waited = pa_cli.wait(*ids, timeout=240)
    explain = "\n".join(pa_cli.explain(sid) for sid in ids) if waited.returncode else ""
    assert waited.returncode == 0, f"{waited.stdout}\n{explain}"

    others = {p.path for p in plan}
    for session, p in zip(sessions, plan, strict=True):
        sid, worktree = session["id"], Path(session["worktree"])
        shown = pa_cli.show(sid)
        assert shown["status"] == "idle" and shown["agent"] == p.agent, pa_cli.explain(sid)
        assert (worktree / p.path).read_text() == p.content, pa_cli.explain(sid)
        # Exactly its own change: nothing from the nine others.
        assert pa_cli.diff_paths(sid) == {p.path}, pa_cli.explain(sid)
        assert not any((worktree / other).exists() for other in others - {p.path})
        assert [r.turn for r in server.turns(p.key)] == [0, 1], pa_cli.explain(sid)
    assert untouched(work_repo)
    assert [r for r in server.requests if r.kind in ("unmatched", "exhausted")] == []
