"""Server-sent events as they arrive in chunks: lines, then messages."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any


def parse_sse(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """SSE messages as {"id": int|None, "event": str, "data": str} (comments skipped).

    Id-only messages (no data) are yielded too, with ``data`` None: they move the
    resume point without carrying an event.
    """
    ev_id: str | None = None
    event = "message"
    data: list[str] = []
    seen_field = False
    for raw in lines:
        line = raw.rstrip("\r")
        if not line:
            if seen_field:
                yield {
                    "id": int(ev_id) if ev_id and ev_id.isdigit() else None,
                    "event": event,
                    "data": "\n".join(data) if data else None,
                }
            ev_id, event, data, seen_field = None, "message", [], False
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            ev_id = value
            seen_field = True
        elif name == "event":
            event = value
            seen_field = True
        elif name == "data":
            data.append(value)
            seen_field = True


def lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Decoded lines (without their newline) of a byte stream that arrives in chunks."""
    rest = b""
    for chunk in chunks:
        rest += chunk
        *done, rest = rest.split(b"\n")
        for line in done:
            yield line.decode("utf-8", "replace")
    if rest:
        yield rest.decode("utf-8", "replace")
