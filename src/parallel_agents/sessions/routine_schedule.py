"""Issue 17: when a routine is due. Pure: every function takes the time it reasons about.

A trigger is a small JSON-able dict, checked whole when the routine is added:

- ``{"kind": "cron", "expr": "30 2 * * *", "tz": "Europe/Berlin"}`` (croniter parses it);
- ``{"kind": "every", "seconds": 1800, "anchor": <epoch>}``: due at anchor + k * seconds,
  so the due times are the same whenever the server looks (a restart shifts nothing).

Git-event triggers (``{"kind": "push", ...}``, ``{"kind": "pr", ...}``, see
``routine_events``) have no due times: ``next_of`` and ``window`` pass over them.

Daylight saving, decided here and tested (tests/routines/test_schedule.py): croniter moves
a time inside spring's missing hour to the first valid minute after it (02:30 → 03:00, the
run is not lost), and gives a time inside autumn's repeated hour twice (02:30+02:00 and
02:30+01:00). A wall-clock time runs once: the second occurrence is skipped, so a daily job
never runs twice on the night the clocks go back.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from parallel_agents.errors import UsageError

Trigger = dict[str, Any]
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# A window with more due times than this is a misconfiguration or years of downtime: the
# caller only needs to know "several" (missed-run policies run once or skip).
MAX_DUE = 1000


def local_tz_name() -> str:
    """The machine's IANA zone name when it can be found, else ``UTC``."""
    import os
    from pathlib import Path

    env = os.environ.get("TZ", "").lstrip(":")
    if env:
        return env
    try:
        link = str(Path("/etc/localtime").resolve())
    except OSError:
        return "UTC"
    m = re.search(r"zoneinfo/(.+)$", link)
    return m.group(1) if m else "UTC"


def zone(name: str) -> tzinfo:
    """The IANA zone ``name``; an unknown one is a usage error."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(
            f"unknown time zone {name!r}",
            hint="use an IANA name such as Europe/Berlin, America/New_York or UTC",
        ) from None


def cron_trigger(expr: str, tz: str | None = None) -> Trigger:
    """A checked ``--cron`` trigger (``tz`` defaults to the machine's zone)."""
    name = tz or local_tz_name()
    zone(name)
    if not croniter.is_valid(expr) or len(expr.split()) != 5:
        raise UsageError(
            f"invalid cron expression {expr!r}",
            hint='five fields: minute hour day-of-month month day-of-week, e.g. "0 7 * * 1-5"',
        )
    return {"kind": "cron", "expr": expr, "tz": name}


def parse_interval(text: str) -> int:
    """``30m`` → 1800 seconds (units s, m, h, d)."""
    m = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", text)
    if not m or int(m.group(1)) == 0:
        raise UsageError(
            f"invalid interval {text!r}", hint="a whole number and a unit s, m, h or d: 30m, 2h"
        )
    return int(m.group(1)) * _UNITS[m.group(2)]


def every_trigger(text: str, anchor: float, min_interval: float) -> Trigger:
    """A checked ``--every`` trigger, first due one interval after ``anchor``."""
    seconds = parse_interval(text)
    if seconds < min_interval:
        raise UsageError(
            f"interval {text!r} is below the minimum of {min_interval:g} seconds",
            hint="choose a longer interval, or lower routines.min_interval in the settings",
        )
    # A whole second: due times are then exact in a datetime (microseconds) and in SQLite,
    # so a due time read back never looks like an earlier, different one.
    return {"kind": "every", "seconds": seconds, "anchor": float(math.ceil(anchor))}


TIMED = ("cron", "every")


def describe(trigger: Trigger) -> str:
    """``cron "0 7 * * 1-5" Europe/Berlin``, ``every 30m``, ``on push main`` or
    ``on new pull request``: for listings."""
    if trigger["kind"] == "push":
        return f"on push {trigger['branch']}"
    if trigger["kind"] == "pr":
        return "on new pull request"
    if trigger["kind"] == "cron":
        return f'cron "{trigger["expr"]}" {trigger["tz"]}'
    secs = int(trigger["seconds"])
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs % size == 0:
            return f"every {secs // size}{unit}"
    return f"every {secs}s"


def _second_of_repeated(t: datetime) -> bool:
    # True for the later of two instants with the same wall-clock time (autumn's fold).
    naive = t.replace(tzinfo=None)
    tz = t.tzinfo
    first = naive.replace(fold=0, tzinfo=tz).utcoffset()
    second = naive.replace(fold=1, tzinfo=tz).utcoffset()
    return first != second and t.utcoffset() == second


def next_due(trigger: Trigger, after: datetime) -> datetime:
    """The first time strictly after ``after`` (aware) the trigger is due, in UTC."""
    if trigger["kind"] == "every":
        anchor, step = float(trigger["anchor"]), int(trigger["seconds"])
        k = max(1, math.floor((after.timestamp() - anchor) / step + 1e-9) + 1)
        due = anchor + k * step
        return datetime.fromtimestamp(due, UTC)
    tz = zone(trigger["tz"])
    it = croniter(trigger["expr"], after.astimezone(tz))
    while True:
        t: datetime = it.get_next(datetime)
        if t <= after or _second_of_repeated(t):
            continue
        return t.astimezone(UTC)


def due_times(trigger: Trigger, since: datetime, until: datetime) -> list[datetime]:
    """Every due time in ``(since, until]``, oldest first (at most MAX_DUE)."""
    return list(_iter_due(trigger, since, until))


def _iter_due(trigger: Trigger, since: datetime, until: datetime) -> Iterator[datetime]:
    t = since
    for _ in range(MAX_DUE):
        t = next_due(trigger, t)
        if t > until:
            return
        yield t


def next_of(triggers: list[Trigger], after: datetime) -> datetime | None:
    """The soonest due time of any of ``triggers`` after ``after``."""
    times = [next_due(t, after) for t in triggers if t["kind"] in TIMED]
    return min(times) if times else None


def window(triggers: list[Trigger], since: datetime, until: datetime) -> list[datetime]:
    """Every due time of any trigger in ``(since, until]``, oldest first, once each."""
    timed = [t for t in triggers if t["kind"] in TIMED]
    return sorted({d for t in timed for d in due_times(t, since, until)})

