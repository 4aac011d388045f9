"""The ``routines`` and ``routine_runs`` tables (issue 17)."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from parallel_agents.errors import Conflict, NotFound
from parallel_agents.store._base import StoreBase

# A run's states: ``claimed`` (its row exists, its session is being made), ``started`` (it
# has a session), ``skipped`` (overlap policy), ``failed`` (the session could not be made).
RUN_STATES = ("claimed", "started", "skipped", "failed")


@dataclass
class Routine:
    id: int
    name: str
    prompt: str
    agent: str
    cmd: list[str] | None
    model: str | None
    repo_id: int
    base: str | None
    triggers: list[dict[str, Any]]
    policies: dict[str, Any]
    paused: bool
    next_due: float | None
    created_at: float


@dataclass
class RoutineRun:
    routine: str
    n: int
    due_at: float
    reason: str
    session_id: str | None
    state: str
    error: str | None
    created_at: float


_COLS = (
    "id, name, prompt, agent, cmd, model, repo_id, base, triggers, policies, paused,"
    " next_due, created_at"
)


def _routine(r: sqlite3.Row | tuple[Any, ...]) -> Routine:
    return Routine(
        id=int(r[0]), name=r[1], prompt=r[2], agent=r[3],
        cmd=json.loads(r[4]) if r[4] else None, model=r[5], repo_id=int(r[6]), base=r[7],
        triggers=json.loads(r[8]), policies=json.loads(r[9]), paused=bool(r[10]),
        next_due=r[11], created_at=float(r[12]),
    )


def _run(r: sqlite3.Row | tuple[Any, ...]) -> RoutineRun:
    return RoutineRun(
        routine=r[0], n=int(r[1]), due_at=float(r[2]), reason=r[3], session_id=r[4],
        state=r[5], error=r[6], created_at=float(r[7]),
    )


class RoutineRows(StoreBase):
    """Routines, their next due time and their runs (claimed once per due time)."""

    def add_routine(self, r: Routine) -> Routine:
        with self.tx() as db:
            try:
                cur = db.execute(
                    f"INSERT INTO routines ({_COLS.replace('id, ', '', 1)})"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        r.name, r.prompt, r.agent, json.dumps(r.cmd) if r.cmd else None,
                        r.model, r.repo_id, r.base, json.dumps(r.triggers),
                        json.dumps(r.policies), int(r.paused), r.next_due, r.created_at,
                    ),
                )
            except sqlite3.IntegrityError:
                raise Conflict(
                    f"a routine named {r.name!r} exists already",
                    hint="choose another name, or `pa routine rm` the old one first",
                ) from None
        r.id = int(cur.lastrowid or 0)
        return r

    def routines(self) -> list[Routine]:
        return [_routine(r) for r in self.db.execute(f"SELECT {_COLS} FROM routines ORDER BY name")]

    def routine(self, name: str) -> Routine:
        r = self.db.execute(f"SELECT {_COLS} FROM routines WHERE name = ?", (name,)).fetchone()
        if r is None:
            raise NotFound(f"no routine named {name!r}", hint="`pa routine ls` lists them")
        return _routine(r)

    def set_routine(self, name: str, **cols: Any) -> None:
        """Update ``paused`` and/or ``next_due``."""
        for k in cols:
            assert k in ("paused", "next_due")
        sets = ", ".join(f"{k} = ?" for k in cols)
        with self.tx() as db:
            db.execute(f"UPDATE routines SET {sets} WHERE name = ?", (*cols.values(), name))

    def remove_routine(self, name: str) -> None:
        with self.tx() as db:
            if db.execute("DELETE FROM routines WHERE name = ?", (name,)).rowcount == 0:
                raise NotFound(f"no routine named {name!r}", hint="`pa routine ls` lists them")

    def claim_run(
        self, name: str, due_at: float, reason: str, next_due: float | None, advance: bool = True
    ) -> RoutineRun | None:
        """The run for ``name``'s due time ``due_at``, and (``advance``) the routine's next
        due time, in one transaction; None when that due time has its run already (UNIQUE)."""
        with self.tx() as db:
            row = db.execute(
                "SELECT COALESCE(MAX(n), 0) + 1 FROM routine_runs WHERE routine = ?", (name,)
            ).fetchone()
            n, now = int(row[0]), time.time()
            cur = db.execute(
                "INSERT OR IGNORE INTO routine_runs"
                " (routine, n, due_at, reason, session_id, state, error, created_at)"
                " VALUES (?, ?, ?, ?, NULL, 'claimed', NULL, ?)",
                (name, n, due_at, reason, now),
            )
            if advance:
                db.execute("UPDATE routines SET next_due = ? WHERE name = ?", (next_due, name))
            if cur.rowcount == 0:
                return None
        return RoutineRun(name, n, due_at, reason, None, "claimed", None, now)

    def finish_run(
        self, name: str, n: int, state: str, session_id: str | None = None, error: str | None = None
    ) -> None:
        assert state in RUN_STATES
        with self.tx() as db:
            db.execute(
                "UPDATE routine_runs SET state = ?, session_id = COALESCE(?, session_id),"
                " error = ? WHERE routine = ? AND n = ?",
                (state, session_id, error, name, n),
            )

    def routine_runs(self, name: str, limit: int = 0) -> list[RoutineRun]:
        """``name``'s runs, newest first (``limit`` of them when above 0)."""
        sql = (
            "SELECT routine, n, due_at, reason, session_id, state, error, created_at"
            " FROM routine_runs WHERE routine = ? ORDER BY n DESC"
        )
        if limit > 0:
            sql += f" LIMIT {int(limit)}"
        return [_run(r) for r in self.db.execute(sql, (name,))]

    def claimed_runs(self) -> list[RoutineRun]:
        """Runs claimed whose session was never recorded (made, or not, before a crash)."""
        rows = self.db.execute(
            "SELECT routine, n, due_at, reason, session_id, state, error, created_at"
            " FROM routine_runs WHERE state = 'claimed' ORDER BY created_at"
        )
        return [_run(r) for r in rows]

    def routine_run_session(self, name: str, n: int) -> str | None:
        """The session made for run ``n`` of ``name`` (its options say so), if any."""
        r = self.db.execute(
            "SELECT id FROM sessions WHERE json_extract(options, '$.routine.name') = ?"
            " AND json_extract(options, '$.routine.run') = ? ORDER BY created_at LIMIT 1",
            (name, n),
        ).fetchone()
        return str(r[0]) if r else None
