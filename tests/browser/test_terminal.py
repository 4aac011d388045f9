"""The terminal tab: xterm.js over the websocket to an interactive session's tmux pane.
Typing reaches the program in the pane; resizing the browser resizes the tmux window;
two viewers see the same pane."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import Server, js_wait, new_page, shot

FAKE_TUI = Path(__file__).with_name("fake_tui.py")

SCREEN = """() => {
  const t = window.__paTerm; if (!t) return "";
  const b = t.buffer.active, out = [];
  for (let i = 0; i < b.length; i++) out.push(b.getLine(i).translateToString(true));
  return out.join("\\n");
}"""


def screen_has(page: Any, text: str, timeout: float = 15_000) -> None:
    js_wait(page, f"() => ({SCREEN})().includes({text!r})", timeout=timeout)


def test_terminal_types_resizes_and_shares(server: Server, browser: Any, page: Any) -> None:
    import shutil

    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed: apt-get install tmux (scripts/test does, as root)")
    from parallel_agents.runtime import tmux

    s = server.start(
        "term",
        "hello from the test",
        interactive=True,
        cmd=[sys.executable, str(FAKE_TUI)],
        title="Interactive session",
    )[0]
    sid = s["id"]
    server.wait(sid, "running", "idle", "needs_input")
    page.goto(f"/#/s/{sid}/terminal")
    screen_has(page, "fake TUI ready")
    page.locator("#view-session .xterm").click()
    page.keyboard.type("make it so")
    page.keyboard.press("Enter")
    screen_has(page, "echo: MAKE IT SO")
    # Resize the browser: xterm refits, the tmux window follows, the program sees it.
    page.set_viewport_size({"width": 1000, "height": 620})
    js_wait(page, "() => window.__paTerm && window.__paTerm.cols < 100")
    cols = page.evaluate("() => window.__paTerm.cols")
    js_wait(page, f"() => ({SCREEN})().includes('[resized to {cols}x')")
    width = tmux.display(server.home, sid, "#{window_width}")
    assert int(width) == cols
    shot(page, "terminal")
    # A second viewer of the same pane sees what the first typed, and the other way round.
    other = new_page(browser, server)
    other.goto(f"/#/s/{sid}/terminal")
    screen_has(other, "echo: MAKE IT SO")
    other.locator("#view-session .xterm").click()
    other.keyboard.type("second viewer")
    other.keyboard.press("Enter")
    screen_has(page, "echo: SECOND VIEWER")
    other.context.close()
    server.api("POST", f"/sessions/{sid}/stop")


def test_headless_session_has_no_terminal_tab(server: Server, page: Any) -> None:
    s = server.start("term", "headless delay=0.1")[0]
    page.goto(f"/#/s/{s['id']}")
    page.locator("#view-session .tabs").wait_for()
    assert not page.locator("#view-session .tabs button[data-tab='terminal']").is_visible()
