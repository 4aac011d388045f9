"""Issue 14 §3: the server notices a turn's end through its wrapper's exit (a pidfd), not
at its next poll, for wrappers it spawned and for ones another process started.

The loop's poll interval is set to an hour, so only the exit event can bring the status
in before the deadline; the tests then check the loop's own count of sleeps a wrapper's
exit ended (``exit_wakes``), not a wall-clock time.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from parallel_agents.config import load_settings
from parallel_agents.models import Status
from parallel_agents.runtime import local
from parallel_agents.server.loop import ServerState
from tests.server.conftest import wait_for

PY = sys.executable
HOUR = 3600.0

# Prints, then waits for its gate file (argv[1]) before printing its last line and ending.
GATED = """\
import pathlib, sys, time
gate = pathlib.Path(sys.argv[1])
print('{"type": "started"}', flush=True)
while not gate.exists():
    time.sleep(0.02)
print('{"type": "last"}', flush=True)
"""

pytestmark = pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs pidfd_open")


@pytest.fixture
def state(pa_home: Path) -> Iterator[ServerState]:
    st = ServerState(pa_home, load_settings())
    st.tick_interval = HOUR  # a poll never comes: only an event can wake the loop
    yield st
    st.stop_loop()


def _gated(tmp_path: Path) -> tuple[list[str], Path]:
    script = tmp_path / "gated.py"
    script.write_text(GATED)
    gate = tmp_path / "gate"
    return [PY, str(script), str(gate)], gate


def _outputs(st: ServerState, sid: str) -> list[str]:
    return [str(e.payload.get("text")) for e in st.app().store.events(sid, kinds=["output"])]


def _idle_after_gate(st: ServerState, sid: str, gate: Path) -> None:
    store = st.app().store
    wait_for(lambda: st.exits.watching(sid), 30, "the loop to watch the turn's wrapper")
    wakes = st.exit_wakes
    gate.touch()
    wait_for(lambda: store.session(sid).status == Status.IDLE, 30, "the session to be idle")
    assert st.exit_wakes > wakes  # the loop woke because the wrapper exited
    assert st.loop_health()["exit_events"] >= 1
    assert not st.exits.watching(sid)  # one watch per turn, gone with it
    texts = _outputs(st, sid)
    assert any('"started"' in t for t in texts) and any('"last"' in t for t in texts)


def test_end_of_a_turn_the_server_spawned_wakes_the_loop(
    state: ServerState, repo_path: Path, tmp_path: Path
) -> None:
    """issue 14 §3: a turn's end is noticed through its wrapper's exit, not the poll."""
    cmd, gate = _gated(tmp_path)
    state.start_loop()
    s = state.app().new_session("wait for the gate", repo=str(repo_path), cmd=cmd)
    _idle_after_gate(state, s.id, gate)


def test_end_of_a_turn_another_process_started_wakes_the_loop(
    state: ServerState, repo_path: Path, tmp_path: Path
) -> None:
    """issue 14 §3: a wrapper that is not the server's child (started by a `pa` without a
    server, which has exited since) is watched too: its exit wakes the loop."""
    cmd, gate = _gated(tmp_path)
    argv = ["new", "wait for the gate", "--repo", str(repo_path), "--cmd", " ".join(cmd)]
    p = subprocess.run(
        [PY, "-m", "parallel_agents", *argv, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert p.returncode == 0, p.stderr
    sid = json.loads(p.stdout)["id"]
    state.start_loop()
    _idle_after_gate(state, sid, gate)


def test_turns_ending_together_are_finished_in_one_transaction(
    state: ServerState, repo_path: Path, tmp_path: Path
) -> None:
    """issue 14 §3: turns whose wrappers exit together are finished together: their ends
    share one transaction (and one wake of the streams), not one each in a row. The
    database is held locked while the turns end, so the loop can finish at most the
    first one it noticed on its own; every other end is there by the time it can write."""
    cmd, gate = _gated(tmp_path)
    state.start_loop()
    app = state.app()
    ids = [app.new_session(f"wait {i}", repo=str(repo_path), cmd=cmd).id for i in range(4)]
    for sid in ids:
        wait_for(lambda sid=sid: state.exits.watching(sid), 30, "the loop to watch it")
    lock = sqlite3.connect(pa_db := str(state.home / "pa.db"), isolation_level=None)
    try:
        lock.execute("BEGIN IMMEDIATE")
        gate.touch()

        def ended() -> bool:
            for sid in ids:
                files = app.sup.turn_files(sid, 1)
                if files.exit_info() is None or local.alive(files.wrapper_pid()):
                    return False
            return True

        wait_for(ended, 30, "every wrapper to write its exit record and exit")
    finally:
        lock.rollback()
        lock.close()
    store = app.store
    wait_for(
        lambda: all(store.session(sid).status == Status.IDLE for sid in ids),
        30,
        f"every session in {pa_db} to be idle",
    )
    health = state.loop_health()
    assert health["turn_ends"] == 4
    assert health["end_batches"] <= 2  # the first noticed alone at most, then the rest


def test_a_watched_wrapper_killed_is_noticed_without_a_poll(
    state: ServerState, repo_path: Path, tmp_path: Path
) -> None:
    """issue 14 §6: a session whose wrapper the loop watches is not re-read every second
    to see whether its wrapper died: the pidfd says so. A wrapper killed with SIGKILL (no
    exit record) still ends its turn `interrupted`, with no poll to find it."""
    import signal

    cmd, gate = _gated(tmp_path)
    state.start_loop()
    app = state.app()
    sid = app.new_session("wait for the gate", repo=str(repo_path), cmd=cmd).id
    wait_for(lambda: state.exits.watching(sid), 30, "the loop to watch the turn's wrapper")
    files = app.sup.turn_files(sid, 1)
    wpid = wait_for(files.wrapper_pid, 30, "the wrapper's pid file")
    wakes = state.exit_wakes
    try:
        os.kill(wpid, signal.SIGKILL)
        store = app.store
        wait_for(lambda: store.session(sid).status == Status.INTERRUPTED, 30, "interrupted")
        assert state.exit_wakes > wakes
        assert files.exit_info() is None
    finally:
        gate.touch()  # the orphaned agent ends, whatever happened above
