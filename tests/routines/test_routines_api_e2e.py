"""issue 17, done when: a real server with an `--every` routine every few seconds and an
`--api` routine fired over HTTP with its own token; sessions are created and shown in the
inbox, the server is killed with SIGKILL across a due time and restarted: exactly one run
per due time, and each fired run exists once (its token still works after the restart)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.server.conftest import Srv, pa_cli, repo_path, start_server, wait_for

__all__ = ["repo_path", "start_server"]  # fixtures, used by name

EVERY = 2.0


def _history(srv: Srv, name: str) -> list[dict[str, Any]]:
    """`pa routine history NAME --json`, through the real CLI."""
    p = pa_cli("routine", "history", name, "--json", env=srv.env)
    assert p.returncode == 0, p.stdout + p.stderr
    runs: list[dict[str, Any]] = json.loads(p.stdout)
    return runs


def _tagged(srv: Srv, name: str) -> dict[int, list[str]]:
    """Run number -> the sessions tagged with it (each run must have exactly one)."""
    out: dict[int, list[str]] = {}
    for s in srv.client.list_sessions(all=True):
        tag = srv.client.get_session(s["id"]).get("options", {}).get("routine")
        if tag and tag["name"] == name:
            out.setdefault(int(tag["run"]), []).append(s["id"])
    return out


def _fire(srv: Srv, token: str, text: str) -> dict[str, Any]:
    r = httpx.post(
        f"{srv.url}/api/v1/routines/hook/fire", json={"text": text},
        headers={"Authorization": f"Bearer {token}"}, timeout=60,
    )
    assert r.status_code == 202, r.text
    out: dict[str, Any] = r.json()
    return out


def test_every_and_api_routines_across_kill9(
    start_server: Callable[..., Srv], repo_path: Path
) -> None:
    """issue 17: an --every routine and an --api routine on one real server; kill -9 just
    before a due time, restart after more passed: one run per due time, none doubled, the
    fired runs once each with their text, the schedule and the token still working."""
    srv = start_server("[routines]\nmin_interval = 1\n")
    srv.client.routine_add(
        "tick", "tick on {branch}", every=["2s"], cmd=["true"], repo=str(repo_path),
        overlap="allow",
    )
    token = srv.client.routine_add(
        "hook", "triage: {text}", cmd=["cat"], repo=str(repo_path), api=True,
    )["token"]
    fired = _fire(srv, token, "ticket 41 before the crash")
    srv.wait_output(fired["session"], "triage: ticket 41 before the crash")
    wait_for(lambda: len(srv.client.routine_history("tick")) >= 2, 60, "two scheduled runs",
             diagnose=srv.diagnose)

    # Kill just before the next due time, so the server is down across it.
    nxt = srv.client.routine("tick")["next_due"]
    wait_for(lambda: time.time() >= nxt - 0.3, 10, "the moment before a due time")
    srv.kill9()
    wait_for(lambda: time.time() >= nxt + 2 * EVERY, 30, "due times to pass while down")
    srv.start()
    wait_for(
        lambda: any(r["reason"].startswith("missed") for r in srv.client.routine_history("tick")),
        60, "the missed run after the restart", diagnose=srv.diagnose,
    )
    again = _fire(srv, token, "ticket 42 after the restart")
    srv.wait_output(again["session"], "triage: ticket 42 after the restart")
    n_after = len(srv.client.routine_history("tick"))
    wait_for(lambda: len(srv.client.routine_history("tick")) >= n_after + 1, 60,
             "the schedule to go on", diagnose=srv.diagnose)
    srv.client.routine_pause("tick")  # no run starts while the runs are compared below
    wait_for(lambda: all(r["state"] != "claimed" for r in srv.client.routine_history("tick")),
             30, "runs recorded")

    ticks = _history(srv, "tick")
    dues = [r["due_at"] for r in ticks]
    assert len(dues) == len(set(dues)), ticks  # one run per due time
    anchor = dues[-1]
    for d in dues:  # every due time on the routine's grid
        assert abs((d - anchor) / EVERY - round((d - anchor) / EVERY)) < 1e-6, ticks
    missed = [r for r in ticks if r["reason"].startswith("missed")]
    assert len(missed) == 1 and int(missed[0]["reason"].split("x")[1]) >= 2, ticks
    started = {r["run"]: [r["session"]] for r in ticks if r["state"] == "started"}
    assert started == _tagged(srv, "tick"), ticks

    hooks = _history(srv, "hook")
    assert [(r["run"], r["reason"], r["state"]) for r in hooks] == [
        (2, "api", "started"), (1, "api", "started"),
    ], hooks
    assert _tagged(srv, "hook") == {1: [fired["session"]], 2: [again["session"]]}
    # Every run made waits in the inbox, unread, once: the scheduled ones and the fired.
    p = pa_cli("inbox", "--json", env=srv.env)
    assert p.returncode == 0, p.stdout + p.stderr
    inbox = [(x["routine"], x["run"], x["session"]) for x in json.loads(p.stdout)]
    assert len(inbox) == len(set(inbox)), inbox
    expected = {("tick", n, sids[0]) for n, sids in started.items()}
    expected |= {("hook", 1, fired["session"]), ("hook", 2, again["session"])}
    assert set(inbox) == expected, (inbox, expected)
