"""Issue 18: talk to pa's MCP server through the SDK's own client (stdio or HTTP)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import CallToolResult

T = TypeVar("T")

TOOLS = {
    "new_session", "list_sessions", "session_status", "wait", "diff", "send", "conflicts",
    "check", "merge", "discard", "compare", "plan_run", "plan_status",
}


@asynccontextmanager
async def stdio(
    home: Path, cwd: Path, env: dict[str, str] | None = None
) -> AsyncIterator[ClientSession]:
    """`pa mcp` as a subprocess of the SDK's stdio client, on PA_HOME ``home``."""
    full = dict(os.environ, PA_HOME=str(home), **(env or {}))
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "parallel_agents", "mcp"], env=full, cwd=str(cwd)
    )
    with open(os.devnull, "w") as quiet:
        async with stdio_client(params, errlog=quiet) as (r, w), ClientSession(r, w) as s:
            await s.initialize()
            yield s


def run(fn: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(asyncio.wait_for(fn(), timeout=240))  # type: ignore[arg-type]


def text(res: CallToolResult) -> str:
    return "\n".join(getattr(c, "text", "") for c in res.content)


async def ok(s: ClientSession, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    """Call ``tool``; it must succeed with structured content, which is returned."""
    res = await s.call_tool(tool, args)
    assert not res.isError, (tool, args, text(res))
    assert res.structuredContent is not None, tool
    assert text(res).strip(), tool  # a concise text too
    return res.structuredContent


async def fails(s: ClientSession, tool: str, args: dict[str, Any]) -> str:
    """Call ``tool``; it must answer a tool error, whose text is returned."""
    res = await s.call_tool(tool, args)
    assert res.isError, (tool, args, text(res))
    return text(res)


@asynccontextmanager
async def http(
    url: str, token: str | None, headers: dict[str, str] | None = None
) -> AsyncIterator[ClientSession]:
    """The server's ``/mcp`` through the SDK's streamable HTTP client."""
    import httpx
    from mcp.client.streamable_http import streamable_http_client

    hdrs = dict(headers or {})
    if token is not None:
        hdrs["Authorization"] = f"Bearer {token}"
    async with (
        httpx.AsyncClient(headers=hdrs, timeout=httpx.Timeout(30, read=300)) as client,
        streamable_http_client(url + "/mcp", http_client=client) as (r, w, _),
        ClientSession(r, w) as s,
    ):
        await s.initialize()
        yield s
