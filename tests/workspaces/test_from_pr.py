"""Issue 16 §4: `pa new --from-pr N` starts a session on the pull request's head (fetched
from a LOCAL bare `origin` holding `refs/pull/N/head`), and `pa pr` pushes the follow-up
work to the PR's own branch. GitHub cannot be reached from here: a stand-in `gh` on PATH
checks its argv exactly and answers recorded JSON; the real `gh` (Debian's package) with an
empty config covers the not-logged-in refusal.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import git, make_repo, pa
from tests.foundation.test_cli_sessions import script, wait_ok

PR_FIELDS = (
    "number,title,body,state,url,headRefName,headRepositoryOwner,isCrossRepository,"
    "headRepository"
)
PR_URL = "https://github.com/example/repo/pull/7"

STAND_IN_GH = f"""#!{sys.executable}
import json, os, sys
here = os.path.dirname(os.path.abspath(__file__))
args = sys.argv[1:]
with open(os.path.join(here, "calls.jsonl"), "a") as f:
    f.write(json.dumps(args) + "\\n")
answers = json.load(open(os.path.join(here, "answers.json")))
key = " ".join(args)
if args[:2] == ["auth", "status"]:
    sys.exit(0)
if args[:2] == ["pr", "create"]:
    print("https://github.com/example/repo/pull/99")
    sys.exit(0)
if key in answers:
    a = answers[key]
    sys.stdout.write(a.get("stdout", ""))
    sys.stderr.write(a.get("stderr", ""))
    sys.exit(a.get("code", 0))
print("unexpected gh call: " + repr(args), file=sys.stderr)
sys.exit(3)
"""


def stand_in_gh(tmp_path: Path, answers: dict[str, dict[str, object]]) -> dict[str, str]:
    """A `gh` that answers ``answers`` (keyed by its exact argv); the env to run pa with."""
    bin_dir = tmp_path / "gh-bin"
    bin_dir.mkdir(exist_ok=True)
    gh = bin_dir / "gh"
    gh.write_text(STAND_IN_GH)
    gh.chmod(0o755)
    (bin_dir / "answers.json").write_text(json.dumps(answers))
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}


def gh_calls(env: dict[str, str]) -> list[list[str]]:
    calls = Path(env["PATH"].split(":")[0]) / "calls.jsonl"
    return [json.loads(x) for x in calls.read_text().splitlines()] if calls.exists() else []


def pr_json(**over: object) -> dict[str, object]:
    d: dict[str, object] = {
        "number": 7,
        "title": "Fix the frobnicator",
        "body": "It breaks on empty input.",
        "state": "OPEN",
        "url": PR_URL,
        "headRefName": "fix-frob",
        "headRepositoryOwner": {"login": "me"},
        "isCrossRepository": False,
        "headRepository": {"name": "repo"},
    }
    d.update(over)
    return d


def pr_answer(**over: object) -> dict[str, dict[str, object]]:
    return {f"pr view 7 --json {PR_FIELDS}": {"stdout": json.dumps(pr_json(**over))}}


@pytest.fixture
def repo_with_pr(tmp_path: Path) -> tuple[Path, Path]:
    """A repo whose bare `origin` has branch fix-frob and refs/pull/7/head at its tip
    (the local repo has neither: the PR is someone else's push)."""
    repo = make_repo(tmp_path / "repo", {"frob.txt": "frob\n"})
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "main")
    git(repo, "checkout", "-q", "-b", "fix-frob")
    (repo / "frob.txt").write_text("frob fixed\n")
    git(repo, "commit", "-qam", "PR work")
    git(repo, "push", "-q", "origin", "fix-frob", "fix-frob:refs/pull/7/head")
    git(repo, "checkout", "-q", "main")
    git(repo, "branch", "-q", "-D", "fix-frob")
    return repo, remote


def nothing_made(repo: Path) -> None:
    p = pa("ls", "--all", "--json")
    data = json.loads(p.stdout)
    assert (data["sessions"] if isinstance(data, dict) else data) == []
    assert len(git(repo, "worktree", "list").splitlines()) == 1


