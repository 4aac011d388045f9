"""Issue 14 §4: `pa diff` streams git's own output, from the worktree's state, in one pass."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from parallel_agents.errors import NotFound
from parallel_agents.git import archive, diffs
from tests.conftest import git, make_repo, pa
from tests.foundation.test_cli_sessions import new_json, script, wait_ok

AGENT = """\
import os, pathlib
pathlib.Path('a.txt').write_text('a, edited\\n')
os.remove('gone.txt')
os.rename('old.txt', 'moved.txt')
pathlib.Path('new/deep').mkdir(parents=True)
pathlib.Path('new/deep/fresh.txt').write_text('fresh\\n')
pathlib.Path('caf\\u00e9 tab\\t.txt').write_text('odd name\\n')
pathlib.Path('debug.log').write_text('ignored\\n')
os.chmod('run.sh', 0o755)
"""


def test_text_diff_is_the_checkpoint_diff_without_making_one(tmp_path: Path) -> None:
    """issue 14 §4: `pa diff` (patch, --stat, --name-only) prints byte for byte what git
    prints between the base and a checkpoint of the worktree (untracked files in, ignored
    ones out, renames found, odd names unquoted in --name-only), yet makes no commit and
    moves no ref: only `--json`, which names the target commit, does."""
    files = {
        "a.txt": "a\n",
        "gone.txt": "bye\n",
        "old.txt": "a file long enough to be found again after its rename\n" * 3,
        "run.sh": "echo hi\n",
        ".gitignore": "*.log\n",
    }
    repo = make_repo(tmp_path / "repo", files)
    sid = str(new_json("edit", "--cmd", script(tmp_path, AGENT), cwd=repo)["id"])
    assert wait_ok(sid).returncode == 0
    live = f"refs/pa/sessions/{sid}/live"
    texts = {}
    for flag in ("", "--stat", "--name-only"):
        p = pa("diff", sid, *([flag] if flag else []))
        assert p.returncode == 0, p.stderr
        texts[flag] = p.stdout
    no_ref = subprocess.run(["git", "rev-parse", "--verify", "-q", live], cwd=repo, check=False)
    assert no_ref.returncode != 0, "a text diff must not write a snapshot ref"
    d = json.loads(pa("diff", sid, "--json").stdout)
    assert git(repo, "rev-parse", live).strip() == d["target"]
    base, target = d["base"], d["target"]
    want = {
        "": git(repo, "diff", "--no-color", "-M", base, target),
        "--stat": git(repo, "diff", "--no-color", "-M", "--stat", base, target),
        "--name-only": "".join(f["path"] + "\n" for f in d["files"]),
    }
    assert texts == want
    names = texts["--name-only"].splitlines()
    assert "caf\u00e9 tab\t.txt" in names and "moved.txt" in names
    assert "new/deep/fresh.txt" in names and "debug.log" not in names
    assert "rename from old.txt" in texts[""] and "new mode 100755" in texts[""]


def test_bad_ref_fails_at_the_call_not_mid_stream(tmp_path: Path) -> None:
    """issue 14 §4: with no check of the refs before git starts, a ref naming nothing is
    still a NotFound raised when the stream is asked for, not a broken response."""
    repo = make_repo(tmp_path / "repo")
    head = git(repo, "rev-parse", "HEAD").strip()
    with pytest.raises(NotFound, match="does not name a commit or tree"):
        diffs.diff_stream(repo, "0" * 40, head)
    with pytest.raises(NotFound, match="does not name a commit or tree"):
        diffs.worktree_stream(repo, "refs/heads/nope")
    with pytest.raises(NotFound, match="does not name a commit or tree"):
        diffs.diff_files(repo, head, "refs/heads/nope")
    assert "".join(diffs.diff_stream(repo, head, head)) == ""
    assert diffs.diff_files(repo, head, head) == []


def test_nested_scan_finds_what_the_archive_scan_finds(tmp_path: Path) -> None:
    """issue 14 §4: the `find` walk that runs beside git names the same nested
    repositories as ``archive.scan``: any `.git` entry, not inside caches, `.git` folders,
    other nested repositories or symbolic links."""
    wt = make_repo(tmp_path / "wt")
    for d in ("lib/one", "lib/one/inner", "node_modules/pkg", "deep/a/b/c", "venv2/x", "sp ace"):
        (wt / d / ".git").mkdir(parents=True)
    (wt / "gitfile").mkdir()
    (wt / "gitfile" / ".git").write_text("gitdir: /elsewhere\n")
    (wt / "target").mkdir()
    (wt / "target" / ".git").mkdir()
    os.symlink(wt / "target", wt / "link")  # followed by neither walk
    (wt / "build" / ".venv" / "r").mkdir(parents=True)
    (wt / "build" / ".venv" / "r" / ".git").mkdir()
    (wt / "empty").mkdir()
    found = diffs.nested_scan(wt)()
    assert found == archive.scan(wt)[0]
    assert found == ["deep/a/b/c", "gitfile", "lib/one", "sp ace", "target", "venv2/x"]
