"""Workspaces (issue 16 §3): ``POST /api/v1/sessions/{id}/open`` opens a session's
worktree in the user's editor, as `pa open` does (sessions/editor.py).

Only when the server runs on the user's own machine: the request must come from
127.0.0.1 (or ::1), i.e. a browser on this machine, so a dashboard reached through a
tunnel or a proxy from elsewhere never starts programs on a desktop nobody there sees.
Only GUI editors: a terminal editor would have no terminal here. Body: ``{"editor":
NAME-or-COMMAND, "print": bool}``; ``print`` answers the command without running it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from parallel_agents.errors import Conflict, UsageError
from parallel_agents.server.routes._request import thread_app
from parallel_agents.sessions import editor, shell

router = APIRouter(prefix="/api/v1")

LOCAL = {"127.0.0.1", "::1"}


class OpenBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    editor: str | None = Field(None, description="code, cursor, zed, idea, … or a command.")
    print: bool = Field(False, description="Answer the command without running it.")


@router.post("/sessions/{sid}/open")
def open_worktree(request: Request, sid: str, body: OpenBody | None = None) -> dict[str, Any]:
    body = body or OpenBody(editor=None, print=False)
    host = request.client.host if request.client else ""
    if host not in LOCAL:
        raise UsageError(
            "opening an editor works only from a browser on the server's machine "
            f"(this request came from {host or 'an unknown address'})",
            hint="run `pa open ID` on the machine where the worktree is",
        )
    app = thread_app(request)
    s = app.store.resolve_session(sid)
    wt = shell.check_worktree(s)
    cmd = editor.resolve(wt, body.editor or app.settings.editor)
    out: dict[str, Any] = {"id": s.id, "worktree": str(wt), **cmd.to_json(), "started": False}
    if body.print:
        return out
    if not cmd.gui:
        raise Conflict(
            f"{cmd.name} is a terminal editor: the server has no terminal to run it in",
            hint=f"run `pa open {s.id}` in a terminal, or set the `editor` setting to a GUI "
            "editor (code, cursor, zed, idea, …)",
        )
    editor.launch(cmd, wt)
    out["started"] = True
    return out
