"""Issue 18: the pa server's /mcp (streamable HTTP), through the MCP SDK's own client:
the API's token, Host and Origin rules, the tools, X-PA-Parent, mcp.allow_merge."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import git
from tests.mcp._client import TOOLS, fails, http, ok, run
from tests.server.conftest import Srv, repo_path, start_server

__all__ = ["repo_path", "start_server"]

PY = sys.executable
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "0"},
    },
}
ACCEPT = {"Accept": "application/json, text/event-stream"}


def writes(name: str) -> list[str]:
    return [PY, "-c", f"open({name!r}, 'w').write('made\\n'); print('wrote {name}')"]


def test_mcp_needs_the_token_and_passes_host_and_origin_checks(
    start_server: Callable[..., Srv],
) -> None:
    """issue 18: /mcp answers 401 without the token (or with a wrong one), 400 for a
    foreign Host, 403 for a foreign Origin, and serves MCP with the token."""
    srv = start_server()
    url = srv.url + "/mcp"
    bearer = {"Authorization": f"Bearer {srv.token}", **ACCEPT}
    assert httpx.post(url, json=INIT, headers=ACCEPT).status_code == 401
    wrong = {"Authorization": "Bearer nope", **ACCEPT}
    assert httpx.post(url, json=INIT, headers=wrong).status_code == 401
    assert httpx.post(url, json=INIT, headers={**bearer, "Host": "evil.example:80"}).status_code == 400
    cross = {**bearer, "Origin": "http://evil.example"}
    assert httpx.post(url, json=INIT, headers=cross).status_code == 403
    r = httpx.post(url, json=INIT, headers=bearer)
    assert r.status_code == 200, r.text
    assert r.json()["result"]["serverInfo"]["name"] == "pa"

    async def refused() -> None:
        async with http(srv.url, None) as s:
            await s.list_tools()

    with pytest.raises(BaseException):  # noqa: B017 - the SDK raises its transport's error
        run(refused)


def test_tools_over_http_with_a_parent_header(
    start_server: Callable[..., Srv], repo_path: Path
) -> None:
    """issue 18: over HTTP the same tools answer; X-PA-Parent names the calling session,
    whose repo a new session defaults to and whose children `wait` with no ids waits for;
    sessions are named by title; merge is refused while mcp.allow_merge is off."""
    srv = start_server()
    [lead] = srv.client.new_sessions("lead", repo=repo_path, cmd=[PY, "-c", "pass"])
    srv.wait_status(lead["id"], "idle")

    async def go() -> None:
        async with http(srv.url, srv.token, {"X-PA-Parent": lead["id"]}) as s:
            assert {t.name for t in (await s.list_tools()).tools} == TOOLS
            made = await ok(s, "new_session", {
                "prompt": "w", "title": "web-child", "cmd": writes("w.txt"),
            })
            child = made["sessions"][0]
            assert child["repo"] == "repo" and child["parent"] == lead["id"]
            waited = await ok(s, "wait", {"timeout": 120})
            assert [x["id"] for x in waited["sessions"]] == [child["id"]]
            assert waited["sessions"][0]["summary"] == "wrote w.txt"
            d = await ok(s, "diff", {"id": "web-child", "format": "patch"})
            assert "+made" in d["text"]
            st = await ok(s, "session_status", {"id": "web-child"})
            assert st["status"] == "idle"
            mine = await ok(s, "list_sessions", {"mine": True})
            assert [x["id"] for x in mine["sessions"]] == [child["id"]]
            assert "mcp.allow_merge" in await fails(s, "merge", {"id": "web-child"})
            assert "no session has the id or title" in await fails(s, "send", {
                "id": "missing", "prompt": "x",
            })
            assert "prompt" in await fails(s, "send", {"id": "web-child"})
            await ok(s, "list_sessions", {})
        async with http(srv.url, srv.token) as s:  # no parent: no repo to default to
            assert "say which repo" in await fails(s, "new_session", {"prompt": "x"})
        async with http(srv.url, srv.token, {"X-PA-Parent": "nosuchid"}) as s:
            refused = await fails(s, "new_session", {
                "prompt": "x", "repo": str(repo_path), "cmd": ["true"],
            })
            assert "nosuchid" in refused

    run(go)


def test_allow_merge_over_http(start_server: Callable[..., Srv], repo_path: Path) -> None:
    """issue 18: with mcp.allow_merge = true the server's /mcp merges a session."""
    srv = start_server(config="[mcp]\nallow_merge = true\n")

    async def go() -> None:
        async with http(srv.url, srv.token) as s:
            await ok(s, "new_session", {
                "prompt": "m", "title": "m", "repo": str(repo_path), "cmd": writes("m.txt"),
            })
            await ok(s, "wait", {"ids": ["m"], "timeout": 120})
            await ok(s, "merge", {"id": "m"})

    run(go)
    assert "m.txt" in git(repo_path, "ls-tree", "--name-only", "main")


