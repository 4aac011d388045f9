"""kill -9 during a merge (in a child process): the target branch is either where it was
or at the complete merge, never anything else, and nothing it held is lost."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import make_repo
from tests.reliability.helpers import FULL, doctor, git, pa
from tests.reliability.test_kill_create import _files, _kill_group_at

CHILD = r"""
import sys
import time
from pathlib import Path
from parallel_agents.git import merging as merge
repo, source, strategy = sys.argv[1:4]
merge.merge(Path(repo), source, "main", strategy=strategy, message=f"merge {source}")
"""

SOURCES = 9 if FULL else 6


def test_kill_during_merge(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", _files(300))
    strategies = ["merge", "squash", "rebase"]
    for i in range(SOURCES):
        git(repo, "checkout", "-q", "-b", f"feature/src-{i}", "main")
        for j in range(2):  # two commits each, so a rebase replays more than one
            (repo / f"pkg{i}" / f"feature{i}_{j}.py").write_text(f"feature {i} part {j}\n")
            git(repo, "add", "-A")
            git(repo, "commit", "-q", "-m", f"feature {i}.{j}")
    git(repo, "checkout", "-q", "main")
    rng = random.Random(int(os.environ.get("PA_SEED", "3")))
    # How long an undisturbed child takes (a merge of a side branch, then undone).
    probe = [sys.executable, "-c", CHILD, str(repo), "feature/src-0", "merge"]
    before = git(repo, "rev-parse", "main").strip()
    t0 = time.monotonic()
    assert _kill_group_at(probe, 60) == 0
    full = time.monotonic() - t0
    git(repo, "update-ref", "refs/heads/main", before)
    kills = 0
    locks_cleared = 0
    lock = repo / ".git" / "refs" / "heads" / "main.lock"
    assert pa("repo", "add", str(repo), "--name", "demo").returncode == 0
    for i in range(SOURCES):
        strategy = strategies[i % 3]
        source = f"feature/src-{i}"
        for attempt in range(6):
            old = git(repo, "rev-parse", "main").strip()
            delay = rng.uniform(0.6 * full, 1.3 * full) if attempt < 4 else 60.0
            rc = _kill_group_at([sys.executable, "-c", CHILD, str(repo), source, strategy], delay)
            kills += rc is None
            if lock.exists():
                # A kill inside `git update-ref` leaves git's lock: pa doctor clears it.
                assert doctor(repair=True)[0] == 0
                assert not lock.exists()
                locks_cleared += 1
            new = git(repo, "rev-parse", "main").strip()
            if new == old:
                assert rc in (None, 1), f"the merge of {source} did nothing and said so {rc}"
                continue
            # Moved: it must be the complete merge on top of `old`.
            assert rc in (None, 0)
            assert (
                subprocess.run(
                    ["git", "merge-base", "--is-ancestor", old, new], cwd=repo
                ).returncode
                == 0
            ), "the target lost commits"
            for j in range(2):
                assert git(repo, "show", f"{new}:pkg{i}/feature{i}_{j}.py") == (
                    f"feature {i} part {j}\n"
                )
            if strategy == "merge":
                parents = git(repo, "rev-list", "--parents", "-n1", new).split()[1:]
                assert parents == [old, git(repo, "rev-parse", source).strip()]
            break
        else:
            raise AssertionError(f"{source} was never merged")
    assert kills > 0
    if os.environ.get("PA_DEBUG"):
        print(f"kills={kills} locks={locks_cleared}")
    for i in range(SOURCES):  # everything merged is still there at the end
        assert git(repo, "show", f"main:pkg{i}/feature{i}_1.py") == f"feature {i} part 1\n"
    fsck = subprocess.run(
        ["git", "fsck", "--no-dangling"], cwd=repo, capture_output=True, text=True
    )
    assert fsck.returncode == 0, fsck.stderr
