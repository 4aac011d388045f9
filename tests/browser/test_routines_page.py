"""Issue 17 in the dashboard: the Routines page (triggers, next run, last runs with status,
cost and diff size; Run now / Pause / Resume) and the sidebar's Inbox filter (only unread
routine runs, their count; opening one marks it read). The screenshot is
docs/img/dashboard-routines.png."""

from __future__ import annotations

import sys
import time
from typing import Any

from .conftest import FAKE_AGENT, Server, js_wait, shot


def _until(what: str, pred: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _routine(server: Server, name: str, trigger: dict[str, Any], prompt: str) -> None:
    server.api(
        "POST",
        "/routines",
        {"name": name, "prompt": prompt, "repo": "deps", "agent": "command",
         "cmd": [sys.executable, str(FAKE_AGENT)], **trigger},
    )


def test_routines_page_and_inbox_filter(server: Server, page: Any) -> None:
    """issue 17: the Routines page lists both routines with their runs (unread ones marked,
    diff size shown); Pause, Resume and Run now act; the sidebar's Inbox button shows only
    the unread runs with their count, and opening one marks it read."""
    server.repo("deps")
    _routine(server, "nightly", {"cron": ["0 3 * * 1-5"], "tz": "UTC"},
             "bump the dependencies delay=0.1 file=deps.lock")
    _routine(server, "flaky-hunt", {"every": ["6h"]}, "hunt a flaky test delay=0.1 file=flaky.md")
    runs = [server.api("POST", "/routines/nightly/run") for _ in range(2)]
    [plain] = server.start("deps", "not a routine delay=0.1")
    for sid in [r["session"] for r in runs] + [plain["id"]]:
        server.wait(sid, "idle")

    page.click('nav.views a[data-view="routines"]')
    js_wait(page, "() => document.querySelectorAll('.routines-table tbody tr').length === 2")
    nightly = page.locator('tr[data-routine="nightly"]')
    js_wait(page, """() => document.querySelectorAll(
        'tr[data-routine="nightly"] .run-chip.unread').length === 2""")
    assert 'cron "0 3 * * 1-5" UTC' in nightly.inner_text()
    js_wait(page, """() => document.querySelectorAll(
        'tr[data-routine="nightly"] .run-chip .add').length === 2""")
    assert "+1 -0" in nightly.locator(".run-chip").first.inner_text()

    hunt = page.locator('tr[data-routine="flaky-hunt"]')
    hunt.get_by_role("button", name="Pause").click()
    hunt.locator("td.next", has_text="paused").wait_for()
    assert server.api("GET", "/routines/flaky-hunt")["paused"] is True
    hunt.get_by_role("button", name="Resume").click()
    hunt.get_by_role("button", name="Pause").wait_for()
    assert server.api("GET", "/routines/flaky-hunt")["paused"] is False
    hunt.get_by_role("button", name="Run now").click()
    hunt.locator(".run-chip").first.wait_for()
    _until("the run's session", lambda: [
        x for x in server.api("GET", "/routines/flaky-hunt/history")["runs"] if x["session"]
    ])
    [hunt_run] = server.api("GET", "/routines/flaky-hunt/history")["runs"]  # only that one
    server.wait(hunt_run["session"], "idle")

    # The inbox: three unread runs, the plain session is not one of them.
    js_wait(page, "() => document.querySelector('#inbox-count').textContent === '3'")
    page.click("#f-inbox")
    js_wait(page, "() => document.querySelectorAll('#session-list .item').length === 3")
    page.locator("#toasts").evaluate("el => el.replaceChildren()")
    shot(page, "routines")
    assert page.locator(f'#session-list .item[data-id="{plain["id"]}"]').count() == 0
    first = runs[0]["session"]
    page.click(f'#session-list .item[data-id="{first}"]')
    js_wait(page, "() => document.querySelector('#inbox-count').textContent === '2'")
    _until("the run read on the server",
           lambda: [r["session"] for r in server.api("GET", "/inbox")["runs"]]
           == [hunt_run["session"], runs[1]["session"]])
    page.goto("/#/")  # a reload: the filter is kept, the read run stays out
    page.wait_for_function("() => window.__pa && window.__pa.ready")
    js_wait(page, "() => document.querySelectorAll('#session-list .item').length === 2")
    assert page.locator(f'#session-list .item[data-id="{first}"]').count() == 0
    page.click("#f-inbox")  # off again: every live session
    js_wait(page, "() => document.querySelectorAll('#session-list .item').length === 4")
