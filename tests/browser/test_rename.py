"""Issue 13: renaming a session from the dashboard, and a rename made elsewhere (`pa rename`,
another tab) showing up live, through the `renamed` event on the stream."""

from __future__ import annotations

from typing import Any

from .conftest import Server


def test_rename_from_the_dashboard_and_from_elsewhere(server: Server, page: Any) -> None:
    """The Rename button renames (header, sidebar, conversation), the branch keeps its name;
    a rename through the API reaches the open page without a reload."""
    [s] = server.start("renames", "Write notes file=notes.txt delay=0.1")
    sid = s["id"]
    server.wait(sid, "idle")
    page.goto(f"/#/s/{sid}")
    head = page.locator("#view-session h2")
    head.wait_for()
    page.locator("#view-session button[data-action='rename']").click()
    dlg = page.locator("#dlg-confirm")
    dlg.wait_for()
    dlg.locator("input[name='title']").fill("Notes for the release")
    dlg.locator("button.c-ok").click()
    page.locator("#view-session h2", has_text="Notes for the release").wait_for()
    page.locator("#sidebar .title", has_text="Notes for the release").first.wait_for()
    after = server.session(sid)
    assert after["title"] == "Notes for the release" and after["branch"] == s["branch"]
    page.locator(".ev.status", has_text="renamed:").first.wait_for()

    server.api("POST", f"/sessions/{sid}/rename", {"title": "Renamed elsewhere"})
    page.locator("#view-session h2", has_text="Renamed elsewhere").wait_for()
    page.locator("#sidebar .title", has_text="Renamed elsewhere").first.wait_for()
