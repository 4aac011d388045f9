"""`pa demo`: real agent processes fixing a sample repo in parallel, offline.

The model behind the agents is the scripted model server on 127.0.0.1 (clearly
labelled): it decides what the "model" says; the agent CLIs do everything else for
real — their own tool loop, shell commands, file edits — each in its own worktree.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parallel_agents import git
from parallel_agents.errors import PAError, UsageError
from parallel_agents.models import Status
from parallel_agents.sessions.headless import SCRIPTED_MODEL_ENV
from parallel_agents.sessions.orchestrator import App

SAMPLE_FILES: dict[str, str] = {
    "README.md": "# calc\n\nA tiny calculator library.\n",
    "calc.py": (
        "def add(a, b):\n"
        "    return a - b  # BUG: should add\n"
        "\n"
        "\n"
        "def mean(xs):\n"
        "    return sum(xs) / len(xs)  # BUG: fails on an empty list\n"
    ),
    "greet.py": 'def greet(name):\n    return "Helo, " + name  # BUG: typo\n',
    "test_calc.py": (
        "from calc import add, mean\n"
        "from greet import greet\n"
        "\n"
        "\n"
        "def test_add():\n"
        "    assert add(2, 3) == 5\n"
        "\n"
        "\n"
        "def test_mean_empty():\n"
        "    assert mean([]) == 0\n"
        "\n"
        "\n"
        "def test_greet():\n"
        '    assert greet("Ada") == "Hello, Ada"\n'
    ),
}


@dataclass(frozen=True)
class DemoTask:
    key: str
    title: str
    prompt: str
    turns: list[dict[str, Any]]


def tasks() -> list[DemoTask]:
    calc_fixed_add = SAMPLE_FILES["calc.py"].replace(
        "return a - b  # BUG: should add", "return a + b"
    )
    calc_fixed_mean = SAMPLE_FILES["calc.py"].replace(
        "return sum(xs) / len(xs)  # BUG: fails on an empty list",
        "return sum(xs) / len(xs) if xs else 0",
    )
    return [
        DemoTask(
            "add",
            "Fix add()",
            "add(2, 3) returns -1. Fix calc.add so it adds.",
            [
                {"say": "Let me look at calc.py.", "run": "cat calc.py"},
                {
                    "say": "add() subtracts; fixing it.",
                    "write": {"path": "calc.py", "content": calc_fixed_add},
                },
                {"text": "Fixed calc.add: it now returns a + b."},
            ],
        ),
        DemoTask(
            "mean",
            "Make mean() safe on empty lists",
            "mean([]) raises ZeroDivisionError. Make it return 0 for an empty list.",
            [
                {"say": "Reading calc.py.", "run": "grep -n 'def mean' -A 2 calc.py"},
                {"write": {"path": "calc.py", "content": calc_fixed_mean}},
                {"text": "mean() now returns 0 for an empty list."},
            ],
        ),
        DemoTask(
            "greet",
            "Fix the greeting typo",
            'greet("Ada") says "Helo, Ada". Fix the typo.',
            [
                {
                    "say": "Fixing the typo in greet.py.",
                    "write": {
                        "path": "greet.py",
                        "content": 'def greet(name):\n    return "Hello, " + name\n',
                    },
                },
                {"text": 'greet() now says "Hello, <name>".'},
            ],
        ),
        DemoTask(
            "docs",
            "Document the functions in the README",
            "Add a Usage section to README.md listing add, mean and greet.",
            [
                {
                    "write": {
                        "path": "README.md",
                        "content": SAMPLE_FILES["README.md"]
                        + (
                            "\n## Usage\n\n- `add(a, b)`: the sum\n"
                            "- `mean(xs)`: the average (0 if empty)\n"
                            "- `greet(name)`: a greeting\n"
                        ),
                    }
                },
                {"text": "Added a Usage section to README.md."},
            ],
        ),
    ]


def make_sample_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if any(path.iterdir()):
        raise UsageError(f"{path} is not empty", hint="pick another --dir")
    for name, text in SAMPLE_FILES.items():
        (path / name).write_text(text, encoding="utf-8")
    ident = {
        "GIT_AUTHOR_NAME": "pa demo",
        "GIT_AUTHOR_EMAIL": "demo@localhost",
        "GIT_COMMITTER_NAME": "pa demo",
        "GIT_COMMITTER_EMAIL": "demo@localhost",
    }
    git.run(["init", "-q", "-b", "main"], path)
    git.run(["add", "-A"], path)
    git.run(["commit", "-q", "-m", "Sample project for pa demo"], path, env=ident)
    return path


def find_agent_bin(name: str) -> str | None:
    """The CLI on PATH, or in the project's .agents/bin (scripts/install-agents.sh)."""
    import shutil

    found = shutil.which(name)
    if found:
        return found
    for root in (Path.cwd(), Path(__file__).resolve().parents[3]):
        cand = root / ".agents" / "bin" / name
        if cand.exists():
            return str(cand)
    return None


