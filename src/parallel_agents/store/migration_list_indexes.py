"""Issue 14 §6: the indexes the list and filter reads need at 1,000 sessions.

Its own module (another issue-14 step adds a migration too): ``migrations.MIGRATIONS``
names it, and a step is never edited once released.
"""

from __future__ import annotations

import sqlite3


def m_list_indexes(db: sqlite3.Connection) -> None:
    # sessions: GET /sessions reads in creation order, optionally of one repo; the
    # status filter has sessions_status already. events: a kinds filter over every session
    # (the dashboard's check events at boot) would otherwise walk the whole table.
    # repos: a moved repository is found again by its uid.
    for stmt in (
        "CREATE INDEX IF NOT EXISTS sessions_created ON sessions(created_at, id)",
        "CREATE INDEX IF NOT EXISTS sessions_repo ON sessions(repo_id, created_at, id)",
        "CREATE INDEX IF NOT EXISTS events_kind ON events(kind, id)",
        "CREATE INDEX IF NOT EXISTS repos_uid ON repos(uid)",
    ):
        db.execute(stmt)
