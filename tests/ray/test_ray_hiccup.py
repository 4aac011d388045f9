"""Issue 19: whether a Ray turn still runs is Ray's verdict, not a guess from how old its
state is. A poll that cannot be answered now (the actor busy, a timeout, the head away)
leaves the turn running; an actor Ray does not know is gone. (A node lost mid-turn, Ray's
`ActorDiedError`: tests/ray/test_node_loss.py.)"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from parallel_agents.runtime import local
from parallel_agents.runtime import ray_runtime as rr
from parallel_agents.runtime.base import LaunchSpec, TurnFiles
from tests.conftest import make_repo
from tests.ray.conftest import poll

STALE = 3600.0  # how far back ray.json is dated: far older than any grace period


def _age(files: TurnFiles) -> None:
    p = files.dir / "ray.json"
    old = time.time() - STALE
    os.utime(p, (old, old))


def test_a_busy_actor_is_a_hiccup_not_an_interrupted_turn(
    cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """issue 19: the session's actor is busy (a `stop` waiting out its grace on an agent
    that ignores SIGINT/SIGTERM), so a poll times out, and ray.json is an hour old:
    `alive` answers True at once, while the agent still runs (it used to wait on the
    actor, or call a stale turn gone)."""
    import ray

    c, _ = cluster
    monkeypatch.setattr(rr, "POLL_TIMEOUT", 1.0)
    repo = make_repo(tmp_path / "repo", {"a.txt": "one\n"})
    sid = "hiccup" + uuid.uuid4().hex[:8]
    rt = rr.RayRuntime(home=Path(os.environ["PA_HOME"]), address=c.address)
    files = TurnFiles(tmp_path / "turns" / "1")
    script = "trap '' INT TERM; while :; do echo tick; sleep 0.2; done"
    spec = LaunchSpec(session_id=sid, argv=["sh", "-c", script], cwd=repo,
                      env={"PATH": os.environ["PATH"]}, repo_path=repo, branch="main")  # fmt: skip
    rt.start(files, spec)
    actor = ray.get_actor(rr.actor_name(sid), namespace=rt.namespace)
    node_files = TurnFiles(Path(tempfile.gettempdir()) / f"pa-ray-{rt.namespace}" / "turns"
                           / sid / "1")  # fmt: skip
    busy = None
    try:
        poll("the first ticks", lambda: b"tick" in rt.read(files, 0, 1 << 20)[0])
        busy = actor.stop.remote(1, 600.0)  # waits out its grace: the actor is busy
        poll("the stop under way", lambda: not _answers(actor))
        _age(files)
        answer: list[bool] = []
        t = threading.Thread(target=lambda: answer.append(rt.alive(files)), daemon=True)
        t.start()
        poll("alive's answer", lambda: answer)
        assert answer == [True]
        # It answered while the agent still ran: no exit record, its process alive.
        assert node_files.exit_info() is None and files.exit_info() is None
        assert local.alive(node_files.pid())
    finally:
        pid = node_files.pid()
        if pid is not None:
            local.signal_group(pid, 9)
        if busy is not None:
            ray.get(busy, timeout=120)
        ray.kill(actor)
        local.end_tagged(sid)
        shutil.rmtree(node_files.dir.parent, ignore_errors=True)


def _answers(actor: Any) -> bool:
    """Whether the actor answers a poll within a second (a busy one does not)."""
    import ray

    try:
        ray.get(actor.poll.remote(1, 0, 0), timeout=1.0)
    except ray.exceptions.GetTimeoutError:
        return False
    return True


def test_an_actor_ray_does_not_know_is_gone_at_once(cluster: Any, tmp_path: Path) -> None:
    """issue 19: a turn whose ray.json names an actor Ray has no such name for is gone,
    however fresh its state (it used to count as alive for 5 s)."""
    c, _ = cluster
    rt = rr.RayRuntime(home=Path(os.environ["PA_HOME"]), address=c.address)
    files = TurnFiles(tmp_path / "turns" / "1")
    files.dir.mkdir(parents=True)
    files.stdout.touch()
    state = {"actor": rr.actor_name("nosuch" + uuid.uuid4().hex[:8]), "node": "?", "n": 1,
             "worktree": str(tmp_path), "repo": str(tmp_path)}  # fmt: skip
    (files.dir / "ray.json").write_text(json.dumps(state))
    assert rt.alive(files) is False
