"""Issue 19, end to end: six command-agent sessions started at once on the package's
cluster (two worker nodes of 4 slots, a head without slots) spread over BOTH workers, and
every one's change comes home."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.conftest import make_repo, pa
from tests.ray._leave import discard_all
from tests.ray.test_ray_cluster import _turn_state


def test_six_sessions_at_once_spread_over_both_worker_nodes(
    cluster: Any, tmp_path: Path
) -> None:
    """issue 19: 6 `pa new --runtime ray` at once: all end idle with their own change in
    their local worktree, and the nodes that ran them are both workers, never the head."""
    c, worker_ids = cluster
    repo = make_repo(tmp_path / "repo", {"a.txt": "one\n"})
    env = {"PA_RAY_ADDRESS": c.address}

    def new(i: int) -> str:
        out = pa(
            "new", f"spread {i}", "--runtime", "ray", "--json",
            "--cmd", "sh -c 'echo \"$PA_SESSION_ID\" > mine.txt; echo done'",
            cwd=repo, env=env, check=True, timeout=300,
        ).stdout  # fmt: skip
        return str(json.loads(out)["id"])

    try:
        with ThreadPoolExecutor(6) as pool:  # six `pa new` at once
            ids = list(pool.map(new, range(6)))
        assert len(set(ids)) == 6
        pa("wait", *ids, "--timeout", "240", cwd=repo, env=env, check=True, timeout=300)
        nodes = set()
        for sid in ids:
            shown = json.loads(pa("show", sid, "--json", cwd=repo, env=env, check=True).stdout)
            assert shown["status"] == "idle", shown
            assert (Path(shown["worktree"]) / "mine.txt").read_text() == sid + "\n"
            nodes.add(_turn_state(sid)["node"])
        head = c.head_node.node_id
        assert head not in nodes
        assert nodes == worker_ids, (nodes, worker_ids)
    finally:
        discard_all(repo, env)
