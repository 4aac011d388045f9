"""Issue 15: groups of sessions (best-of-N attempts, map-reduce, plans) and their tasks.

A group is one piece of work bigger than a prompt; each of its tasks is an attempt, an
item or a plan task, and runs as at most one session at a time (``session_id``). A task's
session also names its group and key in its options (``{"group": {"id", "key"}}``), so a
task whose start was cut short by a crash is found again instead of started twice.
"""

from __future__ import annotations

import sqlite3


def m_groups(db: sqlite3.Connection) -> None:
    for stmt in (
        """CREATE TABLE groups (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            name TEXT NOT NULL UNIQUE,
            repo_id INTEGER REFERENCES repos(id),
            spec TEXT NOT NULL DEFAULT '{}',
            state TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )""",
        "CREATE INDEX groups_kind ON groups(kind, created_at)",
        """CREATE TABLE group_tasks (
            group_id TEXT NOT NULL REFERENCES groups(id),
            key TEXT NOT NULL,
            position INTEGER NOT NULL,
            spec TEXT NOT NULL DEFAULT '{}',
            state TEXT NOT NULL,
            session_id TEXT REFERENCES sessions(id),
            outcome TEXT NOT NULL DEFAULT '{}',
            started_at REAL,
            ended_at REAL,
            merged_at REAL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (group_id, key)
        )""",
        "CREATE INDEX group_tasks_session ON group_tasks(session_id)",
    ):
        db.execute(stmt)
