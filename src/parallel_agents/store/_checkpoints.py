"""The ``checkpoints`` table: the commit each turn's checkpoint ref points at."""

from __future__ import annotations

import sqlite3
import time

from parallel_agents.store._base import StoreBase


class CheckpointRows(StoreBase):
    """Record, correct and read turns' checkpoint commits."""

    def record_checkpoint(self, sid: str, turn: int, ref: str, commit: str) -> None:
        """Record (or replace) turn ``turn``'s checkpoint, its ref and commit, made now."""
        with self.tx() as db:
            put_checkpoint(db, sid, turn, ref, commit, time.time())

    def set_checkpoint_commit(self, sid: str, turn: int, commit: str) -> None:
        """Correct the commit recorded for a checkpoint (git's ref is the truth)."""
        with self.tx() as db:
            db.execute(
                "UPDATE checkpoints SET commit_id = ? WHERE session_id = ? AND turn = ?",
                (commit, sid, turn),
            )

    def checkpoint_commits(self, sid: str) -> dict[int, str]:
        """Turn number -> recorded checkpoint commit, for every checkpoint of ``sid``."""
        rows = self.db.execute(
            "SELECT turn, commit_id FROM checkpoints WHERE session_id = ?", (sid,)
        )
        return {int(r[0]): str(r[1]) for r in rows}

    def checkpoint_turns(self, sid: str) -> list[int]:
        """The turns of ``sid`` that have a recorded checkpoint, in order."""
        rows = self.db.execute(
            "SELECT turn FROM checkpoints WHERE session_id = ? ORDER BY turn", (sid,)
        )
        return [r[0] for r in rows]

    def latest_checkpoint_commit(self, sid: str) -> str | None:
        """The commit of ``sid``'s checkpoint with the highest turn, if any."""
        row = self.db.execute(
            "SELECT commit_id FROM checkpoints WHERE session_id = ? ORDER BY turn DESC LIMIT 1",
            (sid,),
        ).fetchone()
        return None if row is None else str(row[0])


def put_checkpoint(
    db: sqlite3.Connection, sid: str, turn: int, ref: str, commit: str, at: float
) -> None:
    """Write (or replace) one checkpoint row inside the caller's transaction ``db``."""
    db.execute(
        "INSERT OR REPLACE INTO checkpoints (session_id, turn, ref, commit_id, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (sid, turn, ref, commit, at),
    )
