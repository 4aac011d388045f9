"""issue 17: the inbox (runs unread until looked at), --max-unreviewed, and the desktop
notification of a routine run."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from parallel_agents.cli import main
from parallel_agents.errors import PAError
from parallel_agents.models import Status
from parallel_agents.server.loop import ServerState
from parallel_agents.sessions import inbox, routine_runner, routines
from parallel_agents.sessions.orchestrator import App
from tests.reliability.helpers import wait_until

PY = sys.executable
# Writes a file: the run has a diff (1 file, 2 lines) once its turn's checkpoint is made.
WRITE = [PY, "-c", "open('notes.txt', 'w').write('a\\nb\\n'); print('done')"]


def _finished(app: App, sid: str) -> None:
    def done() -> bool:
        app.refresh()
        return not app.store.session(sid).status.active

    wait_until(done, timeout=60, what=f"session {sid} to finish")


def _runs(app: App, name: str, n: int, **kw: object) -> list[str]:
    """Add routine ``name`` (every minute from t=1000) and drive ``n`` due times; the
    sessions made, each finished."""
    args: dict[str, object] = {"repo": "r", "cmd": WRITE, "every": ["1m"], "now": 1000.0,
                               "overlap": "allow"}
    args.update(kw)
    routines.add(app, name, "take notes", **args)  # type: ignore[arg-type]
    sids = []
    for i in range(n):
        made = routine_runner.drive(app, now=1061.0 + 60 * i)
        assert len(made) == 1 and made[0].session_id
        sids.append(made[0].session_id)
    for sid in sids:
        _finished(app, sid)
    return sids


def test_inbox_lists_unread_runs_until_looked_at(app: App) -> None:
    """issue 17: each run's session is in the inbox, newest first, with its status, cost and
    diff size; looking at it (App.mark_read: dashboard, pa show, pa logs), `pa diff`'s
    route (seen), inbox read, or a merge/discard takes it out; --all still shows it."""
    s1, s2, s3, s4 = _runs(app, "notes", 4)
    other = app.new_session("not a routine", repo="r", cmd=["true"])
    _finished(app, other.id)
    got = inbox.listing(app)
    assert [(x["routine"], x["run"], x["session"]) for x in got] == [
        ("notes", 4, s4), ("notes", 3, s3), ("notes", 2, s2), ("notes", 1, s1)
    ]
    assert all(x["read"] is False and x["status"] == "idle" for x in got)
    assert got[0]["diff"] == {"files": 1, "additions": 2, "deletions": 0}
    assert "cost_usd" in got[0] and got[0]["created_at"] > 0

    # The Routines page's rows: the last runs with status, cost, diff size and read.
    [row] = inbox.board(app, runs=2)
    assert row["name"] == "notes" and [x["run"] for x in row["runs"]] == [4, 3]
    assert row["runs"][0]["diff"] == {"files": 1, "additions": 2, "deletions": 0}
    assert row["runs"][0]["read"] is False and "cost_usd" in row["runs"][0]

    app.mark_read(s4)  # what opening it in the dashboard and `pa show` do
    assert inbox.seen(app, [s3]) == [s3]  # what `pa diff` does
    assert inbox.seen(app, [s3, other.id]) == []  # read already / not a run: no write
    app.discard(s2)
    assert [x["session"] for x in inbox.listing(app)] == [s1]
    assert inbox.read(app, [s1[:6]]) == [s1]
    assert inbox.listing(app) == []
    everything = inbox.listing(app, everything=True)
    assert [x["run"] for x in everything] == [4, 3, 2, 1]
    assert all(x["read"] for x in everything)
    with pytest.raises(PAError, match="no routine"):
        inbox.listing(app, routine="nope")
    with pytest.raises(PAError, match="--all"):
        inbox.read(app, [])


def test_max_unreviewed_skips_due_times_with_a_reason(app: App) -> None:
    """issue 17: with --max-unreviewed 2 and two runs unread, a due time is recorded as
    skipped (reason given) instead of starting a session; reading one lets the next run."""
    with pytest.raises(PAError, match="below 0"):
        routines.add(app, "bad", "x", repo="r", cmd=["true"], every=["1m"], max_unreviewed=-1)
    s1, _ = _runs(app, "capped", 2, max_unreviewed=2)
    assert routines.show(app, "capped")["policies"]["max_unreviewed"] == 2
    assert routine_runner.drive(app, now=1181.0) == []
    skipped = app.store.routine_runs("capped")[0]
    assert (skipped.n, skipped.state, skipped.reason) == (3, "skipped", "unreviewed")
    assert skipped.error and "--max-unreviewed 2" in skipped.error and skipped.session_id is None
    assert app.store.routine("capped").next_due == 1240.0  # the schedule moves on
    # A merged (or discarded) run counts as reviewed, like a read one.
    app.store.set_status(s1, Status.MERGED)
    made = routine_runner.drive(app, now=1241.0)
    assert [m.n for m in made] == [4] and made[0].session_id


def _pa(*args: str, cwd: Path | None = None, ok: bool = True) -> Result:
    """`pa ARGS` in this process (the in-process transport, as a subprocess would use)."""
    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        res = CliRunner().invoke(main, list(args), prog_name="pa")
    finally:
        os.chdir(old)
    assert (res.exit_code == 0) == ok, (res.output, res.stderr)
    return res


def test_pa_inbox_cli(repo: Path) -> None:
    """issue 17: `pa inbox` (clear text when empty), `--json` (routine, run, session,
    status, read), `pa show` marks read, `pa inbox read --all`, `pa inbox --all`."""
    assert "inbox is empty" in _pa("inbox").stdout
    _pa("routine", "add", "n", "--prompt", "x", "--cmd", "true", "--every", "1h",
        "--max-unreviewed", "3", cwd=repo)
    assert "at most 3 runs unread" in _pa("routine", "show", "n").stdout
    runs = [json.loads(_pa("routine", "run", "n", "--json").stdout) for _ in range(2)]
    listed = json.loads(_pa("inbox", "--json").stdout)
    assert [(x["routine"], x["run"], x["session"], x["read"]) for x in listed] == [
        ("n", 2, runs[1]["session"], False), ("n", 1, runs[0]["session"], False)
    ]
    assert all(isinstance(x["status"], str) for x in listed)
    text = _pa("inbox").stdout
    assert runs[0]["session"] in text and "#2" in text
    _pa("show", runs[1]["session"])
    assert [x["run"] for x in json.loads(_pa("inbox", "--json").stdout)] == [1]
    _pa("routine", "run", "n")
    third = json.loads(_pa("inbox", "--json").stdout)[0]
    assert third["run"] == 3
    _pa("diff", third["session"], "--stat")  # `pa diff` marks it read too
    assert [x["run"] for x in json.loads(_pa("inbox", "--json").stdout)] == [1]
    assert "marked 1 run read" in _pa("inbox", "read", "--all").stdout
    assert "inbox is empty" in _pa("inbox").stdout
    both = json.loads(_pa("inbox", "--all", "--routine", "n", "--json").stdout)
    assert [x["read"] for x in both] == [True, True, True]
    res = _pa("inbox", "read", ok=False)
    assert "error:" in res.stderr and "hint:" in res.stderr


def test_routine_run_notification_names_the_routine_and_inbox(
    app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """issue 17: when a routine run's turn ends, the desktop notification (notify-send's
    argv, never a shell) names the routine, its run and the inbox."""
    calls = tmp_path / "calls.jsonl"
    fakebin = tmp_path / "bin"
    fakebin.mkdir()
    fake = fakebin / "notify-send"
    fake.write_text(
        f"#!{PY}\nimport json, sys\n"
        f"open({str(calls)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fakebin}{os.pathsep}{os.environ['PATH']}")
    [sid] = _runs(app, "nightly", 1)
    # The server loop's step after a tick: attention events -> notifications.
    state = ServerState(app.settings.home, app.settings)
    try:
        state._after_tick(app)
    finally:
        state._bg.shutdown()
    argv = wait_until(lambda: calls.exists() and calls.read_text().strip(), 15, "notify-send")
    got = json.loads(argv.splitlines()[0])
    assert got[-2] == "pa routine nightly #1 finished its turn"
    assert "pa inbox" in got[-1] and sid in got[-1] and got[-3] == "--"
