"""Issue 16 §5: pairing mode under faults. The server's loop keeps the checkout in sync;
a kill -9 in the middle of a pairing step (of `pa pair` or of the server) leaves a
checkout `pa doctor` explains and `pa pair --stop` puts back byte for byte."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.reliability.helpers import doctor, git, kill_when_ref_moves, pa
from tests.workspaces.test_pair import _agent_work, _repo, _session, state

PY = sys.executable



def _until(pred: object, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _pairing_findings(report: dict[str, object]) -> list[dict[str, object]]:
    return [f for f in report["findings"] if f["kind"] == "pairing"]  # type: ignore[attr-defined,index]


def test_kill_9_of_pa_pair_mid_step_then_doctor_repairs(tmp_path: Path) -> None:
    """issue 16 §5: `pa pair` killed -9 after the files and the branch moved but before
    HEAD did: doctor names the pairing and --repair puts the checkout back exactly."""
    repo = _repo(tmp_path)
    sid, wt = _session(repo)
    _agent_work(wt)
    before = state(repo)
    marker = kill_when_ref_moves(tmp_path, repo, "refs/heads/pa/pair/")
    p = subprocess.run(
        [PY, "-m", "parallel_agents", "pair", sid],
        capture_output=True,
        text=True,
        start_new_session=True,  # the hook kills this group only
        timeout=300,
    )
    assert p.returncode == -9, (p.returncode, p.stdout, p.stderr)
    assert not marker.exists()
    assert state(repo) != before  # the state being repaired: files moved, HEAD did not
    _code, rep = doctor(repair=False)
    (f,) = _pairing_findings(rep)
    assert f["problem"] and f"pa pair --stop {sid}" in str(f["detail"])
    _code, rep = doctor(repair=True)
    (f,) = _pairing_findings(rep)
    assert f["repaired"], f
    assert state(repo) == before
    assert git(repo, "branch", "--list", f"pa/pair/{sid}").strip() == ""


@pytest.mark.usefixtures("server_mode")
def test_server_loop_syncs_then_kill_9_mid_sync_and_stop(tmp_path: Path, pa_home: Path) -> None:
    """issue 16 §5: the server's loop moves the checkout as the agent works; a kill -9
    of the server mid-sync leaves a checkout `pa pair --stop` restores byte for byte."""
    repo = _repo(tmp_path)
    sid, wt = _session(repo)
    before = state(repo)
    assert pa("pair", sid).returncode == 0
    (wt / "one.txt").write_text("first\n")
    _until(lambda: (repo / "one.txt").exists(), "the loop's first sync")
    pid = int(json.loads((pa_home / "server.json").read_text())["pid"])
    marker = kill_when_ref_moves(tmp_path, repo, "refs/heads/pa/pair/")
    (wt / "two.txt").write_text("second\n")
    (wt / "README.md").write_text("# changed by the agent\n")
    _until(lambda: not marker.exists(), "the sync step the hook kills")

    def dead() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    _until(dead, "the server's death")
    rec = json.loads(next((pa_home / "pairing").glob("*.json")).read_text())
    assert rec["syncing_to"], "the kill came inside the sync step"
    _code, rep = doctor(repair=False)
    assert any(f"pa pair --stop {sid}" in str(f["detail"]) for f in _pairing_findings(rep))
    p = pa("pair", "--stop", sid)
    assert p.returncode == 0, p.stdout + p.stderr
    assert state(repo) == before
    assert git(repo, "branch", "--list", f"pa/pair/{sid}").strip() == ""


def test_kill_9_halfway_through_the_files_of_a_sync_step(tmp_path: Path, pa_home: Path) -> None:
    """issue 16 §5: a sync step killed while git wrote the files (the record names the
    target, one file moved, one not): doctor explains it, the loop does not go on, and
    `pa pair --stop` restores byte for byte; a byte of the user's on top is refused."""
    repo = _repo(tmp_path)
    sid, wt = _session(repo)
    before = state(repo)
    assert pa("pair", sid).returncode == 0
    # The state a kill -9 inside `git read-tree -m -u OLD NEW` leaves: the record says
    # the step is under way, README.md is NEW's, src/app.py still OLD's.
    (wt / "README.md").write_text("# new readme\n")
    (wt / "src" / "app.py").write_text("print('new app')\n")
    new = git(wt, "stash", "create").strip()
    git(wt, "stash", "store", new)  # keep the commit reachable, as the pair ref does
    path = next((pa_home / "pairing").glob("*.json"))
    rec = json.loads(path.read_text())
    rec["syncing_to"] = new
    path.write_text(json.dumps(rec))
    (repo / "README.md").write_text("# new readme\n")
    st = json.loads(pa("pair", "status", "--json").stdout)["pairings"][0]
    assert not st["syncing"] and "interrupted" in st["diverged"]
    assert (repo / "src" / "app.py").read_text() == "print('hi')\n"  # not moved on
    _code, rep = doctor(repair=False)
    (f,) = _pairing_findings(rep)
    assert f["problem"] and f"pa pair --stop {sid}" in str(f["fix"])
    # A change of the user's on top: the stop refuses and keeps it.
    (repo / "src" / "app.py").write_text("the user's\n")
    p = pa("pair", "--stop", sid)
    assert p.returncode != 0 and "src/app.py" in p.stderr
    _code, rep = doctor(repair=True)
    (f,) = _pairing_findings(rep)
    assert not f["repaired"] and f["fix"] is None
    assert (repo / "src" / "app.py").read_text() == "the user's\n"
    (repo / "src" / "app.py").write_text("print('hi')\n")
    p = pa("pair", "--stop", sid)
    assert p.returncode == 0, p.stdout + p.stderr
    assert state(repo) == before
