"""Issue 19: the orchestrator killed (kill -9) mid-turn while its session runs on a Ray
worker node, then started again: it re-attaches to the session's actor by name (from the
turn's ray.json) and goes on from its stored offsets; nothing is lost or doubled."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
from pathlib import Path
from typing import Any

import pytest

from parallel_agents.server import daemon
from tests.conftest import make_repo, pa
from tests.ray._leave import discard_all
from tests.ray.conftest import poll
from tests.ray.test_ray_cluster import _turn_state

LINES = 40


def _lines(sid: str, repo: Path) -> list[str]:
    out = pa("logs", sid, "--raw", cwd=repo, timeout=120).stdout
    return re.findall(r"^line-\d+$", out, flags=re.M)


def test_server_killed_mid_turn_and_restarted_loses_and_doubles_nothing(
    cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """issue 19: `pa server start --runtime ray`, a turn printing numbered lines on a
    worker node; the server is killed -9 half way and started again: the turn ends idle
    on the same node, every line is in `pa logs` exactly once, and the work is home."""
    c, workers = cluster
    monkeypatch.setenv("PA_SERVER_AUTOSTART", "1")
    home = Path(os.environ["PA_HOME"])
    repo = make_repo(tmp_path / "repo", {"a.txt": "one\n"})
    go = tmp_path / "go"  # the second half of the turn waits for it: the kill is mid-turn
    script = (
        f"for i in $(seq 1 {LINES // 2}); do echo line-$i; sleep 0.05; done; "
        f"while [ ! -e {go} ]; do sleep 0.1; done; "
        f"for i in $(seq {LINES // 2 + 1} {LINES}); do echo line-$i; sleep 0.05; done; "
        "echo done > work.txt"
    )
    argv = shlex.join(["sh", "-c", script])
    try:
        pa("server", "start", "--runtime", "ray", "--ray-address", c.address, check=True,
           timeout=120)  # fmt: skip
        s = json.loads(pa(
            "new", "numbered", "--json", "--cmd", argv, cwd=repo, check=True, timeout=180,
        ).stdout)  # fmt: skip
        sid = s["id"]
        poll("the first half", lambda: len(_lines(sid, repo)) >= LINES // 2)
        info = daemon.read_info(home)
        assert info is not None
        os.kill(info.pid, signal.SIGKILL)
        poll("the server's end", lambda: not _pid_alive(info.pid))
        pa("server", "start", "--runtime", "ray", "--ray-address", c.address, check=True,
           timeout=120)  # fmt: skip
        restarted = daemon.read_info(home)
        assert restarted is not None and restarted.pid != info.pid
        go.touch()
        pa("wait", sid, "--timeout", "150", cwd=repo, check=True, timeout=200)
        shown = json.loads(pa("show", sid, "--json", cwd=repo, check=True).stdout)
        assert shown["status"] == "idle", shown
        assert _turn_state(sid)["node"] in workers
        assert _lines(sid, repo) == [f"line-{i}" for i in range(1, LINES + 1)]
        assert (Path(shown["worktree"]) / "work.txt").read_text() == "done\n"
        assert "work.txt" in pa("diff", sid, cwd=repo, check=True).stdout
    finally:
        discard_all(repo)
        pa("server", "stop", timeout=60)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (the server was our grandchild's child: reaped by init) counts as ended.
    try:
        return "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
