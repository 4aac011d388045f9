"""Issue 16 §1: the ports each session holds.

One row a port; a port is held by one session at most (the primary key), so two
sessions allocating at once can never be given the same one.
"""

from __future__ import annotations

import sqlite3


def m_ports(db: sqlite3.Connection) -> None:
    for stmt in (
        """CREATE TABLE ports (
            port INTEGER PRIMARY KEY,
            session_id TEXT NOT NULL,
            created_at REAL NOT NULL
        )""",
        "CREATE INDEX ports_session ON ports(session_id, port)",
    ):
        db.execute(stmt)
