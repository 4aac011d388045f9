"""The dashboard's acceptance flow in a real browser: four live sessions, their statuses
changing without a reload, the conversation, the diff, a follow-up, merge and discard.

The tests of this module share one server and run in order: later ones use the sessions
the first one started.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from .conftest import Server, git, js_wait, new_page, shot

PROMPTS = [  # (title, prompt): the prompt's options steer fake_agent.py
    ("Fix the parser", "Fix the parser delay=1.5 file=parser_fix.txt"),
    ("Add a cache", "Add a cache delay=1.5 file=cache.txt"),
    ("Write the docs", "Write the docs delay=1.5 file=docs/usage.txt"),
    ("Tidy the build", "Tidy the build delay=1.5 file=build.txt"),
]


@pytest.fixture(scope="module")
def four(server: Server) -> dict[str, Any]:
    """Filled by test_four_sessions_go_idle_live: the four sessions by prompt index."""
    return {}


def item(page: Any, sid: str) -> Any:
    return page.locator(f'#session-list .item[data-id="{sid}"]')


def shown_status(sid: str, status: str) -> str:
    """A page condition: the sidebar row of ``sid`` says ``status``, or (the "live" filter
    hides merged and discarded sessions, and the virtualised list draws shown rows only)
    the row is gone and the dashboard's model has the status."""
    return f"""() => {{
        const b = document.querySelector('.item[data-id="{sid}"] .badge');
        const s = window.__pa.state.sessions.get("{sid}");
        return b ? b.textContent === '{status}' : !!s && s.status === '{status}';
    }}"""


def badge(page: Any, sid: str) -> Any:
    return item(page, sid).locator(".badge")


def test_four_sessions_go_idle_live(server: Server, page: Any, four: dict[str, Any]) -> None:
    page.evaluate("() => { window.__sameDocument = true }")
    made = []
    for i, (title, prompt) in enumerate(PROMPTS):
        repo = "webapp" if i < 3 else "tools"
        made += server.start(repo, prompt, title=title)
    four["sessions"] = made
    # All four appear in the sidebar, grouped by repo, while they work.
    for s in made:
        item(page, s["id"]).wait_for()
    assert page.locator('#session-list .group[data-repo="webapp"] .item').count() == 3
    assert page.locator('#session-list .group[data-repo="tools"] .item').count() == 1
    seen_active = page.evaluate(
        """(ids) => ids.filter(id => {
            const b = document.querySelector(`.item[data-id="${id}"] .badge`);
            return b && /queued|starting|running/.test(b.textContent);
        }).length""",
        [s["id"] for s in made],
    )
    assert seen_active >= 1, "no session was seen working before it finished"
    # ... and turn idle without a reload.
    for s in made:
        js_wait(
            page,
            f"""() => document.querySelector('.item[data-id="{s["id"]}"] .badge')
                       ?.textContent === 'idle'""",
            timeout=30_000,
        )
    assert page.evaluate("() => window.__sameDocument") is True
    # Finished sessions are unread; the tab title counts them.
    assert item(page, made[0]["id"]).get_attribute("class").count("unread") == 1
    assert re.match(r"^\(4\) pa", page.title()), page.title()
    # Let the changed-file counts arrive (from the diff route, when the server has it).
    if server.has_route("get", "/sessions/{sid}/diff"):
        js_wait(
            page,
            "() => [...document.querySelectorAll('.item .files')]"
            ".filter(e => e.textContent).length >= 4",
        )
    shot(page, "sidebar")


def test_open_session_reads_conversation(server: Server, page: Any, four: dict[str, Any]) -> None:
    s = four["sessions"][0]
    item(page, s["id"]).click()
    page.wait_for_url(re.compile(rf"#/s/{s['id']}$"))
    convo = page.locator("#view-session .convo")
    convo.locator(".turn[data-turn='1'] .prompt").wait_for()
    assert "Fix the parser" in convo.locator(".turn[data-turn='1'] .prompt").inner_text()
    convo.get_by_text("wrote parser_fix.txt").wait_for()
    assert "turn 1: working on" in convo.inner_text()
    assert page.locator("#view-session .s-head .badge").inner_text() == "idle"
    # Opening it marked it read: no unread dot, title count down by one.
    js_wait(
        page,
        f"""() => !document.querySelector('.item[data-id="{s["id"]}"]')
                            .classList.contains('unread')""",
    )
    assert server.session(s["id"])["unread"] is False
    assert re.match(r"^\(3\) pa", page.title()), page.title()
    shot(page, "session")


