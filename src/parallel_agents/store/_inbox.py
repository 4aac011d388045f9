"""The inbox (issue 17): routine runs' read markers (``routine_runs.read_at``).

A run is *unread* while its session exists, ``read_at`` is NULL and the session is neither
merged nor discarded: a merge or a discard is the strongest form of "looked at", and
deriving it here (rather than stamping ``read_at`` from the merge and discard code) keeps
every path that merges or discards (CLI, dashboard, merge queue, plans, pick) correct.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from parallel_agents.store._base import StoreBase

_DONE = "('merged', 'discarded')"  # statuses that count as reviewed
_UNREAD = f"r.read_at IS NULL AND s.status NOT IN {_DONE}"


@dataclass
class InboxRun:
    routine: str
    n: int
    session_id: str
    reason: str
    created_at: float
    read_at: float | None
    status: str
    cost_usd: float
    unread: bool


class InboxRows(StoreBase):
    """Which routine runs wait for the person, and marking them read."""

    def inbox_runs(
        self, *, everything: bool = False, routine: str | None = None, limit: int = 200
    ) -> list[InboxRun]:
        """Runs with a session, newest first: the unread ones (``everything``: all)."""
        where = ["1 = 1" if everything else _UNREAD]
        args: list[object] = []
        if routine is not None:
            where.append("r.routine = ?")
            args.append(routine)
        rows = self.db.execute(
            "SELECT r.routine, r.n, r.session_id, r.reason, r.created_at, r.read_at, s.status,"
            " (SELECT COALESCE(SUM(t.cost_usd), 0) FROM turns t WHERE t.session_id = s.id),"
            f" CASE WHEN {_UNREAD} THEN 1 ELSE 0 END"
            " FROM routine_runs r JOIN sessions s ON s.id = r.session_id"
            f" WHERE {' AND '.join(where)}"
            f" ORDER BY r.created_at DESC, r.n DESC LIMIT {int(limit)}",
            args,
        )
        return [
            InboxRun(
                routine=x[0], n=int(x[1]), session_id=str(x[2]), reason=x[3],
                created_at=float(x[4]), read_at=x[5], status=str(x[6]),
                cost_usd=float(x[7] or 0), unread=bool(x[8]),
            )
            for x in rows
        ]

    def unread_runs(self, routine: str) -> int:
        """How many of ``routine``'s runs wait unread (the --max-unreviewed policy)."""
        row = self.db.execute(
            "SELECT COUNT(*) FROM routine_runs r JOIN sessions s ON s.id = r.session_id"
            f" WHERE r.routine = ? AND {_UNREAD}",
            (routine,),
        ).fetchone()
        return int(row[0])

    def mark_runs_read(self, session_ids: list[str] | None) -> list[str]:
        """Mark the runs of these sessions (None: every unread run) read; the session
        ids that were unread. Reads first, so a look at an ordinary session (or at a run
        read already) writes nothing: no write lock for a read."""
        sql = "SELECT session_id FROM routine_runs WHERE read_at IS NULL AND session_id IS NOT NULL"
        args: list[str] = []
        if session_ids is not None:
            if not session_ids:
                return []
            sql += f" AND session_id IN ({','.join('?' * len(session_ids))})"
            args = list(session_ids)
        hit = [str(r[0]) for r in self.db.execute(sql, args)]
        if not hit or self.read_only:
            return []
        with self.tx() as db:
            db.execute(
                "UPDATE routine_runs SET read_at = ? WHERE read_at IS NULL"
                f" AND session_id IN ({','.join('?' * len(hit))})",
                (time.time(), *hit),
            )
        return hit
