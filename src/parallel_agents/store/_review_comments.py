"""The ``review_comments`` table (issue 15 §3): a reviewer agent's line comments on a
session's diff, kept until a person sends them to the author as one follow-up."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from parallel_agents.store._base import StoreBase


@dataclass
class ReviewComment:
    id: int
    session_id: str
    review_id: str  # the reviewer's session
    n: int  # place in the reviewer's answer, from 1
    path: str
    line: int
    side: str  # "new" or "old", as the dashboard's comments
    code: str  # the line's text in the diff
    body: str
    author: str
    created_at: float
    sent_at: float | None
    sent_turn: int | None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["session"] = d.pop("session_id")
        d["review"] = d.pop("review_id")
        return d


def _comment(r: sqlite3.Row) -> ReviewComment:
    return ReviewComment(**{k: r[k] for k in r.keys()})  # noqa: SIM118 (a Row, not a dict)


class ReviewCommentRows(StoreBase):
    """Store a reviewer's answer once, list a session's comments, mark them sent."""

    def add_review_comments(
        self, sid: str, review_id: str, author: str, comments: Sequence[dict[str, Any]]
    ) -> list[ReviewComment]:
        """Store the comments of reviewer ``review_id``'s answer (each: path, line, side,
        code, body), in one transaction; an answer stored before is not stored again."""
        now = time.time()
        with self.tx() as db:
            seen = db.execute(
                "SELECT 1 FROM review_comments WHERE review_id = ? LIMIT 1", (review_id,)
            ).fetchone()
            if seen is None:
                db.executemany(
                    "INSERT INTO review_comments (session_id, review_id, n, path, line, side,"
                    " code, body, author, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    [
                        (sid, review_id, i, c["path"], c["line"], c["side"], c.get("code", ""),
                         c["body"], author, now)
                        for i, c in enumerate(comments, 1)
                    ],
                )
        rows = self.db.execute(
            "SELECT * FROM review_comments WHERE review_id = ? ORDER BY n", (review_id,)
        )
        return [_comment(r) for r in rows]

    def review_comments(self, sid: str, *, unsent: bool = False) -> list[ReviewComment]:
        """Session ``sid``'s reviewer comments, oldest first (``unsent``: not sent yet)."""
        sql = "SELECT * FROM review_comments WHERE session_id = ?"
        if unsent:
            sql += " AND sent_at IS NULL"
        return [_comment(r) for r in self.db.execute(sql + " ORDER BY id", (sid,))]

    def mark_review_comments_sent(self, sid: str, ids: Sequence[int], turn: int | None) -> int:
        """Mark comments ``ids`` of ``sid`` sent (with the follow-up's turn); how many
        were still unsent."""
        if not ids:
            return 0
        marks = ",".join("?" * len(ids))
        with self.tx() as db:
            cur = db.execute(
                "UPDATE review_comments SET sent_at = ?, sent_turn = ? WHERE session_id = ?"
                f" AND sent_at IS NULL AND id IN ({marks})",
                (time.time(), turn, sid, *ids),
            )
            return int(cur.rowcount)

    def reviewer_sessions(self, sid: str) -> list[str]:
        """Ids of the reviewer sessions made for session ``sid`` (by their options'
        ``reviews.session``), oldest first: one whose answer was never collected (the
        command that waited for it was stopped) is found again."""
        rows = self.db.execute(
            "SELECT id FROM sessions WHERE json_extract(options, '$.reviews.session') = ?"
            " ORDER BY created_at, id",
            (sid,),
        )
        return [str(r[0]) for r in rows]
