"""SQLite state store: WAL mode, busy timeout, migrations as small named steps.

``Store`` and the row shapes live here; the schema steps in ``migrations``, the connection,
the damaged-file error and the backups in ``_conn``. Every name callers used before the split
is still importable from ``parallel_agents.store``.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parallel_agents.errors import NotFound, PAError, UsageError
from parallel_agents.models import Event, Repo, Session, Status, Turn, check_transition
from parallel_agents.store._conn import (
    BACKUP_DIR,
    BACKUPS_KEPT,
    BUSY_TIMEOUT_MS,
    PRIVATE_DIR,
    PRIVATE_FILE,
    Connection,
    DatabaseDamaged,
    _connect,
    _private,
    _translate,
    backup_db,
    backup_dir,
    damaged_error,
    ensure_home,
    newest_backup,
)
from parallel_agents.store.migrations import MIGRATIONS

__all__ = [
    "BACKUPS_KEPT",
    "BACKUP_DIR",
    "BUSY_TIMEOUT_MS",
    "DB_FILE",
    "MIGRATIONS",
    "PRIVATE_DIR",
    "PRIVATE_FILE",
    "Connection",
    "DatabaseDamaged",
    "DatabaseTooNew",
    "RebuiltTurn",
    "SessionState",
    "Store",
    "backup_db",
    "backup_dir",
    "damaged_error",
    "ensure_home",
    "newest_backup",
]

DB_FILE = "pa.db"


class DatabaseTooNew(PAError):
    """``pa.db`` was migrated by a newer pa: reading or writing it could corrupt it."""


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


@dataclass(frozen=True)
class RebuiltTurn:
    """One turn of a session rebuilt from its folder (``pa doctor --rebuild``)."""

    n: int
    prompt: str
    status: str
    started_at: float
    ended_at: float | None
    exit_code: int | None
    read_offset: int


class Store:
    def __init__(self, home: Path) -> None:
        self.home = ensure_home(home)
        self.path = home / DB_FILE
        try:
            _private(self.path)
            self.db = _connect(self.path)
            self._migrate()
            self._daily_backup()
        except sqlite3.OperationalError as e:
            raise PAError(f"cannot open the state database {self.path}: {e}") from e
        except sqlite3.DatabaseError as e:
            raise damaged_error(self.path, e) from e
        except PAError:
            with contextlib.suppress(AttributeError):
                self.db.close()
            raise

    # -- plumbing -------------------------------------------------------------------
    def close(self) -> None:
        self.db.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken up front so read-modify-write cannot race."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                # SQLite may already have rolled back (e.g. on SQLITE_FULL): do not hide
                # the real error behind "no transaction is active".
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise
            else:
                self.db.execute("COMMIT")
        except sqlite3.OperationalError as e:
            raise _translate(e, self.path) from e

    def _migrate(self) -> None:
        done = self._applied_or_refuse()
        todo = [name for name, _ in MIGRATIONS if name not in done]
        if done and todo:
            # The last state this pa version could still read, should a migration go wrong.
            backup_db(self.db, self.home, f"pa-before-{todo[0]}.db")
        with self.tx() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at REAL)"
            )
            done = self._applied_or_refuse(db)
            for name, fn in MIGRATIONS:
                if name not in done:
                    fn(db)
                    db.execute("INSERT INTO migrations VALUES (?, ?)", (name, time.time()))

    def _applied_or_refuse(self, db: sqlite3.Connection | None = None) -> set[str]:
        """Migrations recorded in the file; refuses one written by a newer pa (it may have
        renamed or dropped columns this version would misread or overwrite)."""
        db = db or self.db
        has = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'migrations'"
        ).fetchone()
        if not has:
            return set()
        done = {str(r[0]) for r in db.execute("SELECT name FROM migrations")}
        unknown = sorted(done - {name for name, _ in MIGRATIONS})
        if unknown:
            from parallel_agents import __version__

            raise DatabaseTooNew(
                f"the state database {self.path} was written by a newer pa"
                f" (migration {', '.join(unknown)} is unknown to pa {__version__});"
                " nothing was read or written",
                hint="upgrade pa (pip install -U parallel-agents), or use another PA_HOME",
            )
        return done

    def _daily_backup(self) -> None:
        """At most one copy a day, taken on open, so "restore the backup" is real advice."""
        if not self.db.execute("SELECT 1 FROM sessions LIMIT 1").fetchone():
            return  # nothing worth keeping yet
        name = time.strftime("pa-daily-%Y-%m-%d.db", time.gmtime())
        if (backup_dir(self.home) / name).exists():
            return
        # A full disk must not stop pa from opening; the newest older copy stays.
        with contextlib.suppress(OSError, sqlite3.OperationalError):
            backup_db(self.db, self.home, name)

    def applied_migrations(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT name FROM migrations ORDER BY name")]

    # -- repos ----------------------------------------------------------------------
    def add_repo(self, name: str, path: str, base: str | None) -> Repo:
        with self.tx() as db:
            if db.execute("SELECT 1 FROM repos WHERE name = ?", (name,)).fetchone():
                raise UsageError(
                    f"a repo named {name!r} is already registered",
                    hint="pick another name with --name",
                )
            row = db.execute("SELECT name FROM repos WHERE path = ?", (path,)).fetchone()
            if row:
                raise UsageError(f"{path} is already registered as {row[0]!r}")
            cur = db.execute(
                "INSERT INTO repos (name, path, base, created_at) VALUES (?, ?, ?, ?)",
                (name, path, base, time.time()),
            )
            rid = cur.lastrowid
        return self.repo(int(rid or 0))

    def repos(self) -> list[Repo]:
        return [_repo(r) for r in self.db.execute("SELECT * FROM repos ORDER BY name")]

    def repo(self, rid: int) -> Repo:
        r = self.db.execute("SELECT * FROM repos WHERE id = ?", (rid,)).fetchone()
        if r is None:
            raise NotFound(f"no repo with id {rid}")
        return _repo(r)

    def repo_by_name(self, name: str) -> Repo | None:
        r = self.db.execute("SELECT * FROM repos WHERE name = ?", (name,)).fetchone()
        return _repo(r) if r else None

    def repo_by_path(self, path: str) -> Repo | None:
        r = self.db.execute("SELECT * FROM repos WHERE path = ?", (path,)).fetchone()
        return _repo(r) if r else None

    def remove_repo(self, rid: int) -> None:
        with self.tx() as db:
            db.execute("DELETE FROM repos WHERE id = ?", (rid,))

    def repo_uid(self, rid: int) -> str | None:
        r = self.db.execute("SELECT uid FROM repos WHERE id = ?", (rid,)).fetchone()
        return str(r[0]) if r and r[0] else None

    def repo_by_uid(self, uid: str) -> Repo | None:
        r = self.db.execute("SELECT * FROM repos WHERE uid = ?", (uid,)).fetchone()
        return _repo(r) if r else None

    def set_repo_uid(self, rid: int, uid: str | None) -> None:
        with self.tx() as db:
            db.execute("UPDATE repos SET uid = ? WHERE id = ?", (uid, rid))

    def set_repo_path(self, rid: int, path: str) -> Repo:
        """Point a registration at the folder its repository was moved to."""
        with self.tx() as db:
            row = db.execute(
                "SELECT name FROM repos WHERE path = ? AND id != ?", (path, rid)
            ).fetchone()
            if row:
                raise UsageError(f"{path} is already registered as {row[0]!r}")
            db.execute("UPDATE repos SET path = ? WHERE id = ?", (path, rid))
        return self.repo(rid)

    # -- sessions -------------------------------------------------------------------
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
    ) -> list[Session]:
        sql = self._SESSION_SQL
        where: list[str] = []
        args: list[Any] = []
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
        rows = self.db.execute(
            "SELECT id, title FROM sessions WHERE substr(id, 1, ?) = ? ORDER BY id",
            (len(prefix), prefix),
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

    # -- turns ----------------------------------------------------------------------
    def add_turn(self, db: sqlite3.Connection, sid: str, prompt: str, state: dict[str, Any]) -> int:
        row = db.execute("SELECT COALESCE(MAX(n), 0) FROM turns WHERE session_id = ?", (sid,))
        n = int(row.fetchone()[0]) + 1
        db.execute(
            "INSERT INTO turns (session_id, n, prompt, status, state) VALUES (?, ?, ?, ?, ?)",
            (sid, n, prompt, "pending", json.dumps(state)),
        )
        return n

    def turns(self, sid: str) -> list[Turn]:
        rows = self.db.execute("SELECT * FROM turns WHERE session_id = ? ORDER BY n", (sid,))
        return [_turn(r) for r in rows]

    def turn(self, sid: str, n: int, db: sqlite3.Connection | None = None) -> Turn | None:
        r = (
            (db or self.db)
            .execute("SELECT * FROM turns WHERE session_id = ? AND n = ?", (sid, n))
            .fetchone()
        )
        return _turn(r) if r else None

    def last_turn(self, sid: str, db: sqlite3.Connection | None = None) -> Turn | None:
        r = (
            (db or self.db)
            .execute("SELECT * FROM turns WHERE session_id = ? ORDER BY n DESC LIMIT 1", (sid,))
            .fetchone()
        )
        return _turn(r) if r else None

    def turn_progress(self, db: sqlite3.Connection, sid: str, n: int) -> tuple[int, dict[str, Any]]:
        r = db.execute(
            "SELECT read_offset, state FROM turns WHERE session_id = ? AND n = ?", (sid, n)
        ).fetchone()
        if r is None:
            raise NotFound(f"no turn {n} in session {sid}")
        return int(r[0]), json.loads(r[1])

    def update_turn(self, db: sqlite3.Connection, sid: str, n: int, **fields: Any) -> None:
        cols = []
        vals: list[Any] = []
        for k, v in fields.items():
            if k == "state":
                v = json.dumps(v)
            cols.append(f"{k} = ?")
            vals.append(v)
        db.execute(
            f"UPDATE turns SET {', '.join(cols)} WHERE session_id = ? AND n = ?",
            (*vals, sid, n),
        )

    # -- events ---------------------------------------------------------------------
    def _append(
        self,
        db: sqlite3.Connection,
        sid: str,
        kind: str,
        payload: dict[str, Any],
        raw: str | None,
        turn: int | None = None,
    ) -> int:
        row = db.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM events WHERE session_id = ?", (sid,)
        ).fetchone()
        seq = int(row[0]) + 1
        if turn is None:
            t = db.execute(
                "SELECT COALESCE(MAX(n), 0) FROM turns WHERE session_id = ?", (sid,)
            ).fetchone()
            turn = int(t[0])
        db.execute(
            "INSERT INTO events (session_id, seq, turn, kind, payload, raw, ts)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (sid, seq, turn, kind, json.dumps(payload, ensure_ascii=False), raw, time.time()),
        )
        return seq

    def append_events(
        self,
        db: sqlite3.Connection,
        sid: str,
        turn: int,
        items: Sequence[tuple[str, dict[str, Any], str | None]],
    ) -> None:
        row = db.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM events WHERE session_id = ?", (sid,)
        ).fetchone()
        seq = int(row[0])
        now = time.time()
        rows = []
        for kind, payload, raw in items:
            seq += 1
            rows.append((sid, seq, turn, kind, json.dumps(payload, ensure_ascii=False), raw, now))
        db.executemany(
            "INSERT INTO events (session_id, seq, turn, kind, payload, raw, ts)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    def add_event(self, sid: str, kind: str, payload: dict[str, Any]) -> None:
        with self.tx() as db:
            self._append(db, sid, kind, payload, None)

    def events(
        self,
        sid: str | None = None,
        *,
        after_seq: int = 0,
        after_id: int = 0,
        kinds: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        sql = "SELECT * FROM events WHERE id > ?"
        args: list[Any] = [after_id]
        if sid is not None:
            sql += " AND session_id = ? AND seq > ?"
            args += [sid, after_seq]
        if kinds:
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            args += list(kinds)
        sql += " ORDER BY id"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [_event(r) for r in self.db.execute(sql, args)]

    # -- queries other modules need (issue 13: the only SQL is in store) -----------------
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

    def insert_rebuilt_history(
        self,
        sid: str,
        turns: Sequence[RebuiltTurn],
        checkpoints: Sequence[tuple[int, str, str]],
        created_at: float,
    ) -> None:
        """The turns and checkpoints (turn, ref, commit) of a rebuilt session, together in
        one transaction: a session gets all of its history or none of it."""
        with self.tx() as db:
            for t in turns:
                db.execute(
                    "INSERT INTO turns (session_id, n, prompt, status, started_at, ended_at,"
                    " exit_code, read_offset, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '{}')",
                    (
                        sid,
                        t.n,
                        t.prompt,
                        t.status,
                        t.started_at,
                        t.ended_at,
                        t.exit_code,
                        t.read_offset,
                    ),
                )
            for n, ref, commit in checkpoints:
                self._put_checkpoint(db, sid, n, ref, commit, created_at)

    def _put_checkpoint(
        self, db: sqlite3.Connection, sid: str, turn: int, ref: str, commit: str, at: float
    ) -> None:
        db.execute(
            "INSERT OR REPLACE INTO checkpoints (session_id, turn, ref, commit_id, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (sid, turn, ref, commit, at),
        )

    def record_checkpoint(self, sid: str, turn: int, ref: str, commit: str) -> None:
        """Record (or replace) turn ``turn``'s checkpoint, its ref and commit, made now."""
        with self.tx() as db:
            self._put_checkpoint(db, sid, turn, ref, commit, time.time())

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

    def max_event_id(self) -> int:
        """The id of the newest event in any session (0 when there is none)."""
        row = self.db.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()
        return int(row[0])

    def integrity_check(self) -> list[str]:
        """SQLite's own verdict on the file: ``["ok"]`` or the problems it found. A file
        SQLite calls damaged raises ``DatabaseDamaged``; any other database error is
        returned as the one problem, so callers need not know sqlite3's exceptions."""
        try:
            rows = self.db.execute("PRAGMA integrity_check").fetchall()
        except sqlite3.DatabaseError as e:
            return [str(e)]
        return [str(r[0]) for r in rows]

    # -- key/value ------------------------------------------------------------------
    def kv_get(self, key: str) -> Any:
        r = self.db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return json.loads(r[0]) if r else None

    def kv_set(self, key: str, value: Any) -> None:
        with self.tx() as db:
            db.execute(
                "INSERT INTO kv (key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)),
            )


def _repo(r: sqlite3.Row) -> Repo:
    return Repo(
        id=r["id"], name=r["name"], path=r["path"], base=r["base"], created_at=r["created_at"]
    )


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


def _turn(r: sqlite3.Row) -> Turn:
    return Turn(
        session_id=r["session_id"],
        n=r["n"],
        prompt=r["prompt"],
        started_at=r["started_at"],
        ended_at=r["ended_at"],
        exit_code=r["exit_code"],
        status=r["status"],
        error=r["error"],
        input_tokens=r["input_tokens"],
        output_tokens=r["output_tokens"],
        cached_tokens=r["cached_tokens"],
        cost_usd=r["cost_usd"],
    )


def _event(r: sqlite3.Row) -> Event:
    return Event(
        session_id=r["session_id"],
        seq=r["seq"],
        turn=r["turn"],
        kind=r["kind"],
        payload=json.loads(r["payload"]),
        raw=r["raw"],
        ts=r["ts"],
        id=r["id"],
    )
