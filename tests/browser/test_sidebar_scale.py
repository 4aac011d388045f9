"""issue 14 §6: the sidebar with many sessions keeps only the rows near the viewport in the
DOM, and j/k, Enter, search and scrolling still reach every session.

The sessions are real rows of the server's store (written through ``Store``, as a server
that ran them leaves them), in two registered repositories; their worktree is the
repository itself, so the routes the dashboard calls for them answer as for any idle one.
"""

from __future__ import annotations

import re
import time
from typing import Any

from parallel_agents.models import Session, Status
from parallel_agents.store import Store

from .conftest import Server, git, js_wait, new_page

N = 400  # sessions: 200 per repository, far more rows than the viewport holds

DRAWN = "() => [...document.querySelectorAll('#session-list .item')].map(e => e.dataset.id)"


def _fill(server: Server) -> list[str]:
    """N idle sessions, alternating between repos "ra" and "rb"; the display order (repos
    by name, newest first inside one) returned."""
    paths = {name: server.repo(name) for name in ("ra", "rb")}
    store = Store(server.home)
    now = time.time() - 10_000
    by_repo: dict[str, list[str]] = {"ra": [], "rb": []}
    heads = {name: git(p, "rev-parse", "HEAD").strip() for name, p in paths.items()}
    try:
        repos = {r.name: r for r in store.repos()}
        for i in range(N):
            name = "ra" if i % 2 == 0 else "rb"
            r = repos[name]
            sid = f"{i:04d}5ca1e"
            store.insert_session(
                Session(
                    id=sid,
                    title=f"scale task n{i:04d}",
                    repo_id=r.id,
                    repo_name=name,
                    branch="main",
                    base_ref="main",
                    base_commit=heads[name],
                    worktree=str(paths[name]),
                    agent="command",
                    model=None,
                    status=Status.IDLE,
                    agent_session_id=None,
                    created_at=now + i,
                    updated_at=now + i,
                )
            )
            by_repo[name].append(sid)
    finally:
        store.close()
    return list(reversed(by_repo["ra"])) + list(reversed(by_repo["rb"]))


def _cursor(page: Any) -> Any:
    return page.evaluate(
        """() => {
            const c = document.querySelectorAll('#session-list .item.cursor');
            if (c.length !== 1) return null;
            const r = c[0].getBoundingClientRect(), v = document.querySelector('#session-list')
                .getBoundingClientRect();
            return {id: c[0].dataset.id, inView: r.top >= v.top - 1 && r.bottom <= v.bottom + 1};
        }"""
    )


def test_many_sessions_only_visible_rows_and_keyboard(browser: Any, server: Server) -> None:
    """issue 14 §6: 400 sessions; tens of rows in the DOM; j/k walk the whole list (the
    cursor row is drawn and in view), Enter opens it, search finds a row far down."""
    order = _fill(server)
    page = new_page(browser, server)
    try:
        js_wait(page, f"() => window.__pa.state.sessions.size >= {N}")
        drawn = page.evaluate(DRAWN)
        assert 3 < len(drawn) < 60, len(drawn)
        assert drawn == order[: len(drawn)]  # the first rows, in display order
        # The list is as tall as every row: scrolling reaches the last one.
        page.evaluate(
            "() => { const l = document.querySelector('#session-list');"
            " l.scrollTop = l.scrollHeight; }"
        )
        js_wait(page, f"""() => ({DRAWN})().includes('{order[-1]}')""")
        assert len(page.evaluate(DRAWN)) < 60
        page.evaluate("() => { document.querySelector('#session-list').scrollTop = 0; }")
        # j/k move through the model, far past the rows drawn at first.
        page.locator("#session-list").focus()
        for _ in range(210):  # across the group boundary at 200
            page.keyboard.press("j")
        assert _cursor(page) == {"id": order[209], "inView": True}
        page.keyboard.press("k")
        assert _cursor(page) == {"id": order[208], "inView": True}
        assert len(page.evaluate(DRAWN)) < 60
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(rf"#/s/{order[208]}$"))
        # Search and filters still work on every session, drawn or not.
        far = order[-3]
        title = f"n{far[:4]}"  # in that title only (no id has an n)
        page.fill("#f-search", title)
        js_wait(page, f"""() => JSON.stringify(({DRAWN})()) === '["{far}"]'""")
        page.fill("#f-search", "")
        page.select_option("#f-repo", "rb")
        js_wait(page, f"""() => ({DRAWN})()[0] === '{order[200]}'""")
        assert len(page.evaluate(DRAWN)) < 60
        page.select_option("#f-repo", "")
        assert not page.pa_errors, page.pa_errors
    finally:
        page.context.close()


def test_file_counts_are_asked_for_drawn_rows_only(browser: Any, server: Server) -> None:
    """issue 14 §6: at boot the dashboard asks for the changed-file counts of the rows it
    drew (one diff each), not of every session (400 git diffs on the server)."""
    if not server.has_route("get", "/sessions/{sid}/diff"):
        return
    if len(server.api("GET", "/sessions")["sessions"]) < N:  # run alone
        _fill(server)
    page = new_page(browser, server, login=False)
    diffs: list[str] = []
    page.on("request", lambda r: diffs.append(r.url) if "/diff" in r.url else None)
    try:
        page.goto(f"/login?token={server.token}")
        js_wait(page, "() => window.__pa && window.__pa.ready")
        js_wait(
            page,
            "() => { const f = [...document.querySelectorAll('#session-list .item .files')];"
            " return f.length > 3 && f.every(e => e.textContent); }",
            timeout=60_000,
        )
        # Rows drawn near the viewport (a first draw before the row height is measured
        # may add a few), far fewer than the sessions.
        assert 0 < len(diffs) < 60, len(diffs)
        assert not page.pa_errors, page.pa_errors
    finally:
        page.context.close()
