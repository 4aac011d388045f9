"""Issue 19: `pa runtime nodes` lists the Ray cluster's nodes, their pa_agent slots (free
and total), the agent CLIs on each node's PATH with their versions, and the pa sessions
running there; a discard gives the session's slot back (its actor killed)."""

from __future__ import annotations

import json
import os
import re
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from parallel_agents.runtime.ray_runtime import actor_name, namespace_for
from parallel_agents.testing import ScriptedModelServer
from tests.conftest import make_repo, pa
from tests.ray._split import CLI, SCRIPT, claude_session, ray, split_cluster


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with split_cluster(tmp_path_factory.mktemp("split")) as sc:
        yield sc


def _nodes(repo: Path, env: dict[str, str], *more: str) -> dict[str, dict[str, Any]]:
    out = pa("runtime", "nodes", "--json", *more, cwd=repo, env=env, check=True, timeout=240)
    return {n["id"]: n for n in json.loads(out.stdout)}


def _until(what: Any, deadline: float = 90.0) -> Any:
    """``what()`` once it is truthy (polled: Ray's slot counts lag its actors a moment)."""
    end = time.monotonic() + deadline
    while True:
        got = what()
        if got or time.monotonic() > end:
            return got
        time.sleep(0.5)  # a poll interval, not a wait for an outcome


def test_runtime_nodes_lists_slots_clis_and_sessions_and_discard_gives_the_slot_back(
    split: dict[str, Any], tmp_path: Path
) -> None:
    """issue 19: `pa runtime nodes --json`: both workers with their slots, the node with
    claude shows it and its version and the claude session running there, the other none;
    `pa discard` archives the session and gives its slot back (free 1 -> 2, actor gone, its worktree on the node removed)."""
    repo = make_repo(tmp_path / "repo", {"a.txt": "one\n"})
    env = {"PA_RAY_ADDRESS": split["cluster"].address, "PATH": split["path"]}
    a, b = split["with_cli"], split["without"]
    before = _nodes(repo, env)
    assert before[a]["slots"] == before[b]["slots"] == 2
    assert before[a]["alive"] and before[b]["alive"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", before[a]["clis"][CLI]["version"]), before[a]
    assert before[a]["clis"][CLI]["binary"] == CLI
    assert before[b]["clis"] == {}
    assert [n["slots"] for i, n in before.items() if i not in (a, b)] == [0]  # the head
    # The probe is cached per node under PA_HOME.
    cache = json.loads((Path(os.environ["PA_HOME"]) / "ray-nodes.json").read_text())
    assert set(cache) == {a, b}

    server = ScriptedModelServer(SCRIPT).start()
    try:
        sid = claude_session(tmp_path, repo, env, server.url)
    finally:
        server.stop()
    held = _until(lambda: (n := _nodes(repo, env, "--refresh"))[a]["free"] == 1 and n)
    assert held, _nodes(repo, env)
    assert [s["id"] for s in held[a]["sessions"]] == [sid]
    assert held[a]["sessions"][0]["agent"] == CLI
    assert held[b]["sessions"] == [] and held[b]["free"] == 2
    table = pa("runtime", "nodes", cwd=repo, env=env, check=True, timeout=240).stdout
    assert a[:12] in table and b[:12] in table and sid in table and "1/2" in table

    ns = namespace_for(Path(os.environ["PA_HOME"]))
    base = Path(os.environ.get("PA_RAY_NODE_DIR") or tempfile.gettempdir()) / f"pa-ray-{ns}"
    assert (base / "worktrees" / sid / "hello.txt").exists()  # the node's own worktree
    out = json.loads(pa("discard", sid, "--json", cwd=repo, env=env, check=True,
                        timeout=180).stdout)  # fmt: skip
    assert "archive" in json.dumps(out)
    freed = _until(lambda: (n := _nodes(repo, env))[a]["free"] == 2 and n)
    assert freed, _nodes(repo, env)
    assert freed[a]["sessions"] == []
    assert not (base / "worktrees" / sid).exists()  # the actor removed it (close) first
    if not ray.is_initialized():
        ray.init(address=split["cluster"].address, logging_level=40, log_to_driver=False)
    with pytest.raises(ValueError):
        ray.get_actor(actor_name(sid), namespace=ns)


def test_runtime_nodes_without_a_cluster_is_a_clear_error(tmp_path: Path) -> None:
    """issue 19: `pa runtime nodes` with no Ray head answering: `error:` + `hint:`."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = pa("runtime", "nodes", env={"PA_RAY_ADDRESS": f"127.0.0.1:{port}"}, timeout=120)
    assert r.returncode != 0
    assert f"error: cannot reach the Ray cluster at 127.0.0.1:{port}" in r.stderr
    assert "hint:" in r.stderr and "Traceback" not in r.stderr
