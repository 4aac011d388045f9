"""The ``repos`` table: registered repositories."""

from __future__ import annotations

import sqlite3
import time

from parallel_agents.errors import NotFound, UsageError
from parallel_agents.models import Repo
from parallel_agents.store._base import StoreBase


class RepoRows(StoreBase):
    """Registered repositories: add, look up, move, remove."""

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


def _repo(r: sqlite3.Row) -> Repo:
    return Repo(
        id=r["id"], name=r["name"], path=r["path"], base=r["base"], created_at=r["created_at"]
    )
