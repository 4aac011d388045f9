"""Issue 15 §1 (import): `pa plan import --gh-label LABEL` makes a plan of the open
GitHub issues with that label, read through `gh`: each issue a task, "depends on #N"
lines its dependencies, issues an open PR fixes ("Fixes #N") left out. GitHub cannot be
reached from the tests: a stand-in `gh` on PATH checks its exact argv and prints
recorded JSON; the not-logged-in case uses the real gh."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from parallel_agents.sessions.plan_file import parse_plan
from parallel_agents.sessions.plan_import_gh import depends_on
from tests.conftest import pa

KNOWN = {"command", "claude", "codex"}.__contains__
ISSUE_ARGS = ["issue", "list", "--label", "ready", "--state", "open", "--limit", "500",
              "--json", "number,title,body"]
PR_ARGS = ["pr", "list", "--state", "open", "--limit", "500", "--json", "number,body"]

STAND_IN_GH = f"""#!{sys.executable}
import json, os, sys
here = os.path.dirname(os.path.abspath(__file__))
args = sys.argv[1:]
with open(os.path.join(here, "calls.jsonl"), "a") as f:
    f.write(json.dumps(args) + "\\n")
repo = json.load(open(os.path.join(here, "repo.json")))
tail = ["--repo", repo] if repo else []
if args == {ISSUE_ARGS!r} + tail:
    print(open(os.path.join(here, "issues.json")).read())
    sys.exit(0)
if args == {PR_ARGS!r} + tail:
    print(open(os.path.join(here, "prs.json")).read())
    sys.exit(0)
print("unexpected gh call: " + repr(args), file=sys.stderr)
sys.exit(3)
"""


def stand_in_gh(
    tmp: Path, issues: list[dict[str, object]], prs: list[dict[str, object]], repo: str | None
) -> dict[str, str]:
    """A `gh` that answers the two calls pa makes, exactly, with ``issues`` and ``prs``;
    the environment that puts it first on PATH."""
    bin_dir = tmp / "gh-bin"
    bin_dir.mkdir(exist_ok=True)
    gh = bin_dir / "gh"
    gh.write_text(STAND_IN_GH)
    gh.chmod(0o755)
    (bin_dir / "issues.json").write_text(json.dumps(issues))
    (bin_dir / "prs.json").write_text(json.dumps(prs))
    (bin_dir / "repo.json").write_text(json.dumps(repo))
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}


def calls(tmp: Path) -> list[list[str]]:
    return [json.loads(x) for x in (tmp / "gh-bin" / "calls.jsonl").read_text().splitlines()]


def issue(n: int, title: str, body: str = "") -> dict[str, object]:
    return {"number": n, "title": title, "body": body, "url": f"https://github.com/octo/app/issues/{n}"}


ISSUES = [
    issue(3, "Document login", "Depends on #2, #4 and #9.\n\nWrite docs/login.md.\nDEPENDS ON #1"),
    issue(1, "Users table", "Add a users table."),
    issue(2, "Login endpoint", "POST /login.\n\ndepends on #1\nSee #7 for context."),
    issue(4, "Fix the typo", "In README."),
    issue(5, "Untitled body"),
]
PRS = [
    {"number": 20, "body": "This PR\n\nFixes #4"},
    {"number": 21, "body": "closes #99, refs #5"},
]


def test_issues_become_a_plan(tmp_path: Path) -> None:
    """issue 15 §1 (import): the exact gh calls (with --repo); tasks issue-N in number
    order, title and body the prompt; "depends on" lines (any case, several numbers a
    line) the dependencies; #4, which PR #20 fixes, left out, and so is the dependency
    on it and on #9 (no issue of the set), each said in a note; the file is a valid plan."""
    env = stand_in_gh(tmp_path, ISSUES, PRS, "octo/app")
    out = tmp_path / "ready.toml"
    p = pa("plan", "import", "--gh-label", "ready", "--repo", "octo/app", "--out", str(out),
           "--agent", "codex", "--auto-merge", env=env)
    assert p.returncode == 0, p.stderr
    assert calls(tmp_path) == [[*ISSUE_ARGS, "--repo", "octo/app"], [*PR_ARGS, "--repo", "octo/app"]]
    assert p.stdout.strip() == f"wrote {out}: 4 tasks; start it: pa plan run {out}"
    assert p.stderr.splitlines() == [
        "note: issue #4 left out: the open pull request #20 fixes it",
        "note: issue-3: its dependency #4 dropped: it is left out (the open pull request #20 "
        "fixes it); merge that first",
        "note: issue-3: its dependency #9 dropped: it is not an open issue labelled 'ready'; "
        "check it is done",
    ]
    plan = parse_plan(out.read_text(), known_agent=KNOWN)
    assert plan.name == "gh-ready"
    t = {x.id: x for x in plan.tasks}
    assert list(t) == ["issue-1", "issue-2", "issue-3", "issue-5"]
    assert t["issue-1"].title == "Users table"
    assert t["issue-1"].prompt == "Users table\n\nAdd a users table."
    assert t["issue-5"].prompt == "Untitled body"
    assert t["issue-2"].depends_on == ["issue-1"]  # "See #7" is no dependency
    assert t["issue-3"].depends_on == ["issue-2", "issue-1"]
    assert t["issue-1"].agent == "codex" and t["issue-1"].auto_merge is True

    p = pa("plan", "import", "--gh-label", "ready", "--json",
           env=stand_in_gh(tmp_path, ISSUES, PRS, None))
    assert p.returncode == 0, p.stderr
    assert calls(tmp_path)[-2:] == [ISSUE_ARGS, PR_ARGS]  # no --repo: gh's own
    doc = json.loads(p.stdout)
    assert [x["id"] for x in doc["tasks"]] == ["issue-1", "issue-2", "issue-3", "issue-5"]


