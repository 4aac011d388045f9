"""Issue 15 §2 in the dashboard: a group's attempts side by side (the comparison table
above, each attempt's diff in a column) with Pick buttons, in real Chromium against the
real server; the screenshot is docs/img/dashboard-attempts.png."""

from __future__ import annotations

import sys
from typing import Any

from .conftest import FAKE_AGENT, Server, git, shot


def test_attempts_side_by_side_and_pick(server: Server, page: Any) -> None:
    """issue 15 §2: /#/groups/ID shows one row and one diff column per attempt; Pick
    merges that attempt and discards the others."""
    repo = server.repo("best")
    out = server.api(
        "POST",
        "/attempts",
        {
            "prompt": "Fix the greeting delay=0.2 file=greeting.txt",
            "attempts": 3,
            "repo": "best",
            "cmd": [sys.executable, str(FAKE_AGENT)],
        },
    )
    ids = [s["id"] for s in out["sessions"]]
    for sid in ids:
        server.wait(sid, "idle")
    gid = out["group"]["id"]
    page.goto("/#/groups")
    page.locator(f'a[href="#/groups/{gid}"]').click()
    rows = page.locator("table.cmp tbody tr")
    rows.nth(2).wait_for()
    assert rows.count() == 3
    cols = page.locator(".attempt-col pre")
    for i in range(3):
        cols.nth(i).filter(has_text="greeting.txt").wait_for()
    assert rows.nth(1).locator("td").nth(2).inner_text() == "idle"
    text = page.locator(".groups").inner_text()
    assert "null" not in text.splitlines(), text  # no empty verdict drawn as "null"
    shot(page, "attempts")  # scripts/screenshots.sh copies it to docs/img/dashboard-attempts.png
    rows.nth(1).locator("button.pick").click()
    page.locator("#dlg-confirm .c-ok").click()
    page.locator('table.cmp tr.picked[data-attempt="2"]').wait_for()
    assert server.wait(ids[1], "merged")["status"] == "merged"
    for sid in (ids[0], ids[2]):
        assert server.wait(sid, "discarded")["status"] == "discarded"
    assert "greeting.txt" in git(repo, "ls-tree", "--name-only", "main")
    assert page.locator("button.pick").count() == 0  # a group is picked once
