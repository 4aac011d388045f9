"""Issue 18 (done when): a real Claude Code as the lead of a parallel run, through `pa mcp`.

The lead is itself a pa session (`pa new --agent claude`), with ``[agents.claude] pa_mcp =
true``: pa hands it ``--mcp-config`` naming `pa mcp` and allows the ``mcp__pa`` tools. Its
"model" is the scripted model server on 127.0.0.1, which calls ``new_session`` twice, ``wait``
(no ids: all of the caller's children), ``diff`` by title, then answers with a summary. The
children are command agents writing one file each. Both ends of the supported range
(``claude`` and ``claude-oldest``) lead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from parallel_agents.testing import agent_env
from parallel_agents.testing.agent_env import DEFAULT_MODELS

from . import test_pa_agents as base
from .conftest import ModelServerFactory

pytestmark = pytest.mark.e2e

LEAD_PROMPT = "lead-task: split the work in two and report."
CHILDREN = {"alpha": ("alpha.txt", "alpha\n"), "beta": ("beta.txt", "beta\n")}
SUMMARY = "Both children are done: alpha wrote alpha.txt and beta wrote beta.txt."


def _pa_tool(name: str, **arguments: Any) -> dict[str, Any]:
    # Claude Code names an MCP tool mcp__<server>__<tool>; pa's server is "pa".
    return {"tool": {"name": f"mcp__pa__{name}", "arguments": arguments}}


def _child_cmd(path: str, content: str) -> list[str]:
    """A command agent writing one file: the children are cheap, the lead is the real CLI."""
    code = f"open({path!r}, 'w').write({content!r}); print('wrote {path}')"
    return [sys.executable, "-c", code]


def _script() -> list[dict[str, Any]]:
    lead = [
        {"say": f"Starting {title}.", **_pa_tool(
            "new_session", prompt=f"Write {path}.", agent="command",
            cmd=_child_cmd(path, content), title=title,
        )}
        for title, (path, content) in CHILDREN.items()
    ]  # fmt: skip
    lead += [
        {"say": "Waiting for them.", **_pa_tool("wait", timeout=150)},
        {"say": "Reading their diffs.", "calls": [_pa_tool("diff", id=t) for t in CHILDREN]},
        {"text": SUMMARY},
    ]
    return [{"match": "lead-task", "turns": lead}]


@dataclass
class LeadCli(base.PaCli):
    """`pa` whose server, and so the lead it starts, talks to the scripted model."""

    agent: dict[str, str] = field(default_factory=dict)

    @property
    def environ(self) -> dict[str, str]:
        return {**super().environ, **self.agent}


@pytest.mark.parametrize("binary", ["claude", "claude-oldest"])
def test_claude_code_leads_two_children_through_pa_mcp(
    binary: str, tmp_path: Path, work_repo: Path, model_server: ModelServerFactory
) -> None:
    """issue 18: Claude Code, a pa session with pa_mcp, starts two children over MCP,
    waits for them, reads their diffs by title and names them in its answer; the children
    have their own worktrees and changes and are linked to the lead."""
    exe = base.require_binary(binary)
    server = model_server(_script())
    cli = LeadCli(tmp=tmp_path, repo=work_repo, config=tmp_path / "pa-config.toml")
    cli.agent_settings["claude"] = {
        "binary": str(exe), "model": DEFAULT_MODELS["claude"], "pa_mcp": True,
    }  # fmt: skip
    cli.write_config()
    cli.agent = agent_env("claude", tmp_path / "claude-home", server_url=server.url, api_key="e2e")
    try:
        lead = json.loads(cli("new", LEAD_PROMPT, "--agent", "claude", "--json").stdout)
        lid = lead["id"]
        assert cli.wait(lid, timeout=240).returncode == 0, cli.explain(lid)

        everyone = json.loads(cli("ls", "--json").stdout)
        kids = sorted((s for s in everyone if s.get("parent") == lid), key=lambda s: s["title"])
        assert [k["title"] for k in kids] == sorted(CHILDREN), cli.explain(lid)
        trees = {Path(k["worktree"]) for k in kids} | {Path(lead["worktree"])}
        assert len(trees) == 3  # each child in a worktree of its own
        for kid, (title, (path, content)) in zip(kids, sorted(CHILDREN.items()), strict=True):
            assert kid["status"] == "idle", cli.explain(kid["id"])
            assert (Path(kid["worktree"]) / path).read_text() == content, cli.explain(kid["id"])
            assert cli.diff_paths(kid["id"]) == {path}, title
        assert cli.diff_paths(lid) == set()  # the lead only dispatched
        assert base.untouched(work_repo)

        # The lead's answer names its children, and what it was answering from were pa's
        # own tool results: the children's ids (new_session) and their diffs (diff).
        events = cli.logs(lid)
        assert [r["text"] for r in base.events_of(events, "result")] == [SUMMARY], events
        last = [r for r in server.turns("lead-task") if r.turn == len(CHILDREN) + 2]
        assert last, [(r.session, r.turn) for r in server.requests()]
        seen = json.dumps(last[-1].body)
        for kid, (path, content) in zip(kids, sorted(CHILDREN.values()), strict=True):
            assert kid["id"] in seen and path in seen and content.strip() in seen, seen[-4000:]
    finally:
        proc = cli("ls", "--json", check=False)
        if proc.returncode == 0:
            for s in json.loads(proc.stdout):
                if s["status"] in ("starting", "running", "queued"):
                    cli("stop", s["id"], check=False)
        cli("server", "stop", check=False)


def test_claude_mcp_add_gives_claude_code_pa_as_its_tools(
    tmp_path: Path, work_repo: Path, model_server: ModelServerFactory
) -> None:
    """issue 18 (done when): the README's own `claude mcp add pa -- pa mcp`, run in the
    repo, gives the Claude Code a person runs there (headless, its tools allowed) a working
    lead: two children started through pa, waited for, diffed and named in its answer.
    Not a pa session itself, the lead has no session for its children to link to."""
    exe = base.require_binary("claude")
    server = model_server(_script())
    cli = LeadCli(tmp=tmp_path, repo=work_repo, config=tmp_path / "pa-config.toml")
    cli.write_config()
    env = {
        **cli.environ,
        **agent_env("claude", tmp_path / "claude-home", server_url=server.url, api_key="e2e"),
    }
    # `pa` as the user has it: the installed script beside this Python.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', os.defpath)}"
    env.pop("PA_SESSION_ID", None)

    def claude(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(exe), *args], cwd=work_repo, env=env, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    try:
        added = claude("mcp", "add", "pa", "--", "pa", "mcp")
        assert added.returncode == 0, added.stdout + added.stderr
        p = claude(
            "-p", LEAD_PROMPT, "--model", DEFAULT_MODELS["claude"],
            "--allowedTools", "mcp__pa", timeout=240,
        )  # fmt: skip
        assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
        assert SUMMARY in p.stdout, p.stdout[-3000:]
        everyone = json.loads(cli("ls", "--json").stdout)
        kids = sorted((s for s in everyone if s["title"] in CHILDREN), key=lambda s: s["title"])
        assert [k["title"] for k in kids] == sorted(CHILDREN), everyone
        for kid, (path, content) in zip(kids, sorted(CHILDREN.values()), strict=True):
            assert (Path(kid["worktree"]) / path).read_text() == content, cli.explain(kid["id"])
            assert cli.diff_paths(kid["id"]) == {path}
            assert kid.get("parent") is None  # a person's Claude Code: no pa session above
        assert base.untouched(work_repo)
    finally:
        cli("server", "stop", check=False)
