"""The MCP server: every tool and resource, written once against a ``Backend``.

Tools run the backend (blocking HTTP or in-process calls) on worker threads, so one
caller's ``wait`` never holds the others up. Every expected failure becomes a tool error
(an ``isError`` result whose text reads ``error: ...`` / ``hint: ...``), never a crash.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import anyio
from mcp.server.fastmcp import Context
from mcp.server.fastmcp.exceptions import ToolError
from mcp.types import CallToolResult, TextContent

from parallel_agents.config import Settings
from parallel_agents.errors import PAError
from parallel_agents.mcp_server.backend import Backend

PARENT_HEADER = "x-pa-parent"  # over HTTP: the calling agent's own session id
WORKING = ("queued", "starting", "running")
MAX_WAIT = 3600.0  # seconds: a wait always comes back, at the latest after this
DIFF_CAP = 100_000  # bytes of diff a tool answer carries by default
LOG_CAP = 200_000
SUMMARY_CHARS = 600
MERGE_OFF = "a person merges: pa merge ID, or set mcp.allow_merge = true"

T = TypeVar("T")


def seg(ref: str) -> str:
    return quote(ref, safe="")


def _fail(e: PAError) -> ToolError:
    text = f"error: {e.message}"
    if e.hint:
        text += f"\nhint: {e.hint}"
    return ToolError(text)


def result(text: str, data: Any) -> CallToolResult:
    structured = data.model_dump(mode="json") if hasattr(data, "model_dump") else data
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structuredContent=structured
    )


def line(s: dict[str, Any]) -> str:
    extra = f"  {s['error']}" if s.get("error") else ""
    return f"{s['id']}  {s['status']:<11} {s.get('title') or ''}{extra}"


def brief(s: dict[str, Any], summary: str | None = None) -> dict[str, Any]:
    keys = ("id", "title", "status", "branch", "worktree", "agent", "error", "parent")
    out = {k: s.get(k) for k in keys}
    out["repo"] = s.get("repo_name") or s.get("repo") or ""
    out["title"] = out["title"] or ""
    if summary is not None:
        out["summary"] = summary
    return out


class Tools:
    """The state one MCP server keeps: its backend, settings and whom it started."""

    def __init__(
        self,
        backend: Backend,
        settings: Settings,
        *,
        parent: str | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.backend = backend
        self.settings = settings
        self.parent = parent  # stdio: PA_SESSION_ID of the agent that runs `pa mcp`
        self.cwd = cwd  # stdio: where a session naming no repo starts
        # Whom each caller started, so `wait` with no ids works even where the server
        # keeps no parent links.
        self.started: dict[str | None, list[str]] = {}

    # -- plumbing ----------------------------------------------------------------------
    async def run(self, fn: Callable[[], T]) -> T:
        try:
            return await anyio.to_thread.run_sync(fn)
        except PAError as e:
            raise _fail(e) from None

    def caller(self, ctx: Context[Any, Any, Any] | None) -> str | None:
        """The session on whose behalf the call comes (its children are "mine")."""
        request = getattr(ctx.request_context, "request", None) if ctx is not None else None
        if request is not None:
            value = request.headers.get(PARENT_HEADER)
            if value:
                return str(value).strip() or None
        return self.parent

    def resolve(self, ref: str) -> dict[str, Any]:
        """A session named by its id (or a unique prefix) or its unique title."""
        ref = ref.strip()
        if not ref:
            raise PAError("name a session: its id or its title")
        every = self.backend.call("GET", "/sessions", params={"all": "1"})["sessions"]
        titled = [s for s in every if s.get("title") == ref]
        if len(titled) == 1:
            return dict(titled[0])
        if len(titled) > 1:
            ids = ", ".join(s["id"] for s in titled)
            raise PAError(
                f"the title {ref!r} names {len(titled)} sessions ({ids})", hint="use an id"
            )
        try:
            return dict(self.backend.call("GET", f"/sessions/{seg(ref)}"))
        except PAError as e:
            raise PAError(
                f"no session has the id or title {ref!r}",
                hint="list_sessions shows them",
            ) from e

    def summary(self, sid: str) -> str | None:
        """The end of the session's last answer: its result, else its last output."""
        for kinds in ("result", "message,output"):
            page = self.backend.call(
                "GET", f"/sessions/{seg(sid)}/events", params={"kinds": kinds, "limit": 1000}
            )
            texts = [str(e.get("payload", {}).get("text") or "") for e in page.get("events", [])]
            texts = [t for t in texts if t.strip()]
            if texts:
                text = texts[-1].strip()
                return text if len(text) <= SUMMARY_CHARS else "…" + text[-SUMMARY_CHARS:]
        return None

    def children(self, caller: str | None) -> list[str]:
        mine = list(self.started.get(caller, []))
        if caller is not None:
            every = self.backend.call("GET", "/sessions", params={"all": "1"})["sessions"]
            mine += [s["id"] for s in every if s.get("parent") == caller and s["id"] not in mine]
        return mine

    def default_repo(self, caller: str | None) -> str:
        if caller is not None:
            try:
                s = self.backend.call("GET", f"/sessions/{seg(caller)}")
                return str(s.get("repo_name") or s["repo"])
            except PAError:
                pass
        if self.cwd is not None:
            return str(self.cwd)
        raise PAError("say which repo: 'repo' is a registered repo name or a path")

