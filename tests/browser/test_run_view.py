"""Issue 16 §1: the session view's run script strip: Run starts the repo's run script, a
preview link appears for the port that answers (and serves the worktree), the run log
shows, Stop run ends it."""

from __future__ import annotations

import sys
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