def test_pa_caps_a_leads_children_over_mcp(
    start_server: Callable[..., Srv], repo_path: Path
) -> None:
    """issue 18: mcp.max_children holds for sessions started over MCP: past it,
    new_session is a tool error and nothing more is made."""
    srv = start_server(config="[mcp]\nmax_children = 1\n")
    [lead] = srv.client.new_sessions("lead", repo=repo_path, cmd=[PY, "-c", "pass"])

    async def go() -> None:
        async with http(srv.url, srv.token, {"X-PA-Parent": lead["id"]}) as s:
            await ok(s, "new_session", {"prompt": "one", "title": "one", "cmd": ["true"]})
            refused = await fails(s, "new_session", {"prompt": "two", "cmd": ["true"]})
            assert "max_children" in refused

    run(go)
    assert len(srv.client.list_sessions(all=True)) == 2  # the lead and its one child


def test_the_rest_of_the_tools_over_http(
    start_server: Callable[..., Srv], repo_path: Path
) -> None:
    """issue 18: every tool answers over HTTP as over stdio (the HTTP backend is another
    path through the server): send, conflicts, check, discard (refused while
    mcp.allow_merge is off), attempts and compare, plan_run and plan_status, and both
    resources."""
    from pydantic import AnyUrl

    srv = start_server()
    [lead] = srv.client.new_sessions("lead", repo=repo_path, cmd=[PY, "-c", "pass"])
    srv.wait_status(lead["id"], "idle")

    async def go() -> None:
        async with http(srv.url, srv.token, {"X-PA-Parent": lead["id"]}) as s:
            await ok(s, "new_session", {"prompt": "w", "title": "h1", "cmd": writes("h.txt")})
            await ok(s, "wait", {"ids": ["h1"], "timeout": 120})
            sent = await ok(s, "send", {"id": "h1", "prompt": "again"})
            assert sent["id"] == (await ok(s, "session_status", {"id": "h1"}))["id"]
            await ok(s, "wait", {"ids": ["h1"], "timeout": 120})
            assert "sessions" in (await ok(s, "conflicts", {}))["data"]
            assert (await ok(s, "check", {"id": "h1", "command": "test -f h.txt"}))["data"]["ok"]
            assert "mcp.allow_merge" in await fails(s, "discard", {"id": "h1"})
            group = await ok(s, "new_session", {
                "prompt": "try", "attempts": 2, "title": "duo", "cmd": writes("g.txt"),
            })
            assert all(x["parent"] == lead["id"] for x in group["sessions"])
            await ok(s, "wait", {"ids": [x["id"] for x in group["sessions"]], "timeout": 120})
            compared = await ok(s, "compare", {"group": group["group"]})
            assert len(compared["data"]["attempts"]) == 2
            plan = (
                f'name = "web-plan"\n[defaults]\nrepo = "{repo_path}"\n'
                f'[[tasks]]\nid = "t1"\nprompt = "p"\ncmd = ["{PY}", "-c", "pass"]\n'
            )
            await ok(s, "plan_run", {"plan": plan})
            status = await ok(s, "plan_status", {"name": "web-plan"})
            assert [t["key"] for t in status["data"]["tasks"]] == ["t1"]
            h1 = (await ok(s, "session_status", {"id": "h1"}))["id"]
            log = await s.read_resource(AnyUrl(f"pa://sessions/{h1}/log"))
            assert "wrote h.txt" in log.contents[0].text  # type: ignore[union-attr]
            d = await s.read_resource(AnyUrl(f"pa://sessions/{h1}/diff"))
            assert "+made" in d.contents[0].text  # type: ignore[union-attr]

    run(go)
