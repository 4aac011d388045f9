"""Issue acceptance: a session edits two files and creates one; diff, discard, restore."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import git, make_repo, pa
from tests.foundation.test_cli_sessions import new_json, script, wait_ok


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


def test_diff_shows_commits_uncommitted_and_untracked(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "one\n", "b.txt": "two\n", "keep.txt": "k\n"})
    agent = script(
        tmp_path,
        "import subprocess\n"
        "open('a.txt', 'a').write('one more\\n')\n"
        "subprocess.run(['git', 'commit', '-qam', 'agent commit'], check=True)\n"
        "open('b.txt', 'w').write('changed\\n')\n"
        "open('c.txt', 'w').write('brand new\\n')\n",
    )
    s = new_json("edit files", "--cmd", agent, cwd=repo)
    sid = str(s["id"])
    assert wait_ok(sid).returncode == 0
    d = pa("diff", sid)
    assert d.returncode == 0, d.stderr
    for path in ("a.txt", "b.txt", "c.txt"):
        assert f"+++ b/{path}" in d.stdout
    assert "+one more" in d.stdout and "+changed" in d.stdout and "+brand new" in d.stdout
    stat = pa("diff", sid, "--stat").stdout
    assert "3 files changed" in stat
    files = json.loads(pa("diff", sid, "--json").stdout)["files"]
    assert {f["path"]: f["status"] for f in files} == {"a.txt": "M", "b.txt": "M", "c.txt": "A"}
    # Diffing never touched the agent's index or HEAD.
    wt = Path(str(s["worktree"]))
    porcelain = git(wt, "status", "--porcelain")
    assert " M b.txt" in porcelain and "?? c.txt" in porcelain

    before = tree_bytes(wt)
    head_before = git(wt, "rev-parse", "HEAD")
    dis = pa("discard", sid, "--json")
    assert dis.returncode == 0, dis.stderr
    assert json.loads(dis.stdout)["archive"]["ref"] == f"refs/pa/archive/{sid}"
    assert not wt.exists()
    assert str(s["branch"]) not in git(repo, "branch", "--list")
    assert pa("ls", "--json").stdout.strip() == "[]"
    res = pa("restore", sid)
    assert res.returncode == 0, res.stderr
    assert tree_bytes(wt) == before
    assert git(wt, "rev-parse", "HEAD") == head_before
    assert git(wt, "rev-parse", "--abbrev-ref", "HEAD").strip() == s["branch"]
    porcelain = git(wt, "status", "--porcelain")
    assert " M b.txt" in porcelain and "?? c.txt" in porcelain
    assert json.loads(pa("show", sid, "--json").stdout)["status"] == "idle"


def test_send_after_restore_continues(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    agent = script(tmp_path, "import os\nopen(f\"t{os.environ['PA_TURN']}.txt\", 'w').write('x')\n")
    s = new_json("x", "--cmd", agent, cwd=repo)
    sid = str(s["id"])
    assert wait_ok(sid).returncode == 0
    assert pa("discard", sid).returncode == 0
    p = pa("send", sid, "more")
    assert p.returncode == 1 and "pa restore" in p.stderr
    assert pa("restore", sid).returncode == 0
    assert pa("send", sid, "more").returncode == 0
    assert wait_ok(sid).returncode == 0
    assert sorted(x.name for x in Path(str(s["worktree"])).glob("t*.txt")) == ["t1.txt", "t2.txt"]
    subprocess.run(["git", "-C", str(repo), "fsck", "--no-progress"], check=True)
