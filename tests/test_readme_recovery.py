"""The README's recovery steps work word for word (issue 20, "Done when": the data-safety
section's recovery steps are tested as written).

Each test builds the situation the block is for, runs the block exactly as the README shows
it (``bash -e``, with ``pa`` on PATH and HOME pointing at the test's folder), and checks that
the user's work is back.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, git, make_repo, pa
from tests.foundation.test_cli_sessions import new_json, script, wait_ok

README = (ROOT / "README.md").read_text(encoding="utf-8")


def block(name: str) -> str:
    """The fenced sh block that follows ``<!-- recovery:NAME -->`` in the README."""
    m = re.search(rf"<!-- recovery:{name} -->\n```sh\n(.*?)```", README, flags=re.S)
    assert m, f"the README has no recovery block {name!r}"
    return m.group(1)


def run_block(name: str, home: Path) -> subprocess.CompletedProcess[str]:
    """Run the block under ``bash -e`` with a ``pa`` that is this checkout's CLI."""
    bin_dir = home / "bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "pa"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m parallel_agents "$@"\n')
    shim.chmod(0o755)
    env = dict(os.environ, HOME=str(home), PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    p = subprocess.run(
        ["bash", "-e", "-c", block(name)],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert p.returncode == 0, f"{name}:\n{p.stdout}\n{p.stderr}"
    assert "Traceback" not in p.stderr
    return p


def one_session(repo: Path, tmp_path: Path) -> dict[str, object]:
    """A finished session that left uncommitted work (``work.txt``) in its worktree."""
    agent = script(tmp_path, "open('work.txt', 'w').write('the agent was here\\n')\n")
    s = new_json("write work.txt", "--cmd", agent, cwd=repo)
    assert wait_ok(str(s["id"])).returncode == 0
    return json.loads(pa("show", str(s["id"]), "--json", check=True).stdout)  # type: ignore[no-any-return]


def test_moved_repository_block(tmp_path: Path) -> None:
    """README recovery:moved-repo: after `mv ~/code/proj ~/src/proj`, the block re-points pa
    and the session's worktree works again with its uncommitted work."""
    repo = make_repo(tmp_path / "code" / "proj")
    s = one_session(repo, tmp_path)
    (tmp_path / "src").mkdir()
    shutil.move(repo, tmp_path / "src" / "proj")
    run_block("moved-repo", tmp_path)
    [r] = json.loads(pa("repo", "ls", "--json", check=True).stdout)
    assert Path(r["path"]).resolve() == (tmp_path / "src" / "proj").resolve()
    wt = Path(str(s["worktree"]))
    assert (wt / "work.txt").read_text() == "the agent was here\n"
    assert "work.txt" in git(wt, "status", "--porcelain")
    d = pa("diff", str(s["id"]), "--name-only", check=True)
    assert "work.txt" in d.stdout


def test_deleted_repository_block(tmp_path: Path) -> None:
    """README recovery:deleted-repo: the session's files are still in its worktree (as the
    block says), and `pa repo rm` then unregisters the deleted repository."""
    repo = make_repo(tmp_path / "code" / "proj")
    s = one_session(repo, tmp_path)
    shutil.rmtree(repo)
    wt = Path(str(s["worktree"]))
    assert (wt / "work.txt").read_text() == "the agent was here\n"
    run_block("deleted-repo", tmp_path)
    assert json.loads(pa("repo", "ls", "--json", check=True).stdout) == []
    assert (wt / "work.txt").read_text() == "the agent was here\n"  # left as it was


def test_damaged_database_block(tmp_path: Path, pa_home: Path) -> None:
    """README recovery:damaged-db: with pa.db damaged, the block restores the newest backup
    and re-creates the sessions started since it; `pa ls` shows them again."""
    repo = make_repo(tmp_path / "code" / "proj")
    first = one_session(repo, tmp_path)
    second = one_session(repo, tmp_path)
    db = pa_home / "pa.db"
    os.truncate(db, 3000)
    broken = pa("ls")
    assert broken.returncode != 0 and "damaged" in broken.stderr
    assert "Traceback" not in broken.stderr
    run_block("damaged-db", tmp_path)
    ids = {str(x["id"]) for x in json.loads(pa("ls", "--json", check=True).stdout)}
    assert {str(first["id"]), str(second["id"])} <= ids
    assert (Path(str(second["worktree"])) / "work.txt").exists()