def run_demo(
    app: App,
    *,
    agent: str,
    count: int,
    directory: Path | None,
    echo: Callable[[str], None],
    live: bool,
    timeout: float = 300,
) -> dict[str, Any]:
    from parallel_agents.testing import ScriptedModelServer
    from parallel_agents.testing.agent_env import agent_env

    all_tasks = tasks()
    if not 1 <= count <= len(all_tasks):
        raise UsageError(f"--sessions must be between 1 and {len(all_tasks)}")
    chosen = all_tasks[:count]
    binary = find_agent_bin(agent)
    if binary is None:
        raise PAError(
            f"the {agent!r} agent CLI is not installed",
            hint=f"run scripts/install-agents.sh {agent} (installs the pinned CLI in .agents/bin)",
        )
    bin_dir = str(Path(binary).parent)
    run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)
    root = directory or (app.store.home / "demo" / run_id)
    repo = make_sample_repo(root / "calc")
    r = app.add_repo(repo, name=f"demo-{run_id}")
    script = [{"match": f"pa-demo-{t.key}-{run_id}", "turns": t.turns} for t in chosen]
    echo("Scripted model: the agents below are real CLI processes, but the model answering")
    echo("them is pa's scripted model server on 127.0.0.1 (no AI, no network).\n")
    echo(f"sample repo: {repo}")
    server = ScriptedModelServer(script).start()
    ids: list[str] = []
    try:
        for t in chosen:
            token = f"pa-demo-{t.key}-{run_id}"
            env = agent_env(
                agent,
                root / "agent-homes" / t.key,
                server_url=server.url,
                api_key=token,
                workdir=None,
            )
            env["PATH"] = bin_dir + ":" + env.get("PATH", "/usr/bin:/bin")
            env[SCRIPTED_MODEL_ENV] = "1"  # no AI answered: pa shows no cost for it
            app.settings.data.setdefault("agents", {}).setdefault(agent, {})["binary"] = binary
            s = app.new_session(t.prompt, repo=r.name, agent=agent, title=t.title, env=env)
            ids.append(s.id)
            echo(f"  started {s.id}  [{agent}]  {t.title}")
        _watch(app, ids, echo, live=live, timeout=timeout)
    finally:
        server.stop()
    sessions = [app.store.session(i) for i in ids]
    echo("")
    for s in sessions:
        echo(f"── {s.id} {s.title} — {s.status.value}" + (f": {s.error}" if s.error else ""))
        diff = subprocess.run(
            [sys.executable, "-m", "parallel_agents", "diff", s.id],
            capture_output=True,
            text=True,
            check=False,
        )
        echo(diff.stdout.rstrip() or "(no changes)")
    echo("\nNext: pa ls · pa show ID · pa diff ID · pa conflicts · pa merge ID")
    echo("Open the dashboard on these sessions with: pa up")
    server_info = _server_note(app, echo)
    return {
        "repo": str(repo),
        "sessions": [s.to_json() for s in sessions],
        "server": server_info,
    }


def _server_note(app: App, echo: Callable[[str], None]) -> dict[str, Any] | None:
    """Say so when a background server runs (the demo's `pa diff` starts one): it outlives
    the demo, and nothing else would tell the user it is there or how to stop it."""
    from parallel_agents.server import daemon

    info = daemon.status(app.store.home)
    if info is None:
        return None
    echo(
        f"A pa server keeps running in the background (pid {info.pid}, {info.url});"
        " stop it with: pa server stop"
    )
    return {"pid": info.pid, "url": info.url}


def _describe(kind: str, p: dict[str, Any]) -> str:
    if kind == "tool_call":
        inp = p.get("input")
        arg = ""
        if isinstance(inp, dict):
            arg = str(inp.get("command") or inp.get("file_path") or inp.get("path") or "")
        return f"→ {p.get('name')} {arg}".strip()
    if kind == "command":
        return f"$ {p.get('command')}"
    if kind == "file_change":
        return f"✎ {p.get('kind')} {p.get('path')}"
    if kind in ("message", "result"):
        return str(p.get("text") or "")
    if kind == "error":
        return f"error: {p.get('message')}"
    return ""


def _watch(
    app: App, ids: list[str], echo: Callable[[str], None], *, live: bool, timeout: float
) -> None:
    """Print what each agent does as it happens, until all of them stop working."""
    deadline = time.monotonic() + timeout
    seen: dict[str, int] = dict.fromkeys(ids, 0)
    said: dict[str, str] = {}  # each agent's last message: its result usually repeats it
    kinds = ["message", "tool_call", "command", "file_change", "result", "error", "status"]
    while True:
        app.refresh()
        for sid in ids:
            for e in app.store.events(sid, after_seq=seen[sid], kinds=kinds):
                seen[sid] = e.seq
                if e.kind == "status":
                    if e.payload.get("to") in ("running", "idle", "failed"):
                        echo(f"  {sid}  [{e.payload['to']}]")
                    continue
                text = _describe(e.kind, e.payload).strip().replace("\n", " ")
                if e.kind == "message":
                    said[sid] = text
                elif e.kind == "result" and said.pop(sid, None) == text:
                    continue
                if text:
                    echo(f"  {sid}  {text[:100]}")
        sessions = [app.store.session(i) for i in ids]
        if all(s.status not in (Status.QUEUED, Status.STARTING, Status.RUNNING) for s in sessions):
            return
        if time.monotonic() > deadline:
            raise PAError("the demo agents did not finish in time", hint="see pa ls / pa logs ID")
        time.sleep(0.2 if live else 0.5)
