"""Issue 19: when every node's `pa_agent` slots are taken, a new Ray session waits
`queued` without stalling the server: the loop goes on reading the running sessions'
output, and the queued session starts once a discard gives a slot back."""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_repo, pa
from tests.ray.conftest import poll, start_cluster
from tests.ray.test_ray_cluster import _turn_state


@pytest.fixture(scope="module")
def one_slot() -> Iterator[tuple[Any, set[str]]]:
    """One worker node with one slot: the second session has nowhere to go."""
    with start_cluster(workers=1, slots=1) as c:
        yield c


def _status(sid: str, repo: Path) -> str:
    shown = json.loads(pa("show", sid, "--json", cwd=repo, check=True, timeout=60).stdout)
    return str(shown["status"])


def test_a_session_with_no_free_slot_waits_queued_and_the_server_goes_on(
    one_slot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """issue 19: the only slot is held by a running session; a second session made through
    `pa server start --runtime ray` stays `queued` while the first one's output keeps
    coming in (the server's loop is not stuck waiting for a slot); a discard of the first
    gives the slot back and the second runs on the node and finishes."""
    c, workers = one_slot
    monkeypatch.setenv("PA_SERVER_AUTOSTART", "1")
    repo = make_repo(tmp_path / "repo", {"a.txt": "one\n"})
    half, end = tmp_path / "half", tmp_path / "end"
    first_script = (
        f"echo first-1; while [ ! -e {half} ]; do sleep 0.1; done; echo first-2; "
        f"while [ ! -e {end} ]; do sleep 0.1; done; echo first-3"
    )
    try:
        pa("server", "start", "--runtime", "ray", "--ray-address", c.address, check=True,
           timeout=120)  # fmt: skip
        first = json.loads(pa(
            "new", "holds the slot", "--json", "--cmd", shlex.join(["sh", "-c", first_script]),
            cwd=repo, check=True, timeout=180,
        ).stdout)["id"]  # fmt: skip
        poll("the first line", lambda: "first-1" in _logs(first, repo))
        second = json.loads(pa(
            "new", "waits for it", "--json", "--cmd", "sh -c 'echo second > second.txt'",
            cwd=repo, check=True, timeout=180,
        ).stdout)["id"]  # fmt: skip
        half.touch()
        # The loop still reads the running session while the new one has no slot.
        poll("the first session's next line", lambda: "first-2" in _logs(first, repo), 90)
        assert _status(second, repo) == "queued"
        end.touch()
        pa("wait", first, "--timeout", "120", cwd=repo, check=True, timeout=180)
        assert _status(second, repo) == "queued"
        pa("discard", first, cwd=repo, check=True, timeout=180)
        pa("wait", second, "--timeout", "150", cwd=repo, check=True, timeout=200)
        assert _status(second, repo) == "idle"
        assert _turn_state(second)["node"] in workers
        shown = json.loads(pa("show", second, "--json", cwd=repo, check=True).stdout)
        assert (Path(shown["worktree"]) / "second.txt").read_text() == "second\n"
    finally:
        from tests.ray._leave import discard_all

        discard_all(repo)
        pa("server", "stop", timeout=60)


def _logs(sid: str, repo: Path) -> str:
    return pa("logs", sid, "--raw", cwd=repo, timeout=120).stdout


def test_a_queued_follow_up_of_a_session_holding_the_only_slot_runs(
    one_slot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """issue 19: a follow-up waits `queued` for a place (`limits.max_running`, taken by a
    local session) while its own Ray session holds the cluster's only slot between turns;
    once the place frees it runs on that slot (a full cluster is no reason to wait for a
    session whose actor already holds its slot). The local session, made with `--runtime
    local` through a server started with `--runtime ray`, runs on this machine."""
    c, workers = one_slot
    monkeypatch.setenv("PA_SERVER_AUTOSTART", "1")
    cfg = Path(os.environ["XDG_CONFIG_HOME"]) / "parallel-agents" / "config.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text("[limits]\nmax_running = 1\n")
    repo = make_repo(tmp_path / "repo", {"a.txt": "one\n"})
    end = tmp_path / "end"
    try:
        pa("server", "start", "--runtime", "ray", "--ray-address", c.address, check=True,
           timeout=120)  # fmt: skip
        remote = json.loads(pa(
            "new", "on the slot", "--json", "--cmd", "sh -c 'echo x >> r.txt'",
            cwd=repo, check=True, timeout=180,
        ).stdout)["id"]  # fmt: skip
        pa("wait", remote, "--timeout", "120", cwd=repo, check=True, timeout=180)
        waits = shlex.join(["sh", "-c", f"while [ ! -e {end} ]; do sleep 0.1; done"])
        local_sid = json.loads(pa(
            "new", "takes the place", "--json", "--runtime", "local", "--cmd", waits,
            cwd=repo, check=True, timeout=180,
        ).stdout)["id"]  # fmt: skip
        poll("the local session running", lambda: _status(local_sid, repo) == "running")
        pa("send", remote, "again", cwd=repo, check=True, timeout=180)
        assert _status(remote, repo) == "queued"
        end.touch()
        pa("wait", local_sid, "--timeout", "120", cwd=repo, check=True, timeout=180)
        poll("the follow-up done", lambda: _status(remote, repo) == "idle", 150)
        assert _turn_state(remote, 2)["node"] in workers
        shown = json.loads(pa("show", remote, "--json", cwd=repo, check=True).stdout)
        assert (Path(shown["worktree"]) / "r.txt").read_text() == "x\nx\n"
    finally:
        from tests.ray._leave import discard_all

        discard_all(repo)
        pa("server", "stop", timeout=60)
