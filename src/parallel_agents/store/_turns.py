"""The ``turns`` table: each prompt a session ran, its progress and its end, and the
history ``pa doctor --rebuild`` writes back for a session rebuilt from its folder.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from parallel_agents.errors import NotFound
from parallel_agents.models import Turn
from parallel_agents.store._base import StoreBase
from parallel_agents.store._checkpoints import put_checkpoint


@dataclass(frozen=True)
class RebuiltTurn:
    """One turn of a session rebuilt from its folder (``pa doctor --rebuild``)."""

    n: int
    prompt: str
    status: str
    started_at: float
    ended_at: float | None
    exit_code: int | None
    read_offset: int


class TurnRows(StoreBase):
    """Turns: add, read, record progress; a rebuilt session's history."""

    def add_turn(self, db: sqlite3.Connection, sid: str, prompt: str, state: dict[str, Any]) -> int:
        row = db.execute("SELECT COALESCE(MAX(n), 0) FROM turns WHERE session_id = ?", (sid,))
        n = int(row.fetchone()[0]) + 1
        db.execute(
            "INSERT INTO turns (session_id, n, prompt, status, state) VALUES (?, ?, ?, ?, ?)",
            (sid, n, prompt, "pending", json.dumps(state)),
        )
        return n

    def turns(self, sid: str) -> list[Turn]:
        rows = self.db.execute("SELECT * FROM turns WHERE session_id = ? ORDER BY n", (sid,))
        return [_turn(r) for r in rows]

    def turn(self, sid: str, n: int, db: sqlite3.Connection | None = None) -> Turn | None:
        r = (
            (db or self.db)
            .execute("SELECT * FROM turns WHERE session_id = ? AND n = ?", (sid, n))
            .fetchone()
        )
        return _turn(r) if r else None

    def last_turn(self, sid: str, db: sqlite3.Connection | None = None) -> Turn | None:
        r = (
            (db or self.db)
            .execute("SELECT * FROM turns WHERE session_id = ? ORDER BY n DESC LIMIT 1", (sid,))
            .fetchone()
        )
        return _turn(r) if r else None

    def turn_progress(self, db: sqlite3.Connection, sid: str, n: int) -> tuple[int, dict[str, Any]]:
        r = db.execute(
            "SELECT read_offset, state FROM turns WHERE session_id = ? AND n = ?", (sid, n)
        ).fetchone()
        if r is None:
            raise NotFound(f"no turn {n} in session {sid}")
        return int(r[0]), json.loads(r[1])

    def update_turn(self, db: sqlite3.Connection, sid: str, n: int, **fields: Any) -> None:
        cols = []
        vals: list[Any] = []
        for k, v in fields.items():
            if k == "state":
                v = json.dumps(v)
            cols.append(f"{k} = ?")
            vals.append(v)
        db.execute(
            f"UPDATE turns SET {', '.join(cols)} WHERE session_id = ? AND n = ?",
            (*vals, sid, n),
        )

    def insert_rebuilt_history(
        self,
        sid: str,
        turns: Sequence[RebuiltTurn],
        checkpoints: Sequence[tuple[int, str, str]],
        created_at: float,
    ) -> None:
        """The turns and checkpoints (turn, ref, commit) of a rebuilt session, together in
        one transaction: a session gets all of its history or none of it."""
        with self.tx() as db:
            for t in turns:
                db.execute(
                    "INSERT INTO turns (session_id, n, prompt, status, started_at, ended_at,"
                    " exit_code, read_offset, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '{}')",
                    (
                        sid,
                        t.n,
                        t.prompt,
                        t.status,
                        t.started_at,
                        t.ended_at,
                        t.exit_code,
                        t.read_offset,
                    ),
                )
            for n, ref, commit in checkpoints:
                put_checkpoint(db, sid, n, ref, commit, created_at)


def _turn(r: sqlite3.Row) -> Turn:
    return Turn(
        session_id=r["session_id"],
        n=r["n"],
        prompt=r["prompt"],
        started_at=r["started_at"],
        ended_at=r["ended_at"],
        exit_code=r["exit_code"],
        status=r["status"],
        error=r["error"],
        input_tokens=r["input_tokens"],
        output_tokens=r["output_tokens"],
        cached_tokens=r["cached_tokens"],
        cost_usd=r["cost_usd"],
    )
