"""Issue 11 D in the dashboard: the PR button shows its outcome, the error (gh not logged
in: nothing pushed) or the pull request's URL (the branch holds the agent's work).

GitHub cannot be reached from the tests: a stand-in `gh` on the server's PATH answers
`gh auth status` as logged out until its folder holds a `logged-in` file, and prints a
PR URL for `gh pr create`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import Server, git

URL = "https://github.com/example/webapp/pull/42"

STAND_IN_GH = f"""#!{sys.executable}
import os, sys
here = os.path.dirname(os.path.abspath(__file__))
args = sys.argv[1:]
if args[:2] == ["auth", "status"]:
    if os.path.exists(os.path.join(here, "logged-in")):
        sys.exit(0)
    print("You are not logged into any GitHub hosts. Run gh auth login to authenticate.",
          file=sys.stderr)
    sys.exit(1)
if args[:2] == ["pr", "create"] and "--head" in args:
    print("{URL}")
    sys.exit(0)
sys.exit(3)
"""


@pytest.fixture(scope="module", autouse=True)
def gh_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The stand-in gh, first on PATH for the module's server (autouse: set up before it)."""
    d = tmp_path_factory.mktemp("gh-bin")
    gh = d / "gh"
    gh.write_text(STAND_IN_GH)
    gh.chmod(0o755)
    old = os.environ.get("PATH", "")
    os.environ["PATH"] = f"{d}:{old}"
    yield d
    os.environ["PATH"] = old


def click_pr(page: Any, sid: str) -> None:
    page.goto(f"/#/s/{sid}")
    page.locator("#view-session button[data-action='pr']").click()
    dlg = page.locator("#dlg-confirm")
    dlg.wait_for()
    dlg.locator("button.c-ok").click()


def test_pr_button_shows_the_error_then_the_url(
    server: Server, page: Any, gh_dir: Path, tmp_path: Path
) -> None:
    """issue 11 D: clicking PR with gh logged out shows the error (was: nothing at all)
    and pushes nothing; once gh is logged in it shows the PR's URL and the pushed branch
    holds the agent's uncommitted work."""
    [s] = server.start("webapp", "Add the report file=report.txt delay=0.2")
    server.wait(s["id"], "idle")
    repo = server.repos["webapp"]
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))

    click_pr(page, s["id"])
    page.locator(".toast.err", has_text="gh is not logged in").wait_for()
    assert git(remote, "branch", "--list") == ""

    (gh_dir / "logged-in").write_text("yes")
    click_pr(page, s["id"])
    page.locator(".toast", has_text=f"pull request: {URL}").wait_for()
    assert "Add the report" in git(remote, "show", f"{s['branch']}:report.txt")
