"""Issue 17: the inbox. A routine run is unread until the person looks at its session.

``routine_runs.read_at`` is when that happened (NULL: unread). The index serves the one
question asked often: which runs of a session (by session id) are still unread.
"""

from __future__ import annotations

import sqlite3


def m_inbox(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE routine_runs ADD COLUMN read_at REAL")
    db.execute("CREATE INDEX routine_runs_session ON routine_runs (session_id)")
