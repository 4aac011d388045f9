"""The ``ports`` table (issue 16 §1): the block of ports each session was given."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

from parallel_agents.store._base import StoreBase


class PortRows(StoreBase):
    """Which ports are held, a session's ports, holding and releasing them."""

    def held_ports(self, db: sqlite3.Connection | None = None) -> set[int]:
        """Every port some session holds (inside ``db``'s transaction when given)."""
        return {int(r[0]) for r in (db or self.db).execute("SELECT port FROM ports")}

    def session_ports(self, sid: str) -> list[int]:
        """Session ``sid``'s ports, lowest first (its ``PA_PORT`` first)."""
        rows = self.db.execute(
            "SELECT port FROM ports WHERE session_id = ? ORDER BY port", (sid,)
        )
        return [int(r[0]) for r in rows]

    def hold_ports(self, db: sqlite3.Connection, sid: str, ports: Sequence[int]) -> None:
        """Record ``ports`` as ``sid``'s, in the caller's transaction."""
        now = time.time()
        db.executemany(
            "INSERT INTO ports (port, session_id, created_at) VALUES (?, ?, ?)",
            [(p, sid, now) for p in ports],
        )

    def release_ports(self, sid: str) -> int:
        """Give session ``sid``'s ports back; how many it held."""
        with self.tx() as db:
            cur = db.execute("DELETE FROM ports WHERE session_id = ?", (sid,))
            return int(cur.rowcount)
