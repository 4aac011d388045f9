"""Stopping, timeouts, agents killed from outside, floods of output, deleted folders."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from parallel_agents.runtime.local import alive
from parallel_agents.store import Store
from tests.conftest import output_lines
from tests.server.conftest import Srv, proc_status, write_script

PY = sys.executable

STUBBORN = """\
import signal, time
def note(sig, frame):
    print("got", signal.Signals(sig).name, flush=True)
signal.signal(signal.SIGINT, note)
signal.signal(signal.SIGTERM, note)
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""

SLEEPER = """\
import time
print("ready", flush=True)
time.sleep(120)
"""


def test_stop_interrupts_then_terminates_then_kills(
    start_server: Callable[..., Srv], repo_path: Path, tmp_path: Path
) -> None:
    srv = start_server("stop_grace = 0.3\n")
    script = write_script(tmp_path, "stubborn.py", STUBBORN)
    [s] = srv.client.new_sessions("ignore signals", repo=repo_path, cmd=[PY, str(script)])
    srv.wait_output(s["id"], "ready")
    pid = srv.agent_pid(s["id"])
    stopped = srv.client.stop(s["id"])
    assert stopped["status"] == "stopped"
    texts = output_lines(srv.client.events(s["id"], kinds=["output"]))
    assert texts == ["ready", "got SIGINT", "got SIGTERM"]
    turn = srv.session(s["id"])["turns"][0]
    assert turn["exit_code"] == -signal.SIGKILL
    assert "killed by SIGKILL" in turn["error"]
    assert turn["status"] == "stopped"
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()


def test_timeout_and_kill_from_outside_while_others_keep_going(
    start_server: Callable[..., Srv], repo_path: Path, tmp_path: Path
) -> None:
    srv = start_server("stop_grace = 0.5\n")
    sleeper = write_script(tmp_path, "sleeper.py", SLEEPER)
    c = srv.client
    [slow] = c.new_sessions("never ends", repo=repo_path, cmd=[PY, str(sleeper)], timeout=1.0)
    [victim] = c.new_sessions("gets killed", repo=repo_path, cmd=[PY, str(sleeper)])
    srv.wait_output(victim["id"], "ready")
    os.kill(srv.agent_pid(victim["id"]), signal.SIGKILL)  # like the OOM killer

    killed = srv.wait_status(victim["id"], "failed")
    assert "killed by SIGKILL" in killed["error"]
    assert killed["turns"][0]["exit_code"] == -signal.SIGKILL

    timed = srv.wait_status(slow["id"], "failed")
    assert "timed out after 1 s" in timed["error"]
    assert timed["turns"][0]["status"] == "failed"
    errors = [e["payload"]["message"] for e in c.events(slow["id"], kinds=["error"])]
    assert any("timed out" in m for m in errors)


def test_deleted_session_folder_fails_that_session_only(
    start_server: Callable[..., Srv], repo_path: Path, tmp_path: Path
) -> None:
    srv = start_server()
    sleeper = write_script(tmp_path, "sleeper.py", SLEEPER)
    c = srv.client
    [doomed] = c.new_sessions("doomed", repo=repo_path, cmd=[PY, str(sleeper)])
    [fine] = c.new_sessions("fine", repo=repo_path, cmd=[PY, "-c", "print('ok')"])
    srv.wait_output(doomed["id"], "ready")
    pgids = [
        srv.agent_pid(doomed["id"]),
        int(srv.turn_file(doomed["id"], "wrapper_pid").read_text()),
    ]
    try:
        shutil.rmtree(srv.home / "sessions" / doomed["id"])
        gone = srv.wait_status(doomed["id"], "failed")
        assert "was deleted" in gone["error"] and doomed["id"] in gone["error"]
        # Its pid file went with the folder, yet the agent does not live on unsupervised.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and alive(pgids[0]):
            time.sleep(0.05)
        assert not alive(pgids[0])
        assert srv.wait_status(fine["id"], "idle")["error"] is None
        # The server keeps serving: a new session runs to the end.
        [more] = c.new_sessions("more", repo=repo_path, cmd=[PY, "-c", "print('more')"])
        srv.wait_status(more["id"], "idle")
        assert c.health()["pid"] == srv.pid
    finally:
        for pgid in pgids:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)


FLOOD = """\
import sys
pad = "x" * 1000
out = sys.stdout
for i in range(50_000):
    out.write(f"{i:06d} {pad}\\n")
"""


def test_fifty_megabytes_of_output_all_stored_memory_bounded(
    start_server: Callable[..., Srv], repo_path: Path, tmp_path: Path
) -> None:
    # Above the default output cap (50 MB, issue 14 §5): this test wants all of it kept.
    srv = start_server(config="[output]\nmax_bytes = 100_000_000\n")
    rss_before = proc_status(srv.pid, "VmRSS")
    flood = write_script(tmp_path, "flood.py", FLOOD)
    [s] = srv.client.new_sessions("flood", repo=repo_path, cmd=[PY, str(flood)])
    srv.wait_status(s["id"], "idle", timeout=120)
    size = srv.turn_file(s["id"], "stdout").stat().st_size
    assert size > 50_000_000
    peak = proc_status(srv.pid, "VmHWM")
    growth_mb = (peak - rss_before) / 1024
    assert growth_mb < 200, f"server peak RSS grew by {growth_mb:.0f} MB"

    # (A plain line is stored once, in the output file: the store reads it back from there.)
    store = Store(srv.home)
    try:
        rows = output_lines(store.events(s["id"], kinds=["output"]))
    finally:
        store.close()
    assert len(rows) == 50_000
    pad = "x" * 1000
    assert all(row == f"{i:06d} {pad}" for i, row in enumerate(rows))
    # Pages through the API stay bounded in size (about 8 MB), and chain exactly (an
    # event holds a run of lines, issue 14 §5: the page ends between two runs).
    page = srv.client.events_page(s["id"], limit=10_000, kinds=["output"])
    first = output_lines(page["events"])
    assert page["more"] is True and 3_000 < len(first) < 10_000
    assert page["last_seq"] == page["events"][-1]["seq"]
    after = srv.client.events_page(s["id"], after_seq=page["last_seq"], limit=5, kinds=["output"])
    assert after["events"][0]["seq"] == page["last_seq"] + 1
    assert after["events"][0]["payload"]["text"].split("\n")[0] == f"{len(first):06d} {pad}"
    assert srv.client.health()["pid"] == srv.pid
