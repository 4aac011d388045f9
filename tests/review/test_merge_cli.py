"""Issue acceptance for merging: the merge queue through `pa merge`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import git, make_repo, pa
from tests.foundation.test_cli_sessions import new_json, script, wait_ok
from tests.review.test_review_cli import five_sessions


def test_merge_queue_lands_three_and_stops_at_conflict(tmp_path: Path) -> None:
    repo, ids = five_sessions(tmp_path)
    base_before = git(repo, "rev-parse", "main").strip()
    p = pa("merge", ids[0], ids[1], ids[2], "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    rep = json.loads(p.stdout)
    assert [i["status"] for i in rep["items"]] == ["merged"] * 3
    assert all(i["check"]["ok"] for i in rep["items"]), "the repo's check ran on each merge"
    for name, text in (
        ("one.txt", "one more"),
        ("two.txt", "two more"),
        ("three.txt", "three more"),
    ):
        assert text in git(repo, "show", f"main:{name}")
        assert text in (repo / name).read_text(), "the clean main checkout was brought up to date"
    assert git(repo, "merge-base", "--is-ancestor", base_before, "main") == ""
    for sid in ids[:3]:
        assert json.loads(pa("show", sid, "--json").stdout)["status"] == "merged"
    again = pa("merge", ids[0])
    assert again.returncode == 1 and "already merged" in again.stderr

    main_before = git(repo, "rev-parse", "main").strip()
    p = pa("merge", ids[3], ids[4], "--json")
    assert p.returncode == 1
    rep = json.loads(p.stdout)
    assert [i["status"] for i in rep["items"]] == ["merged", "conflict"]
    assert rep["items"][1]["conflict_paths"] == ["shared.txt"]
    assert "line five (A)" in git(repo, "show", "main:shared.txt")
    assert (
        git(repo, "rev-parse", "main~1").strip() == main_before
        or git(repo, "rev-parse", "main^1").strip() == main_before
    )
    assert json.loads(pa("show", ids[4], "--json").stdout)["status"] == "idle"
    subprocess.run(["git", "-C", str(repo), "fsck", "--no-progress"], check=True)


def test_merge_includes_uncommitted_and_respects_dirty_checkout(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    s = new_json("x", "--cmd", script(tmp_path, "open('new.txt','w').write('n')\n"), cwd=repo)
    sid = str(s["id"])
    assert wait_ok(sid).returncode == 0
    (repo / "a.txt").write_text("my local edit\n")
    p = pa("merge", sid, "--strategy", "squash")
    assert p.returncode == 0, p.stderr
    assert "uncommitted changes in the worktree were checkpointed" in p.stdout
    # issue 11 A: the checkout moves with the branch, keeping the unrelated local edit.
    assert "updated the files in" in p.stdout
    assert git(repo, "show", "main:new.txt") == "n"
    assert (repo / "a.txt").read_text() == "my local edit\n"
    assert (repo / "new.txt").read_text() == "n"
    assert git(repo, "status", "--porcelain") == " M a.txt\n"
    assert "x" in git(repo, "log", "-1", "--format=%B", "main")


def test_merge_bad_input(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    s = new_json("x", "--cmd", "true", cwd=repo)
    sid = str(s["id"])
    assert wait_ok(sid).returncode == 0
    p = pa("merge", sid, "--into", "no-such-branch")
    assert p.returncode == 2 and "does not exist" in p.stderr
    assert pa("discard", sid).returncode == 0
    p = pa("merge", sid)
    assert p.returncode == 1 and "discarded" in p.stderr


def test_fix_conflicts_sends_follow_up(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"f.txt": "x\n"})
    body = "import os\nif os.environ['PA_TURN'] == '1':\n    open('f.txt','w').write(os.environ['PA_PROMPT'][:5] + '\\n')\nelse:\n    open('prompt2.txt','w').write(os.environ['PA_PROMPT'])\n"
    a = new_json("AAAAA", "--cmd", script(tmp_path, body, "a.py"), cwd=repo)
    b = new_json("BBBBB", "--cmd", script(tmp_path, body, "b.py"), cwd=repo)
    assert wait_ok(str(a["id"]), str(b["id"])).returncode == 0
    assert pa("merge", str(a["id"])).returncode == 0
    p = pa("merge", str(b["id"]), "--fix-conflicts")
    assert p.returncode == 1 and "sent the agent a follow-up" in p.stdout
    assert wait_ok(str(b["id"])).returncode == 0
    prompt2 = (Path(str(b["worktree"])) / "prompt2.txt").read_text()
    assert "f.txt" in prompt2 and "git merge main" in prompt2


def test_pr_pushes_to_remote_and_reports_missing_gh(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    s = new_json(
        "x",
        "--cmd",
        script(
            tmp_path,
            "import subprocess\nopen('p.txt','w').write('p')\nsubprocess.run(['git','add','p.txt'])\nsubprocess.run(['git','commit','-qm','p'])\n",
        ),
        cwd=repo,
    )
    sid = str(s["id"])
    assert wait_ok(sid).returncode == 0
    p = pa("pr", sid)
    assert p.returncode != 0 and "origin" in p.stderr
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    git(repo, "remote", "add", "origin", str(remote))
    # issue 11 D: without a working gh nothing is pushed (was: pushed, exit 0, no PR).
    p = pa("pr", sid, "--json", env={"PATH": "/usr/bin:/bin", "GH_CONFIG_DIR": str(tmp_path)})
    assert p.returncode == 1, p.stdout + p.stderr
    assert "gh" in p.stderr and "nothing was committed or pushed" in p.stderr
    assert git(remote, "branch", "--list") == ""