def test_diff_tab_shows_changed_file(server: Server, page: Any, four: dict[str, Any]) -> None:
    if not server.has_route("get", "/sessions/{sid}/diff"):
        pytest.skip("the server has no GET /api/v1/sessions/{id}/diff route yet")
    s = four["sessions"][2]  # writes docs/usage.txt
    page.goto(f"/#/s/{s['id']}/diff")
    page.locator(".diff-files a[data-path='docs/usage.txt']").wait_for()
    page.locator(".d2h-file-wrapper .d2h-file-name", has_text="docs/usage.txt").wait_for()
    assert "turn 1: Write the docs" in page.locator(".diff-out").inner_text()
    # Side-by-side by default; unified on request.
    assert page.locator(".d2h-file-side-diff").count() == 2
    page.get_by_role("button", name="Unified").click()
    page.locator(".d2h-file-wrapper .line-num2").first.wait_for()
    assert page.locator(".d2h-file-side-diff").count() == 0
    page.get_by_role("button", name="Side by side").click()
    page.locator(".d2h-file-side-diff").first.wait_for()
    # One turn only.
    page.locator(".diff-bar select").select_option("1")
    page.locator(".diff-files a[data-path='docs/usage.txt']").wait_for()
    shot(page, "diff")
    # A comment on a line of the new side, gathered into one review follow-up.
    new_side = page.locator(".d2h-file-side-diff").nth(1)
    new_side.locator("td.d2h-code-side-linenumber", has_text="1").first.click()
    new_side.locator("tr.comment-row textarea").fill("Explain how to run it, too.")
    page.get_by_role("button", name="Add comment").click()
    bar = page.locator(".review-bar")
    bar.wait_for()
    assert "docs/usage.txt:1" in bar.inner_text()
    assert new_side.locator("tr.comment-row .comment-saved").inner_text() == (
        "Explain how to run it, too."
    )
    bar.get_by_role("button", name="Send 1 review comment").click()
    page.locator("#view-session .turn[data-turn='2'] .prompt").wait_for()
    prompt = server.session(s["id"])["turns"][-1]["prompt"]
    assert prompt.startswith("Review comments on your changes:")
    assert "docs/usage.txt line 1:" in prompt and "Explain how to run it, too." in prompt
    assert "> turn 1: Write the docs" in prompt
    server.wait(s["id"], "idle")


def test_follow_up_from_the_box_runs_turn_two(
    server: Server, page: Any, four: dict[str, Any]
) -> None:
    s = four["sessions"][1]
    page.goto(f"/#/s/{s['id']}")
    box = page.locator("#view-session .followup textarea")
    box.fill("Also cover the edge cases delay=0.5 file=cache.txt")
    box.press("Control+Enter")
    turn2 = page.locator("#view-session .turn[data-turn='2']")
    turn2.locator(".prompt", has_text="Also cover the edge cases").wait_for()
    turn2.get_by_text("done with turn 2").first.wait_for(timeout=30_000)
    js_wait(
        page,
        "() => document.querySelector('#view-session .s-head .badge')?.textContent === 'idle'",
        timeout=30_000,
    )
    assert box.input_value() == ""
    assert "2 turns" in page.locator("#view-session .meta").inner_text()
    assert server.session(s["id"])["turns"][-1]["prompt"].startswith("Also cover")


def test_rollback_and_check_buttons(server: Server, page: Any, four: dict[str, Any]) -> None:
    if not server.has_route("post", "/sessions/{sid}/rollback"):
        pytest.skip("the server has no POST /api/v1/sessions/{id}/rollback route yet")
    s = four["sessions"][1]  # two turns by now, both appending to cache.txt
    wt = Path(server.session(s["id"])["worktree"])
    assert (wt / "cache.txt").read_text().count("\n") == 2
    page.goto(f"/#/s/{s['id']}")
    page.locator("#view-session button[data-action='rollback']").click()
    dlg = page.locator("#dlg-confirm")
    assert "lost" in dlg.inner_text()
    dlg.locator("select[name=turn]").select_option("1")
    dlg.locator("button.c-ok").click()
    page.locator(".toast", has_text="rolled back to turn 1").wait_for()
    assert (wt / "cache.txt").read_text() == "turn 1: Add a cache delay=1.5 file=cache.txt\n"
    if not server.has_route("post", "/sessions/{sid}/check"):
        return
    repo = server.repo(
        "checked",
        {"README.md": "x\n", ".parallel-agents.toml": 'check = "test -f agent_turn1.txt"\n'},
    )
    assert repo.exists()
    c = server.start("checked", "Make the check pass delay=0.2", title="Checked work")[0]
    server.wait(c["id"], "idle")
    page.goto(f"/#/s/{c['id']}")
    page.locator("#view-session button[data-action='check']").click()
    page.locator("#view-session .convo .ev.check", has_text="check passed").wait_for()
    js_wait(
        page,
        f"""() => document.querySelector('.item[data-id="{c["id"]}"] .check')
                   ?.textContent === '✓ check'""",
    )
    assert "✓ check passed" in page.locator("#view-session .meta").inner_text()
    # After a reload the sidebar still knows (from the stored check events).
    page.reload()
    js_wait(
        page,
        f"""() => document.querySelector('.item[data-id="{c["id"]}"] .check')
                   ?.textContent === '✓ check'""",
    )


