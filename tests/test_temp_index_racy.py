"""A throwaway index is a copy of the worktree's index: it must keep git's racy-git check.
A same-size edit made in the second the index was written looks unchanged by its stat
data; git re-reads such an entry only while the index is not newer than it. A copy
stamped later hid the edit from `pa diff` and checkpoints (CI: `--stat` lost a.txt)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from parallel_agents import git
from tests.conftest import make_repo


def test_a_same_second_same_size_edit_is_seen_through_the_throwaway_index(
    tmp_path: Path,
) -> None:
    deadline = time.monotonic() + 30
    while True:
        wt = make_repo(tmp_path / f"wt{int(time.monotonic() * 1000)}", {"a.txt": "one\n"})
        index = git.git_path(wt, "index")
        a = wt / "a.txt"
        was = a.stat()
        start = int(time.time())
        git.run(["update-index", "--refresh"], wt, check=False)
        a.write_text("two\n")  # same size
        os.utime(a, ns=(was.st_atime_ns, was.st_mtime_ns))
        if int(time.time()) == start == int(index.stat().st_mtime) == int(was.st_mtime):
            break  # all in one second: the entry is racy
        assert time.monotonic() < deadline, "could not do it all within one second"
    while int(time.time()) == start:  # the copy is made in a later second
        time.sleep(0.01)
    with git.temp_index(wt) as env:
        git.run(["add", "-A"], wt, env=env)
        changed = git.run(["diff", "--cached", "--name-only", "HEAD"], wt, env=env).text
    assert changed.split() == ["a.txt"]
