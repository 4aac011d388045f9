"""Every event kind renders live in the conversation: Markdown (sanitized), tool calls and
commands collapsed with their output, file changes linking to the diff, errors, checks.

The events are written straight into the server's store (as an agent's parser would),
so this covers the kinds the `command` agent never produces."""

from __future__ import annotations

import sys
from typing import Any

from parallel_agents.store import Store

from .conftest import Server, js_wait

HOSTILE = (
    "## Plan\n\nI'll **fix** the `parser` first.\n\n```python\nprint('hi')\n```\n\n"
    "| a | b |\n|---|---|\n| 1 | 2 |\n\n"
    '<img src="x" onerror="window.__xss = 1">\n\n'
    "<script>window.__xss = 2</script>\n\n"
    "[click me](javascript:window.__xss=3) and [docs](https://example.com/docs)\n\n"
    '<a href="#" onclick="window.__xss = 4">plain</a>'
)


def test_every_kind_renders_live_and_markdown_is_safe(server: Server, page: Any) -> None:
    s = server.start("kinds", "Show every event kind delay=0.1", title="Every event kind")[0]
    sid = s["id"]
    server.wait(sid, "idle")
    page.goto(f"/#/s/{sid}")
    page.locator("#view-session .convo .turn[data-turn='1']").wait_for()
    js_wait(page, "() => document.querySelector('#view-session .ev.result')")
    store = Store(server.home)
    try:
        with store.tx() as db:
            store.append_events(
                db,
                sid,
                1,
                [
                    ("message", {"text": HOSTILE}, None),
                    ("tool_call", {"name": "Bash", "input": {"command": "ls -la src"}}, None),
                    ("tool_result", {"ok": True, "output": "app.py\nutil.py"}, None),
                    (
                        "command",
                        {"command": "pytest -q", "exit_code": 1, "output": "1 failed"},
                        None,
                    ),
                    ("file_change", {"path": "src/app.py", "kind": "modified"}, None),
                    (
                        "usage",
                        {"input_tokens": 1200, "output_tokens": 340, "cost_usd": 0.0123},
                        None,
                    ),
                    ("error", {"message": "rate limited, retrying"}, None),
                    (
                        "check",
                        {
                            "ok": False,
                            "command": "pytest",
                            "output_tail": "E assert 1 == 2",
                            "duration_s": 1.5,
                        },
                        None,
                    ),
                ],
            )
    finally:
        store.close()
    convo = page.locator("#view-session .convo")
    convo.locator(".ev.check").wait_for()
    md = convo.locator(".ev.message .md").last
    assert md.locator("h2").inner_text() == "Plan"
    assert md.locator("strong").inner_text() == "fix"
    assert "print('hi')" in md.locator("pre code").inner_text()
    assert md.locator("table td").count() == 2
    # Sanitized: no script, no handlers, no javascript: links; real links open elsewhere.
    html = md.inner_html()
    assert "<script" not in html and "onerror" not in html and "onclick" not in html
    assert "javascript:" not in html
    docs = md.locator("a", has_text="docs")
    assert docs.get_attribute("target") == "_blank"
    assert "noopener" in (docs.get_attribute("rel") or "")
    md.locator("a", has_text="plain").click()
    assert page.evaluate("() => window.__xss") is None
    # Tool call with its result, collapsed until opened.
    tool = convo.locator("details.tool").last
    assert "Bash" in tool.locator("summary").inner_text()
    assert "ls -la src" in tool.locator("summary").inner_text()
    assert not tool.locator(".body").is_visible()
    tool.locator("summary").click()
    assert "util.py" in tool.locator(".body").inner_text()
    # A failed command shows its exit code; its output is one click away.
    cmd = convo.locator("details.cmd").last
    assert "exit 1" in cmd.locator("summary").inner_text()
    cmd.locator("summary").click()
    assert "1 failed" in cmd.locator(".body").inner_text()
    # File changes link to the diff tab.
    link = convo.locator(".ev.file a", has_text="src/app.py")
    assert convo.locator(".turn[data-turn='1'] .tmeta").inner_text().startswith("1200 in")
    assert "rate limited" in convo.locator(".ev.error").last.inner_text()
    assert "check failed" in convo.locator(".ev.check summary").inner_text()
    # The sidebar and header learn the check result from the event.
    js_wait(
        page,
        f"""() => document.querySelector('.item[data-id="{sid}"] .check')
                           ?.textContent.includes('check')""",
    )
    link.click()
    js_wait(page, "() => location.hash.endsWith('/diff')")
    # Chromium reports (and blocks, by the page's CSP) the inline handlers it meets while
    # DOMPurify parses the hostile text in an inert document; that report is expected.
    page.pa_errors[:] = [
        e for e in page.pa_errors if not ("Content Security Policy" in e and "purify" in e)
    ]
    assert page.locator("#view-session .tabs button.active").inner_text() == "Diff"


def test_long_sessions_draw_the_tail_first(server: Server, page: Any) -> None:
    s = server.start("kinds", "A long one delay=0.1", title="Long session")[0]
    sid = s["id"]
    server.wait(sid, "idle")
    store = Store(server.home)
    try:
        with store.tx() as db:
            items = [("output", {"text": f"line {i}"}, None) for i in range(400)]
            store.append_events(db, sid, 1, items)
    finally:
        store.close()
    page.goto(f"/#/s/{sid}")
    more = page.locator("#view-session .convo button.earlier")
    more.wait_for()
    convo = page.locator("#view-session .convo")
    assert "line 399" in convo.inner_text()
    assert "working on" not in convo.inner_text()
    more.click()
    convo.get_by_text("working on").wait_for()
    assert "line 0\nline 1\n" in convo.inner_text()
    assert more.count() == 0


def test_output_runs_draw_as_their_lines_and_every_page_loads(server: Server, page: Any) -> None:
    """issue 14 §5: a run of plain lines is one output event: the conversation draws it as
    its lines, counts lines (not events) for the tail drawn on open, and loads every page
    of events, also when pages end at their 8 MB bound before 5000 events."""
    cmd = [sys.executable, "-c", "print('\\n'.join(f'out {i}' for i in range(3000)))"]
    sid = server.start("runs", "Many lines", title="Runs", cmd=cmd)[0]["id"]
    server.wait(sid, "idle")
    evs = server.api("GET", f"/sessions/{sid}/events?kinds=output")["events"]
    assert len(evs) < 10 and "out 0\nout 1\n" in evs[0]["payload"]["text"]
    page.goto(f"/#/s/{sid}")
    page.locator("#view-session .convo pre.out").first.wait_for()
    js_wait(page, "() => document.querySelector('#view-session .convo')?.innerText.includes('out 2999')")
    drawn = page.eval_on_selector_all(
        "#view-session .convo pre.out", "els => els.map((e) => e.textContent).join('\\n')"
    )
    assert drawn == "\n".join(f"out {i}" for i in range(3000))

    store = Store(server.home)
    try:
        with store.tx() as db:
            big = [("output", {"text": f"big {i} " + "z" * 60_000}, None) for i in range(150)]
            blocks = [
                ("output", {"text": "\n".join(f"blk {j}-{k}" for k in range(100))}, None)
                for j in range(20)
            ]
            store.append_events(db, sid, 1, big + blocks)
    finally:
        store.close()
    page.reload()
    convo = page.locator("#view-session .convo")
    page.locator("#view-session .convo button.earlier").wait_for()
    js_wait(page, "() => document.querySelector('#view-session .convo')?.innerText.includes('blk 19-99')")
    text = convo.inner_text()
    assert "blk 17-0\nblk 17-1" in text and "blk 16-99" not in text
