"""Issue 16 §2: the Shell tab, for any session (headless here): xterm.js over the
``/shell`` websocket to the session's shell in its worktree, on pa's own tmux."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from .conftest import Server, js_wait, shot

SCREEN = """() => {
  const t = window.__paTerm; if (!t) return "";
  const b = t.buffer.active, out = [];
  for (let i = 0; i < b.length; i++) out.push(b.getLine(i).translateToString(true));
  return out.join("\\n");
}"""


def screen_has(page: Any, text: str, timeout: float = 15_000) -> None:
    js_wait(page, f"() => ({SCREEN})().includes({text!r})", timeout=timeout)


def test_shell_tab_runs_commands_in_the_worktree(server: Server, page: Any) -> None:
    """issue 16 §2: a headless session's Shell tab opens a shell in its worktree; typed
    commands run there and their output shows."""
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed: apt-get install tmux (scripts/test does, as root)")
    s = server.start("shellview", "headless delay=0.1", title="A headless session")[0]
    sid = s["id"]
    server.wait(sid, "idle", "failed", "stopped")
    wt = Path(server.session(sid)["worktree"]).name
    page.goto(f"/#/s/{sid}")
    tab = page.locator("#view-session .tabs button[data-tab='shell']")
    tab.wait_for()
    assert not page.locator("#view-session .tabs button[data-tab='terminal']").is_visible()
    tab.click()
    page.locator("#view-session [data-panel='shell'] .xterm").wait_for()
    page.locator("#view-session [data-panel='shell'] .xterm").click()
    page.keyboard.type('echo "WT=$(basename "$PWD") N=$((6*7))"')
    page.keyboard.press("Enter")
    screen_has(page, f"WT={wt} N=42")
    shot(page, "shell")
    # The shell lives on pa's tmux server, independent of the page: discard ends it.
    from parallel_agents.sessions import shell

    assert shell.is_running(server.home, sid)
    server.api("POST", f"/sessions/{sid}/discard")
    assert not shell.is_running(server.home, sid)
