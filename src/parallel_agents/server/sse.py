"""Server-sent events: every stored event, in id order, resumable with Last-Event-ID.

Each message is::

    id: <global event id>
    event: <kind>   (``agent_error`` for kind ``error``, see WIRE_NAMES)
    data: <event JSON: id, session_id, seq, turn, kind, payload, ts>

A stream first sends ``retry:`` and an id-only message naming where it starts, so a
client that reconnects before any event arrived still resumes at the right place
(browsers' EventSource take the id from such a message too). Comments (``: ping``) keep
idle connections alive. A resume point above the newest stored id (the database was
reset since the client last saw an event) is clamped to the newest id, and the stream then
first sends ``event: reset`` with ``{"last_id": <newest id>, "requested": <asked id>}``,
so a client drops the ids it remembered and loads its state again. Event ids are
assigned inside SQLite write transactions, which are serialised, so "everything after
id N" is exact: nothing missed, nothing doubled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

BATCH = 200  # events per query: bounds memory per stream (payloads reach 64 KB)

# Event names on the wire that differ from the event's kind. A message named ``error`` is
# what EventSource fires for a broken connection, so a browser would take an agent's
# error event for a lost stream (issue 11 F.4); the JSON ``kind`` stays ``error``.
WIRE_NAMES = {"error": "agent_error"}

# (session id or None, after id, limit, kinds) -> events as JSON dicts
Query = Callable[[str | None, int, int, Sequence[str] | None], list[dict[str, Any]]]


class Notifier:
    """Wakes waiting streams when new events are committed. ``publish`` is thread-safe."""

    def __init__(self) -> None:
        self.latest = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event = asyncio.Event()

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def publish(self, latest: int) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        # RuntimeError: the loop closed between the check and the call.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._fire, latest)

    def _fire(self, latest: int) -> None:
        self.latest = max(self.latest, latest)
        ev, self._event = self._event, asyncio.Event()
        ev.set()

    async def wait(self, seen: int, timeout: float) -> bool:
        """Until something newer than ``seen`` was published; False on timeout."""
        if self.latest > seen:
            return True
        ev = self._event
        try:
            await asyncio.wait_for(ev.wait(), timeout)
        except TimeoutError:
            return False
        return True


def format_event(e: dict[str, Any]) -> bytes:
    data = json.dumps(e, ensure_ascii=False, separators=(",", ":"))
    name = WIRE_NAMES.get(e["kind"], e["kind"])
    return f"id: {e['id']}\nevent: {name}\ndata: {data}\n\n".encode()


def format_reset(last_id: int, requested: int) -> bytes:
    """The message telling a client its resume point is gone (see the module docstring)."""
    data = json.dumps({"last_id": last_id, "requested": requested}, separators=(",", ":"))
    return f"id: {last_id}\nevent: reset\ndata: {data}\n\n".encode()


def parse_last_event_id(header: str | None, query: str | None) -> int | None:
    """The resume point from ``Last-Event-ID`` (or ``?last_event_id=``); None if absent."""
    from parallel_agents.errors import UsageError

    value = header if header not in (None, "") else query
    if value is None or value == "":
        return None
    try:
        n = int(value.strip())
    except ValueError:
        raise UsageError(f"Last-Event-ID must be an event id (an integer), not {value!r}") from None
    if not 0 <= n < 2**63:
        raise UsageError("Last-Event-ID must be between 0 and 2**63-1")
    return n


async def event_stream(
    query: Query,
    notifier: Notifier,
    *,
    session_id: str | None,
    after_id: int,
    kinds: Sequence[str] | None,
    heartbeat: float,
    is_disconnected: Callable[[], Any] | None = None,
    reset_from: int | None = None,
) -> AsyncIterator[bytes]:
    """The stream's bytes; ``reset_from`` (the id the client asked for, when it was above
    the newest one and ``after_id`` is that newest id) sends a ``reset`` message first."""
    from anyio import to_thread

    cursor = after_id
    yield f"retry: 2000\nid: {cursor}\n\n".encode()
    if reset_from is not None:
        yield format_reset(cursor, reset_from)
    last_write = time.monotonic()
    while True:
        mark = notifier.latest
        batch = await to_thread.run_sync(query, session_id, cursor, BATCH, kinds)
        if batch:
            cursor = int(batch[-1]["id"])
            yield b"".join(format_event(e) for e in batch)
            last_write = time.monotonic()
            if len(batch) >= BATCH:
                continue
        # Every id up to ``mark`` was committed before the query ran, so a filtered
        # stream may skip past the ones that did not match (keeps later scans short).
        cursor = max(cursor, mark)
        idle = heartbeat - (time.monotonic() - last_write)
        if idle <= 0:
            yield b": ping\n\n"
            last_write = time.monotonic()
            if is_disconnected is not None and await is_disconnected():
                return
            continue
        await notifier.wait(mark, idle)
