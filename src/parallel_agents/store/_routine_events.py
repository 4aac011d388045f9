"""Issue 17: what routines' event triggers have seen, runs claimed once per event, and
the auto-merge outcome of a run (tables of ``migration_routine_events``)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from parallel_agents.store._base import StoreBase
from parallel_agents.store._routines import RoutineRun, _run

_RUN_COLS = "routine, n, due_at, reason, session_id, state, error, created_at"


@dataclass
class Watch:
    """One event trigger's progress: ``seen`` (a commit, or the highest PR number handled),
    its last error (None once it works again) and when it last looked."""

    seen: str | None
    error: str | None
    checked_at: float | None


class RoutineEventRows(StoreBase):
    def watches(self, routine_id: int) -> dict[str, Watch]:
        rows = self.db.execute(
            "SELECT key, seen, error, checked_at FROM routine_watch WHERE routine_id = ?",
            (routine_id,),
        )
        return {r[0]: Watch(r[1], r[2], r[3]) for r in rows}

    def set_watch(self, routine_id: int, key: str, **cols: Any) -> None:
        """Update ``seen``, ``error`` and/or ``checked_at`` of one trigger (made if new)."""
        for k in cols:
            assert k in ("seen", "error", "checked_at")
        with self.tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO routine_watch (routine_id, key) VALUES (?, ?)",
                (routine_id, key),
            )
            sets = ", ".join(f"{k} = ?" for k in cols)
            db.execute(
                f"UPDATE routine_watch SET {sets} WHERE routine_id = ? AND key = ?",
                (*cols.values(), routine_id, key),
            )

    def claim_event(
        self, name: str, routine_id: int, key: str, event: str, seen: str, reason: str,
        at: float,
    ) -> RoutineRun | None:
        """The run for ``event`` and the trigger's new ``seen`` mark, in one transaction;
        None when that event has its run already (UNIQUE(routine, event)), the mark moves
        all the same. The run's due time is ``at`` moved off whole seconds (where
        scheduled due times are) and past any due time taken already."""
        with self.tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO routine_watch (routine_id, key) VALUES (?, ?)",
                (routine_id, key),
            )
            db.execute(
                "UPDATE routine_watch SET seen = ?, error = NULL"
                " WHERE routine_id = ? AND key = ?",
                (seen, routine_id, key),
            )
            taken = db.execute(
                "SELECT 1 FROM routine_runs WHERE routine = ? AND event = ?", (name, event)
            ).fetchone()
            if taken:
                return None
            due = float(int(at)) + 0.5
            while db.execute(
                "SELECT 1 FROM routine_runs WHERE routine = ? AND due_at = ?", (name, due)
            ).fetchone():
                due += 0.001
            row = db.execute(
                "SELECT COALESCE(MAX(n), 0) + 1 FROM routine_runs WHERE routine = ?", (name,)
            ).fetchone()
            n, now = int(row[0]), time.time()
            db.execute(
                "INSERT INTO routine_runs"
                " (routine, n, due_at, reason, session_id, state, error, created_at, event)"
                " VALUES (?, ?, ?, ?, NULL, 'claimed', NULL, ?, ?)",
                (name, n, due, reason, now, event),
            )
        return RoutineRun(name, n, due, reason, None, "claimed", None, now)

    def runs_to_merge(self, name: str) -> list[RoutineRun]:
        """``name``'s started runs whose auto-merge is not settled (merged or gone)."""
        rows = self.db.execute(
            f"SELECT {_RUN_COLS} FROM routine_runs WHERE routine = ? AND state = 'started'"
            " AND session_id IS NOT NULL"
            " AND (merge IS NULL OR json_extract(merge, '$.settled') IS NOT 1) ORDER BY n",
            (name,),
        )
        return [_run(r) for r in rows]

    def run_merge(self, name: str, n: int) -> dict[str, Any] | None:
        r = self.db.execute(
            "SELECT merge FROM routine_runs WHERE routine = ? AND n = ?", (name, n)
        ).fetchone()
        return json.loads(r[0]) if r and r[0] else None

    def set_run_merge(self, name: str, n: int, merge: dict[str, Any]) -> None:
        with self.tx() as db:
            db.execute(
                "UPDATE routine_runs SET merge = ? WHERE routine = ? AND n = ?",
                (json.dumps(merge), name, n),
            )