def test_merge_marks_merged_and_lands_on_base(
    server: Server, page: Any, four: dict[str, Any]
) -> None:
    if not server.has_route("post", "/sessions/{sid}/merge"):
        pytest.skip("the server has no POST /api/v1/sessions/{id}/merge route yet")
    s = four["sessions"][0]
    page.goto(f"/#/s/{s['id']}")
    page.locator("#view-session button[data-action='merge']").click()
    dlg = page.locator("#dlg-confirm")
    dlg.wait_for()
    dlg.locator("button.c-ok").click()
    js_wait(
        page,
        shown_status(s["id"], "merged"),
        timeout=30_000,
    )
    assert page.locator("#view-session .s-head .badge").inner_text() == "merged"
    repo = server.repos["webapp"]
    assert "turn 1: Fix the parser" in git(repo, "show", "main:parser_fix.txt")


def test_discard_removes_the_worktree(server: Server, page: Any, four: dict[str, Any]) -> None:
    s = four["sessions"][3]
    page.goto(f"/#/s/{s['id']}")
    page.locator("#view-session button[data-action='discard']").click()
    dlg = page.locator("#dlg-confirm")
    assert "archived" in dlg.inner_text()
    # Cancel first: nothing happens.
    dlg.get_by_role("button", name="Cancel").click()
    assert server.session(s["id"])["status"] == "idle"
    page.locator("#view-session button[data-action='discard']").click()
    dlg.locator("button.c-ok").click()
    js_wait(
        page,
        shown_status(s["id"], "discarded"),
    )
    after = server.session(s["id"])
    assert after["status"] == "discarded"
    assert after["worktree_exists"] is False
    # A discarded session offers Restore, not Merge.
    assert page.locator("#view-session button[data-action='restore']").is_visible()
    assert not page.locator("#view-session button[data-action='merge']").is_visible()


def test_filters_search_and_keyboard(server: Server, page: Any, four: dict[str, Any]) -> None:
    ids = [s["id"] for s in four["sessions"]]
    visible = (
        "() => [...document.querySelectorAll('#session-list .item')]"
        ".filter(e => e.offsetParent).map(e => e.dataset.id)"
    )
    page.fill("#f-search", "cache")
    js_wait(page, f"() => ({visible})().length === 1")
    assert page.evaluate(visible) == [ids[1]]
    page.fill("#f-search", "")
    page.select_option("#f-repo", "tools")
    # ids[3] was discarded: "live" hides it, as `pa ls` does; "all" shows it (issue 11 F.7).
    js_wait(page, f"() => ({visible})().length === 0")
    page.select_option("#f-status", "*")
    js_wait(page, f"() => ({visible})().length === 1")
    assert page.evaluate(visible) == [ids[3]]
    page.select_option("#f-repo", "")
    page.select_option("#f-status", "idle")
    js_wait(page, f"() => !({visible})().includes('{ids[3]}')")
    page.select_option("#f-status", "")
    page.select_option("#f-agent", "command")
    # Keyboard: j moves the cursor, Enter opens, ? lists the shortcuts.
    page.locator("#session-list").focus()
    page.keyboard.press("j")
    page.keyboard.press("j")
    cursor = page.locator("#session-list .item.cursor")
    cid = cursor.get_attribute("data-id")
    page.keyboard.press("k")
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"#/s/{cid}$"))
    page.locator("body").click(position={"x": 700, "y": 12})
    page.keyboard.press("?")
    assert page.locator("#dlg-help").is_visible()
    assert "next / previous session" in page.locator("#dlg-help").inner_text()
    page.keyboard.press("Escape")
    assert not page.locator("#dlg-help").is_visible()
    # Filters are remembered.
    page.reload()
    js_wait(page, "() => window.__pa && window.__pa.ready")
    assert page.locator("#f-agent").input_value() == "command"


