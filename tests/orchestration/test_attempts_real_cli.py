"""Issue 15 §2 with real agent CLIs: best-of-3 across Claude Code and Codex, judged by
Claude Code, then picked and merged. Every CLI talks to the scripted model server on
127.0.0.1 (no network, no credentials): the attempts' script writes a file, the judge's
answers with a ranking (it is told apart by its API key).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from parallel_agents.testing import ScriptedModelServer, agent_env, base_environ, find_agent
from parallel_agents.testing.agent_env import DEFAULT_MODELS
from tests.conftest import git, make_repo

pytestmark = pytest.mark.e2e

RANKING = {
    "ranking": [
        {"attempt": "2", "score": 9, "reason": "codex kept it minimal"},
        {"attempt": "1", "score": 7, "reason": "fine"},
        {"attempt": "3", "score": 6, "reason": "fine, same as 1"},
    ]
}


def _binary(name: str) -> Path:
    found = find_agent(name)
    if found is None:
        if os.environ.get("CI") or os.environ.get("PA_REQUIRE_AGENTS"):
            pytest.fail(f"{name} is not installed: run scripts/install-agents.sh")
        pytest.skip(f"{name} not installed: run scripts/install-agents.sh")
    return found


def test_best_of_three_across_two_real_clis_with_a_judge(tmp_path: Path) -> None:
    """issue 15 §2 (done when): best-of-3 across claude and codex plus a claude judge picks
    and merges one; the judge's ranking is validated and shown."""
    claude, codex = _binary("claude"), _binary("codex")
    script = [
        {"match": "attempts-key", "turns": [
            {"say": "Writing it.", "write": {"path": "solution.txt", "content": "solved\n"}},
            {"text": "Done: solution.txt written."},
        ]},
        {"match": "judge-key", "turns": [{"text": json.dumps(RANKING)}]},
    ]  # fmt: skip
    server = ScriptedModelServer(script).start()
    try:
        repo = make_repo(tmp_path / "proj")
        config = tmp_path / "pa.toml"
        config.write_text(
            f"[agents.claude]\nbinary = {json.dumps(str(claude))}\n"
            f"model = {json.dumps(DEFAULT_MODELS['claude'])}\n"
            f"[agents.codex]\nbinary = {json.dumps(str(codex))}\n"
            f"model = {json.dumps(DEFAULT_MODELS['codex'])}\n"
        )

        def environ(key: str, home: Path) -> dict[str, str]:
            # The agents inherit pa's environment (in-process: no server in between).
            env = {**base_environ(), "PA_CONFIG": str(config)}
            for name in ("claude", "codex"):
                env.update(agent_env(name, home, server_url=server.url, api_key=key))
            env["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
            return env

        def pa(*args: str, key: str, home: Path, check: bool = True) -> Any:
            p = subprocess.run(
                [sys.executable, "-m", "parallel_agents", *args],
                cwd=repo, env=environ(key, home), stdin=subprocess.DEVNULL,
                capture_output=True, text=True, timeout=400,
            )  # fmt: skip
            if check:
                assert p.returncode == 0, f"pa {args[:2]}: {p.stdout[-3000:]}\n{p.stderr[-3000:]}"
            return json.loads(p.stdout) if "--json" in args and p.stdout.strip() else p

        work = tmp_path / "agents-home"
        d = pa("new", "Write solution.txt", "--attempts", "3", "--agent", "claude,codex",
               "--json", key="attempts-key", home=work)  # fmt: skip
        ids = [s["id"] for s in d["sessions"]]
        assert [s["agent"] for s in d["sessions"]] == ["claude", "codex", "claude"]
        w = pa("wait", *ids, "--timeout", "240", key="attempts-key", home=work, check=False)
        assert w.returncode == 0, w.stdout + w.stderr
        name = d["group"]["name"]
        c = pa("compare", name, "--judge", "claude", "--timeout", "240", "--json",
               key="judge-key", home=tmp_path / "judge-home")  # fmt: skip
        assert c["judge"]["state"] == "done", c["judge"]
        assert [r["attempt"] for r in c["judge"]["ranking"]] == ["2", "1", "3"]
        rows = {r["attempt"]: r for r in c["attempts"]}
        assert rows["2"]["score"] == 9 and rows["2"]["agent"] == "codex"
        assert all(r["files"] == 1 and r["additions"] == 1 for r in rows.values())
        # Real CLIs report their usage: the turn rows carry tokens.
        assert all(r["input_tokens"] + r["output_tokens"] > 0 for r in rows.values()), rows
        out = pa("pick", name, "2", "--json", key="attempts-key", home=work)
        assert out["merge"]["merged"] == [ids[1]]
        assert git(repo, "show", "main:solution.txt") == "solved\n"
        assert [x["session"] for x in out["discarded"]] == [ids[0], ids[2]]
    finally:
        server.stop()
