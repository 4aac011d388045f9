"""Issue 15 §4 on a real agent CLI: `pa map` runs Claude Code once per item against the
scripted model server (127.0.0.1); each run edits its worktree and writes its outcome
record with its own Bash tool; `pa reduce` merges them into one branch and a third run of
the CLI reduces."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from parallel_agents.testing import ScriptedModelServer, agent_env
from parallel_agents.testing.agent_env import DEFAULT_MODELS
from tests.conftest import git, make_repo
from tests.e2e.test_pa_agents import PaCli

pytestmark = pytest.mark.e2e


def _outcome(status: str, summary: str) -> str:
    record = json.dumps({"status": status, "summary": summary})
    return f"echo '{record}' > \"$PA_OUTCOME\""


# The reducer first: its prompt quotes every item, so it would match their tokens too.
SCRIPT = [
    {
        "match": "tok-reduce",
        "turns": [
            {"say": "Summarising.", "write": {"path": "SUMMARY.md", "content": "alpha in, beta not\n"}},
            {"run": _outcome("success", "integrated alpha")},
            {"text": "Reduced."},
        ],
    },
    {
        "match": "tok-alpha",
        "turns": [
            {"say": "Writing alpha.", "write": {"path": "alpha.txt", "content": "alpha\n"}},
            {"run": _outcome("success", "wrote alpha.txt")},
            {"text": "Done alpha."},
        ],
    },
    {
        "match": "tok-beta",
        "turns": [
            {"say": "Writing beta.", "write": {"path": "beta.txt", "content": "half\n"}},
            {"run": _outcome("failure", "beta needs a decision")},
            {"text": "Could not finish beta."},
        ],
    },
]


def test_map_and_reduce_with_claude_code(tmp_path: Path) -> None:
    """issue 15 §4: two Claude Code mappers report their outcomes through $PA_OUTCOME; the
    reduce merges the successful one into one branch and lists the failed one for the
    reducer, a third Claude Code run."""
    repo = make_repo(tmp_path / "repo", {"README.md": "# real\n"})
    cli = PaCli(tmp=tmp_path, repo=repo, config=tmp_path / "pa-config.toml")
    cli.write_config()
    cli.use("claude")
    server = ScriptedModelServer(SCRIPT).start()
    try:
        env = agent_env("claude", tmp_path / "claude-home", server_url=server.url, api_key="pa-map-e2e")
        pairs = [f"--env={k}={v}" for k, v in env.items()]
        items = tmp_path / "items.txt"
        items.write_text("alpha [tok-alpha]\nbeta [tok-beta]\n")
        model = DEFAULT_MODELS["claude"]
        rep = json.loads(
            cli(
                "map", "--template", "Make the {item} file.", "--items", str(items), "--name", "real",
                "--agent", "claude", "--model", model, *pairs, "--json", timeout=120,
            ).stdout
        )
        ids = [i["session"] for i in rep["items"]]
        cli.wait(*ids)
        shown = json.loads(cli("map", "show", "real", "--json").stdout)
        by = {i["key"]: i for i in shown["items"]}
        assert by["1"]["outcome"] == {
            "status": "success", "summary": "wrote alpha.txt", "source": "record", "turn": 1, "ended": "idle",
        }, [cli.explain(s) for s in ids]
        assert by["2"]["outcome"]["status"] == "failure" and by["2"]["outcome"]["source"] == "record"

        res = json.loads(
            cli(
                "reduce", "real", "--agent", "claude", "--model", model, "--prompt", "[tok-reduce]",
                *pairs, "--json", timeout=120,
            ).stdout
        )
        assert [e["key"] for e in res["merged"]] == ["1"]
        assert [e["key"] for e in res["not_merged"]] == ["2"]
        rid = res["session"]["id"]
        cli.wait(rid)
        branch = res["session"]["branch"]
        assert git(repo, "show", f"{branch}:alpha.txt") == "alpha\n"
        names = git(repo, "ls-tree", "-r", "--name-only", branch).split()
        assert "beta.txt" not in names
        prompt = cli.show(rid)["turns"][0]["prompt"]
        assert "beta needs a decision" in prompt.split("did not succeed")[1]
        red = json.loads(cli("map", "show", res["group"]["name"], "--json").stdout)
        assert red["items"][0]["outcome"]["summary"] == "integrated alpha", cli.explain(rid)
        assert "SUMMARY.md" in cli("diff", rid, "--name-only").stdout
    finally:
        server.stop()
        subprocess.run(["git", "-C", str(repo), "worktree", "prune"], check=False)
        cli("server", "stop", check=False)
