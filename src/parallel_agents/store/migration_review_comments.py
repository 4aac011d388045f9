"""Issue 15 §3: line comments a reviewer agent left on a session's diff.

One row a comment, in the shape the dashboard's own review comments have (path, line,
side, the line's code, the text); ``review_id`` is the reviewer's session and ``n`` the
comment's place in its answer (unique together: collecting one answer twice stores it
once); ``sent_at`` is set when the comment went to the author as a follow-up.
"""

from __future__ import annotations

import sqlite3


def m_review_comments(db: sqlite3.Connection) -> None:
    for stmt in (
        """CREATE TABLE review_comments (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            session_id TEXT NOT NULL REFERENCES sessions(id),
            review_id TEXT NOT NULL,
            n INTEGER NOT NULL,
            path TEXT NOT NULL,
            line INTEGER NOT NULL,
            side TEXT NOT NULL,
            code TEXT NOT NULL DEFAULT '',
            body TEXT NOT NULL,
            author TEXT NOT NULL,
            created_at REAL NOT NULL,
            sent_at REAL,
            sent_turn INTEGER
        )""",
        "CREATE INDEX review_comments_session ON review_comments(session_id, id)",
        "CREATE UNIQUE INDEX review_comments_answer ON review_comments(review_id, n)",
    ):
        db.execute(stmt)
