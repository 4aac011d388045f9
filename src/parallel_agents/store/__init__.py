"""SQLite state store: WAL mode, busy timeout, migrations as small named steps.

``Store`` is composed of one class per table family, each in its own module: ``_base``
(opening the file, migrations, the daily backup, transactions), ``_repos``, ``_sessions``
(and the one place a status changes), ``_turns``, ``_events``, ``_checkpoints``, ``_checks``,
``_groups`` (issue 15: attempts, map-reduce, plans), ``_review_comments`` (issue 15 §3: a
reviewer agent's line comments), ``_ports`` (issue 16 §1: each session's ports),
``_routines`` (issue 17: routines and their runs), ``_routine_events`` (their git-event
triggers and auto-merges), ``_inbox`` (their read markers), ``_routine_calls`` (the HTTP
trigger's token hashes and calls); the
small key/value table is here.
The schema steps are in ``migrations``, the connection, the damaged-file error and the
backups in ``_conn``. Every name callers used before the
split is still importable from ``parallel_agents.store``.
"""

from __future__ import annotations

import json
from typing import Any

from parallel_agents.store._base import DB_FILE, DatabaseTooNew
from parallel_agents.store._checkpoints import CheckpointRows
from parallel_agents.store._checks import CheckRows
from parallel_agents.store._conn import (
    BACKUP_DIR,
    BACKUPS_KEPT,
    BUSY_TIMEOUT_MS,
    PRIVATE_DIR,
    PRIVATE_FILE,
    Connection,
    DatabaseDamaged,
    backup_db,
    backup_dir,
    damaged_error,
    ensure_home,
    newest_backup,
)
from parallel_agents.store._events import MAX_SPAN, Payload, PlainRun, Raw, RawSpan
from parallel_agents.store._groups import GROUP_KINDS, TASK_STATES, Group, GroupRows, GroupTask
from parallel_agents.store._inbox import InboxRows, InboxRun
from parallel_agents.store._ports import PortRows
from parallel_agents.store._repos import RepoRows
from parallel_agents.store._review_comments import ReviewComment, ReviewCommentRows
from parallel_agents.store._routine_calls import RoutineCall, RoutineCallRows
from parallel_agents.store._routine_events import RoutineEventRows, Watch
from parallel_agents.store._routines import Routine, RoutineRows, RoutineRun
from parallel_agents.store._sessions import SessionRows, SessionState
from parallel_agents.store._turns import RebuiltTurn, TurnRows
from parallel_agents.store.migrations import MIGRATIONS

__all__ = [
    "BACKUPS_KEPT",
    "BACKUP_DIR",
    "BUSY_TIMEOUT_MS",
    "DB_FILE",
    "GROUP_KINDS",
    "MAX_SPAN",
    "MIGRATIONS",
    "PRIVATE_DIR",
    "PRIVATE_FILE",
    "TASK_STATES",
    "Connection",
    "DatabaseDamaged",
    "DatabaseTooNew",
    "Group",
    "GroupTask",
    "InboxRun",
    "Payload",
    "PlainRun",
    "Raw",
    "RawSpan",
    "RebuiltTurn",
    "ReviewComment",
    "Routine",
    "RoutineCall",
    "RoutineRun",
    "SessionState",
    "Store",
    "Watch",
    "backup_db",
    "backup_dir",
    "damaged_error",
    "ensure_home",
    "newest_backup",
]


class Store(
    RepoRows,
    SessionRows,
    TurnRows,
    CheckpointRows,
    CheckRows,
    GroupRows,
    ReviewCommentRows,
    PortRows,
    RoutineRows,
    RoutineEventRows,
    InboxRows,
    RoutineCallRows,
):
    """pa's state in ``<home>/pa.db``: every SQL statement of pa runs in this package."""

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
