"""The SQLite connection pa uses: its settings, the clear error for a damaged file, backups.

Every statement runs through ``_Connection``/``_Cursor``, which turn SQLite's "file is not a
database"/"malformed" errors into ``DatabaseDamaged`` (with the recovery hint) wherever they
surface, also on rows read after ``execute``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import sqlite3
import time
from pathlib import Path
from typing import Any, NoReturn

from parallel_agents.errors import PAError

BUSY_TIMEOUT_MS = 60_000
BACKUP_DIR = "backups"
BACKUPS_KEPT = 3  # daily copies kept (copies made before a migration are kept as well)
# Only the owner may read what pa keeps: prompts, agent output, the token.
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
# SQLite result codes (low byte) that mean the file itself is damaged or not a database.
_DAMAGED_CODES = (11, 26)  # SQLITE_CORRUPT, SQLITE_NOTADB

# The connection a ``Store.tx()`` hands out, named here so that callers annotating it need
# not import sqlite3 themselves (issue 13: only store imports sqlite3).
Connection = sqlite3.Connection


class DatabaseDamaged(PAError):
    """``pa.db`` is not a readable SQLite database (truncated, overwritten)."""


def _damaged(e: sqlite3.DatabaseError) -> bool:
    code = getattr(e, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in _DAMAGED_CODES
    # Older SQLite builds without error codes: a plain DatabaseError is corruption.
    return type(e) is sqlite3.DatabaseError


def damaged_error(path: Path, e: Exception) -> DatabaseDamaged:
    """The clear error for a damaged ``pa.db``: which file, what to do, the newest backup."""
    backup = newest_backup(path.parent)
    restore = (
        f"restore the backup: cp {backup} {path}"
        if backup is not None
        else "start afresh (no backup exists yet): the worktrees and branches stay, and"
        " `pa doctor` then counts the sessions' folders, worktrees and refs"
    )
    aside = path.parent / "damaged"
    return DatabaseDamaged(
        f"the state database {path} is damaged ({e})",
        hint=(
            f"stop pa (pa server stop), move the database aside with its -wal and -shm files"
            f" (mkdir {aside} && mv {path}* {aside}/), then {restore}"
        ),
    )


class _Cursor(sqlite3.Cursor):
    """Rows read later than ``execute`` may hit a damaged page too: same clear error."""

    def _reraise(self, e: sqlite3.DatabaseError) -> NoReturn:
        """The clear error for a damaged file; any other error as it was."""
        conn = self.connection
        if _damaged(e) and isinstance(conn, _Connection):
            raise damaged_error(conn.pa_path, e) from e
        raise e

    def execute(self, sql: str, parameters: Any = (), /) -> _Cursor:
        try:
            return super().execute(sql, parameters)
        except sqlite3.DatabaseError as e:
            self._reraise(e)

    def executemany(self, sql: str, parameters: Any, /) -> _Cursor:
        try:
            return super().executemany(sql, parameters)
        except sqlite3.DatabaseError as e:
            self._reraise(e)

    def __next__(self) -> Any:
        try:
            return super().__next__()
        except sqlite3.DatabaseError as e:
            self._reraise(e)

    def fetchone(self) -> Any:
        try:
            return super().fetchone()
        except sqlite3.DatabaseError as e:
            self._reraise(e)

    def fetchall(self) -> list[Any]:
        try:
            return super().fetchall()
        except sqlite3.DatabaseError as e:
            self._reraise(e)


class _Connection(sqlite3.Connection):
    pa_path: Path

    # Every statement runs on a _Cursor, which turns a damaged file into the clear error.
    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        return self.cursor(_Cursor).execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        return self.cursor(_Cursor).executemany(sql, parameters)


def _private(path: Path) -> None:
    """Create ``path`` (an empty file SQLite takes as a new database) readable by the owner
    only, or tighten it when an older pa made it 0644; likewise its -wal and -shm files
    (SQLite gives those the database file's mode)."""
    with contextlib.suppress(FileExistsError, OSError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(OSError):
            if p.stat().st_mode & 0o077:
                os.chmod(p, PRIVATE_FILE)


def _no_space(e: sqlite3.OperationalError, path: Path) -> bool:
    """Did opening fail for want of disk space (SQLite says "disk I/O error" when it
    cannot size its -shm file, "database or disk is full" when a write fails)?"""
    text = str(e)
    if "full" not in text and "disk I/O" not in text:
        return False
    try:
        st = os.statvfs(path.parent)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 1024 * 1024


def _connect(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    if read_only:
        return _connect_read_only(path)
    db = sqlite3.connect(
        str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, factory=_Connection
    )
    assert isinstance(db, _Connection)
    db.pa_path = path
    db.row_factory = sqlite3.Row
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    # Switching the journal mode takes a lock without waiting on the busy handler, so
    # concurrent openers could fail with "database is locked": only switch when needed.
    if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        for attempt in range(50):
            try:
                db.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError:
                if attempt == 49:
                    raise
                time.sleep(0.05)
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("PRAGMA foreign_keys = ON")
    return db


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """``path`` opened for reading only, creating no file: through its -wal and -shm when
    they exist (a process has it open and may hold commits not yet in the main file),
    else immutable (nothing has it open: every commit is in the main file)."""
    from urllib.parse import quote

    side = [path.with_name(path.name + x) for x in ("-wal", "-shm")]
    modes = ["mode=ro", "immutable=1"] if all(p.exists() for p in side) else ["immutable=1"]
    for i, mode in enumerate(modes):
        db = sqlite3.connect(
            f"file:{quote(str(path))}?{mode}",
            uri=True,
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            factory=_Connection,
        )
        assert isinstance(db, _Connection)
        db.pa_path = path
        db.row_factory = sqlite3.Row
        try:
            db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError:
            db.close()
            if i == len(modes) - 1:
                raise
            continue
        return db
    raise AssertionError("unreachable")


def _translate(e: sqlite3.OperationalError, path: Path) -> Exception:
    text = str(e)
    if "full" in text:
        return PAError(
            f"the disk holding {path.parent} is full ({text}); nothing was written",
            hint="free some space (or move PA_HOME) and run the command again",
        )
    if "readonly" in text or "read-only" in text:
        return PAError(f"the state database {path} is read-only ({text})")
    return e


def ensure_home(home: Path) -> Path:
    """Create PA_HOME (0700) or tighten one an older pa made 0755; check it is writable."""
    try:
        home.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        with contextlib.suppress(OSError):  # not ours to change (another user's folder)
            if home.stat().st_mode & 0o077:
                os.chmod(home, PRIVATE_DIR)
        probe = home / f".write-test-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            # Writable but full: reading what is stored still works (issue 14 §5).
    except OSError as e:
        raise PAError(
            f"PA_HOME {home} is not writable: {e.strerror or e}",
            hint="point PA_HOME at a writable directory (export PA_HOME=...)",
        ) from e
    return home


def backup_dir(home: Path) -> Path:
    return home / BACKUP_DIR


def newest_backup(home: Path) -> Path | None:
    """The most recent copy made by ``Store`` (daily, or before a migration), if any."""
    try:
        found = [p for p in backup_dir(home).glob("pa-*.db") if p.is_file()]
    except OSError:
        return None
    return max(found, key=lambda p: p.stat().st_mtime, default=None)


def backup_db(db: sqlite3.Connection, home: Path, name: str) -> Path | None:
    """Copy the open database to ``backups/<name>`` with SQLite's online backup (a
    consistent snapshot while others keep writing). None when another process is making
    one right now; the copy appears atomically, so a half-written backup never exists."""
    import fcntl

    d = backup_dir(home)
    d.mkdir(mode=PRIVATE_DIR, exist_ok=True)
    lock = os.open(d / ".lock", os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        dest = d / name
        tmp = d / f".{name}.{os.getpid()}.tmp"
        _private(tmp)
        try:
            out = sqlite3.connect(str(tmp))
            try:
                db.backup(out)
            finally:
                out.close()
            os.replace(tmp, dest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        daily = sorted(d.glob("pa-daily-*.db"))
        for old in daily[:-BACKUPS_KEPT]:
            with contextlib.suppress(OSError):
                old.unlink()
        return dest
    finally:
        os.close(lock)
