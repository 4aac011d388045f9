"""The ``sessions`` table: session rows, their lookups, and the one place a status
changes (with its ``status`` and ``attention`` events).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from parallel_agents.errors import NotFound, PAError, UsageError
from parallel_agents.models import Session, Status, check_transition
from parallel_agents.store._events import EventRows


@dataclass(frozen=True)
class SessionState:
    """A session's fields a read-modify-write inside a transaction needs."""

    status: Status
    agent: str
    options_text: str | None
    agent_session_id: str | None

    def options(self) -> dict[str, Any]:
        """The options, parsed afresh on every call (the caller may change its copy)."""
        opts: dict[str, Any] = json.loads(self.options_text or "{}")
        return opts


class SessionRows(EventRows):
    """Session rows: insert, look up, update, change status, forget."""

    def insert_session(self, s: Session) -> None:
        with self.tx() as db:
            db.execute(
                """INSERT INTO sessions (id, title, repo_id, branch, base_ref, base_commit,
                   worktree, agent, model, status, agent_session_id, cmd, interactive, error,
                   unread, options, created_at, updated_at)
                   VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)""",
                (
                    s.id,
                    s.title,
                    s.repo_id,
                    s.branch,
                    s.base_ref,
                    s.base_commit,
                    s.worktree,
                    s.agent,
                    s.model,
                    s.status.value,
                    s.agent_session_id,
                    json.dumps(s.cmd) if s.cmd is not None else None,
                    int(s.interactive),
                    s.error,
                    int(s.unread),
                    json.dumps(s.options),
                    s.created_at,
                    s.updated_at,
                ),
            )

    _SESSION_SQL = """
        SELECT s.*, r.name AS repo_name,
               (SELECT COUNT(*) FROM turns t WHERE t.session_id = s.id) AS n_turns,
               (SELECT COALESCE(SUM(cost_usd), 0) FROM turns t WHERE t.session_id = s.id)
                   AS total_cost
        FROM sessions s JOIN repos r ON r.id = s.repo_id
    """

    def session(self, sid: str) -> Session:
        r = self.db.execute(self._SESSION_SQL + " WHERE s.id = ?", (sid,)).fetchone()
        if r is None:
            raise NotFound(f"no session {sid!r}")
        return _session(r)

    def sessions(
        self,
        *,
        statuses: Sequence[Status] | None = None,
        repo_id: int | None = None,
        parent: str | None = None,
    ) -> list[Session]:
        """``parent``: only the sessions that session started (issue 18, its tag in the
        options), found by SQLite without parsing every session's options in Python."""
        sql = self._SESSION_SQL
        where: list[str] = []
        args: list[Any] = []
        if parent is not None:
            where.append("json_extract(s.options, '$.parent.id') = ?")
            args.append(parent)
        if statuses is not None:
            where.append(f"s.status IN ({','.join('?' * len(statuses))})")
            args.extend(st.value for st in statuses)
        if repo_id is not None:
            where.append("s.repo_id = ?")
            args.append(repo_id)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY s.created_at, s.id"
        return [_session(r) for r in self.db.execute(sql, args)]

    def resolve_session(self, prefix: str) -> Session:
        prefix = prefix.strip().lower()
        if not prefix:
            raise UsageError("empty session id")
        # A plain prefix comparison: '%' and '_' are characters here, not LIKE wildcards.
        # The range lets the primary key's index find the rows (issue 14 §6); the highest
        # code point sorts after every character an id may continue with.
        rows = self.db.execute(
            "SELECT id, title FROM sessions WHERE id >= ? AND id < ? AND substr(id, 1, ?) = ?"
            " ORDER BY id",
            (prefix, prefix + "\U0010ffff", len(prefix), prefix),
        ).fetchall()
        if not rows:
            raise NotFound(f"no session matches {prefix!r}", hint="see `pa ls --all`")
        exact = [r for r in rows if r["id"] == prefix]
        if len(rows) > 1 and not exact:
            listing = ", ".join(f"{r['id']} ({r['title'][:30]})" for r in rows[:10])
            raise UsageError(
                f"session id {prefix!r} is ambiguous: it matches {listing}",
                hint="type more characters of the id",
            )
        return self.session((exact or rows)[0]["id"])

    def update_session(self, sid: str, **fields: Any) -> None:
        if not fields:
            return
        with self.tx() as db:
            self._update_session(db, sid, **fields)

    def _update_session(self, db: sqlite3.Connection, sid: str, **fields: Any) -> None:
        cols = []
        vals: list[Any] = []
        for k, v in fields.items():
            if k == "status":
                raise ValueError("use set_status to change a status")
            if k in ("options", "cmd"):
                v = json.dumps(v)
            elif isinstance(v, bool):
                v = int(v)
            cols.append(f"{k} = ?")
            vals.append(v)
        cols.append("updated_at = ?")
        vals.append(time.time())
        db.execute(f"UPDATE sessions SET {', '.join(cols)} WHERE id = ?", (*vals, sid))

    def set_status(
        self,
        sid: str,
        new: Status,
        *,
        db: sqlite3.Connection | None = None,
        expect: Sequence[Status] | None = None,
        **fields: Any,
    ) -> Status:
        """The one place a status changes. Refuses impossible transitions."""
        if db is None:
            with self.tx() as tdb:
                return self.set_status(sid, new, db=tdb, expect=expect, **fields)
        row = db.execute("SELECT status FROM sessions WHERE id = ?", (sid,)).fetchone()
        if row is None:
            raise NotFound(f"no session {sid!r}")
        old = Status(row[0])
        if expect is not None and old not in expect:
            raise PAError(f"session {sid} is {old.value}, expected {'/'.join(expect)}")
        check_transition(old, new)
        attention = new in (Status.NEEDS_INPUT, Status.IDLE, Status.FAILED, Status.INTERRUPTED)
        if attention and old != new:
            fields.setdefault("unread", True)
        self._update_session(db, sid, **fields)
        db.execute("UPDATE sessions SET status = ? WHERE id = ?", (new.value, sid))
        if old != new:
            payload: dict[str, Any] = {"from": old.value, "to": new.value}
            if fields.get("error"):
                payload["error"] = fields["error"]
            self._append(db, sid, "status", payload, None)
            if attention:
                self._append(db, sid, "attention", {"status": new.value}, None)
        return old

    def has_session(self, sid: str) -> bool:
        """Whether a row for session ``sid`` exists (a hook for an unknown id does nothing)."""
        return bool(self.db.execute("SELECT 1 FROM sessions WHERE id = ?", (sid,)).fetchone())

    def session_ids(self) -> set[str]:
        """The ids of every session row, to tell session folders without a row."""
        return {r[0] for r in self.db.execute("SELECT id FROM sessions")}

    def session_state(self, db: sqlite3.Connection, sid: str) -> SessionState | None:
        """Session ``sid``'s status, agent, options and agent session id, read inside the
        caller's transaction ``db`` so a read-modify-write sees (and holds) that state."""
        row = db.execute(
            "SELECT status, agent, options, agent_session_id FROM sessions WHERE id = ?", (sid,)
        ).fetchone()
        if row is None:
            return None
        return SessionState(Status(row[0]), row[1], row[2], row[3])

    def interactive_session_ids(self, statuses: Sequence[Status]) -> list[str]:
        """Ids of interactive (TUI) sessions in one of ``statuses``: one cheap query."""
        marks = ",".join("?" * len(statuses))
        rows = self.db.execute(
            f"SELECT id FROM sessions WHERE interactive = 1 AND status IN ({marks})",
            [st.value for st in statuses],
        ).fetchall()
        return [str(r[0]) for r in rows]

    def delete_sessions(self, sids: Sequence[str]) -> None:
        """Forget sessions with their events, turns and checkpoints, all in one transaction."""
        with self.tx() as db:
            for sid in sids:
                db.execute("DELETE FROM events WHERE session_id = ?", (sid,))
                db.execute("DELETE FROM turns WHERE session_id = ?", (sid,))
                db.execute("DELETE FROM checkpoints WHERE session_id = ?", (sid,))
                db.execute("DELETE FROM sessions WHERE id = ?", (sid,))

    def delete_session_row(self, sid: str) -> None:
        """Remove only the ``sessions`` row of ``sid`` (a half-rebuilt session)."""
        with self.tx() as db:
            db.execute("DELETE FROM sessions WHERE id = ?", (sid,))


def _session(r: sqlite3.Row) -> Session:
    return Session(
        id=r["id"],
        title=r["title"],
        repo_id=r["repo_id"],
        repo_name=r["repo_name"],
        branch=r["branch"],
        base_ref=r["base_ref"],
        base_commit=r["base_commit"],
        worktree=r["worktree"],
        agent=r["agent"],
        model=r["model"],
        status=Status(r["status"]),
        agent_session_id=r["agent_session_id"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        cmd=json.loads(r["cmd"]) if r["cmd"] else None,
        interactive=bool(r["interactive"]),
        error=r["error"],
        unread=bool(r["unread"]),
        turns=int(r["n_turns"]),
        cost_usd=float(r["total_cost"] or 0),
        options=json.loads(r["options"] or "{}"),
    )
