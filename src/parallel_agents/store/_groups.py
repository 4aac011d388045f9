"""The ``groups`` and ``group_tasks`` tables (issue 15): best-of-N attempts, map-reduce
groups and plans, each a group of tasks that run as sessions.

State changes of a task go through ``move_task`` (compare and set: a scheduler that runs
twice, or once more after a crash, cannot start a task twice), and a task's session is
found again through its options (``task_session``) when a crash came between starting
it and recording it.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from parallel_agents.errors import NotFound, UsageError
from parallel_agents.store._events import EventRows

GROUP_KINDS = ("attempts", "map", "plan", "reduce")
# waiting: not started; starting: claimed, its session being made; running: its session
# works; done/failed/stopped: the session's turn ended so; merged: its work is in the
# target; picked/discarded: chosen or let go by a person (best-of-N); skipped: a
# dependency failed or was discarded.
TASK_STATES = (
    "waiting", "starting", "running", "done", "failed", "stopped",
    "merged", "picked", "discarded", "skipped",
)


@dataclass
class Group:
    id: str
    kind: str
    name: str
    repo_id: int | None
    spec: dict[str, Any]
    state: str
    created_at: float
    updated_at: float

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "repo_id": self.repo_id,
            "spec": self.spec,
            "state": self.state,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass
class GroupTask:
    group_id: str
    key: str
    position: int
    spec: dict[str, Any]
    state: str
    session_id: str | None
    outcome: dict[str, Any] = field(default_factory=dict)
    started_at: float | None = None
    ended_at: float | None = None
    merged_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "group": self.group_id,
            "key": self.key,
            "position": self.position,
            "spec": self.spec,
            "state": self.state,
            "session": self.session_id,
            "outcome": self.outcome,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "merged_at": self.merged_at,
        }


def _group(r: sqlite3.Row) -> Group:
    return Group(
        id=r["id"],
        kind=r["kind"],
        name=r["name"],
        repo_id=r["repo_id"],
        spec=json.loads(r["spec"]),
        state=r["state"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
    )


def _task(r: sqlite3.Row) -> GroupTask:
    return GroupTask(
        group_id=r["group_id"],
        key=r["key"],
        position=r["position"],
        spec=json.loads(r["spec"]),
        state=r["state"],
        session_id=r["session_id"],
        outcome=json.loads(r["outcome"]),
        started_at=r["started_at"],
        ended_at=r["ended_at"],
        merged_at=r["merged_at"],
    )


class GroupRows(EventRows):
    """Groups and their tasks: create, look up, move a task's state."""

    def create_group(
        self,
        kind: str,
        name: str | None,
        repo_id: int | None,
        spec: dict[str, Any],
        tasks: Sequence[tuple[str, dict[str, Any]]],
        *,
        state: str = "running",
    ) -> Group:
        """A new group with its tasks (all ``waiting``), in one transaction. ``name``
        defaults to ``<kind>-<id>``; a name already taken is a UsageError."""
        if kind not in GROUP_KINDS:
            raise ValueError(f"unknown group kind {kind!r}")
        gid = "g" + secrets.token_hex(4)
        name = name or f"{kind}-{gid[1:]}"
        now = time.time()
        with self.tx() as db:
            taken = db.execute("SELECT 1 FROM groups WHERE name = ?", (name,)).fetchone()
            if taken:
                raise UsageError(
                    f"a group named {name!r} exists already",
                    hint="choose another name, or look at it: pa plan show / pa compare",
                )
            db.execute(
                "INSERT INTO groups (id, kind, name, repo_id, spec, state, created_at,"
                " updated_at) VALUES (?,?,?,?,?,?,?,?)",
                (gid, kind, name, repo_id, json.dumps(spec), state, now, now),
            )
            db.executemany(
                "INSERT INTO group_tasks (group_id, key, position, spec, state, updated_at)"
                " VALUES (?,?,?,?,?,?)",
                [(gid, key, i, json.dumps(t), "waiting", now) for i, (key, t) in enumerate(tasks)],
            )
        return self.group(gid)

    def group(self, ref: str) -> Group:
        """The group with id or name ``ref``."""
        r = self.db.execute(
            "SELECT * FROM groups WHERE id = ? OR name = ? ORDER BY id = ? DESC LIMIT 1",
            (ref, ref, ref),
        ).fetchone()
        if r is None:
            raise NotFound(f"no group {ref!r}", hint="list them: pa plan ls, pa groups")
        return _group(r)

    def groups(self, kind: str | None = None) -> list[Group]:
        """Every group (of ``kind``), oldest first."""
        if kind is None:
            rows = self.db.execute("SELECT * FROM groups ORDER BY created_at, id")
        else:
            rows = self.db.execute(
                "SELECT * FROM groups WHERE kind = ? ORDER BY created_at, id", (kind,)
            )
        return [_group(r) for r in rows]

    def set_group(
        self, gid: str, *, state: str | None = None, spec: dict[str, Any] | None = None
    ) -> Group:
        with self.tx() as db:
            if state is not None:
                db.execute(
                    "UPDATE groups SET state = ?, updated_at = ? WHERE id = ?",
                    (state, time.time(), gid),
                )
            if spec is not None:
                db.execute(
                    "UPDATE groups SET spec = ?, updated_at = ? WHERE id = ?",
                    (json.dumps(spec), time.time(), gid),
                )
        return self.group(gid)

    def group_tasks(self, gid: str) -> list[GroupTask]:
        rows = self.db.execute(
            "SELECT * FROM group_tasks WHERE group_id = ? ORDER BY position", (gid,)
        )
        return [_task(r) for r in rows]

    def group_task(self, gid: str, key: str) -> GroupTask:
        r = self.db.execute(
            "SELECT * FROM group_tasks WHERE group_id = ? AND key = ?", (gid, key)
        ).fetchone()
        if r is None:
            raise NotFound(f"group {gid} has no task {key!r}")
        return _task(r)

    def add_group_task(self, gid: str, key: str, spec: dict[str, Any]) -> GroupTask:
        """One more task at the end of group ``gid`` (a judge, a reducer)."""
        with self.tx() as db:
            (pos,) = db.execute(
                "SELECT COALESCE(MAX(position) + 1, 0) FROM group_tasks WHERE group_id = ?",
                (gid,),
            ).fetchone()
            db.execute(
                "INSERT INTO group_tasks (group_id, key, position, spec, state, updated_at)"
                " VALUES (?,?,?,?,?,?)",
                (gid, key, pos, json.dumps(spec), "waiting", time.time()),
            )
        return self.group_task(gid, key)

    def move_task(
        self,
        gid: str,
        key: str,
        to: str,
        *,
        expect: Sequence[str] | None = None,
        session_id: str | None = None,
        outcome: dict[str, Any] | None = None,
    ) -> bool:
        """Set task ``key``'s state to ``to`` if it is one of ``expect`` now (any state:
        None); stamps ``started_at`` (running), ``ended_at`` (an end), ``merged_at``
        (merged). False when the task was not in an expected state: someone else moved
        it first."""
        if to not in TASK_STATES:
            raise ValueError(f"unknown task state {to!r}")
        now = time.time()
        sets = ["state = ?", "updated_at = ?"]
        args: list[Any] = [to, now]
        if session_id is not None:
            sets.append("session_id = ?")
            args.append(session_id)
        if outcome is not None:
            sets.append("outcome = ?")
            args.append(json.dumps(outcome))
        if to == "running":
            sets.append("started_at = COALESCE(started_at, ?)")
            args.append(now)
        elif to in ("done", "failed", "stopped", "skipped"):
            sets.append("ended_at = ?")
            args.append(now)
        elif to == "merged":
            sets.append("merged_at = ?")
            args.append(now)
        where = "group_id = ? AND key = ?"
        args += [gid, key]
        if expect is not None:
            where += f" AND state IN ({','.join('?' * len(expect))})"
            args += list(expect)
        with self.tx() as db:
            cur = db.execute(f"UPDATE group_tasks SET {', '.join(sets)} WHERE {where}", args)
            return cur.rowcount == 1

    def task_of_session(self, sid: str) -> GroupTask | None:
        """The group task session ``sid`` runs for, if any."""
        r = self.db.execute(
            "SELECT * FROM group_tasks WHERE session_id = ? ORDER BY updated_at DESC LIMIT 1",
            (sid,),
        ).fetchone()
        return _task(r) if r is not None else None

    def task_session(self, gid: str, key: str) -> str | None:
        """The newest session made for task ``key`` of group ``gid``, by its options (the
        ``{"group": {"id", "key"}}`` a task's session is created with), whether or not
        the task recorded it: a crash between the two leaves it findable."""
        r = self.db.execute(
            "SELECT id FROM sessions WHERE json_extract(options, '$.group.id') = ?"
            " AND json_extract(options, '$.group.key') = ? ORDER BY created_at DESC LIMIT 1",
            (gid, key),
        ).fetchone()
        return str(r[0]) if r is not None else None
