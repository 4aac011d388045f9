"""Issue 16 §1: the session view's run script strip: Run starts the repo's run script, a
preview link appears for the port that answers (and serves the worktree), the run log
shows, Stop run ends it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx

from .conftest import Server, shot

SERVE = f"{sys.executable} -m http.server $PA_PORT --bind 127.0.0.1"


def test_run_and_stop_from_the_session_view(server: Server, page: Any) -> None:
    """issue 16 §1: Run → a preview link per answering port (real HTTP to it answers with
    the worktree's file), the log's tail; Stop run → the link goes, Run comes back."""
    server.repo(
        "runnable",
        {
            "README.md": "# runnable\n",
            "hello.txt": "hello from the worktree\n",
            ".parallel-agents.toml": f'run = "{SERVE}"\nports = 2\n',
        },
    )
    [s] = server.start("runnable", "Write notes file=notes.txt delay=0.1")
    sid = s["id"]
    server.wait(sid, "idle")
    page.goto(f"/#/s/{sid}")
    page.locator("#view-session h2").wait_for()
    page.locator("#view-session button[data-action='run']").click()
    link = page.locator("#view-session a.preview").first
    link.wait_for(timeout=30_000)
    url = link.get_attribute("href")
    assert url and url.startswith("http://127.0.0.1:")
    assert httpx.get(url + "/hello.txt", timeout=5).text == "hello from the worktree\n"
    page.locator("#view-session .run-log summary").click()
    # The log's tail shows the server's own line for the request just made (refreshed).
    page.locator("#view-session .run-log pre", has_text="GET /hello.txt").wait_for(timeout=30_000)
    shot(page, "run")
    run = server.api("GET", f"/sessions/{sid}/run")
    assert run["running"] and url in run["urls"]
    page.locator("#view-session button[data-action='run-stop']").click()
    page.locator("#view-session button[data-action='run']").wait_for(timeout=30_000)
    assert page.locator("#view-session a.preview").count() == 0
    assert server.api("GET", f"/sessions/{sid}/run")["running"] is False


def test_three_sessions_preview_their_own_worktrees_in_the_browser(
    server: Server, page: Any
) -> None:
    """issue 16 Done-when: three sessions of a repo whose run script is a tiny HTTP server
    run at once on distinct ports; each session view's preview link, opened in the
    browser, shows that session's own worktree."""
    server.repo(
        "three",
        {"README.md": "# three\n", ".parallel-agents.toml": f'run = "{SERVE}"\nports = 1\n'},
    )
    sessions = server.start("three", "Write notes file=notes.txt delay=0.1", count=3)
    urls: dict[str, str] = {}
    try:
        for s in sessions:
            sid = s["id"]
            done = server.wait(sid, "idle")
            (Path(done["worktree"]) / "who.txt").write_text(f"worktree of {sid}\n")
            page.goto(f"/#/s/{sid}")
            page.locator("#view-session h2").wait_for()
            page.locator("#view-session button[data-action='run']").click()
            link = page.locator("#view-session a.preview").first
            link.wait_for(timeout=30_000)
            urls[sid] = str(link.get_attribute("href"))
        assert len(set(urls.values())) == 3, urls  # distinct ports
        preview = page.context.new_page()
        for sid, url in urls.items():  # all three serve at once
            preview.goto(url + "/who.txt")
            assert preview.locator("body").inner_text().strip() == f"worktree of {sid}"
        preview.close()
    finally:
        for s in sessions:
            server.api("POST", f"/sessions/{s['id']}/run/stop", ok=False)
