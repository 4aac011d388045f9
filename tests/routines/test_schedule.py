"""issue 17: the schedule logic, with the clock passed in (never the real one)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from parallel_agents.errors import UsageError
from parallel_agents.sessions import routine_schedule as rs

BERLIN = ZoneInfo("Europe/Berlin")


def test_cron_next_due_in_its_zone() -> None:
    """issue 17: a cron trigger is read in its own time zone."""
    trig = rs.cron_trigger("0 7 * * 1-5", "Europe/Berlin")
    # Friday 2026-06-05 08:00 Berlin: next is Monday 07:00 Berlin (05:00 UTC).
    got = rs.next_due(trig, datetime(2026, 6, 5, 8, 0, tzinfo=BERLIN))
    assert got == datetime(2026, 6, 8, 5, 0, tzinfo=UTC)


def test_spring_forward_loses_no_run() -> None:
    """issue 17: 02:30 does not exist on the night of 2026-03-29 in Berlin: the run moves
    to 03:00 (croniter's choice), it is not lost, and the next night is 02:30 again."""
    trig = rs.cron_trigger("30 2 * * *", "Europe/Berlin")
    got = rs.due_times(
        trig, datetime(2026, 3, 28, 12, tzinfo=BERLIN), datetime(2026, 3, 31, 12, tzinfo=BERLIN)
    )
    local = [(d.astimezone(BERLIN).day, d.astimezone(BERLIN).hour, d.astimezone(BERLIN).minute)
             for d in got]
    assert local == [(29, 3, 0), (30, 2, 30), (31, 2, 30)]


def test_fall_back_runs_once() -> None:
    """issue 17: 02:30 happens twice on 2026-10-25 in Berlin: one run, not two."""
    trig = rs.cron_trigger("30 2 * * *", "Europe/Berlin")
    got = rs.due_times(
        trig, datetime(2026, 10, 24, 12, tzinfo=BERLIN), datetime(2026, 10, 26, 12, tzinfo=BERLIN)
    )
    assert [d.astimezone(BERLIN).day for d in got] == [25, 26]
    assert got[0] == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # the first 02:30


def test_every_is_anchored_and_windows_list_all_missed() -> None:
    """issue 17: --every is due at anchor + k*interval, so a window after downtime lists
    every due time that passed, whenever it is computed."""
    anchor = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    trig = rs.every_trigger("30m", anchor, 60)
    start = datetime(2026, 1, 1, 0, 10, tzinfo=UTC)
    assert rs.next_due(trig, start) == datetime(2026, 1, 1, 0, 30, tzinfo=UTC)
    got = rs.due_times(trig, start, datetime(2026, 1, 1, 2, 0, tzinfo=UTC))
    assert [d.minute for d in got] == [30, 0, 30, 0]
    # Strictly after: a due time is never given twice.
    assert rs.next_due(trig, got[0]) == got[1]


@pytest.mark.parametrize("expr", ["", "61 * * * *", "* * *", "hello", "0 7 * * 1-5 2026", "0 25 * * *"])
def test_invalid_cron_is_refused(expr: str) -> None:
    """issue 17: an invalid cron string is a usage error at add."""
    with pytest.raises(UsageError, match="invalid cron"):
        rs.cron_trigger(expr, "UTC")


def test_unknown_zone_and_short_or_bad_interval() -> None:
    """issue 17: unknown zones, intervals below routines.min_interval, bad units: errors."""
    with pytest.raises(UsageError, match="unknown time zone"):
        rs.cron_trigger("0 7 * * *", "Mars/Olympus")
    with pytest.raises(UsageError, match="below the minimum"):
        rs.every_trigger("30s", 0, 60)
    for bad in ("30", "5w", "0m", "-1m"):
        with pytest.raises(UsageError, match="invalid interval"):
            rs.every_trigger(bad, 0, 60)
    assert rs.describe(rs.every_trigger("2h", 0, 60)) == "every 2h"


def test_every_due_time_read_back_is_not_due_again() -> None:
    """issue 17: a due time stored as a float and read back (through a datetime) is not
    taken for an earlier due time: one due time, one run (found by the real server)."""
    trig = rs.every_trigger("2s", 1796330438.107958, 1)
    first = rs.next_due(trig, datetime.fromtimestamp(1796330438.2, UTC))
    again = datetime.fromtimestamp(first.timestamp(), UTC)
    assert rs.due_times(trig, again, datetime.fromtimestamp(first.timestamp() + 0.5, UTC)) == []


def test_every_first_due_time_is_one_interval_after_its_anchor() -> None:
    """issue 17: asked just after `add` (before the whole-second anchor), an --every
    trigger's next due time is anchor + interval, never the anchor itself (a `resume` right
    after `add` started a run at once)."""
    trig = rs.every_trigger("6h", 1000.4, 60)
    assert trig["anchor"] == 1001.0
    assert rs.next_due(trig, datetime.fromtimestamp(1000.6, UTC)).timestamp() == 1001.0 + 6 * 3600
