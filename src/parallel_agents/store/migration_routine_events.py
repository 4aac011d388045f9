"""Issue 17: git-event triggers (``--on-push``, ``--on-pr``) and the auto-merge policy.

``routine_watch`` holds what each event trigger of a routine has seen (the last commit of a
pushed branch, the highest pull request number handled), its last error and when it last
looked; keyed by the routine's id (never reused), so a routine added again under an old
name starts afresh. ``routine_runs.event`` names the event a run is for (``push`` and the
commit, ``pr`` and the number) under a UNIQUE index: an event gives one run, whatever
crashes happen around its claim. ``routine_runs.merge`` is the auto-merge outcome (JSON).
"""

from __future__ import annotations

import sqlite3


def m_routine_events(db: sqlite3.Connection) -> None:
    for stmt in (
        """CREATE TABLE routine_watch (
            routine_id INTEGER NOT NULL,
            key TEXT NOT NULL,
            seen TEXT,
            error TEXT,
            checked_at REAL,
            PRIMARY KEY (routine_id, key)
        )""",
        "ALTER TABLE routine_runs ADD COLUMN event TEXT",
        # NULLs are distinct in a UNIQUE index: scheduled runs (no event) are not limited.
        "CREATE UNIQUE INDEX routine_runs_event ON routine_runs (routine, event)",
        "ALTER TABLE routine_runs ADD COLUMN merge TEXT",
    ):
        db.execute(stmt)
