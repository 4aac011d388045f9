"""Issue 19: placement by CLI. On a cluster where one worker node has the pinned claude
CLI on its PATH and the other has none, a claude session's actor goes only to the node
with it; an agent no node has is refused at `pa new` with nothing made; a merge that
removes the worktree gives the session's slot back."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from parallel_agents.runtime.ray_runtime import actor_name, namespace_for
from parallel_agents.testing import ScriptedModelServer
from tests.conftest import git, make_repo, pa
from tests.ray._split import SCRIPT, claude_session, ray, split_cluster


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with split_cluster(tmp_path_factory.mktemp("split")) as sc:
        yield sc


def _turn_node(sid: str, n: int = 1) -> str:
    home = Path(os.environ["PA_HOME"])
    [found] = list(home.glob(f"**/{sid}/turns/{n}/ray.json"))
    return str(json.loads(found.read_text())["node"])


def _driver(address: str) -> Any:
    if not ray.is_initialized():
        ray.init(address=address, logging_level=40, log_to_driver=False)
    return ray


class _Holder:
    """Holds one pa_agent slot of a node (the test's own actor, not a session)."""

    def ping(self) -> bool:
        return True


def _take_a_slot(address: str, node: str) -> Any:
    """Take one slot of ``node``: half of its two are used, so Ray on its own would put
    the next actor on the other, idle node (its hybrid policy prefers nodes under 50%)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    r = _driver(address)
    holder = r.remote(_Holder).options(
        num_cpus=0, resources={"pa_agent": 1},
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node, soft=False),
    ).remote()  # fmt: skip
    assert r.get(holder.ping.remote(), timeout=120)
    return holder


def _actor_gone(address: str, sid: str, deadline: float = 90.0) -> bool:
    """Whether the session's named actor is gone (polled: ray.kill is asynchronous)."""
    _driver(address)
    ns = namespace_for(Path(os.environ["PA_HOME"]))
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            ray.get_actor(actor_name(sid), namespace=ns)
        except ValueError:
            return True
        time.sleep(0.2)  # a poll interval, not a wait for an outcome
    return False


def test_a_cli_session_goes_only_to_the_node_with_its_cli(
    split: dict[str, Any], tmp_path: Path
) -> None:
    """issue 19: `pa new --agent claude --runtime ray` runs on the worker node that has
    claude on its PATH (asserted by node id), even when the node without it is the idler
    one Ray itself would choose; its work comes home; `pa merge` (merge.remove_worktree)
    kills its actor afterwards."""
    repo = make_repo(tmp_path / "repo", {"a.txt": "one\n"})
    cfg = tmp_path / "pa.toml"
    cfg.write_text("[merge]\nremove_worktree = true\n")
    env = {"PA_RAY_ADDRESS": split["cluster"].address, "PATH": split["path"],
           "PA_CONFIG": str(cfg)}  # fmt: skip
    holder = _take_a_slot(split["cluster"].address, split["with_cli"])
    server = ScriptedModelServer(SCRIPT).start()
    try:
        sid = claude_session(tmp_path, repo, env, server.url)
    finally:
        server.stop()
        ray.kill(holder)
    shown = json.loads(pa("show", sid, "--json", cwd=repo, env=env, check=True).stdout)
    assert shown["status"] == "idle", shown
    assert _turn_node(sid) == split["with_cli"] != split["without"]
    assert (Path(shown["worktree"]) / "hello.txt").read_text() == "hello from a node\n"
    pa("merge", sid, cwd=repo, env=env, check=True, timeout=120)
    assert git(repo, "show", "main:hello.txt") == "hello from a node\n"
    assert _actor_gone(split["cluster"].address, sid)


def test_an_agent_no_node_has_is_refused_and_nothing_is_made(
    split: dict[str, Any], tmp_path: Path
) -> None:
    """issue 19: `pa new --agent codex --runtime ray` where no node has codex (this machine
    has it, for pa's own check): `error:` naming the CLI and the nodes probed, `hint:`
    `pa runtime nodes`, no session, no branch."""
    codex = Path(split["bin"]).parent / "with-codex"
    codex.mkdir(exist_ok=True)
    from parallel_agents.testing import find_agent

    found = find_agent("codex")
    if found is None:
        pytest.skip("codex not installed: run scripts/install-agents.sh")
    if not (codex / "codex").exists():
        (codex / "codex").symlink_to(found)
    repo = make_repo(tmp_path / "repo", {"a.txt": "one\n"})
    env = {"PA_RAY_ADDRESS": split["cluster"].address,
           "PATH": f"{codex}{os.pathsep}{split['path']}"}  # fmt: skip
    r = pa("new", "x", "--agent", "codex", "--runtime", "ray", cwd=repo, env=env, timeout=240)
    assert r.returncode != 0, r.stdout
    assert "error: no node of the Ray cluster has the 'codex' program" in r.stderr, r.stderr
    assert split["with_cli"][:12] in r.stderr and split["without"][:12] in r.stderr
    assert "hint: see `pa runtime nodes`" in r.stderr
    assert "Traceback" not in r.stderr
    assert json.loads(pa("ls", "--json", cwd=repo, env=env, check=True).stdout) == []
    assert git(repo, "branch", "--list", "pa/*") == ""