def test_depends_on_lines() -> None:
    """issue 15 §1 (import): what counts as a "depends on" line."""
    assert depends_on("Depends on #3\nDepends-on: #4, #5 and #3\nblocked by #6") == [3, 4, 5]
    assert depends_on("It depends on how #2 goes") == [2]
    assert depends_on("see #1\nfoo/bar#2 depends on nothing") == []


def test_a_cycle_among_issues_is_named(tmp_path: Path) -> None:
    """issue 15 §1 (import): issues that depend on each other are refused by the plan's
    own check, naming the cycle; nothing is written."""
    cyc = [issue(1, "A", "depends on #2"), issue(2, "B", "Depends on #1")]
    out = tmp_path / "c.toml"
    p = pa("plan", "import", "--gh-label", "ready", "--out", str(out),
           env=stand_in_gh(tmp_path, cyc, [], None))
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "task 'issue-1': its dependencies form a cycle: issue-1 -> issue-2 -> issue-1" in p.stderr
    assert p.stderr.startswith("error: the issues labelled 'ready' is not a valid plan")
    assert not out.exists()


def test_no_issues_with_the_label(tmp_path: Path) -> None:
    """issue 15 §1 (import): no open issue with the label is an error with a hint."""
    p = pa("plan", "import", "--gh-label", "ready", "--repo", "octo/app",
           env=stand_in_gh(tmp_path, [], [], "octo/app"))
    assert p.returncode == 2, p.stderr
    assert "error: no open issues are labelled 'ready' in octo/app: no plan to make" in p.stderr
    assert "hint: see the labels: gh label list --repo octo/app" in p.stderr
    assert calls(tmp_path) == [[*ISSUE_ARGS, "--repo", "octo/app"]]


def test_gh_missing(tmp_path: Path) -> None:
    """issue 15 §1 (import): without gh on PATH: an error and how to install it."""
    bin_dir = tmp_path / "empty-bin"
    bin_dir.mkdir()
    p = pa("plan", "import", "--gh-label", "ready", env={"PATH": str(bin_dir)})
    assert p.returncode == 1, p.stderr
    assert "error: the GitHub CLI (gh) is not installed, so pa cannot read the issues" in p.stderr
    assert "hint: install gh (https://cli.github.com" in p.stderr


@pytest.mark.skipif(shutil.which("gh") is None, reason="gh is not installed (scripts/test does)")
def test_gh_not_logged_in(tmp_path: Path) -> None:
    """issue 15 §1 (import): the real gh, not logged in: a clear error saying so."""
    config = tmp_path / "gh-config"
    config.mkdir()
    env = {"GH_CONFIG_DIR": str(config), "GH_TOKEN": "", "GITHUB_TOKEN": ""}
    p = pa("plan", "import", "--gh-label", "ready", "--repo", "octo/app", env=env)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "error: gh is not logged in to GitHub, so pa cannot read the issues" in p.stderr
    assert "hint: run `gh auth login`" in p.stderr
    assert "Traceback" not in p.stderr


def test_where_the_tasks_come_from(tmp_path: Path) -> None:
    """issue 15 §1 (import): an epic folder or --gh-label, exactly one."""
    p = pa("plan", "import")
    assert p.returncode == 2 and "error: say where the tasks come from" in p.stderr
    p = pa("plan", "import", str(tmp_path), "--gh-label", "x")
    assert p.returncode == 2 and "error: say where the tasks come from" in p.stderr
