"""Acceptance: the server is killed with SIGKILL twice while agents run; nothing is lost.

Also: agents that vanish without an exit record (a reboot) become `interrupted`, and a
follow-up works.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from parallel_agents.client import Client, ServerNotRunning
from parallel_agents.models import Status
from tests.conftest import output_lines
from tests.server.conftest import ACTIVE, Srv, wait_for, write_script

PY = sys.executable
N_SESSIONS = 10
N_LINES = 300

NUMBERED = """\
import sys, time
n, code, delay = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
for i in range(1, n + 1):
    print(f"line {i}", flush=True)
    time.sleep(delay)
sys.exit(code)
"""


class Follower(threading.Thread):
    """Follows the global SSE stream through the crashes (Client.stream reconnects)."""

    def __init__(self, home: Path, ids: list[str]) -> None:
        super().__init__(daemon=True)
        self.home = home
        self.ids = set(ids)
        self.events: list[dict[str, Any]] = []
        self.connects = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            client = Client.from_home(self.home)
            ended: set[str] = set()
            for ev in client.stream(after_id=0, on_connect=self._connected, idle_timeout=5):
                self.events.append(ev)
                if ev["kind"] == "status" and ev["payload"]["to"] in ("idle", "failed"):
                    ended.add(ev["session_id"])
                if ended >= self.ids:
                    break
            client.close()
        except BaseException as e:  # reported by the test
            self.error = e

    def _connected(self) -> None:
        self.connects += 1


def test_sigkill_the_server_twice_nothing_lost_or_doubled(
    start_server: Callable[..., Srv], repo_path: Path, tmp_path: Path
) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    why = f"(random seed {seed})"
    srv = start_server("[limits]\nmax_running = 10\n")
    script = write_script(tmp_path, "numbered.py", NUMBERED)
    codes: dict[str, int] = {}
    for i in range(N_SESSIONS):
        code = 0 if i % 2 == 0 else 3
        [s] = srv.client.new_sessions(
            f"chaos {i}", repo=repo_path, cmd=[PY, str(script), str(N_LINES), str(code), "0.01"]
        )
        codes[s["id"]] = code
    follower = Follower(srv.home, list(codes))
    follower.start()

    # Kill 1: at a random moment while the agents write; restart at once.
    wait_for(
        lambda: all(srv.turn_file(sid, "wrapper_pid").exists() for sid in codes),
        30,
        "spawns",
        diagnose=srv.diagnose,
    )
    time.sleep(rng.uniform(0.2, 1.2))
    srv.kill9()
    srv.start()

    # Kill 2: at another random moment; this time the agents finish while no server runs.
    time.sleep(rng.uniform(0.2, 1.0))
    srv.kill9()
    wait_for(
        lambda: all(srv.turn_file(sid, "exit").exists() for sid in codes),
        60,
        "every agent to exit while the server is down",
        diagnose=srv.diagnose,
    )
    srv.start()

    for sid in codes:
        srv.wait_status(sid, "idle", "failed", timeout=60)
    follower.join(30)
    assert not follower.is_alive(), f"the stream follower did not see every session end {why}"
    assert follower.error is None, f"{follower.error!r} {why}"
    assert follower.connects >= 2, why

    expected = [f"line {i}" for i in range(1, N_LINES + 1)]
    for sid, code in codes.items():
        s = srv.session(sid)
        evs = srv.client.all_events(sid)
        assert [e["seq"] for e in evs] == list(range(1, len(evs) + 1)), why
        out = output_lines(evs)
        assert out == expected, f"session {sid}: {len(out)} lines {why}"
        [turn] = s["turns"]
        assert turn["exit_code"] == code, why
        if code == 0:
            assert s["status"] == "idle" and s["error"] is None, why
        else:
            assert s["status"] == "failed", why
            assert s["error"].startswith("exit code 3"), why
            assert turn["error"].startswith("exit code 3"), why
        assert s["unread"] is True

    # The follower saw exactly the stored events, in order, across both crashes.
    stored = srv.client.all_events()
    seen_ids = [e["id"] for e in follower.events]
    assert seen_ids == [e["id"] for e in stored if e["id"] <= seen_ids[-1]], why


REBOOT = """\
import os, sys, time
if os.environ["PA_TURN"] == "1":
    print("working", flush=True)
    time.sleep(120)
