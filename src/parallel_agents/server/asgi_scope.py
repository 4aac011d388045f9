"""The ASGI scope of one HTTP request made in this process, with no socket: the in-process
client transport and ``/mcp``'s backend both call the app this way. Standard library only."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

HOST = "127.0.0.1"


def http_scope(
    method: str, path: str, query: str, headers: list[tuple[bytes, bytes]], port: int
) -> dict[str, Any]:
    """``method`` on ``path`` (as sent, percent-encoded) with ``query``, from 127.0.0.1."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(path),
        "raw_path": path.encode("latin-1"),
        "root_path": "",
        "query_string": query.encode("latin-1"),
        "headers": headers,
        "client": (HOST, 0),
        "server": (HOST, port),
        "extensions": {},
    }
