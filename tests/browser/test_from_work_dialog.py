"""Issue 16 §4 (dashboard): the New-session dialog offers "Start from" (a new branch, an
existing branch, a PR, an issue); choosing an existing branch starts a session on it."""

from __future__ import annotations

import sys
from typing import Any

from tests.browser.conftest import FAKE_AGENT, Server, git, js_wait, shot


def test_new_dialog_starts_from_an_existing_branch(page: Any, server: Server) -> None:
    """issue 16 §4: "Start from: an existing branch" + its name sends from_branch; the
    session works on that branch (no pa/… branch), and the PR/issue choices exist."""
    repo = server.repo("fromdlg")
    git(repo, "branch", "feature-x")
    page.reload()
    js_wait(page, "() => window.__pa && window.__pa.ready")
    page.keyboard.press("n")
    page.locator("#dlg-new").wait_for()
    form = page.locator("#form-new")
    kinds = form.locator("select[name=from] option").evaluate_all("os => os.map(o => o.value)")
    assert kinds == ["", "branch", "pr", "issue"]
    assert form.locator(".from-row").is_hidden()
    form.locator("select[name=repo]").select_option("fromdlg")
    form.locator("select[name=agent]").select_option("command")
    form.locator("input[name=cmd]").fill(f"{sys.executable} {FAKE_AGENT}")
    form.locator("select[name=from]").select_option("branch")
    assert form.locator(".from-row").is_visible()
    form.locator("input[name=from_value]").fill("feature-x")
    form.locator("textarea[name=prompt]").fill("continue the feature")
    shot(page, "new-from")  # scripts/screenshots.sh: docs/img/dashboard-new-from.png
    page.click("#btn-new-ok")
    page.locator("#dlg-new").wait_for(state="hidden")
    made = [s for s in server.api("GET", "/sessions?all=true")["sessions"]
            if s["repo_name"] == "fromdlg"]  # fmt: skip
    assert [s["branch"] for s in made] == ["feature-x"]
