"""issue 14 §6: the dashboard with many sessions stays live and shows what happens: a new
output line is on screen (its block follows it), and a session's end shows in its row and
the footer among hundreds of sessions, without a git diff for rows nobody sees.

The agents are real processes of the ``command`` agent (a script that prints, writes a
file and waits for a gate file the test creates); the many idle sessions are real rows of
the server's store (written through ``Store``, as a server that ran them leaves them).
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Any

from parallel_agents.models import Session, Status
from parallel_agents.store import Store

from .conftest import Server, git, js_wait, new_page

MANY = 600

GATED = """\
import sys, time
from pathlib import Path
lines, gate = int(sys.argv[1]), Path(sys.argv[2])
for i in range(lines):
    print(f"line {i} of the agent's output", flush=True)
Path("made.txt").write_text("made\\n")
deadline = time.monotonic() + 120
while not gate.exists() and time.monotonic() < deadline:
    time.sleep(0.05)
print(f"tail-marker-{gate.name}", flush=True)
"""

# The marker's text is inside the box of every scrolling ancestor and the window.
IN_VIEW = """(marker) => {
    const convo = document.querySelector('#view-session .convo');
    if (!convo) return false;
    const walker = document.createTreeWalker(convo, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        if (!n.data.includes(marker)) continue;
        const r = document.createRange();
        const at = n.data.indexOf(marker);
        r.setStart(n, at);
        r.setEnd(n, at + marker.length);
        const a = r.getBoundingClientRect();
        if (!(a.height > 0) || a.bottom <= 0 || a.top >= innerHeight) return false;
        for (let el = n.parentElement; el; el = el.parentElement) {
            if (getComputedStyle(el).overflowY === 'visible') continue;
            const b = el.getBoundingClientRect();
            if (a.bottom <= b.top + 1 || a.top >= b.bottom - 1) return false;
        }
        return true;
    }
    return false;
}"""


def _gated(server: Server, repo: str, lines: int, title: str) -> tuple[dict[str, Any], Path]:
    """A running session whose agent printed ``lines`` lines and waits for its gate."""
    script = server.base / "gated_agent.py"
    script.write_text(GATED)
    gate = server.base / f"gate-{title}"
    server.repo(repo)
    made = server.api(
        "POST",
        "/sessions",
        {
            "prompt": title,
            "title": title,
            "repo": repo,
            "agent": "command",
            "cmd": [sys.executable, str(script), str(lines), str(gate)],
        },
    )["sessions"][0]
    return made, gate


def _fill(server: Server, repo: str, n: int, created: float) -> None:
    """``n`` idle sessions of ``repo``, created at ``created`` + i."""
    path = server.repo(repo)
    head = git(path, "rev-parse", "HEAD").strip()
    store = Store(server.home)
    try:
        r = next(x for x in store.repos() if x.name == repo)
        for i in range(n):
            store.insert_session(
                Session(
                    id=f"{i:04d}11e5",
                    title=f"idle task {i}",
                    repo_id=r.id,
                    repo_name=repo,
                    branch="main",
                    base_ref="main",
                    base_commit=head,
                    worktree=str(path),
                    agent="command",
                    model=None,
                    status=Status.IDLE,
                    agent_session_id=None,
                    created_at=created + i,
                    updated_at=created + i,
                )
            )
    finally:
        store.close()


def test_new_output_line_is_on_screen(browser: Any, server: Server) -> None:
    """issue 14 §6: an output block taller than its box (it scrolls on its own) follows its
    newest line: a line the agent prints while the session is open is on screen, not
    below the block's visible part."""
    s, gate = _gated(server, "tail", 80, "tail")
    page = new_page(browser, server)
    try:
        page.goto(f"/#/s/{s['id']}")
        js_wait(page, "() => document.querySelector('#view-session .convo pre.out')")
        page.wait_for_function(IN_VIEW, arg="line 79 of")
        gate.write_text("go")
        page.wait_for_function(IN_VIEW, arg=f"tail-marker-{gate.name}")
        server.wait(s["id"], "idle")
        assert not page.pa_errors, page.pa_errors
    finally:
        gate.write_text("go")
        page.context.close()


def test_an_end_shows_among_many_sessions(browser: Any, server: Server) -> None:
    """issue 14 §6: with hundreds of sessions, a session that ends shows it in the footer
    and, once its row is drawn, in the row with its changed-file count; the count of a
    row not drawn is asked for when it is drawn, not at the end (no git diff per ending
    session nobody sees)."""
    s, gate = _gated(server, "many", 3, "far")
    sid = s["id"]
    server.wait(sid, "running")
    # Newer sessions above it: its row is far below the viewport.
    _fill(server, "many", MANY, time.time() + 60)
    page = new_page(browser, server, login=False)
    diffs: list[str] = []
    page.on("request", lambda r: diffs.append(r.url) if "/diff" in r.url else None)
    try:
        page.goto(f"/login?token={server.token}")
        js_wait(page, f"() => window.__pa && window.__pa.ready && window.__pa.state.sessions.size > {MANY}")
        foot = "() => document.querySelector('#sidebar-foot').textContent"
        assert "1 running" in page.evaluate(foot)
        drawn = "(id) => !!document.querySelector(`#session-list .item[data-id='${id}']`)"
        assert not page.evaluate(drawn, sid)
        gate.write_text("go")
        page.wait_for_function(
            "() => !document.querySelector('#sidebar-foot').textContent.includes('running')"
        )
        idle = re.search(r"(\d+) idle", page.evaluate(foot))
        assert idle and int(idle.group(1)) > MANY, page.evaluate(foot)
        # A request made after the end was applied: any diff asked for at the end was too.
        page.evaluate("() => fetch('/api/v1/health').then(r => r.status)")
        assert not [u for u in diffs if sid in u], diffs
        # Scrolled into view: the row shows the end and asks for its count.
        page.evaluate(
            "() => { const l = document.querySelector('#session-list');"
            " l.scrollTop = l.scrollHeight; }"
        )
        page.wait_for_function(drawn, arg=sid)
        row = f"#session-list .item[data-id='{sid}']"
        page.wait_for_function(
            "(sel) => { const r = document.querySelector(sel); return r &&"
            " r.querySelector('.badge').textContent === 'idle' &&"
            " /file/.test(r.querySelector('.files').textContent); }",
            arg=row,
        )
        assert [u for u in diffs if sid in u]
        assert not page.pa_errors, page.pa_errors
    finally:
        gate.write_text("go")
        page.context.close()