def test_from_pr_works_on_the_pr_head_and_pushes_to_it(
    repo_with_pr: tuple[Path, Path], tmp_path: Path
) -> None:
    """issue 16 §4: --from-pr N (no PROMPT) fetches the PR's head into pa/pr-N-…, the
    prompt is built from its title and body, and `pa pr` pushes the follow-up to the PR's
    branch (no new PR is opened)."""
    repo, remote = repo_with_pr
    env = stand_in_gh(tmp_path, pr_answer())
    agent = script(
        tmp_path,
        "import os\nopen('prompt.txt', 'w').write(os.environ['PA_PROMPT'])\n"
        "open('frob.txt', 'a').write('follow-up\\n')\n",
    )
    p = pa("new", "--from-pr", "7", "--cmd", agent, "--json", cwd=repo, env=env, input="")
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    assert s["branch"] == "pa/pr-7-fix-frob"
    assert gh_calls(env)[0] == ["pr", "view", "7", "--json", PR_FIELDS]
    assert wait_ok(str(s["id"])).returncode == 0
    prompt = (Path(str(s["worktree"])) / "prompt.txt").read_text()
    assert prompt.startswith("Continue the work of PR #7: Fix the frobnicator")
    assert "It breaks on empty input." in prompt
    r = pa("pr", str(s["id"]), "--json", cwd=repo, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(r.stdout)
    assert res["url"] == PR_URL and res["created"] is False and res["branch"] == "fix-frob"
    assert git(remote, "show", "fix-frob:frob.txt") == "frob fixed\nfollow-up\n"
    assert not any(c[:2] == ["pr", "create"] for c in gh_calls(env))
    # A second session on the same PR while this one holds it: refused, nothing made.
    again = pa("new", "--from-pr", "7", "--cmd", agent, cwd=repo, env=env, input="")
    assert again.returncode != 0 and f"checked out in {s['worktree']}" in again.stderr
    assert len(git(repo, "worktree", "list").splitlines()) == 2


def test_from_pr_refuses_fork_closed_and_unknown(
    repo_with_pr: tuple[Path, Path], tmp_path: Path
) -> None:
    """issue 16 §4 bad input: a PR from a fork (pushes could not go back), a closed PR and a
    PR gh does not know are refused with error + hint; nothing is made."""
    repo, _ = repo_with_pr
    agent = script(tmp_path, "pass\n")
    cases = [
        (pr_answer(isCrossRepository=True, headRepositoryOwner={"login": "fork"}), "fork"),
        (pr_answer(state="CLOSED"), "is closed"),
        (
            {
                f"pr view 7 --json {PR_FIELDS}": {
                    "stderr": "GraphQL: Could not resolve to a PullRequest with the number "
                    "of 7. (repository.pullRequest)\n",
                    "code": 1,
                }
            },
            "Could not resolve to a PullRequest",
        ),
    ]
    for answers, words in cases:
        env = stand_in_gh(tmp_path, answers)
        p = pa("new", "--from-pr", "7", "--cmd", agent, cwd=repo, env=env, input="")
        assert p.returncode != 0 and words in p.stderr, p.stderr
        assert "error:" in p.stderr and "hint:" in p.stderr and "Traceback" not in p.stderr
    nothing_made(repo)
    assert git(repo, "branch", "--list", "pa/*") == ""


def test_gh_missing_is_a_clear_error(repo_with_pr: tuple[Path, Path], tmp_path: Path) -> None:
    """issue 16 §4: without gh on PATH, --from-pr/--from-issue say how to install it."""
    repo, _ = repo_with_pr
    only_git = tmp_path / "only-git"
    only_git.mkdir()
    git_exe = shutil.which("git")
    assert git_exe is not None
    (only_git / "git").symlink_to(git_exe)
    for flag in ("--from-pr", "--from-issue"):
        p = pa("new", flag, "7", "--cmd", "true", cwd=repo, env={"PATH": str(only_git)},
               input="")  # fmt: skip
        assert p.returncode != 0 and "gh) is not installed" in p.stderr, p.stderr
        assert "apt install gh" in p.stderr
    nothing_made(repo)


@pytest.mark.skipif(shutil.which("gh") is None, reason="gh is not installed (scripts/test does)")
def test_real_gh_not_logged_in(repo_with_pr: tuple[Path, Path], tmp_path: Path) -> None:
    """issue 16 §4: the real gh with an empty config: "not logged in", `gh auth login`."""
    repo, _ = repo_with_pr
    git(repo, "remote", "set-url", "origin", "https://github.com/example/repo.git")
    cfg = tmp_path / "gh-config"
    cfg.mkdir()
    env = {"GH_CONFIG_DIR": str(cfg)}
    saved = {k: os.environ.pop(k) for k in ("GH_TOKEN", "GITHUB_TOKEN") if k in os.environ}
    try:
        for flag in ("--from-pr", "--from-issue"):
            p = pa("new", flag, "7", "--cmd", "true", cwd=repo, env=env, input="")
            assert p.returncode != 0 and "gh is not logged in" in p.stderr, p.stderr
            assert "gh auth login" in p.stderr
    finally:
        os.environ.update(saved)
    nothing_made(repo)
