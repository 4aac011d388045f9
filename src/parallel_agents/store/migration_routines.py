"""Issue 17: routines (sessions started on a schedule) and their runs.

``routine_runs`` has UNIQUE(routine, due_at): the driver inserts the run row for a due time
before it starts the session, so a due time can only ever produce one run, whatever
crashes or restarts happen around it.
"""

from __future__ import annotations

import sqlite3


def m_routines(db: sqlite3.Connection) -> None:
    for stmt in (
        """CREATE TABLE routines (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL UNIQUE,
            prompt TEXT NOT NULL,
            agent TEXT NOT NULL,
            cmd TEXT,
            model TEXT,
            repo_id INTEGER NOT NULL REFERENCES repos(id),
            base TEXT,
            triggers TEXT NOT NULL,
            policies TEXT NOT NULL DEFAULT '{}',
            paused INTEGER NOT NULL DEFAULT 0,
            next_due REAL,
            created_at REAL NOT NULL
        )""",
        """CREATE TABLE routine_runs (
            routine TEXT NOT NULL,
            n INTEGER NOT NULL,
            due_at REAL NOT NULL,
            reason TEXT NOT NULL,
            session_id TEXT,
            state TEXT NOT NULL,
            error TEXT,
            created_at REAL NOT NULL,
            PRIMARY KEY (routine, n),
            UNIQUE (routine, due_at)
        )""",
    ):
        db.execute(stmt)
