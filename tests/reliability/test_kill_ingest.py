"""kill -9 of the ingesting process (`pa wait`) again and again while an agent writes
numbered lines: the stored events are exactly 1..N, in order, no gap, no duplicate."""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path

from parallel_agents.sessions.orchestrator import App
from tests.conftest import make_repo, output_lines
from tests.reliability.helpers import FULL, doctor, pa, pa_cmd
from tests.reliability.test_kill_create import _kill_group_at

N = 20_000 if FULL else 4_000

AGENT = r"""
import sys, time
n = int(sys.argv[1])
for i in range(1, n + 1):
    sys.stdout.write(f"{i}\n")
    if i % 200 == 0:
        sys.stdout.flush()
        time.sleep(0.01)
"""


def test_kill_ingesting_process_repeatedly(tmp_path: Path, pa_home: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    agent = tmp_path / "count.py"
    agent.write_text(AGENT)
    assert pa("repo", "add", str(repo), "--name", "demo").returncode == 0
    p = pa("new", "count", "--repo", "demo", "--cmd", f"{sys.executable} {agent} {N}", "--json")
    assert p.returncode == 0, p.stderr
    sid = json.loads(p.stdout)["id"]
    exit_file = pa_home / "sessions" / sid / "turns" / "1" / "exit"
    rng = random.Random(int(os.environ.get("PA_SEED", "11")))
    kills = 0
    wait_cmd = pa_cmd("wait", "--timeout", "60", sid)
    while not exit_file.exists() or kills < 6:
        if _kill_group_at(wait_cmd, rng.uniform(0.12, 0.5)) is None:
            kills += 1
        if kills > 200:
            break
    # A few more kills while the finished turn is being read and checkpointed.
    for _ in range(4):
        if _kill_group_at(wait_cmd, rng.uniform(0.12, 0.4)) is None:
            kills += 1
    done = pa("wait", "--timeout", "120", sid)
    assert done.returncode == 0, done.stdout + done.stderr
    assert kills >= 6
    app = App.open()
    try:
        outs = app.store.events(sid, kinds=["output"])
        assert output_lines(outs) == [str(i) for i in range(1, N + 1)]
        seqs = [e.seq for e in app.store.events(sid)]
        assert seqs == list(range(1, len(seqs) + 1))
        assert app.store.session(sid).status.value == "idle"
        assert app.store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        app.close()
    rc, rep = doctor(repair=True)
    assert rc == 0, rep