def test_panes_drag_and_drop_and_layout_kept(
    server: Server, page: Any, four: dict[str, Any]
) -> None:
    a, b = four["sessions"][1]["id"], four["sessions"][2]["id"]
    page.goto("/#/panes")
    page.locator(".pane").first.wait_for()
    assert page.locator(".pane").count() == 2
    page.drag_and_drop(f'.item[data-id="{a}"]', ".pane[data-slot='0']")
    page.locator(f".pane[data-slot='0'][data-id='{a}'] .convo .turn").first.wait_for()
    page.drag_and_drop(f'.item[data-id="{b}"]', ".pane[data-slot='1']")
    page.locator(f".pane[data-slot='1'][data-id='{b}'] .convo .turn").first.wait_for()
    # Drag a pane's title bar onto the other pane: they swap.
    page.drag_and_drop(".pane[data-slot='0'] .pane-head", ".pane[data-slot='1']")
    page.locator(f".pane[data-slot='0'][data-id='{b}']").wait_for()
    page.locator(f".pane[data-slot='1'][data-id='{a}']").wait_for()
    page.select_option(".panes-bar select", "3")
    assert page.locator(".pane").count() == 3
    page.reload()
    js_wait(page, "() => window.__pa && window.__pa.ready")
    page.locator(f".pane[data-slot='0'][data-id='{b}'] .convo .turn").first.wait_for()
    assert page.locator(".pane").count() == 3
    page.select_option(".panes-bar select", "2")
    page.locator(f".pane[data-slot='1'][data-id='{a}'] .convo .turn").first.wait_for()
    shot(page, "panes")


def test_new_session_dialog_starts_parallel_sessions(
    server: Server, page: Any, four: dict[str, Any]
) -> None:
    import sys

    from .conftest import FAKE_AGENT

    before = {s["id"] for s in server.api("GET", "/sessions?all=1")["sessions"]}
    page.keyboard.press("n")
    dlg = page.locator("#dlg-new")
    dlg.wait_for()
    dlg.locator("select[name=repo]").select_option("tools")
    dlg.locator("select[name=agent]").select_option("command")
    dlg.locator("input[name=cmd]").fill(f"{sys.executable} {FAKE_AGENT}")
    dlg.locator("textarea[name=prompt]").fill("Try two ways delay=0.3 file=attempt.txt")
    dlg.locator("input[name=count]").fill("2")
    dlg.get_by_role("button", name="Start").click()
    page.wait_for_url(re.compile(r"#/s/[0-9a-f]+$"))
    after = server.api("GET", "/sessions?all=1")["sessions"]
    new = [s for s in after if s["id"] not in before]
    assert len(new) == 2
    assert {s["repo_name"] for s in new} == {"tools"}
    for s in new:
        item(page, s["id"]).wait_for()
        js_wait(
            page,
            f"""() => document.querySelector('.item[data-id="{s["id"]}"] .badge')
                               ?.textContent === 'idle'""",
            timeout=30_000,
        )
    # A bad request shows the server's message in the dialog and keeps it open.
    page.keyboard.press("n")
    dlg.locator("select[name=agent]").select_option("command")
    dlg.locator("input[name=cmd]").fill("/nonexistent/agent")
    dlg.locator("textarea[name=prompt]").fill("will not start")
    dlg.get_by_role("button", name="Start").click()
    dlg.locator(".form-error", has_text="does not exist").wait_for()
    assert dlg.is_visible()
    dlg.get_by_role("button", name="Cancel").click()


def test_attention_notifies_and_counts_in_title(server: Server, browser: Any) -> None:
    page = new_page(browser, server, permissions=["notifications"])
    page.evaluate(
        """() => {
        window.__notes = [];
        window.Notification = class { constructor(t, o) { window.__notes.push([t, o.body]); }
            static get permission() { return 'granted'; }
            static requestPermission() { return Promise.resolve('granted'); } close() {} };
        }"""
    )
    page.check("#opt-notify")
    page.check("#opt-sound")
    title_before = page.title()
    m = re.match(r"^\((\d+)\)", title_before)
    n_before = int(m.group(1)) if m else 0
    s = server.start("tools", "Ping delay=0.3 file=ping.txt", title="Ping me when done")[0]
    js_wait(page, "() => window.__notes.length >= 1", timeout=30_000)
    title, body = page.evaluate("() => window.__notes[0]")
    assert title == "Ping me when done"
    assert "finished" in body
    js_wait(page, f"() => document.title.startsWith('({n_before + 1}) pa')")
    # Opening it brings the count down again.
    page.goto(f"/#/s/{s['id']}")
    js_wait(page, f"() => !document.title.startsWith('({n_before + 1})')")
    errors = list(page.pa_errors)
    page.context.close()
    assert not errors, errors


def test_conflicts_view(server: Server, page: Any) -> None:
    if not server.has_route("get", "/conflicts"):
        pytest.skip("the server has no GET /api/v1/conflicts route yet")
    a = server.start("clash", "Left delay=0.2 file=same.txt", title="Left version")[0]
    b = server.start("clash", "Right delay=0.2 file=same.txt", title="Right version")[0]
    server.wait(a["id"], "idle")
    server.wait(b["id"], "idle")
    page.goto("/#/conflicts")
    cell = page.locator(f".matrix td.bad[data-a='{a['id']}'][data-b='{b['id']}']")
    cell.wait_for(timeout=30_000)
    cell.click()
    assert "same.txt" in page.locator(".conf-paths").inner_text()
    shot(page, "conflicts")
