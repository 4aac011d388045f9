"""The schema as small named steps, applied in order by ``Store`` and recorded in ``migrations``.

A step is never edited once released: a new column or table is a new step at the end, so
every ``pa.db`` reaches the same schema whichever version created it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from parallel_agents.store.migration_groups import m_groups
from parallel_agents.store.migration_inbox import m_inbox
from parallel_agents.store.migration_list_indexes import m_list_indexes
from parallel_agents.store.migration_ports import m_ports
from parallel_agents.store.migration_review_comments import m_review_comments
from parallel_agents.store.migration_routine_api import m_routine_api
from parallel_agents.store.migration_routine_events import m_routine_events
from parallel_agents.store.migration_routines import m_routines


def _script(db: sqlite3.Connection, sql: str) -> None:
    # executescript() would COMMIT the migration transaction half-way; run statements one by one.
    for stmt in sql.split(";"):
        if stmt.strip():
            db.execute(stmt)


def _m001_initial(db: sqlite3.Connection) -> None:
    _script(
        db,
        """
        CREATE TABLE repos (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL UNIQUE,
            path TEXT NOT NULL UNIQUE,
            base TEXT,
            created_at REAL NOT NULL
        );
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            repo_id INTEGER NOT NULL REFERENCES repos(id),
            branch TEXT NOT NULL,
            base_ref TEXT NOT NULL,
            base_commit TEXT NOT NULL,
            worktree TEXT NOT NULL,
            agent TEXT NOT NULL,
            model TEXT,
            status TEXT NOT NULL,
            agent_session_id TEXT,
            cmd TEXT,
            interactive INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            unread INTEGER NOT NULL DEFAULT 0,
            options TEXT NOT NULL DEFAULT '{}',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE INDEX sessions_status ON sessions(status);
        CREATE TABLE turns (
            session_id TEXT NOT NULL REFERENCES sessions(id),
            n INTEGER NOT NULL,
            prompt TEXT NOT NULL,
            status TEXT NOT NULL,
            started_at REAL,
            ended_at REAL,
            exit_code INTEGER,
            error TEXT,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            cached_tokens INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL,
            read_offset INTEGER NOT NULL DEFAULT 0,
            state TEXT NOT NULL DEFAULT '{}',
            PRIMARY KEY (session_id, n)
        );
        CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            session_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            turn INTEGER NOT NULL,
            kind TEXT NOT NULL,
            payload TEXT NOT NULL,
            raw TEXT,
            ts REAL NOT NULL,
            UNIQUE (session_id, seq)
        );
        """,
    )


def _m002_checkpoints(db: sqlite3.Connection) -> None:
    _script(
        db,
        """
        CREATE TABLE checkpoints (
            session_id TEXT NOT NULL,
            turn INTEGER NOT NULL,
            ref TEXT NOT NULL,
            commit_id TEXT NOT NULL,
            created_at REAL NOT NULL,
            check_ok INTEGER,
            check_exit INTEGER,
            check_duration REAL,
            check_output TEXT,
            PRIMARY KEY (session_id, turn)
        );
        CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        """,
    )


def _m003_checks(db: sqlite3.Connection) -> None:
    _script(
        db,
        """
        CREATE TABLE checks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            session_id TEXT NOT NULL,
            turn INTEGER NOT NULL,
            commit_id TEXT NOT NULL,
            command TEXT NOT NULL,
            ok INTEGER NOT NULL,
            exit_code INTEGER,
            timed_out INTEGER NOT NULL DEFAULT 0,
            duration_s REAL NOT NULL,
            output_tail TEXT NOT NULL,
            created_at REAL NOT NULL
        );
        CREATE INDEX checks_session ON checks(session_id, id)
        """,
    )


def _m004_repo_uid(db: sqlite3.Connection) -> None:
    # The identity pa wrote into the repository's .git/pa-repo-id at registration: it
    # travels with the repository when it is moved, so a moved repo is recognised.
    db.execute("ALTER TABLE repos ADD COLUMN uid TEXT")


def _m005_events_raw_span(db: sqlite3.Connection) -> None:
    # Issue 14 §5: an event's raw line is no longer copied into ``raw`` (the output file
    # already holds it, and ``payload`` holds what was parsed from it): the event keeps
    # where the line is in its turn's stdout file instead. Rows written before keep their
    # ``raw`` text and read as before.
    db.execute("ALTER TABLE events ADD COLUMN raw_at INTEGER")
    db.execute("ALTER TABLE events ADD COLUMN raw_len INTEGER")


MIGRATIONS: list[tuple[str, Callable[[sqlite3.Connection], None]]] = [
    ("001_initial", _m001_initial),
    ("002_checkpoints", _m002_checkpoints),
    ("003_checks", _m003_checks),
    ("004_repo_uid", _m004_repo_uid),
    ("005_events_raw_span", _m005_events_raw_span),
    ("006_list_indexes", m_list_indexes),
    ("007_groups", m_groups),
    ("008_review_comments", m_review_comments),
    ("009_ports", m_ports),
    ("010_routines", m_routines),
    ("011_routine_events", m_routine_events),
    ("012_inbox", m_inbox),  # issue 17: routine_runs.read_at
    ("013_routine_api", m_routine_api),  # issue 17: the HTTP trigger
]
