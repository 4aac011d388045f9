"""Issue 20 in the dashboard: a rollback shows in the conversation (§4b), and the conflict
view flags a repository that is missing instead of failing (§2)."""

from __future__ import annotations

import shutil
from typing import Any

from .conftest import Server


def test_rollback_shows_in_the_conversation(server: Server, page: Any) -> None:
    """issue 20 §4b: the conversation shows "rolled back to turn N" live."""
    s = server.start("rb", "first delay=0.1", title="Rollback me")[0]
    sid = s["id"]
    server.wait(sid, "idle")
    server.api("POST", f"/sessions/{sid}/send", {"prompt": "second delay=0.1"})
    server.wait(sid, "idle")
    page.goto(f"/#/s/{sid}")
    page.locator("#view-session .convo .turn[data-turn='2']").wait_for()
    server.api("POST", f"/sessions/{sid}/rollback", {"turn": 1})
    page.locator("#view-session .convo .ev.rollback").get_by_text(
        "rolled back to turn 1"
    ).wait_for()


def test_conflict_view_flags_a_missing_repo(server: Server, page: Any) -> None:
    """issue 20 §2: with one repository deleted, the forecast view names it as skipped."""
    s = server.start("doomed", "work delay=0.1", title="Doomed")[0]
    server.wait(s["id"], "idle")
    shutil.rmtree(server.repos["doomed"])
    page.goto("/#/conflicts")
    page.locator("#view-conflicts").get_by_text("repo doomed not forecast").wait_for()
