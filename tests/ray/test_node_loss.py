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
