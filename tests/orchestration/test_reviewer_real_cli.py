"""Issue 15 §3 with a real CLI: Claude Code, against the scripted model server on
127.0.0.1, writes a file as the author; a second Claude Code reviews the diff through
`pa review --agent claude` and its line comment is stored and sent back as one follow-up."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from parallel_agents.testing import agent_env
from parallel_agents.testing.agent_env import DEFAULT_MODELS
from tests.e2e.conftest import ModelServerFactory, model_server, work_repo
from tests.e2e.test_pa_agents import PaCli, pa_cli, write_turns

# The real-CLI tier's fixtures, used here as they are.
__all__ = ["model_server", "pa_cli", "work_repo"]

pytestmark = pytest.mark.e2e

ANSWER = {
    "comments": [
        {"path": "hello.txt", "line": 1, "side": "new", "body": "Say who it greets."}
    ],
    "summary": "One nit.",
}


def test_claude_reviews_claude(
    pa_cli: PaCli, model_server: ModelServerFactory, work_repo: Path
) -> None:
    """issue 15 §3: a real CLI as the reviewer; its answer (one JSON message) is stored."""
    script = [
        {"match": "author-key", "turns": [
            *write_turns("hello.txt", "hello\n", "Wrote it."),
            {"text": "Addressed."},
        ]},
        {"match": "reviewer-key", "turns": [{"text": json.dumps(ANSWER)}]},
    ]
    server = model_server(script)
    pa_cli.use("claude")
    s = pa_cli.new("claude", "Create hello.txt", server, "author-key", "home-author")
    sid = s["id"]
    assert pa_cli.wait(sid).returncode == 0, pa_cli.explain(sid)
    env = agent_env("claude", pa_cli.tmp / "home-reviewer", server_url=server.url,
                    api_key="reviewer-key")
    env["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
    pairs = [f"--env={k}={v}" for k, v in env.items()]
    p = pa_cli("review", sid, "--agent", "claude", "--model", DEFAULT_MODELS["claude"],
               *pairs, "--timeout", "120", "--json", check=False, timeout=300)
    assert p.returncode == 0, p.stderr + pa_cli.explain(sid)
    res = json.loads(p.stdout)
    [c] = res["comments"]
    assert (c["path"], c["line"], c["side"], c["code"], c["body"]) == (
        "hello.txt", 1, "new", "hello", "Say who it greets."
    )
    assert res["summary"] == "One nit." and res["review"]["status"] == "discarded"
    # The reviewer's request carried the diff.
    body = json.dumps([r.body for r in server.turns("reviewer-key")])
    assert "+hello" in body
    sent = json.loads(pa_cli("review", sid, "--send", "--json").stdout)
    assert [x["id"] for x in sent["sent"]] == [c["id"]]
    assert pa_cli.wait(sid).returncode == 0, pa_cli.explain(sid)
    turns = pa_cli.show(sid)["turns"]
    assert len(turns) == 2 and "Say who it greets." in turns[1]["prompt"]
