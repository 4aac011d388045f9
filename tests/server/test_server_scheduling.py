"""Scheduling through the API: global, per-repo and per-agent limits, in queue order."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import make_repo
from tests.server.conftest import Srv, wait_for, write_script

PY = sys.executable

# Runs until a file named after its session appears in the folder given as argv[1].
HOLD = """\
import os, pathlib, sys, time
gate = pathlib.Path(sys.argv[1]) / os.environ["PA_SESSION_ID"]
print("started", flush=True)
while not gate.exists():
    time.sleep(0.02)
print("released", flush=True)
"""

RUNNING = ("starting", "running")


def _statuses(srv: Srv, ids: list[str]) -> list[str]:
    by_id = {s["id"]: s["status"] for s in srv.client.list_sessions(all=True)}
    return [by_id[i] for i in ids]


def _expect(srv: Srv, ids: list[str], want: list[str], limit: int) -> None:
    """Wait until statuses match ``want`` ('run' = starting/running); check the limit
    is never exceeded on the way."""

    def matches() -> bool:
        st = _statuses(srv, ids)
        assert sum(x in RUNNING for x in st) <= limit, st
        return all((x in RUNNING) if w == "run" else x == w for x, w in zip(st, want, strict=True))

    wait_for(matches, 30, f"statuses {want}", diagnose=srv.diagnose)


def test_max_running_queues_the_rest_and_starts_them_in_order(
    start_server: Callable[..., Srv], repo_path: Path, tmp_path: Path
) -> None:
    notify_log = tmp_path / "notify.log"
    fakebin = tmp_path / "bin"
    fakebin.mkdir()
    fake = fakebin / "notify-send"
    fake.write_text(f"#!{PY}\nimport sys\nopen({str(notify_log)!r}, 'a').write('called\\n')\n")
    fake.chmod(0o755)
    srv = start_server(
        "notify = false\n[limits]\nmax_running = 2\n",
        env={"PATH": f"{fakebin}{os.pathsep}{os.environ['PATH']}"},
    )
    gates = tmp_path / "gates"
    gates.mkdir()
    hold = write_script(tmp_path, "hold.py", HOLD)
    created = srv.client.new_sessions(
        "wait for the gate", repo=repo_path, cmd=[PY, str(hold), str(gates)], count=5
    )
    ids = [s["id"] for s in created]
    assert len(set(ids)) == 5
    _expect(srv, ids, ["run", "run", "queued", "queued", "queued"], 2)
    for k in range(5):
        (gates / ids[k]).touch()
        want = ["idle"] * (k + 1) + ["run"] * min(2, 4 - k) + ["queued"] * max(0, 2 - k)
        _expect(srv, ids, want, 2)
    started = [srv.session(i)["turns"][0]["started_at"] for i in ids]
    assert started == sorted(started)
    assert not notify_log.exists()  # notify = false: no desktop notifications


def test_per_repo_and_per_agent_limits(
    start_server: Callable[..., Srv], repo_path: Path, tmp_path: Path
) -> None:
    srv = start_server("[limits]\nmax_running = 8\nper_repo = 2\n[limits.per_agent]\ncommand = 3\n")
    other = make_repo(tmp_path / "other")
    gates = tmp_path / "gates"
    gates.mkdir()
    hold = write_script(tmp_path, "hold.py", HOLD)
    cmd = [PY, str(hold), str(gates)]
    a = [s["id"] for s in srv.client.new_sessions("a", repo=repo_path, cmd=cmd, count=3)]
    b = [s["id"] for s in srv.client.new_sessions("b", repo=str(other), cmd=cmd, count=2)]
    ids = a + b
    # per_repo=2 holds back a[2]; per_agent command=3 holds back b[1].
    _expect(srv, ids, ["run", "run", "queued", "run", "queued"], 3)
    (gates / a[0]).touch()  # a[2] is older than b[1] and now fits both limits
    _expect(srv, ids, ["idle", "run", "run", "run", "queued"], 3)
    (gates / a[1]).touch()  # a repo slot frees; b[1] fits both limits now
    _expect(srv, ids, ["idle", "idle", "run", "run", "run"], 3)
    for sid in ids:
        (gates / sid).touch()
    _expect(srv, ids, ["idle"] * 5, 3)
    repos = {r["name"] for r in srv.client.list_repos()}
    assert repos == {"repo", "other"}
    only_b = srv.client.list_sessions(repo="other")
    assert sorted(s["id"] for s in only_b) == sorted(b)
    data: Any = srv.client.list_sessions(status="idle")
    assert len(data) == 5
    assert json.loads(json.dumps(data))  # plain JSON
