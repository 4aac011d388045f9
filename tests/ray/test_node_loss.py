"""Issue 19: a worker node lost mid-turn. This module takes a node away, so it runs on a
cluster of its own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_repo, pa
from tests.ray.conftest import start_cluster
from tests.ray.test_ray_cluster import _turn_state


@pytest.fixture(scope="module")
def own_cluster() -> Iterator[tuple[Any, set[str]]]:
    with start_cluster() as c:
        yield c


def test_a_worker_node_lost_mid_turn_leaves_the_session_interrupted(
    own_cluster: Any, tmp_path: Path
) -> None:
    """issue 19: the worker node running a turn is removed mid-turn: the session ends
    `interrupted` (never stuck `running`)."""
    c, _ = own_cluster
    repo = make_repo(tmp_path / "repo", {"a.txt": "one\n"})
    env = {"PA_RAY_ADDRESS": c.address}
    s = json.loads(pa(
        "new", "long", "--runtime", "ray", "--json",
        "--cmd", "sh -c 'echo started; exec sleep 600'",
        cwd=repo, env=env, check=True, timeout=180,
    ).stdout)  # fmt: skip
    sid = s["id"]
    node_id = _turn_state(sid)["node"]
    [node] = [w for w in c.worker_nodes if w.node_id == node_id]
    try:
        c.remove_node(node, allow_graceful=False)
        pa("wait", sid, "--timeout", "120", cwd=repo, env=env, timeout=180)
        shown = json.loads(pa("show", sid, "--json", cwd=repo, env=env, check=True).stdout)
        assert shown["status"] == "interrupted", shown
    finally:
        # The node's wrapper runs in its own session: end what carries the session's tag.
        from parallel_agents.runtime import local

        local.end_tagged(sid)


# Turn by turn, chosen by the prompt: write b.txt (uncommitted), run long, read b.txt.
_TURNS = ("sh -c 'case \"$PA_PROMPT\" in *long*) echo long; exec sleep 600;;"
          " *read*) cat b.txt > c.txt;; *) echo from-node-a > b.txt;; esac'")


def test_pa_send_restarts_an_interrupted_session_on_another_node_from_its_checkpoint(
    own_cluster: Any, tmp_path: Path
) -> None:
    """issue 19: turn 1 on node A leaves b.txt uncommitted; turn 2 runs long and node A is
    removed → `interrupted`; `pa send` starts a new actor (same name) on node B from the
    local checkpoint: the agent there sees b.txt (it copies it to c.txt), the result comes
    home and `pa diff` shows both files; nothing lost."""
    c, _ = own_cluster
    while len(c.worker_nodes) < 2:  # the test above took a node away: two are needed
        c.add_node(num_cpus=1, resources={"pa_agent": 4})
    c.wait_for_nodes()
    repo = make_repo(tmp_path / "repo", {"a.txt": "one\n"})
    env = {"PA_RAY_ADDRESS": c.address}
    s = json.loads(pa(
        "new", "write", "--runtime", "ray", "--json", "--cmd", _TURNS,
        cwd=repo, env=env, check=True, timeout=180,
    ).stdout)  # fmt: skip
    sid = s["id"]
    pa("wait", sid, "--timeout", "120", cwd=repo, env=env, check=True, timeout=180)
    wt = Path(json.loads(pa("show", sid, "--json", cwd=repo, env=env, check=True).stdout)
              ["worktree"])  # fmt: skip
    assert (wt / "b.txt").read_text() == "from-node-a\n"
    node_a = _turn_state(sid, 1)["node"]
    try:
        pa("send", sid, "long", cwd=repo, env=env, check=True, timeout=180)
        assert _turn_state(sid, 2)["node"] == node_a
        [node] = [w for w in c.worker_nodes if w.node_id == node_a]
        c.remove_node(node, allow_graceful=False)
        pa("wait", sid, "--timeout", "120", cwd=repo, env=env, timeout=180)
        shown = json.loads(pa("show", sid, "--json", cwd=repo, env=env, check=True).stdout)
        assert shown["status"] == "interrupted", shown
        assert (wt / "b.txt").read_text() == "from-node-a\n"  # the checkpoint is home

        pa("send", sid, "read", cwd=repo, env=env, check=True, timeout=300)
        pa("wait", sid, "--timeout", "120", cwd=repo, env=env, check=True, timeout=180)
        shown = json.loads(pa("show", sid, "--json", cwd=repo, env=env, check=True).stdout)
        assert shown["status"] == "idle", shown
        third = _turn_state(sid, 3)
        assert third["node"] != node_a
        assert third["node"] in {w.node_id for w in c.worker_nodes}
        # A new actor: everything shipped, the uncommitted b.txt as a snapshot.
        assert third["shipped"]["kind"] == "full" and third["shipped"]["snapshot"], third
        assert third["shipped"]["fresh"] and not _turn_state(sid, 2)["shipped"]["fresh"]
        assert (wt / "c.txt").read_text() == "from-node-a\n"
        assert (wt / "b.txt").read_text() == "from-node-a\n"
        diff = pa("diff", sid, cwd=repo, env=env, check=True).stdout
        assert "b.txt" in diff and "c.txt" in diff and "+from-node-a" in diff, diff
    finally:
        from parallel_agents.runtime import local

        local.end_tagged(sid)
