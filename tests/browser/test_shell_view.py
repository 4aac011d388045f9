"""Issue 16 §2: the Shell tab, for any session (headless here): xterm.js over the
``/shell`` websocket to the session's shell in its worktree, on pa's own tmux.
Issue 16 §3: the Open button starts the user's editor (a stand-in on the server's PATH)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import Server, js_wait, shot

EDITOR_DIR = Path(__file__).resolve().parents[2] / "test-artifacts" / "editor-bin"
EDITOR_LOG = EDITOR_DIR / "code.log"


@pytest.fixture(scope="module", autouse=True)
def stand_in_editor() -> Iterator[None]:
    """A stand-in `code` first on PATH before this module's server starts: it records its
    argv. (Module scope, autouse: set up before the module's `server` fixture.)"""
    EDITOR_DIR.mkdir(parents=True, exist_ok=True)
    EDITOR_LOG.unlink(missing_ok=True)
    code = EDITOR_DIR / "code"
    code.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"open({str(EDITOR_LOG)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    code.chmod(0o755)
    old = os.environ.get("PATH", "")
    os.environ["PATH"] = f"{EDITOR_DIR}:{old}"
    yield
    os.environ["PATH"] = old


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


def test_open_button_starts_the_editor_on_the_worktree(server: Server, page: Any) -> None:
    """issue 16 §3: the session view's Open button makes the server start the editor found
    on its PATH with the worktree as one argument."""
    s = server.start("openview", "headless delay=0.1", title="Open me")[0]
    sid = s["id"]
    server.wait(sid, "idle", "failed", "stopped")
    wt = server.session(sid)["worktree"]
    page.goto(f"/#/s/{sid}")
    page.locator("#view-session button[data-action='open']").click()
    page.get_by_text("opened the worktree in code").wait_for()
    deadline = time.monotonic() + 15
    while not (EDITOR_LOG.exists() and EDITOR_LOG.read_text().endswith("\n")):
        assert time.monotonic() < deadline, "the stand-in editor never ran"
        time.sleep(0.05)
    assert json.loads(EDITOR_LOG.read_text().splitlines()[0]) == [wt]
