"""Issue 11 D: a pull request contains the agent's work, and `pa pr` refuses up front when
it cannot open one.

Real `pa` (in-process mode), real git with a local bare remote. GitHub cannot be reached
from the tests: the success path uses a stand-in `gh` on PATH that checks its argv; the
not-logged-in refusal uses the real `gh` (Debian's package, installed by scripts/test).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import git, make_repo, pa
from tests.foundation.test_cli_sessions import new_json, script, wait_ok

URL = "https://github.com/example/repo/pull/7"

STAND_IN_GH = f"""#!{sys.executable}
import json, os, sys
here = os.path.dirname(os.path.abspath(__file__))
args = sys.argv[1:]
with open(os.path.join(here, "calls.jsonl"), "a") as f:
    f.write(json.dumps(args) + "\\n")
if args[:2] == ["auth", "status"]:
    sys.exit(0)
if args[:2] == ["pr", "create"] and "--head" in args and "--title" in args and "--body" in args:
    print("{URL}")
    sys.exit(0)
print("unexpected gh call: " + repr(args), file=sys.stderr)
sys.exit(3)
"""


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, dict[str, object]]:
    """A repo with an `origin` bare remote, a copied `.env`, and a finished session that
    changed CHANGES.rst without committing (what agents usually do)."""
    repo = make_repo(tmp_path / "repo", {"CHANGES.rst": "changes\n"})
    (repo / ".parallel-agents.toml").write_text('copy = [".env"]\n')
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "pa config")
    (repo / ".env").write_text("DB_PASS=hunter2\n")
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    agent = script(tmp_path, "open('CHANGES.rst', 'a').write('- fixed the frobnicator\\n')\n")
    s = new_json("Fix the frobnicator", "--cmd", agent, cwd=repo)
    assert wait_ok(str(s["id"])).returncode == 0
    return repo, remote, s


def stand_in_gh(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "gh-bin"
    bin_dir.mkdir()
    gh = bin_dir / "gh"
    gh.write_text(STAND_IN_GH)
    gh.chmod(0o755)
    return bin_dir


def test_pr_commits_the_agents_uncommitted_work(
    setup: tuple[Path, Path, dict[str, object]], tmp_path: Path
) -> None:
    """issue 11 D: `pa pr` commits the worktree's changes (one commit, the merge's message,
    not "pa checkpoint"; the copied .env left out) before pushing, so the PR has the work
    (was: `git log main..<branch>` empty on the remote)."""
    repo, remote, s = setup
    sid, branch, wt = str(s["id"]), str(s["branch"]), Path(str(s["worktree"]))
    bin_dir = stand_in_gh(tmp_path)
    p = pa("pr", sid, "--json", env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert p.returncode == 0, p.stdout + p.stderr
    res = json.loads(p.stdout)
    assert res["created"] is True and res["url"] == URL
    commits = git(remote, "log", "--format=%H", f"{s['base_commit']}..{branch}").split()
    assert len(commits) == 1
    msg = git(remote, "log", "-1", "--format=%B", branch)
    assert msg.splitlines()[0] == "Fix the frobnicator"
    assert "pa checkpoint" not in msg and "turn 1: Fix the frobnicator" in msg
    assert "fixed the frobnicator" in git(remote, "show", f"{branch}:CHANGES.rst")
    assert git(remote, "ls-tree", "--name-only", branch).split() == [
        ".parallel-agents.toml",
        "CHANGES.rst",
    ]
    assert git(repo, "rev-parse", branch) == git(remote, "rev-parse", branch)
    # The worktree's files are untouched; git sees them as committed now.
    assert git(wt, "status", "--porcelain") == "?? .env\n"
    assert "fixed the frobnicator" in (wt / "CHANGES.rst").read_text()
    calls = [json.loads(x) for x in (bin_dir / "calls.jsonl").read_text().splitlines()]
    assert calls[0] == ["auth", "status"]
    assert calls[1][:6] == ["pr", "create", "--head", branch, "--title", "Fix the frobnicator"]
    assert calls[1][-2:] == ["--base", "main"]
    # Merging afterwards takes the same work, once.
    m = pa("merge", sid)
    assert m.returncode == 0, m.stdout + m.stderr
    assert "fixed the frobnicator" in git(repo, "show", "main:CHANGES.rst")


@pytest.mark.skipif(shutil.which("gh") is None, reason="gh is not installed (scripts/test does)")
def test_pr_refuses_when_gh_is_not_logged_in(
    setup: tuple[Path, Path, dict[str, object]], tmp_path: Path
) -> None:
    """issue 11 D: with the real gh not logged in, `pa pr` exits 1 with error + hint and
    pushes and commits nothing (was: pushed, exit 0, "no PR was opened")."""
    repo, remote, s = setup
    sid, branch, wt = str(s["id"]), str(s["branch"]), Path(str(s["worktree"]))
    head = git(repo, "rev-parse", branch)
    config = tmp_path / "gh-config"
    config.mkdir()
    env = {"GH_CONFIG_DIR": str(config), "GH_TOKEN": "", "GITHUB_TOKEN": ""}
    p = pa("pr", sid, env=env)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "gh is not logged in" in p.stderr and "hint: run `gh auth login`" in p.stderr
    assert "Traceback" not in p.stderr
    assert git(remote, "branch", "--list") == ""
    assert git(repo, "rev-parse", branch) == head
    assert "M CHANGES.rst" in git(wt, "status", "--porcelain")


def test_pr_refuses_when_gh_is_missing(
    setup: tuple[Path, Path, dict[str, object]], tmp_path: Path
) -> None:
    """issue 11 D: with no gh on PATH, `pa pr` refuses before pushing (exit 1, hint)."""
    _repo, remote, s = setup
    bin_dir = tmp_path / "only-git"
    bin_dir.mkdir()
    real_git = shutil.which("git")
    assert real_git
    (bin_dir / "git").symlink_to(real_git)
    p = pa("pr", str(s["id"]), env={"PATH": str(bin_dir)})
    assert p.returncode == 1, p.stdout + p.stderr
    assert "GitHub CLI (gh) is not installed" in p.stderr and "hint:" in p.stderr
    assert git(remote, "branch", "--list") == ""


def test_pr_reports_a_gh_failure_after_the_push(
    setup: tuple[Path, Path, dict[str, object]], tmp_path: Path
) -> None:
    """issue 11 D: when `gh pr create` fails, `pa pr` says so and exits 1; the pushed
    branch (with the work) stays for the next try."""
    _repo, remote, s = setup
    bin_dir = stand_in_gh(tmp_path)
    gh = bin_dir / "gh"
    gh.write_text(
        STAND_IN_GH.replace(
            'print("' + URL + '")\n    sys.exit(0)', 'print("HTTP 422")\n    sys.exit(1)'
        )
    )
    p = pa("pr", str(s["id"]), env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert p.returncode == 1, p.stdout + p.stderr
    assert "gh pr create failed: HTTP 422" in p.stderr
    branch = str(s["branch"])
    assert "fixed the frobnicator" in git(remote, "show", f"{branch}:CHANGES.rst")


def test_pr_refuses_while_the_agent_works(tmp_path: Path) -> None:
    """issue 11 D: no commit is made under a running agent."""
    repo = make_repo(tmp_path / "repo")
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    gate = tmp_path / "gate"
    agent = script(
        tmp_path,
        f"import os, time\nwhile not os.path.exists({str(gate)!r}):\n    time.sleep(0.05)\n",
    )
    s = new_json("slow", "--cmd", agent, cwd=repo)
    try:
        p = pa("pr", str(s["id"]), env={"PATH": f"{stand_in_gh(tmp_path)}:{os.environ['PATH']}"})
        assert p.returncode == 1 and "still" in p.stderr, p.stdout + p.stderr
        assert git(remote, "branch", "--list") == ""
    finally:
        gate.write_text("go")
        subprocess.run([sys.executable, "-m", "parallel_agents", "wait", str(s["id"])], check=False)
