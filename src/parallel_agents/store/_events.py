"""The ``events`` table: each session's numbered stream of events.

An agent's output line is stored once (issue 14 §5): in its turn's stdout file. The event
keeps where the line lies in that file (``raw_at``, ``raw_len``) and what was parsed from
it (``payload``), never a second copy of the line: ``Event.raw`` is read back from the
file by offset, and a payload that would only repeat the line (``{"text": line}``: plain
output, lines no parser understood) is stored empty and rebuilt from the file too. Rows
written by older versions still carry their ``raw`` text and full payload.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from typing import IO, Any

from parallel_agents.models import Event
from parallel_agents.store._base import StoreBase

# Where an event's raw line lies in its turn's stdout file: (byte offset, byte length).
RawSpan = tuple[int, int]
# What an event carries besides its payload: its raw line as text (small lines pa writes
# itself), its place in the output file, or nothing.
Raw = str | RawSpan | None
# Output files one ``events`` call keeps open at once.
_OPEN_FILES = 32
# An event's payload; None (with a RawSpan) stands for ``{"text": <the line(s)>}``.
Payload = dict[str, Any] | None
# The most bytes of output one event's span covers (whole lines; one longer line is
# already cut to the agents' MAX_RAW, the same 64 KiB).
MAX_SPAN = 64 * 1024


# Kinds whose event may be just its line (``{"text": line}``): such lines coalesce.
_PLAIN = ("output", "raw")


class PlainRun:
    """Consecutive plain lines of one ingest pass (an event that is only its line: the
    command agent's output, a line no parser understood) become ONE event whose span
    covers them all, at most MAX_SPAN bytes (issue 14 §5: a row per 100-byte line cost
    0.9× the output again). Appends to ``items`` on ``close``."""

    def __init__(self, items: list[tuple[str, Payload, Raw]]) -> None:
        self.items = items
        self.kind = ""
        self.start = self.end = 0

    def take(self, kind: str, payload: Payload, line: str, span: RawSpan) -> bool:
        """Add the line to the run when its one event is plain; False otherwise (then
        the caller closes the run before it appends that line's events)."""
        if kind not in _PLAIN or payload != {"text": line}:
            return False
        if self.kind and (kind != self.kind or span[0] + span[1] - self.start > MAX_SPAN):
            self.close()
        if not self.kind:
            self.kind, self.start = kind, span[0]
        self.end = span[0] + span[1]
        return True

    def close(self) -> None:
        if self.kind:
            self.items.append((self.kind, None, (self.start, self.end - self.start)))
            self.kind = ""


class EventRows(StoreBase):
    """Append events (numbered per session) and read them back."""

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
        items: Sequence[tuple[str, Payload, Raw]],
    ) -> None:
        row = db.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM events WHERE session_id = ?", (sid,)
        ).fetchone()
        seq = int(row[0])
        now = time.time()
        rows = []
        for kind, payload, raw in items:
            seq += 1
            text, at, size = (None, raw[0], raw[1]) if isinstance(raw, tuple) else (raw, None, None)
            if payload is None and at is None:
                raise ValueError("an event without a payload needs its line's place")
            body = "" if payload is None else json.dumps(payload, ensure_ascii=False)
            rows.append((sid, seq, turn, kind, body, text, at, size, now))
        db.executemany(
            "INSERT INTO events (session_id, seq, turn, kind, payload, raw, raw_at, raw_len, ts)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        with_raw: bool = True,
    ) -> list[Event]:
        """Events in order; ``with_raw=False`` leaves ``raw`` out (no output file is read)."""
        sql = "SELECT * FROM events WHERE id > ?"
        args: list[Any] = [after_id]
        if sid is not None:
            sql += " AND session_id = ? AND seq > ?"
            args += [sid, after_seq]
        if kinds:
            # One session's events come by (session_id, seq): the unary + keeps the planner
            # off the kind index, which would walk that kind in every session (issue 14 §6).
            col = "+kind" if sid is not None else "kind"
            sql += f" AND {col} IN ({','.join('?' * len(kinds))})"
            args += list(kinds)
        sql += " ORDER BY id"
        if limit:
            sql += f" LIMIT {int(limit)}"
        rows = self.db.execute(sql, args).fetchall()
        files: dict[tuple[str, int], IO[bytes] | None] = {}
        try:
            out = []
            for r in rows:
                raw = self._raw(r, files) if with_raw or not r["payload"] else None
                out.append(_event(r, raw, with_raw))
            return out
        finally:
            for f in files.values():
                if f is not None:
                    f.close()

    def _raw(self, r: sqlite3.Row, files: dict[tuple[str, int], IO[bytes] | None]) -> str | None:
        """The event's raw line: stored text (older rows), else read from the turn's
        stdout file at its offset (None when the file is gone, e.g. a discarded session)."""
        if r["raw"] is not None or r["raw_at"] is None:
            return str(r["raw"]) if r["raw"] is not None else None
        key = (str(r["session_id"]), int(r["turn"]))
        if key not in files and len(files) >= _OPEN_FILES:
            for f in files.values():  # a page across many turns: bound the open files
                if f is not None:
                    f.close()
            files.clear()
        if key not in files:
            path = self.home / "sessions" / key[0] / "turns" / str(key[1]) / "stdout"
            try:
                files[key] = open(path, "rb")  # noqa: SIM115 (closed by events())
            except OSError:
                files[key] = None
        f = files[key]
        if f is None:
            return None
        try:
            f.seek(int(r["raw_at"]))
            data = f.read(int(r["raw_len"]))
        except OSError:
            return None
        return span_text(data)

    def max_event_id(self) -> int:
        """The id of the newest event in any session (0 when there is none)."""
        row = self.db.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()
        return int(row[0])


def span_text(data: bytes) -> str:
    """The text of an output span: its lines (split where the ingester splits them, at
    \n, \r\n or \r) without the blank ones, joined by "\n"."""
    if b"\n" not in data and b"\r" not in data:
        return data.decode("utf-8", "replace")
    lines = (x.decode("utf-8", "replace") for x in data.splitlines())
    return "\n".join(x for x in lines if x.strip())


def _event(r: sqlite3.Row, raw: str | None, with_raw: bool) -> Event:
    # An empty payload is the line itself (kept in the output file only).
    payload = json.loads(r["payload"]) if r["payload"] else {"text": raw or ""}
    return Event(
        session_id=r["session_id"],
        seq=r["seq"],
        turn=r["turn"],
        kind=r["kind"],
        payload=payload,
        raw=raw if with_raw else None,
        ts=r["ts"],
        id=r["id"],
    )
