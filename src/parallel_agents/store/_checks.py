"""The ``checks`` table: results of the checks run after a turn."""

from __future__ import annotations

import time
from typing import Any

from parallel_agents.store._events import EventRows


class CheckRows(EventRows):
    """Record a check (with its ``check`` event) and read the latest."""

    def record_check(
        self,
        sid: str,
        turn: int,
        commit: str,
        command: str,
        ok: bool,
        exit_code: int | None,
        timed_out: bool,
        duration_s: float,
        output_tail: str,
        event: dict[str, Any],
    ) -> None:
        """Store a check's result and its ``check`` event together, in one transaction."""
        with self.tx() as db:
            db.execute(
                "INSERT INTO checks (session_id, turn, commit_id, command, ok, exit_code,"
                " timed_out, duration_s, output_tail, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    sid,
                    turn,
                    commit,
                    command,
                    int(ok),
                    exit_code,
                    int(timed_out),
                    duration_s,
                    output_tail,
                    time.time(),
                ),
            )
            self._append(db, sid, "check", event, None)

    def last_check(self, sid: str) -> dict[str, Any] | None:
        """The latest check of ``sid`` (ok, exit code, command, turn, commit, output)."""
        r = self.db.execute(
            "SELECT * FROM checks WHERE session_id = ? ORDER BY id DESC LIMIT 1", (sid,)
        ).fetchone()
        if r is None:
            return None
        return {
            "ok": bool(r["ok"]),
            "exit_code": r["exit_code"],
            "timed_out": bool(r["timed_out"]),
            "duration_s": r["duration_s"],
            "command": r["command"],
            "turn": r["turn"],
            "commit": r["commit_id"],
            "output_tail": r["output_tail"],
        }

    def check_summaries(self) -> dict[str, dict[str, Any]]:
        """The latest check of every session that has one, in one query (for listings)."""
        rows = self.db.execute(
            "SELECT c.session_id, c.ok, c.timed_out, c.turn FROM checks c"
            " JOIN (SELECT session_id, MAX(id) AS id FROM checks GROUP BY session_id) m"
            " ON m.id = c.id"
        )
        return {r[0]: {"ok": bool(r[1]), "timed_out": bool(r[2]), "turn": r[3]} for r in rows}
