"""Issue 15 §3 in the dashboard: a reviewer agent's comments appear in the diff view at
their lines, marked as the agent's, beside the person's own; the person sends some of them
with their own in ONE follow-up, and the ones sent are marked sent on the server."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from parallel_agents.sessions.reviewer import review_prompt

from .conftest import Server, shot

REVIEWER = """
import json
print(json.dumps({"comments": [
    {"path": "README.md", "line": 2, "side": "new", "body": "Name the command, too."},
    {"path": "README.md", "line": 2, "side": "new", "body": "And link the README."},
]}))
"""


def test_reviewer_comments_in_the_diff_view(server: Server, page: Any, tmp_path: Path) -> None:
    """issue 15 §3: the reviewer's comments at their lines; send some of them, with one of
    the person's own, as one follow-up in the text `pa review --send` builds."""
    [s] = server.start("reviewed", "Add a usage line file=README.md delay=0.1")
    sid = s["id"]
    server.wait(sid, "idle")
    # The diff view is open before the reviewer answers: its comments arrive live.
    page.goto(f"/#/s/{sid}/diff")
    page.locator(".d2h-file-wrapper .d2h-file-name", has_text="README.md").wait_for()
    script = tmp_path / "reviewer.py"
    script.write_text(REVIEWER)
    started = server.api(
        "POST", f"/sessions/{sid}/reviewer", {"cmd": [sys.executable, str(script)]}
    )
    rid = started["review"]["id"]
    server.wait(rid, "idle")
    got = server.api("POST", f"/sessions/{sid}/reviewer/{rid}/collect")
    first, second = got["comments"]

    new_side = page.locator(".d2h-file-side-diff").nth(1)
    agent = new_side.locator("tr.comment-row .comment-agent")
    agent.nth(1).wait_for()
    assert "Name the command, too." in agent.nth(0).inner_text()
    assert "command reviewer" in agent.nth(0).inner_text()  # who said it
    bar = page.locator(".review-bar")
    assert bar.locator("li.agent").count() == 2
    assert "Send 2 review comments" in bar.inner_text()

    # The person's own comment on the same line, and one of the reviewer's left out.
    new_side.locator("td.d2h-code-side-linenumber", has_text="2").first.click()
    new_side.locator("tr.comment-row textarea").fill("Shorter, please.")
    page.get_by_role("button", name="Add comment").click()
    bar.locator("li.agent input[type=checkbox]").nth(1).uncheck()
    page.get_by_role("button", name="Send 2 review comments").wait_for()
    # Clicking a line may have scrolled the sides sideways (long lines): back to the start.
    page.evaluate(
        "() => document.querySelectorAll('.d2h-file-side-diff').forEach((d) => (d.scrollLeft = 0))"
    )
    shot(page, "review-agent")  # docs/img/dashboard-review-agent.png (scripts/screenshots.sh)
    page.get_by_role("button", name="Send 2 review comments").click()
    page.locator("#view-session .turn[data-turn='2'] .prompt").wait_for()

    prompt = server.session(sid)["turns"][-1]["prompt"]
    line = first["code"]
    mine = {"path": "README.md", "line": 2, "side": "new", "code": line,
            "body": "Shorter, please."}
    assert prompt == review_prompt([mine, first]), prompt
    left = server.api("GET", f"/sessions/{sid}/review-comments?unsent=true")["comments"]
    assert [c["id"] for c in left] == [second["id"]]
    server.wait(sid, "idle")
