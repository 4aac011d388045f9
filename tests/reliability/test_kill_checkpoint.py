"""kill -9 while a checkpoint runs (in a child process): the agent's HEAD, index and files
stay exactly as they were, refs are absent or valid, the store stays consistent."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

from parallel_agents.git import pool
from parallel_agents.sessions.orchestrator import App
from tests.conftest import make_repo
from tests.reliability.helpers import FULL, doctor, git, pa
from tests.reliability.test_kill_create import _files

ROUNDS = 40 if FULL else 12

# Checkpoints turn 1 of a session over and over until killed (each run replaces the ref
# and the row: the same thing the supervisor does after a turn).
CHILD = r"""
import sys
from parallel_agents.sessions.orchestrator import App
from parallel_agents.sessions import review as review_service
app = App.open()
s = app.store.session(sys.argv[1])
print("ready", flush=True)
while True:
    review_service.checkpoint_turn(app.store, s, 1)
"""


def _run_and_kill(argv: list[str], delay: float) -> tuple[bool, str]:
    """(killed, stderr): SIGKILL the process group after ``delay`` unless it ended."""
    p = subprocess.Popen(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _, err = p.communicate(timeout=delay)
        return False, err
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate(timeout=30)
        return True, ""


def _state(wt: Path) -> dict[str, str]:
    """Everything the agent owns, read without writing anything (no index refresh)."""
    adm = pool.admin_dir(wt)
    assert adm is not None
    files = {
        str(p.relative_to(wt)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(wt.rglob("*"))
        if p.is_file() and ".git" not in p.parts
    }
    return {
        "HEAD": (adm / "HEAD").read_text(),
        "index": hashlib.sha256((adm / "index").read_bytes()).hexdigest(),
        "files": json.dumps(files, sort_keys=True),
    }


def test_kill_during_checkpoint(tmp_path: Path, pa_home: Path) -> None:
    repo = make_repo(tmp_path / "repo", _files(600))
    assert pa("repo", "add", str(repo), "--name", "demo").returncode == 0
    p = pa("new", "edit", "--repo", "demo", "--cmd", "true", "--json")
    sid = json.loads(p.stdout)["id"]
    assert pa("wait", "--timeout", "60", sid).returncode == 0
    wt = Path(json.loads(p.stdout)["worktree"])
    # The agent's state: staged, unstaged, untracked, deleted and a big change.
    (wt / "pkg1" / "mod1.py").write_text("staged\n")
    git(wt, "add", "pkg1/mod1.py")
    (wt / "pkg2" / "mod2.py").write_text("unstaged\n")
    (wt / "pkg3" / "mod3.py").unlink()
    (wt / "new_dir").mkdir()
    for i in range(200):
        (wt / "new_dir" / f"f{i}.txt").write_text(f"untracked {i}\n" * 50)
    before = _state(wt)
    staged = git(wt, "--no-optional-locks", "diff", "--cached", "--name-status")
    rng = random.Random(int(os.environ.get("PA_SEED", "5")))
    killed = 0
    for _ in range(ROUNDS):
        died, err = _run_and_kill([sys.executable, "-c", CHILD, sid], rng.uniform(0.15, 0.6))
        if died:
            killed += 1
        else:
            # A kill inside `git update-ref` leaves git's ref lock behind: the next
            # checkpoint must then fail with a clear message naming it (doctor clears it).
            assert ".lock" in err, err  # git's own message names the lock file
            rc, rep = doctor(repair=True)
            assert rc == 0, rep
        assert _state(wt) == before, "a checkpoint changed the agent's worktree"
    assert killed > 0
    assert git(wt, "--no-optional-locks", "diff", "--cached", "--name-status") == staged
    # Refs are absent or complete; rows name commits that exist.
    app = App.open()
    try:
        assert app.store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        for (commit,) in app.store.db.execute(
            "SELECT commit_id FROM checkpoints WHERE session_id = ?", (sid,)
        ):
            assert git(repo, "cat-file", "-t", commit).strip() == "commit"
    finally:
        app.close()
    ref = f"refs/pa/sessions/{sid}/turns/1"
    tip = git(repo, "rev-parse", "--verify", "--quiet", ref, check=False).strip()
    if tip:
        assert git(repo, "cat-file", "-t", tip).strip() == "commit"
    fsck = subprocess.run(
        ["git", "fsck", "--no-dangling"], cwd=repo, capture_output=True, text=True
    )
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    rc, rep = doctor(repair=True)
    assert rc == 0, rep
    # A final undisturbed checkpoint holds every change, the agent's index untouched.
    done = subprocess.run(
        [sys.executable, "-c", CHILD.replace("while True:", "for _ in range(1):"), sid],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    tip = git(repo, "rev-parse", ref).strip()
    assert git(repo, "show", f"{tip}:pkg1/mod1.py") == "staged\n"
    assert git(repo, "show", f"{tip}:pkg2/mod2.py") == "unstaged\n"
    assert git(repo, "show", f"{tip}:new_dir/f7.txt") == "untracked 7\n" * 50
    gone = subprocess.run(
        ["git", "cat-file", "-e", f"{tip}:pkg3/mod3.py"], cwd=repo, capture_output=True
    )
    assert gone.returncode != 0, "the deleted file is in the checkpoint"
    assert _state(wt) == before
