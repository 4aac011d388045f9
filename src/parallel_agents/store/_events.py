"""The ``events`` table: each session's numbered stream of events."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from parallel_agents.models import Event
from parallel_agents.store._base import StoreBase


class EventRows(StoreBase):
    """Append events (numbered per session) and read them back."""

    def _append(
        self,
        db: sqlite3.Connection,
        sid: str,
        kind: str,
        payload: dict[str, Any],
        raw: str | None,
        turn: int | None = None,
    ) -> int:
        row = db.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM events WHERE session_id = ?", (sid,)
        ).fetchone()
        seq = int(row[0]) + 1
        if turn is None:
            t = db.execute(
                "SELECT COALESCE(MAX(n), 0) FROM turns WHERE session_id = ?", (sid,)
            ).fetchone()
            turn = int(t[0])
        db.execute(
            "INSERT INTO events (session_id, seq, turn, kind, payload, raw, ts)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (sid, seq, turn, kind, json.dumps(payload, ensure_ascii=False), raw, time.time()),
        )
        return seq

    def append_events(
        self,
        db: sqlite3.Connection,
        sid: str,
        turn: int,
        items: Sequence[tuple[str, dict[str, Any], str | None]],
    ) -> None:
        row = db.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM events WHERE session_id = ?", (sid,)
        ).fetchone()
        seq = int(row[0])
        now = time.time()
        rows = []
        for kind, payload, raw in items:
            seq += 1
            rows.append((sid, seq, turn, kind, json.dumps(payload, ensure_ascii=False), raw, now))
        db.executemany(
            "INSERT INTO events (session_id, seq, turn, kind, payload, raw, ts)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    def add_event(self, sid: str, kind: str, payload: dict[str, Any]) -> None:
        with self.tx() as db:
            self._append(db, sid, kind, payload, None)

    def events(
        self,
        sid: str | None = None,
        *,
        after_seq: int = 0,
        after_id: int = 0,
        kinds: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        sql = "SELECT * FROM events WHERE id > ?"
        args: list[Any] = [after_id]
        if sid is not None:
            sql += " AND session_id = ? AND seq > ?"
            args += [sid, after_seq]
        if kinds:
            # One session's events come by (session_id, seq): the unary + keeps the planner
            # off the kind index, which would walk that kind in every session (issue 14 §6).
            col = "+kind" if sid is not None else "kind"
            sql += f" AND {col} IN ({','.join('?' * len(kinds))})"
            args += list(kinds)
        sql += " ORDER BY id"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [_event(r) for r in self.db.execute(sql, args)]

    def max_event_id(self) -> int:
        """The id of the newest event in any session (0 when there is none)."""
        row = self.db.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()
        return int(row[0])


def _event(r: sqlite3.Row) -> Event:
    return Event(
        session_id=r["session_id"],
        seq=r["seq"],
        turn=r["turn"],
        kind=r["kind"],
        payload=json.loads(r["payload"]),
        raw=r["raw"],
        ts=r["ts"],
        id=r["id"],
    )
