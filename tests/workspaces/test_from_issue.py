"""Issue 16 §4: `pa new --from-issue N [PROMPT]` builds the prompt from the issue's title
and body (read with a stand-in `gh` that checks its argv and answers recorded JSON), names
the branch after it, and `pa pr` writes "Fixes #N" in the pull request's body.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import git, make_repo, pa
from tests.foundation.test_cli_sessions import script, wait_ok
from tests.workspaces.test_from_pr import gh_calls, nothing_made, stand_in_gh

ISSUE_ARGV = "issue view 5 --json number,title,body,url"
ISSUE = {
    "number": 5,
    "title": "Crash on empty config",
    "body": "pa crashes when the config file is empty.",
    "url": "https://github.com/example/repo/issues/5",
}


def test_from_issue_prompt_branch_and_fixes_line(tmp_path: Path) -> None:
    """issue 16 §4: the prompt holds the issue's title and body plus PROMPT, the branch is
    pa/issue-5-…, and `pa pr` opens a PR whose body says "Fixes #5"."""
    repo = make_repo(tmp_path / "repo")
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    env = stand_in_gh(tmp_path, {ISSUE_ARGV: {"stdout": json.dumps(ISSUE)}})
    agent = script(
        tmp_path,
        "import os\nopen('prompt.txt', 'w').write(os.environ['PA_PROMPT'])\n"
        "open('README.md', 'a').write('fixed\\n')\n",
    )
    p = pa("new", "Add a test too", "--from-issue", "5", "--cmd", agent, "--json", cwd=repo,
           env=env)  # fmt: skip
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    assert str(s["branch"]).startswith("pa/issue-5-crash-on-empty")
    assert wait_ok(str(s["id"])).returncode == 0
    prompt = (Path(str(s["worktree"])) / "prompt.txt").read_text()
    assert prompt.startswith("Fix issue #5: Crash on empty config")
    assert "pa crashes when the config file is empty." in prompt
    assert prompt.rstrip().endswith("Add a test too")
    r = pa("pr", str(s["id"]), "--json", cwd=repo, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    create = [c for c in gh_calls(env) if c[:2] == ["pr", "create"]]
    assert len(create) == 1
    body = create[0][create[0].index("--body") + 1]
    assert body.rstrip().endswith("Fixes #5")
    assert git(remote, "show", f"{s['branch']}:README.md").endswith("fixed\n")


def test_unknown_issue_is_refused(tmp_path: Path) -> None:
    """issue 16 §4 bad input: an issue number gh does not know: gh's reason, error + hint,
    nothing made."""
    repo = make_repo(tmp_path / "repo")
    err = "GraphQL: Could not resolve to an issue or pull request with the number of 999."
    argv = "issue view 999 --json number,title,body,url"
    env = stand_in_gh(tmp_path, {argv: {"stderr": err + "\n", "code": 1}})
    agent = script(tmp_path, "pass\n")
    p = pa("new", "--from-issue", "999", "--cmd", agent, cwd=repo, env=env, input="")
    assert p.returncode != 0 and "Could not resolve to an issue" in p.stderr, p.stderr
    assert "hint:" in p.stderr and "Traceback" not in p.stderr
    nothing_made(repo)
