"""`pa logs` pages through every event (issue 11 F.5); `pa wait`'s exit codes (issue 20 §5).

Both run against a real server (the CLI finds it through PA_HOME), whose event pages hold
1000 events: a session with more than that is where `pa logs` used to stop.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from tests.server.conftest import Srv, pa_cli

PY = sys.executable
SLEEPER = [PY, "-c", "import time; time.sleep(120)"]


def test_logs_prints_every_event_past_one_page(
    start_server: Callable[..., Srv], repo_path: Path
) -> None:
    """Issue 11 F.5: `pa logs` (plain, --raw, --json) of a session with 1500 output lines
    prints all of them, the result and the final status (it stopped at one page). A run of
    plain lines is one event (issue 14 §5), so the lines are long: a page also ends at
    about 8 MB, and these fill more than one."""
    srv = start_server()
    pad = "x" * 6000
    cmd = [PY, "-c", f"for i in range(1, 1501): print(f'line {{i}} {pad}', flush=True)"]
    [s] = srv.client.new_sessions("many", repo=repo_path, cmd=cmd)
    srv.wait_status(s["id"], "idle", timeout=60)
    events = srv.client.all_events(s["id"])
    first = srv.client.events_page(s["id"])
    assert first["more"] and first["last_seq"] < events[-1]["seq"]
    env = {"PA_HOME": str(srv.home)}

    p = pa_cli("logs", s["id"], env=env)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    outputs = [x for x in lines if x.startswith("line ")]
    assert outputs == [f"line {i} {pad}" for i in range(1, 1501)]
    assert lines[-1] == "[running → idle]"

    p = pa_cli("logs", "--json", s["id"], env=env)
    assert p.returncode == 0, p.stderr
    got = [json.loads(x) for x in p.stdout.splitlines()]
    assert [e["seq"] for e in got] == [e["seq"] for e in events]
    rest = [e for e in got if e["seq"] > first["last_seq"]]
    assert any(e["kind"] == "result" for e in rest)
    last_status = [e for e in got if e["kind"] == "status"][-1]
    assert last_status in rest and last_status["payload"]["to"] == "idle"

    p = pa_cli("logs", "--raw", s["id"], env=env)
    assert p.returncode == 0, p.stderr
    raw = [x for e in events if e.get("raw") is not None for x in e["raw"].split("\n")]
    assert p.stdout.splitlines() == raw
    assert raw and raw[-1] == f"line 1500 {pad}"


def test_wait_exit_codes(start_server: Callable[..., Srv], repo_path: Path) -> None:
    """Issue 20 §5: `pa wait` exits 0 unless a session failed: stopped (also before it
    started), idle, merged and discarded are 0; failed (and any failed among several) 1;
    --timeout while one still works 124."""
    srv = start_server(config="[limits]\nmax_running = 1\n")
    env = {"PA_HOME": str(srv.home)}

    def wait(*ids: str, timeout: str = "60") -> tuple[int, str]:
        p = pa_cli("wait", "--timeout", timeout, *ids, env=env, timeout=120)
        return p.returncode, p.stdout + p.stderr

    [running] = srv.client.new_sessions("sleep", repo=repo_path, cmd=SLEEPER)
    srv.wait_status(running["id"], "running")
    [queued] = srv.client.new_sessions("never starts", repo=repo_path, cmd=SLEEPER)
    assert srv.session(queued["id"])["status"] == "queued"

    code, out = wait(running["id"], timeout="0.5")
    assert code == 124 and running["id"] in out

    srv.client.stop(queued["id"])
    srv.wait_status(queued["id"], "stopped")
    [turn] = srv.client.get_session(queued["id"])["turns"]
    assert turn["started_at"] is None  # stopped before it started
    code, out = wait(queued["id"])
    assert code == 0, out
    assert f"{queued['id']}  stopped" in out

    srv.client.stop(running["id"])
    srv.wait_status(running["id"], "stopped")
    assert wait(running["id"])[0] == 0

    write = [PY, "-c", "open('made.txt', 'w').write('x')"]
    made = srv.client.new_sessions("ok", repo=repo_path, cmd=write, count=2)
    [failed] = srv.client.new_sessions("fail", repo=repo_path, cmd=[PY, "-c", "exit(3)"])
    for s in made:
        srv.wait_status(s["id"], "idle")
    srv.wait_status(failed["id"], "failed")
    assert wait(made[0]["id"])[0] == 0
    code, out = wait(failed["id"])
    assert code == 1 and "failed" in out
    assert wait(made[0]["id"], failed["id"])[0] == 1

    p = pa_cli("merge", made[0]["id"], env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert srv.session(made[0]["id"])["status"] == "merged"
    assert wait(made[0]["id"])[0] == 0
    srv.client.discard(made[1]["id"])
    assert wait(made[1]["id"])[0] == 0
    assert wait(made[0]["id"], made[1]["id"], queued["id"], running["id"])[0] == 0
