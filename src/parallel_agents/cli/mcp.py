"""`pa mcp`: pa as an MCP server over stdio (issue 18), for a lead agent to start,
wait for, read and follow up on sessions of its own.

The tools live in ``mcp_server/``; here they get a backend over ``client.Client``: the
server of this PA_HOME (started in the background if allowed, as for every command),
else the same API in-process. Stdout carries the protocol only.
"""

from __future__ import annotations

import codecs
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from parallel_agents.cli._group import client

if TYPE_CHECKING:
    from parallel_agents.client import Client


class ClientBackend:
    """``mcp_server.backend.Backend`` over the CLI's client."""

    def __init__(self, cl: Client) -> None:
        self.cl = cl

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        return self.cl.request(method, path, json_body=body, params=params, timeout=timeout)

    def text(self, path: str, params: dict[str, Any], cap: int) -> tuple[str, bool, str | None]:
        from urllib.parse import unquote

        notes: list[str] = []

        def noted(headers: dict[str, str]) -> None:
            if headers.get("x-pa-note"):
                notes.append(unquote(headers["x-pa-note"]))

        chunks = self.cl.stream_text(path, params=params, on_headers=noted)
        out: list[str] = []
        size, cut = 0, False
        try:
            for chunk in chunks:
                data = chunk.encode("utf-8")
                if size + len(data) > cap:
                    out.append(codecs.decode(data[: cap - size], "utf-8", "ignore"))
                    cut = True
                    break
                out.append(chunk)
                size += len(data)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        return "".join(out), cut, notes[0] if notes else None

    def refresh(self) -> None:
        self.cl.refresh()


@click.command("mcp")
def mcp() -> None:
    """Serve pa's tools to an agent over MCP (stdio): `claude mcp add pa -- pa mcp`.

    \b
    Tools: new_session, list_sessions, session_status, wait, diff, send, conflicts,
    check, merge, discard, compare, plan_run, plan_status (docs/mcp.md). Sessions it
    starts are children of $PA_SESSION_ID when an agent pa runs starts it. Merge and
    discard answer an error unless the setting mcp.allow_merge is true.
    """
    from parallel_agents.config import load_settings
    from parallel_agents.mcp_server.tools import Tools
    from parallel_agents.mcp_server.verbs import build

    settings = load_settings()
    tools = Tools(
        ClientBackend(client()),
        settings,
        parent=os.environ.get("PA_SESSION_ID") or None,
        cwd=Path.cwd(),
    )
    build(tools).run("stdio")
