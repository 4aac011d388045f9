"""Issue 16 §3: ``POST /api/v1/sessions/{id}/open`` (the dashboard's Open button): the
same editor choice as `pa open`, only for a request from the server's own machine, and
only GUI editors (the server has no terminal). Through the real Client (in-process)."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.requests import Request

from parallel_agents.client import Client
from parallel_agents.errors import Conflict, UsageError
from parallel_agents.server.routes.workspace import open_worktree
from tests.workspaces.test_open import _records, _setup


def test_open_route_runs_a_gui_editor_and_refuses_terminal_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """issue 16 §3: the route starts the GUI editor on the worktree; a terminal editor is
    refused with a hint; print only answers the command."""
    sid, wt, env, log = _setup(tmp_path, "zed", "fake-vi")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    cl = Client.in_process()
    d = cl.open_worktree(sid, print_only=True)
    assert d["editor"] == "zed" and d["argv"][-1] == wt and d["started"] is False
    assert not log.exists()
    d = cl.open_worktree(sid)
    assert d["started"] is True
    assert _records(log)[0]["argv"] == [wt]
    with pytest.raises(Conflict, match="terminal editor") as e:
        cl.open_worktree(sid, "fake-vi")
    assert e.value.hint and "pa open" in e.value.hint


def test_open_route_refuses_requests_from_elsewhere() -> None:
    """issue 16 §3: a request that does not come from 127.0.0.1 starts nothing."""
    scope = {"type": "http", "method": "POST", "path": "/", "headers": [],
             "client": ("10.1.2.3", 5000)}  # fmt: skip
    with pytest.raises(UsageError, match="only from a browser on the server's machine"):
        open_worktree(Request(scope), "anything")
