"""issue 17: routines in the store and their driver, with the clock passed in."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from parallel_agents.errors import PAError, UsageError
from parallel_agents.sessions import routine_runner, routines
from parallel_agents.sessions.orchestrator import App


def _add(app: App, name: str = "nightly", **kw: object) -> None:
    args: dict[str, object] = {"repo": "r", "cmd": ["true"], "every": ["1m"], "now": 1000.0}
    args.update(kw)
    routines.add(app, name, "bump deps on {branch} at {commit} ({date})", **args)  # type: ignore[arg-type]


def test_bad_input_stores_nothing(app: App) -> None:
    """issue 17: invalid cron, unknown tz, short interval, unknown repo/agent, unknown
    placeholder, duplicate name: errors at add, nothing stored."""
    bad: list[dict[str, object]] = [
        {"every": [], "cron": ["61 * * * *"]},
        {"every": [], "cron": ["0 7 * * *"], "tz": "Nowhere/City"},
        {"every": ["10s"]},
        {"repo": "nope"},
        {"cmd": None, "agent": "no-such-agent"},
        {"every": []},
        {"base": "no-such-branch"},
    ]
    for kw in bad:
        with pytest.raises(PAError):
            _add(app, **kw)
    with pytest.raises(UsageError, match="placeholder"):
        routines.add(app, "x", "hello {pr}", repo="r", cmd=["true"], every=["1m"])
    assert app.store.routines() == []
    _add(app)
    with pytest.raises(PAError, match="exists already"):
        _add(app)
    assert [r.name for r in app.store.routines()] == ["nightly"]


def test_one_run_per_due_time_and_missed_once(app: App) -> None:
    """issue 17: a due time gives one run, whoever drives it how often; several due times
    passed while down give one run (missed=once) tagged on its session."""
    _add(app, overlap="allow")
    r = app.store.routine("nightly")
    assert r.next_due == 1060.0
    assert routine_runner.drive(app, now=1059.0) == []
    made = routine_runner.drive(app, now=1061.0)
    assert [m.n for m in made] == [1]
    assert routine_runner.drive(app, now=1061.0) == []  # same time again: nothing
    # The claim is the UNIQUE row: claiming that due time again gives nothing.
    assert app.store.claim_run("nightly", 1060.0, "schedule", 1120.0) is None
    s = app.store.session(made[0].session_id or "")
    assert s.options["routine"] == {"name": "nightly", "run": 1}
    assert "bump deps on " in app.store.turns(s.id)[0].prompt
    # Down from 1061 to 1300: due times 1120, 1180, 1240, 1300 passed: one run.
    made = routine_runner.drive(app, now=1301.0)
    assert [(m.n, m.reason) for m in made] == [(2, "missed x4")]
    assert app.store.routine("nightly").next_due == 1360.0
    assert [x.n for x in app.store.routine_runs("nightly")] == [2, 1]


def test_missed_skip_and_pause(app: App) -> None:
    """issue 17: missed=skip runs none of the due times that passed; paused runs nothing."""
    _add(app, missed="skip")
    assert routine_runner.drive(app, now=1301.0) == []
    assert app.store.routine("nightly").next_due == 1360.0
    routines.pause(app, "nightly")
    assert routine_runner.drive(app, now=1400.0) == []
    out = routines.resume(app, "nightly", now=1500.0)
    assert out["next_due"] == 1540.0 and out["paused"] is False


def test_overlap_skip_and_queue(app: App) -> None:
    """issue 17: while the previous run's session is still working (no loop has seen it
    end here), overlap=skip records the due time as skipped, overlap=queue keeps it due."""
    _add(app, "a", overlap="skip")
    _add(app, "b", overlap="queue")
    assert len(routine_runner.drive(app, now=1061.0)) == 2
    assert routine_runner.drive(app, now=1121.0) == []
    a = app.store.routine_runs("a")
    assert [(x.n, x.state) for x in a] == [(2, "skipped"), (1, "started")]
    assert [x.n for x in app.store.routine_runs("b")] == [1]
    assert app.store.routine("b").next_due == 1120.0  # still due: queued
    run = routines.run_now(app, "b")  # `run NAME` ignores the schedule and overlap
    assert run["run"] == 2 and run["state"] == "started"
    assert app.store.routine("b").next_due == 1120.0


def test_a_claim_cut_short_by_a_crash_is_settled_once(app: App) -> None:
    """issue 17: a run claimed just before a crash never gets a second session: its tagged
    session is adopted, or the run is recorded failed; the due time is not run again."""
    _add(app, overlap="allow")
    claimed = app.store.claim_run("nightly", 1060.0, "schedule", 1120.0)
    assert claimed is not None
    late = claimed.created_at + routine_runner.ADOPT_AFTER + 1
    routine_runner.drive(app, now=late)
    runs = {x.n: x for x in app.store.routine_runs("nightly")}
    assert runs[1].state == "failed" and runs[1].session_id is None
    assert [x.due_at for x in runs.values()].count(1060.0) == 1


def test_date_is_the_day_in_the_routines_own_zone(app: App) -> None:
    """issue 17: {date} is the due day in the --tz of the routine's cron, not the
    machine's: 23:30 UTC on 2026-03-01 is already 2026-03-02 in Tokyo."""
    routines.add(app, "tokyo", "report for {date}", repo="r", cmd=["true"],
                 cron=["30 8 * * *"], tz="Asia/Tokyo", now=1000.0)  # fmt: skip
    r = app.store.routine("tokyo")
    due = datetime(2026, 3, 1, 23, 30, tzinfo=UTC).timestamp()
    assert routine_runner.prompt_for(app, r, due)[0] == "report for 2026-03-02"