else:
    print("follow-up:", sys.stdin.read(), flush=True)
"""


def test_agents_gone_without_exit_record_become_interrupted(
    start_server: Callable[..., Srv], repo_path: Path, tmp_path: Path
) -> None:
    srv = start_server()
    script = write_script(tmp_path, "reboot.py", REBOOT)
    [s] = srv.client.new_sessions("first", repo=repo_path, cmd=[PY, str(script)])
    sid = s["id"]
    srv.wait_output(sid, "working")
    wrapper = int(srv.turn_file(sid, "wrapper_pid").read_text())
    agent = srv.agent_pid(sid)

    # "Reboot": the server and every process of the session die, no exit record.
    srv.kill9()
    os.killpg(wrapper, signal.SIGKILL)
    os.killpg(agent, signal.SIGKILL)
    wait_for(lambda: not _running(wrapper) and not _running(agent), 10, "processes to die")
    assert not srv.turn_file(sid, "exit").exists()
    try:
        srv.client.get_session(sid)
        raise AssertionError("the server should be down")
    except ServerNotRunning:
        pass

    srv.start()
    got = srv.wait_status(sid, "interrupted")
    assert "without an exit code" in got["error"]
    assert got["turns"][0]["status"] == "interrupted" and got["unread"] is True

    again = srv.client.send(sid[:5], "carry on")
    assert again["status"] in ACTIVE
    done = srv.wait_status(sid, "idle")
    assert [t["status"] for t in done["turns"]] == ["interrupted", "done"]
    srv.wait_output(sid, "follow-up: carry on")


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


HOLD = """\
import os, pathlib, sys, time
gate = pathlib.Path(sys.argv[1]) / os.environ["PA_SESSION_ID"]
print("started", os.environ["PA_SESSION_ID"], flush=True)
while not gate.exists():
    time.sleep(0.02)
"""


def test_sessions_left_starting_by_a_crash_are_recovered(
    start_server: Callable[..., Srv], repo_path: Path, tmp_path: Path
) -> None:
    """A crash inside `start` (claimed, spawned or not, never marked running)."""
    from parallel_agents.runtime import local
    from parallel_agents.store import Store

    srv = start_server("[limits]\nmax_running = 1\n")
    gates = tmp_path / "gates"
    gates.mkdir()
    hold = write_script(tmp_path, "hold.py", HOLD)
    cmd = [PY, str(hold), str(gates)]
    a, b, c = (s["id"] for s in srv.client.new_sessions("x", repo=repo_path, cmd=cmd, count=3))
    srv.wait_output(a, "started")
    srv.stop()

    # While no server runs: b was claimed but never spawned; c was claimed and spawned.
    store = Store(srv.home)
    try:
        for sid in (b, c):
            store.set_status(sid, Status.STARTING, expect=[Status.QUEUED])
        s = store.session(c)
        env = {"PA_SESSION_ID": c, "PA_HOME": str(srv.home), "PA_TURN": "1"}
        with warnings.catch_warnings():
            # runtime.local hands the wrapper's log file to the child and drops it.
            warnings.simplefilter("ignore", ResourceWarning)
            wrapper = local.spawn(
                srv.turn_file(c, "pid").parent,
                s.cmd or [],
                cwd=Path(s.worktree),
                env=env,
                stdin=None,
            )
        store.db.execute(
            "UPDATE sessions SET updated_at = updated_at - 60 WHERE id IN (?, ?)", (b, c)
        )
    finally:
        store.close()
    (gates / a).touch()

    srv.start()
    srv.wait_status(a, "idle")
    srv.wait_output(c, f"started {c}")  # adopted: its output is ingested
    assert srv.session(c)["status"] == "running"
    assert srv.session(b)["status"] == "queued"  # back in the queue (max_running = 1)
    (gates / c).touch()
    srv.wait_status(c, "idle")
    srv.wait_output(b, f"started {b}")
    (gates / b).touch()
    srv.wait_status(b, "idle")
    wait_for(lambda: not local.alive(wrapper), 10, "our wrapper to be reaped")
