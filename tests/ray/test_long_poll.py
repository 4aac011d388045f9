"""Issue 19: a Ray session's output comes home by long polls. The actor holds a poll open
until there is output or the turn ends (an idle session costs one call a wait, not one a
pass), and holds it in a concurrency group of its own, so a `stop` never waits behind it."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from parallel_agents.runtime import local
from parallel_agents.runtime import ray_runtime as rr
from parallel_agents.runtime.base import LaunchSpec, TurnFiles
from tests.conftest import make_repo
from tests.ray.conftest import poll

HELD = 600.0  # seconds a poll is held open: far longer than any test waits


@pytest.fixture
def quiet_turn(
    cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[rr.RayRuntime, TurnFiles, Path]]:
    """A turn on a worker node whose agent says `ready`, then says `tick` only once the
    test writes its gate file, then waits; polls held open for ``HELD`` seconds."""
    c, _ = cluster
    monkeypatch.setattr(rr, "LONG_POLL", HELD)
    repo = make_repo(tmp_path / "repo", {"a.txt": "one\n"})
    gate = tmp_path / "gate"
    sid = "longpoll" + uuid.uuid4().hex[:8]
    rt = rr.RayRuntime(home=Path(os.environ["PA_HOME"]), address=c.address)
    files = TurnFiles(tmp_path / "turns" / "1")
    script = (f"echo ready; while [ ! -e {gate} ]; do sleep 0.05; done; echo tick;"
              " exec sleep 600")  # fmt: skip
    spec = LaunchSpec(session_id=sid, argv=["sh", "-c", script], cwd=repo,
                      env={"PATH": os.environ["PATH"]}, repo_path=repo, branch="main")  # fmt: skip
    rt.start(files, spec)
    try:
        yield rt, files, gate
    finally:
        node = Path(tempfile.gettempdir()) / f"pa-ray-{rt.namespace}" / "turns" / sid
        pid = TurnFiles(node / "1").pid()
        if pid is not None:
            local.signal_group(pid, 9)
        rt.release(sid)
        local.end_tagged(sid)
        shutil.rmtree(node, ignore_errors=True)


def test_output_leaves_a_held_poll_at_once(quiet_turn: Any) -> None:
    """issue 19: the poll is held open for ten minutes, yet each new line comes home as
    soon as the agent writes it (the node answers on output, not at the poll's end)."""
    rt, files, gate = quiet_turn
    poll("ready", lambda: b"ready" in rt.read(files, 0, 1 << 20)[0], 120)
    rt.alive(files)  # a poll from past `ready` is open now, and held: nothing to say
    assert b"tick" not in rt.read(files, 0, 1 << 20)[0]
    gate.touch()
    poll("tick through the held poll", lambda: b"tick" in rt.read(files, 0, 1 << 20)[0], 120)


def test_a_stop_never_waits_behind_a_held_poll(quiet_turn: Any) -> None:
    """issue 19: with a poll held open (ten minutes), `stop` is served at once by the
    actor and the turn ends; the held poll then answers with the turn's end."""
    rt, files, _ = quiet_turn
    poll("ready", lambda: b"ready" in rt.read(files, 0, 1 << 20)[0], 120)
    rt.alive(files)  # opens the held poll
    stopped = threading.Event()

    def stop() -> None:
        rt.stop(files, 1.0)
        stopped.set()

    threading.Thread(target=stop, daemon=True).start()
    poll("the stop, served beside the held poll", stopped.is_set, 120)
    poll("the turn's end, home", lambda: files.exit_info() is not None or not rt.alive(files), 120)
    assert files.exit_info() is not None


def test_an_actor_an_older_pa_made_is_polled_the_old_way(cluster: Any, tmp_path: Path) -> None:
    """issue 19: a session's actor made before long polls (no concurrency group for
    them: asking for one would kill it) still brings its turn's output home."""
    import ray
    from parallel_agents.runtime.ray_node import SessionNode

    class OlderNode(SessionNode):
        long_polls = None  # type: ignore[assignment]  # not a method: as an older pa's class

    c, _ = cluster
    repo = make_repo(tmp_path / "repo", {"a.txt": "one\n"})
    sid = "older" + uuid.uuid4().hex[:8]
    rt = rr.RayRuntime(home=Path(os.environ["PA_HOME"]), address=c.address)
    rt._ray()
    older = ray.remote(OlderNode).options(
        name=rr.actor_name(sid), namespace=rt.namespace, lifetime="detached",
        resources={rr.RESOURCE: 1}, num_cpus=0, max_restarts=0,
    ).remote(sid, rt.namespace)  # fmt: skip
    assert not hasattr(older, "long_polls")
    files = TurnFiles(tmp_path / "turns" / "1")
    spec = LaunchSpec(session_id=sid, argv=["sh", "-c", "echo from-an-older-actor"], cwd=repo,
                      env={"PATH": os.environ["PATH"]}, repo_path=repo, branch="main")  # fmt: skip
    try:
        rt.start(files, spec)
        poll("the turn's end, home", lambda: rt.alive(files) and files.exit_info() is not None)
        assert files.stdout.read_bytes() == b"from-an-older-actor\n"
    finally:
        rt.release(sid)
        local.end_tagged(sid)
