"""What every part of the store stands on: opening ``pa.db`` (its migrations, the daily
backup), closing it, and the write transaction.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from parallel_agents.errors import PAError
from parallel_agents.store._conn import (
    _connect,
    _no_space,
    _private,
    _translate,
    backup_db,
    backup_dir,
    damaged_error,
    ensure_home,
)
from parallel_agents.store.migrations import MIGRATIONS

DB_FILE = "pa.db"


class DatabaseTooNew(PAError):
    """``pa.db`` was migrated by a newer pa: reading or writing it could corrupt it."""


class StoreBase:
    """The open database; the table families below build on it."""

    # True when the disk was full at open: reads work, every write transaction is refused.
    read_only = False

    def __init__(self, home: Path) -> None:
        self.home = ensure_home(home)
        self.path = home / DB_FILE
        try:
            _private(self.path)
            self.db = _connect(self.path)
            self._migrate()
            self._daily_backup()
        except sqlite3.OperationalError as e:
            with contextlib.suppress(AttributeError):
                self.db.close()
            # A full disk (SQLite cannot size its -shm/-wal files): still show what is
            # stored (issue 14 §5: read commands work on a full disk).
            if not self.path.exists() or not _no_space(e, self.path):
                raise PAError(f"cannot open the state database {self.path}: {e}") from e
            self._open_read_only(e)
        except sqlite3.DatabaseError as e:
            raise damaged_error(self.path, e) from e
        except PAError:
            with contextlib.suppress(AttributeError):
                self.db.close()
            raise

    def _open_read_only(self, cause: sqlite3.OperationalError) -> None:
        """Open ``pa.db`` for reading only. With its -wal and -shm files present (another
        process has it open) SQLite reads through them; without them (nothing is open,
        so all is in the main file) it is opened immutable, which needs no file at all."""
        try:
            self.db = _connect(self.path, read_only=True)
            todo = [n for n, _ in MIGRATIONS if n not in self._applied_or_refuse()]
        except sqlite3.OperationalError as e:
            raise PAError(f"cannot open the state database {self.path}: {cause}") from e
        if todo:
            self.db.close()
            raise PAError(
                f"the disk holding {self.path} is full: pa cannot update its state database"
                f" ({cause})",
                hint="free some space (or move PA_HOME) and run the command again",
            )
        self.read_only = True

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken up front so read-modify-write cannot race."""
        if self.read_only:
            raise PAError(
                f"the disk holding {self.path.parent} is full; nothing was written",
                hint="free some space (or move PA_HOME) and run the command again",
            )
        if self.db.in_transaction:
            # Inside an outer transaction of this connection (several sessions' ends
            # committed at once, issue 14 §3): a savepoint, so a failure undoes only
            # this part and the outer one carries on.
            with self._savepoint():
                yield self.db
            return
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

    @contextmanager
    def _savepoint(self) -> Iterator[None]:
        try:
            self.db.execute("SAVEPOINT nested")
            try:
                yield
            except BaseException:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK TO nested")
                    self.db.execute("RELEASE nested")
                raise
            else:
                self.db.execute("RELEASE nested")
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

    def integrity_check(self) -> list[str]:
        """SQLite's own verdict on the file: ``["ok"]`` or the problems it found. A file
        SQLite calls damaged raises ``DatabaseDamaged``; any other database error is
        returned as the one problem, so callers need not know sqlite3's exceptions."""
        try:
            rows = self.db.execute("PRAGMA integrity_check").fetchall()
        except sqlite3.DatabaseError as e:
            return [str(e)]
        return [str(r[0]) for r in rows]
