"""issue 17, done when: a real server runs an `--every` routine every few seconds, and a
server killed with SIGKILL across a due time, restarted after several due times passed,
gives exactly one run per due time (missed=once: one run for the ones passed while down)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.server.conftest import Srv, repo_path, start_server, wait_for

__all__ = ["repo_path", "start_server"]  # fixtures, used by name

EVERY = 2.0


def _tagged(srv: Srv) -> dict[int, list[str]]:
    """Run number -> the sessions tagged with it (each run must have exactly one)."""
    out: dict[int, list[str]] = {}
    for s in srv.client.list_sessions(all=True):
        tag = srv.client.get_session(s["id"]).get("options", {}).get("routine")
        if tag and tag["name"] == "tick":
            out.setdefault(int(tag["run"]), []).append(s["id"])
    return out


def _check_once(srv: Srv, runs: list[dict[str, Any]], anchor: float) -> None:
    dues = [r["due_at"] for r in runs]
    assert len(dues) == len(set(dues)), runs
    for d in dues:  # every due time is on the routine's grid
        assert abs(((d - anchor) / EVERY) - round((d - anchor) / EVERY)) < 1e-6, runs
    tagged = _tagged(srv)
    started = {r["run"]: r["session"] for r in runs if r["state"] == "started"}
    assert {n: [sid] for n, sid in started.items()} == tagged, (runs, tagged)


def test_every_routine_survives_kill9(
    start_server: Callable[..., Srv], repo_path: Path
) -> None:
    """issue 17: sessions appear on schedule; kill -9 just before a due time, restart after
    several passed: one run for them, none doubled, and the schedule goes on."""
    srv = start_server("[routines]\nmin_interval = 1\n")
    made = srv.client.routine_add(
        "tick", "tick on {branch}", every=["2s"], cmd=["true"], repo=str(repo_path),
        overlap="allow",
    )
    anchor = made["next_due"] - EVERY

    def history() -> list[dict[str, Any]]:
        return srv.client.routine_history("tick")

    wait_for(lambda: len(history()) >= 2, 60, "two scheduled runs", diagnose=srv.diagnose)
    # Kill just before the next due time, so the server is down across it.
    nxt = srv.client.routine("tick")["next_due"]
    wait_for(lambda: time.time() >= nxt - 0.3, 10, "the moment before a due time")
    before = history()
    srv.kill9()
    # Down across three due times (wall clock: the only way a real server can miss them).
    wait_for(lambda: time.time() >= nxt + 3 * EVERY, 30, "due times to pass while down")
    srv.start()
    wait_for(
        lambda: any(r["reason"].startswith("missed") for r in history()), 60,
        "the missed run after the restart", diagnose=srv.diagnose,
    )
    n_after = len(history())
    wait_for(lambda: len(history()) >= n_after + 2, 60, "the schedule to go on")
    runs = history()
    missed = [r for r in runs if r["reason"].startswith("missed")]
    assert len(missed) == 1 and int(missed[0]["reason"].split("x")[1]) >= 2, runs
    assert len(runs) > len(before)
    wait_for(lambda: all(r["state"] != "claimed" for r in history()), 30, "runs recorded")
    _check_once(srv, history(), anchor)
