"""Issue 19, end to end on a small multi-node Ray cluster on this machine (loopback only):
a head without agent slots and two worker nodes with ``pa_agent`` slots. A command-agent
session runs on a worker node; its change comes home as a local checkpoint, so `pa diff`
shows it and `pa merge` merges it into the local base."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git, make_repo, pa


def test_a_session_on_a_worker_node_comes_home_diffs_and_merges(
    cluster: Any, tmp_path: Path
) -> None:
    """issue 19: `pa new --runtime ray --cmd ...` runs on a worker node (its node id is a
    worker's); the change it made there is the local checkpoint: `pa diff` shows it and
    `pa merge` merges it into the local base. A follow-up runs on the same node."""
    c, worker_ids = cluster
    repo = make_repo(tmp_path / "repo", {"a.txt": "one\n"})
    env = {"PA_RAY_ADDRESS": c.address}
    s = json.loads(pa(
        "new", "remote work", "--runtime", "ray", "--json",
        "--cmd", "sh -c 'echo from-the-node >> b.txt; echo done'",
        cwd=repo, env=env, check=True, timeout=180,
    ).stdout)  # fmt: skip
    sid = s["id"]
    pa("wait", sid, "--timeout", "120", cwd=repo, env=env, check=True, timeout=180)
    shown = json.loads(pa("show", sid, "--json", cwd=repo, env=env, check=True).stdout)
    assert shown["status"] == "idle", shown
    assert shown["options"]["runtime"] == "ray"
    node = _turn_state(sid)["node"]
    assert node in worker_ids
    # The node's change is in the local worktree and the local checkpoint.
    assert (Path(shown["worktree"]) / "b.txt").read_text() == "from-the-node\n"
    # A follow-up goes to the same actor, on the same node, on top of the first turn.
    pa("send", sid, "again", cwd=repo, env=env, check=True, timeout=180)
    pa("wait", sid, "--timeout", "120", cwd=repo, env=env, check=True, timeout=180)
    assert _turn_state(sid, 2)["node"] == node
    assert (Path(shown["worktree"]) / "b.txt").read_text() == "from-the-node\n" * 2
    diff = pa("diff", sid, cwd=repo, env=env, check=True).stdout
    assert "+from-the-node" in diff and "b.txt" in diff
    pa("merge", sid, cwd=repo, env=env, check=True, timeout=120)
    assert git(repo, "show", "main:b.txt") == "from-the-node\n" * 2


def _turn_state(sid: str, n: int = 1) -> dict[str, Any]:
    """Where turn ``n`` ran: the runtime's note in the turn's local folder."""
    import os

    home = Path(os.environ["PA_HOME"])
    [found] = list(home.glob(f"**/{sid}/turns/{n}/ray.json"))
    data: dict[str, Any] = json.loads(found.read_text())
    return data


def test_server_started_on_ray_runs_its_sessions_there(
    cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """issue 19: `pa server start --runtime ray --ray-address ADDR`: sessions made through
    that server (no --runtime) run on a worker node, and their `--env` secret reaches the
    agent there."""
    c, worker_ids = cluster
    monkeypatch.setenv("PA_SERVER_AUTOSTART", "1")
    repo = make_repo(tmp_path / "repo", {"a.txt": "one\n"})
    try:
        pa("server", "start", "--runtime", "ray", "--ray-address", c.address, check=True,
           timeout=120)  # fmt: skip
        s = json.loads(pa(
            "new", "through the server", "--json", "--env", "PA_TEST_SECRET=s3cret",
            "--cmd", "sh -c 'echo \"$PA_TEST_SECRET\" > secret.txt'",
            cwd=repo, check=True, timeout=180,
        ).stdout)  # fmt: skip
        pa("wait", s["id"], "--timeout", "120", cwd=repo, check=True, timeout=180)
        shown = json.loads(pa("show", s["id"], "--json", cwd=repo, check=True).stdout)
        assert shown["status"] == "idle", shown
        assert shown["options"]["runtime"] == "ray"
        assert _turn_state(s["id"])["node"] in worker_ids
        assert (Path(shown["worktree"]) / "secret.txt").read_text() == "s3cret\n"
        # It travelled as a call argument held in memory: nothing Ray wrote (its logs,
        # the actors' and raylets' output, its session files) holds it.
        ray_dir = Path(c.head_node.get_session_dir_path())
        leaked = [p for p in ray_dir.rglob("*") if p.is_file() and b"s3cret" in _bytes(p)]
        assert not leaked, leaked
        home = Path(os.environ["PA_HOME"])
        for kept in [home / "server.log", *home.glob("pa.db*")]:
            assert b"s3cret" not in _bytes(kept), kept
    finally:
        pa("server", "stop", timeout=60)


def _bytes(p: Path) -> bytes:
    """A file's bytes; b"" for one Ray removed or cannot share (a socket, a pipe)."""
    try:
        return p.read_bytes()
    except OSError:
        return b""
