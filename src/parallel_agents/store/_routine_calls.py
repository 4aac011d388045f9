"""The ``routine_tokens`` and ``routine_calls`` tables (issue 17: the HTTP trigger).

Only a token's hash is stored; a call's row holds when, from where, the answer's status
code and the run it started, never the token.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from parallel_agents.store._base import StoreBase

# The newest calls kept (all routines, names that match none included): callers without
# a token cannot grow the table without bound.
CALLS_KEPT = 10_000


@dataclass
class RoutineCall:
    id: int
    routine: str
    at: float
    remote: str
    code: int
    run: int | None
    error: str | None


class RoutineCallRows(StoreBase):
    """A routine's token hash, and the calls to its HTTP trigger (admitted under a rate)."""

    def set_routine_token(self, routine_id: int, digest: str) -> None:
        """Store ``digest`` as the routine's token hash (the old one stops working)."""
        with self.tx() as db:
            db.execute(
                "INSERT INTO routine_tokens (routine_id, hash, created_at) VALUES (?, ?, ?)"
                " ON CONFLICT(routine_id) DO UPDATE SET hash = excluded.hash,"
                " created_at = excluded.created_at",
                (routine_id, digest, time.time()),
            )

    def routine_token_hash(self, routine_id: int) -> str | None:
        r = self.db.execute(
            "SELECT hash FROM routine_tokens WHERE routine_id = ?", (routine_id,)
        ).fetchone()
        return str(r[0]) if r else None

    def drop_routine_token(self, routine_id: int) -> None:
        with self.tx() as db:
            db.execute("DELETE FROM routine_tokens WHERE routine_id = ?", (routine_id,))

    def record_call(
        self, routine: str, at: float, remote: str, code: int, error: str | None = None
    ) -> int:
        """A call refused before admission (401, 400, 429): its row id."""
        with self.tx() as db:
            cur = db.execute(
                "INSERT INTO routine_calls (routine, at, remote, code, admitted, error)"
                " VALUES (?, ?, ?, ?, 0, ?)",
                (routine, at, remote, code, error),
            )
            rid = int(cur.lastrowid or 0)
            db.execute("DELETE FROM routine_calls WHERE id <= ?", (rid - CALLS_KEPT,))
        return rid

    def admit_call(
        self, routine: str, at: float, remote: str, limit: int, window: float
    ) -> tuple[int | None, float]:
        """Admit a call when fewer than ``limit`` were admitted in the ``window`` seconds
        before ``at`` (one transaction: concurrent calls cannot both take the last place).
        Returns (the call's row id, 0) or (None, seconds until a place frees up); a call
        refused so is recorded with 429."""
        with self.tx() as db:
            n, oldest = db.execute(
                "SELECT COUNT(*), MIN(at) FROM routine_calls"
                " WHERE routine = ? AND admitted = 1 AND at > ?",
                (routine, at - window),
            ).fetchone()
            if int(n) >= limit:
                wait = max(0.0, float(oldest) + window - at)
                db.execute(
                    "INSERT INTO routine_calls (routine, at, remote, code, admitted, error)"
                    " VALUES (?, ?, ?, 429, 0, ?)",
                    (routine, at, remote, f"more than {limit} calls in {window:g} s"),
                )
                return None, wait
            cur = db.execute(
                "INSERT INTO routine_calls (routine, at, remote, code, admitted)"
                " VALUES (?, ?, ?, 0, 1)",
                (routine, at, remote),
            )
            rid = int(cur.lastrowid or 0)
            db.execute("DELETE FROM routine_calls WHERE id <= ?", (rid - CALLS_KEPT,))
        return rid, 0.0

    def finish_call(
        self, call_id: int, code: int, run: int | None = None, error: str | None = None
    ) -> None:
        with self.tx() as db:
            db.execute(
                "UPDATE routine_calls SET code = ?, run = ?, error = ? WHERE id = ?",
                (code, run, error, call_id),
            )

    def routine_calls(
        self, routine: str, since: float = 0.0, limit: int = 100
    ) -> list[RoutineCall]:
        """Calls naming ``routine`` at or after ``since``, newest first."""
        rows = self.db.execute(
            "SELECT id, routine, at, remote, code, run, error FROM routine_calls"
            " WHERE routine = ? AND at >= ? ORDER BY id DESC LIMIT ?",
            (routine, since, int(limit)),
        )
        return [
            RoutineCall(int(r[0]), r[1], float(r[2]), r[3], int(r[4]), r[5], r[6]) for r in rows
        ]
