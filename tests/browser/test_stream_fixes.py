"""The dashboard's live connection and its "live" filter in a real browser.

- Issue 11 F.4: an agent's error event keeps the connection label "live" (a message named
  ``error`` used to reach EventSource's connection-error handler: "reconnecting…" for good).
- Issue 11 F.7: no 404 from ``GET /api/v1/agents``; the "live" filter shows exactly the
  sessions `pa ls` and ``GET /api/v1/sessions`` show (merged and discarded ones hidden).
- Issue 20 §5: after the server's database was reset, the dashboard (resuming from an id
  the server no longer has) recovers: new sessions appear and update live.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import FAKE_AGENT, GIT_ENV, Server, _wait_for_server, git, js_wait, new_page

PA_SERVE = [sys.executable, "-m", "parallel_agents", "serve"]
FAIL = [sys.executable, "-c", "import sys; print('about to fail'); sys.exit(3)"]


def badge_is(page: Any, sid: str, text: str, timeout: float = 30_000) -> None:
    js_wait(
        page,
        f"""() => document.querySelector('.item[data-id="{sid}"] .badge')
                   ?.textContent === '{text}'""",
        timeout=timeout,
    )


def conn(page: Any) -> str:
    return str(page.locator("#conn").inner_text())


def test_agent_error_keeps_the_connection_live(server: Server, page: Any) -> None:
    """Issue 11 F.4: a failed command (an ``error`` event) leaves the label "live", and
    later events still arrive."""
    js_wait(page, "() => document.querySelector('#conn')?.textContent === 'live'")
    server.repo("errs")
    body = {"prompt": "fail", "repo": "errs", "agent": "command", "cmd": FAIL}
    [bad] = server.api("POST", "/sessions", body)["sessions"]
    badge_is(page, bad["id"], "failed")
    events = server.api("GET", f"/sessions/{bad['id']}/events")["events"]
    assert any(e["kind"] == "error" for e in events)
    # A later session's events arrive after the error event: it was dispatched by now.
    [ok] = server.start("errs", "then fine delay=0.2")
    badge_is(page, ok["id"], "idle")
    assert conn(page) == "live"


def test_events_during_the_first_fetch_of_a_new_session_are_not_lost(
    server: Server, page: Any, tmp_path: Path
) -> None:
    """A session made elsewhere is fetched when its first event arrives. Its later events
    (here: it failed) used to be dropped while that fetch was in flight, so a stale answer
    ("running") stayed on screen for good: CI saw a badge that never turned "failed". The
    fetch is held here until the session has failed, then answered with its stale copy."""
    js_wait(page, "() => document.querySelector('#conn')?.textContent === 'live'")
    server.repo("late")
    gate = tmp_path / "go"
    wait_then_fail = [
        sys.executable,
        "-c",
        "import os, sys, time\n"
        f"while not os.path.exists({str(gate)!r}): time.sleep(0.02)\n"
        "sys.exit(3)",
    ]
    held: list[str] = []

    def hold_first(route: Any) -> None:
        sid = route.request.url.split("?")[0].rsplit("/", 1)[-1]
        if held:
            route.continue_()
            return
        stale = route.fetch()
        data = stale.json()
        if data.get("repo_name") != "late":  # another test's session
            route.fulfill(response=stale)
            return
        held.append(str(data["status"]))
        gate.write_text("")
        server.wait(sid, "failed")
        route.fulfill(response=stale)

    page.route(re.compile(r".*/api/v1/sessions/[0-9a-z-]+(\?.*)?$"), hold_first)
    try:
        body = {"prompt": "late", "repo": "late", "agent": "command", "cmd": wait_then_fail}
        [s] = server.api("POST", "/sessions", body)["sessions"]
        badge_is(page, s["id"], "failed")
        assert held and held[0] != "failed", held  # the race really happened
    finally:
        page.unroute("**/*")
        gate.write_text("")


def _visible(page: Any) -> set[str]:
    return set(
        page.evaluate(
            "() => [...document.querySelectorAll('#session-list .item')]"
            ".filter(e => e.offsetParent).map(e => e.dataset.id)"
        )
    )


def test_live_filter_matches_pa_ls_and_agents_answers(browser: Any, server: Server) -> None:
    """Issue 11 F.7: loading the dashboard and opening the new-session dialog get no 404
    (GET /api/v1/agents exists; the default agent is offered first); the "live" filter
    hides merged and discarded sessions, exactly like GET /api/v1/sessions (`pa ls`)."""
    made = server.start("livef", "live filter delay=0.2", count=3)
    for s in made:
        server.wait(s["id"], "idle")
    server.api("POST", f"/sessions/{made[0]['id']}/discard")
    if server.has_route("post", "/sessions/{sid}/merge"):
        server.api("POST", f"/sessions/{made[1]['id']}/merge", {})
        assert server.session(made[1]["id"])["status"] == "merged"

    page = new_page(browser, server, login=False)
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    try:
        page.goto(f"/login?token={server.token}")
        js_wait(page, "() => window.__pa && window.__pa.ready")
        live = {s["id"] for s in server.api("GET", "/sessions")["sessions"]}
        assert made[2]["id"] in live and made[0]["id"] not in live
        js_wait(page, f"() => !!document.querySelector('.item[data-id=\"{made[2]['id']}\"]')")
        assert _visible(page) == live
        page.select_option("#f-status", "*")
        gone = made[0]["id"]  # discarded: shown under "all"
        js_wait(page, f"() => document.querySelector('.item[data-id=\"{gone}\"]')?.offsetParent")
        assert {s["id"] for s in made} <= _visible(page)
        page.select_option("#f-status", "")
        page.keyboard.press("n")
        page.locator("#dlg-new").wait_for()
        options = page.locator("#form-new select[name=agent] option").all_inner_texts()
        assert options[0] == "command" and "claude" in options
        page.keyboard.press("Escape")
        assert missing == [], missing
        assert not page.pa_errors, page.pa_errors
    finally:
        page.context.close()


# -- a database reset ------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OwnServer:
    """A server of this test alone, restartable on the same port (the page's origin)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.home = base / "home"
        self.home.mkdir()
        self.port = _free_port()
        self.env = {
            **os.environ,
            **GIT_ENV,
            "PA_HOME": str(self.home),
            "XDG_CONFIG_HOME": str(base / "config"),
            "XDG_DATA_HOME": str(base / "data"),
        }
        self.env.pop("PA_CONFIG", None)
        self.env.pop("PA_URL", None)
        self.proc: subprocess.Popen[bytes] | None = None
        self.server: Server | None = None

    def start(self) -> Server:
        log = self.base / "server.log"
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*PA_SERVE, "--port", str(self.port), "--log-level", "warning"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        url, token = _wait_for_server(self.home, self.proc, log)
        self.server = Server(url=url, token=token, home=self.home, proc=self.proc, base=self.base)
        return self.server

    def stop(self) -> None:
        if self.server is not None:
            self.server.http.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def own(tmp_path: Path) -> Iterator[OwnServer]:
    o = OwnServer(tmp_path)
    try:
        yield o
    finally:
        o.stop()


def test_dashboard_recovers_after_a_database_reset(browser: Any, own: OwnServer) -> None:
    """Issue 20 §5: the dashboard saw events up to id N; the server restarts on an empty
    database, so its ids start again from 1. The browser resumes with Last-Event-ID N,
    which the server clamps (``reset``); the dashboard starts over and shows a new
    session and its status changes live (it used to stay silent for ever)."""
    srv = own.start()
    repo = own.base / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("# r\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    srv.api("POST", "/repos", {"path": str(repo), "name": "r"})
    # Lines over half of an event's 64 KiB span: one event each (a run of shorter plain
    # lines is one event, issue 14 §5), so the old database holds more than 300 ids.
    chatty = [sys.executable, "-c", "for i in range(300): print(i, 'x' * 33_000, flush=True)"]
    body = {"prompt": "chatty", "repo": "r", "agent": "command", "cmd": chatty}
    [old] = srv.api("POST", "/sessions", body)["sessions"]
    srv.wait(old["id"], "idle")
    newest = srv.api("GET", "/events?limit=10000&kinds=status")["events"][-1]["id"]
    assert newest > 300

    page = new_page(browser, srv)
    try:
        page.evaluate("() => { window.__sameDocument = true }")
        js_wait(page, "() => document.querySelector('#conn')?.textContent === 'live'")
        badge_is(page, old["id"], "idle")
        own.stop()
        for f in own.home.glob("pa.db*"):
            f.unlink()
        srv = own.start()
        assert srv.api("GET", "/sessions?all=1")["sessions"] == []
        # The page reloads itself once the server told it to start over.
        js_wait(page, "() => window.__pa && window.__pa.ready && !window.__sameDocument")
        js_wait(page, "() => document.querySelector('#conn')?.textContent === 'live'")
        srv.api("POST", "/repos", {"path": str(repo), "name": "r"})
        cmd = [sys.executable, str(FAKE_AGENT)]
        body = {"prompt": "after the reset delay=0.5", "repo": "r", "agent": "command", "cmd": cmd}
        [new] = srv.api("POST", "/sessions", body)["sessions"]
        assert new["id"] != old["id"]
        badge_is(page, new["id"], "idle")
        assert not page.locator(f'.item[data-id="{old["id"]}"]').count()
        assert conn(page) == "live"
        assert not page.pa_errors, page.pa_errors
    finally:
        page.context.close()
