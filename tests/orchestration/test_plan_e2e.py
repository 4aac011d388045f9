"""Issue 15 §1, done when: a plan with auto_merge runs to the end on real agent CLIs
(Claude Code and Codex) against the scripted model server, in the right order (from the
recorded start and merge times), a conflicts_with pair never at once, surviving a server
killed with SIGKILL mid-plan."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from parallel_agents.testing import ScriptedModelServer, agents_prefix, find_agent
from parallel_agents.testing.agent_env import DEFAULT_MODELS, claude_env, codex_env
from tests.orchestration.test_plan_server import by_key, files_on, sessions_of, states, wait_plan
from tests.server.conftest import Srv, kill_agents, repo_path, start_server

__all__ = ["repo_path", "start_server"]  # fixtures, used by name

pytestmark = pytest.mark.e2e

# task -> (agent, what it depends on, its conflicts_with)
TASKS = {
    "a": ("claude", [], []),
    "b": ("codex", ["a"], ["c"]),
    "c": ("claude", ["a"], []),
}


def _binary(name: str) -> Path:
    found = find_agent(name)
    if found is not None:
        return found
    if os.environ.get("CI") or os.environ.get("PA_REQUIRE_AGENTS"):
        pytest.fail(f"{name} missing in {agents_prefix()}: run scripts/install-agents.sh")
    pytest.skip(f"{name} not installed in {agents_prefix()}: run scripts/install-agents.sh")


@pytest.fixture
def model() -> Iterator[ScriptedModelServer]:
    """One scripted session per task, matched by the token in the task's prompt. Later
    tasks come first: a CLI shows the model the repo's recent commits, whose messages
    hold the prompts of the tasks merged before (a's token is in c's context too)."""
    script = [
        {
            "match": f"plan-task-{k}",
            "turns": [
                {"say": f"I'll write {k}.txt.", "write": {"path": f"{k}.txt", "content": f"{k}\n"}},
                {"text": f"Wrote {k}.txt."},
            ],
        }
        for k in reversed(TASKS)
    ]
    server = ScriptedModelServer(script).start()
    yield server
    server.stop()


def test_a_plan_on_real_clis_through_a_server_kill(
    start_server: Callable[..., Srv],
    model: ScriptedModelServer,
    repo_path: Path,
    tmp_path: Path,
) -> None:
    """issue 15 §1: Claude Code and Codex tasks start after their dependency is merged, on
    a base holding its file, never two of the conflicts_with pair at once; the server is
    killed while the second wave works; the plan ends with every task merged, each from
    one session."""
    binaries = {name: _binary(name) for name in ("claude", "codex")}
    home = tmp_path / "cli-home"  # the CLIs' own config (both CLIs, one private HOME)
    env = {
        **claude_env(home, base_url=model.url, api_key="pa-plan-key"),
        **codex_env(home, base_url=f"{model.url}/v1", api_key="pa-plan-key"),
    }
    config = tmp_path / "pa-config.toml"
    config.write_text(
        "".join(f'[agents.{n}]\nbinary = "{b}"\n' for n, b in binaries.items()), encoding="utf-8"
    )
    # The agents inherit the server's environment; PA_CONFIG: the CLIs' XDG_CONFIG_HOME
    # must not hide pa's own config file.
    srv = start_server(env={**env, "PA_CONFIG": str(config)})
    lines = [f'name = "real"\n[defaults]\nauto_merge = true\nrepo = "{repo_path}"\n']
    for k, (agent, deps, conflicts) in TASKS.items():
        lines.append(
            f'[[tasks]]\nid = "{k}"\nagent = "{agent}"\nmodel = "{DEFAULT_MODELS[agent]}"\n'
            f'prompt = "Write {k}.txt, please. (plan-task-{k})"\n'
            f"depends_on = {deps!r}\nconflicts_with = {conflicts!r}\n".replace("'", '"')
        )
    out = srv.client.plan_run("\n".join(lines), source="real.toml")
    gid = out["plan"]["id"]

    def second_wave(o: dict[str, Any]) -> bool:
        s = states(o)
        return s["a"] == "merged" and "running" in (s["b"], s["c"])

    out = wait_plan(srv, "real", second_wave, "a merged, b or c at work", timeout=240)
    srv.kill9()
    srv.start()
    out = wait_plan(srv, "real", lambda o: o["plan"]["state"] == "finished", "the end", timeout=300)
    t = by_key(out)
    assert {k: v["state"] for k, v in t.items()} == dict.fromkeys(TASKS, "merged"), out
    for k, (_, deps, _) in TASKS.items():
        for d in deps:
            assert t[d]["merged_at"] <= t[k]["started_at"], (d, k)
    first, second = sorted((t["b"], t["c"]), key=lambda x: x["started_at"])
    assert first["ended_at"] <= second["started_at"]  # the conflicts_with pair, one at a time
    assert {k: len(v) for k, v in sessions_of(srv, gid).items()} == dict.fromkeys(TASKS, 1)
    def explain() -> str:
        parts = []
        for k in TASKS:
            sid = t[k]["session"]
            evs = srv.client.all_events(sid)
            parts.append(f"{k} {sid} {t[k]['outcome']}\n" + "\n".join(
                f"  {e['kind']} {str(e['payload'])[:300]}" for e in evs))
        return "\n".join(parts)

    assert files_on(repo_path) == {"README.md", "src", "a.txt", "b.txt", "c.txt"}, explain()
    for k, (agent, _, _) in TASKS.items():
        assert srv.session(t[k]["session"])["agent"] == agent
    assert [r for r in model.requests if r.kind in ("unmatched", "exhausted")] == []
    kill_agents(srv.home)
