"""kill -9 of `pa discard` at random moments, then the obvious retry (and `pa doctor
--repair` when the retry meets a lock the kill left): the work is never lost, and
`pa restore` brings back exactly what the worktree held."""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from pathlib import Path

from tests.conftest import make_repo
from tests.reliability.helpers import FULL, doctor, git, pa, pa_cmd
from tests.reliability.test_kill_create import _files, _kill_group_at

ROUNDS = 10 if FULL else 4


def _state(wt: Path) -> dict[str, object]:
    files = {
        p.relative_to(wt).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(wt.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(wt).parts
    }
    return {
        "HEAD": git(wt, "rev-parse", "HEAD"),
        "staged": git(wt, "diff", "--cached", "--name-status"),
        "files": files,
    }


def _new_session_with_work(i: int) -> tuple[str, Path]:
    p = pa("new", f"work {i}", "--repo", "demo", "--cmd", "true", "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert pa("wait", "--timeout", "60", d["id"]).returncode == 0
    wt = Path(d["worktree"])
    (wt / "pkg1" / "mod1.py").write_text(f"staged {i}\n")
    git(wt, "add", "pkg1/mod1.py")
    (wt / "pkg2" / "mod2.py").write_text(f"unstaged {i}\n")
    (wt / "notes.log").write_text(f"ignored {i}\n")
    (wt / "new_dir").mkdir()
    for k in range(150):
        (wt / "new_dir" / f"f{k}.txt").write_text(f"untracked {i}.{k}\n" * 20)
    return d["id"], wt


def test_kill_discard_at_random_moments_then_retry(tmp_path: Path) -> None:
    """issue 11 B.3 (kill -9): a killed discard followed by a retry keeps the good
    archive; `pa restore` brings every file, ignored ones and the staging area back."""
    repo = make_repo(tmp_path / "repo", {**_files(300), ".gitignore": "*.log\n"})
    assert pa("repo", "add", str(repo), "--name", "demo").returncode == 0
    # How long an undisturbed discard takes here: kills land across all of it.
    sid, _ = _new_session_with_work(-1)
    t0 = time.monotonic()
    assert _kill_group_at(pa_cmd("discard", sid), 60) == 0
    full = time.monotonic() - t0
    rng = random.Random(int(os.environ.get("PA_SEED", "11")))
    killed = 0
    for i in range(ROUNDS):
        sid, wt = _new_session_with_work(i)
        before = _state(wt)
        rc = _kill_group_at(pa_cmd("discard", sid), rng.uniform(0.2, 1.0) * full)
        killed += rc is None
        for _ in range(3):
            if json.loads(pa("show", sid, "--json").stdout)["status"] == "discarded":
                break
            retry = pa("discard", sid)
            assert "Traceback" not in retry.stderr, retry.stderr
            if retry.returncode != 0:
                assert doctor(repair=True)[0] == 0
        assert json.loads(pa("show", sid, "--json").stdout)["status"] == "discarded"
        r = pa("restore", sid)
        assert r.returncode == 0, r.stderr
        assert _state(wt) == before, f"round {i}: the restored worktree differs"
    assert killed > 0
    rc, rep = doctor(repair=False)
    assert rc == 0, rep
