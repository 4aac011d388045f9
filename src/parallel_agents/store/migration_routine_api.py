"""Issue 17: the HTTP trigger of routines: each routine's token (its hash only) and the
calls made to ``POST /api/v1/routines/NAME/fire``.

``routine_tokens`` is keyed by the routine's id (AUTOINCREMENT: never reused), so a token
can never outlive its routine into a new one of the same name. ``routine_calls`` is keyed
by the name the caller sent, so calls naming no routine are recorded too.
"""

from __future__ import annotations

import sqlite3


def m_routine_api(db: sqlite3.Connection) -> None:
    for stmt in (
        """CREATE TABLE routine_tokens (
            routine_id INTEGER PRIMARY KEY REFERENCES routines(id) ON DELETE CASCADE,
            hash TEXT NOT NULL,
            created_at REAL NOT NULL
        )""",
        """CREATE TABLE routine_calls (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            routine TEXT NOT NULL,
            at REAL NOT NULL,
            remote TEXT NOT NULL,
            code INTEGER NOT NULL,
            admitted INTEGER NOT NULL DEFAULT 0,
            run INTEGER,
            error TEXT
        )""",
        "CREATE INDEX routine_calls_routine ON routine_calls (routine, at)",
    ):
        db.execute(stmt)
