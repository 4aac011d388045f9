"""Issue 18: `pa mcp` over stdio, through the MCP SDK's own client, against a real pa
server with command agents: every tool, the resources, bad arguments, mcp.allow_merge."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from pydantic import AnyUrl

from tests.conftest import git
from tests.mcp._client import TOOLS, fails, ok, run, stdio, text
from tests.server.conftest import Srv, repo_path, start_server

__all__ = ["repo_path", "start_server"]

PY = sys.executable


def writes(name: str, content: str = "made\n", *, then: str = "done") -> list[str]:
    """A command agent that writes ``name`` in its worktree and answers ``then``."""
    code = f"open({name!r}, 'w').write({content!r}); print({then!r})"
    return [PY, "-c", code]


def test_tools_are_listed_with_input_and_output_schemas(
    start_server: Callable[..., Srv], repo_path: Path
) -> None:
    """issue 18: `pa mcp` lists exactly pa's tools, each with an input and an output
    schema; new_session takes prompt (required), agent, model, repo, base, attempts, title."""
    srv = start_server()

    async def go() -> None:
        async with stdio(srv.home, repo_path) as s:
            listed = {t.name: t for t in (await s.list_tools()).tools}
            assert set(listed) == TOOLS
            for t in listed.values():
                assert t.description and t.inputSchema["type"] == "object", t.name
                assert t.outputSchema is not None, t.name
            new = listed["new_session"].inputSchema
            assert new["required"] == ["prompt"]
            assert {"prompt", "agent", "model", "repo", "base", "attempts", "title"} <= set(
                new["properties"]
            )
            assert set(listed["wait"].inputSchema["properties"]) == {"ids", "timeout"}
            assert listed["diff"].inputSchema["properties"]["format"]["enum"] == ["stat", "patch"]
            out = listed["wait"].outputSchema
            assert {"sessions", "timed_out", "still_working"} <= set(out["properties"])
            templates = (await s.list_resource_templates()).resourceTemplates
            assert {t.uriTemplate for t in templates} == {
                "pa://sessions/{sid}/log",
                "pa://sessions/{sid}/diff",
            }

    run(go)


def test_a_lead_starts_waits_for_and_reads_its_children(
    start_server: Callable[..., Srv], repo_path: Path, tmp_path: Path
) -> None:
    """issue 18: an agent's `pa mcp` (PA_SESSION_ID set, as pa sets it) starts titled
    children in its own repo, waits for "its own" with no ids, reads diffs by title, sends
    a follow-up, asks status, conflicts, check, compare, plans and the resources; merge and
    discard are refused while mcp.allow_merge is off, and the work stays."""
    srv = start_server()
    [lead] = srv.client.new_sessions("lead", repo=repo_path, cmd=[PY, "-c", "pass"])
    srv.wait_status(lead["id"], "idle")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    async def go() -> None:
        env = {"PA_SESSION_ID": lead["id"]}
        async with stdio(srv.home, elsewhere, env) as s:
            a = await ok(s, "new_session", {
                "prompt": "write alpha", "title": "alpha", "agent": "command",
                "cmd": writes("alpha.txt", "x" * 5000, then="alpha is written"),
            })
            b = await ok(s, "new_session", {
                "prompt": "write beta", "title": "beta", "agent": "command",
                "cmd": writes("beta.txt", then="beta is written"),
            })
            aid, bid = a["sessions"][0]["id"], b["sessions"][0]["id"]
            assert a["sessions"][0]["repo"] == "repo"  # the lead's repo, not the cwd
            assert "the title 'alpha' is taken" in await fails(
                s, "new_session", {"prompt": "again", "title": "alpha", "cmd": ["true"]}
            )
            waited = await ok(s, "wait", {"timeout": 120})
            assert waited["timed_out"] is False and waited["still_working"] == []
            by = {x["id"]: x for x in waited["sessions"]}
            assert set(by) == {aid, bid}
            assert by[aid]["status"] == "idle" and by[aid]["summary"] == "alpha is written"
            assert by[bid]["summary"] == "beta is written"
            assert by[aid]["parent"] == by[bid]["parent"] == lead["id"]  # linked to the lead

            mine = await ok(s, "list_sessions", {"mine": True})
            assert {x["id"] for x in mine["sessions"]} == {aid, bid}
            every = await ok(s, "list_sessions", {})
            assert {aid, bid, lead["id"]} <= {x["id"] for x in every["sessions"]}

            patch = await ok(s, "diff", {"id": "beta"})
            assert patch["id"] == bid and "+made" in patch["text"]
            assert patch["truncated"] is False
            stat = await ok(s, "diff", {"id": "alpha", "format": "stat"})
            assert "alpha.txt" in stat["text"] and "+++" not in stat["text"]
            cut = await ok(s, "diff", {"id": aid, "max_bytes": 1000})
            assert cut["truncated"] is True and len(cut["text"].encode()) <= 1000
            assert "larger max_bytes" in cut["note"]

            st = await ok(s, "session_status", {"id": "alpha"})
            assert st["id"] == aid and st["status"] == "idle" and st["branch"]
            sent = await ok(s, "send", {"id": "beta", "prompt": "once more"})
            assert sent["id"] == bid
            again = await ok(s, "wait", {"ids": ["beta"], "timeout": 120})
            assert again["sessions"][0]["status"] == "idle"
            assert len(srv.session(bid)["turns"]) == 2

            await ok(s, "conflicts", {})
            await ok(s, "conflicts", {"ids": ["alpha"]})
            checked = await ok(s, "check", {"id": "alpha", "command": "test -f alpha.txt"})
            assert checked["data"]["ok"] is True
            failed = await ok(s, "check", {"id": "alpha", "command": "test -f nothing.txt"})
            assert failed["data"]["ok"] is False

            for verb in ("merge", "discard"):
                refused = await fails(s, verb, {"id": "alpha"})
                assert "a person merges: pa merge ID, or set mcp.allow_merge = true" in refused
            assert srv.session(aid)["status"] == "idle"  # nothing merged, nothing archived

            group = await ok(s, "new_session", {
                "prompt": "try", "attempts": 2, "title": "trio", "cmd": writes("g.txt"),
            })
            assert group["group"] and len(group["sessions"]) == 2
            for x in group["sessions"]:  # attempts are the lead's children too
                assert srv.session(x["id"])["parent"] == lead["id"]
            await ok(s, "wait", {"ids": [x["id"] for x in group["sessions"]], "timeout": 120})
            await ok(s, "compare", {"group": group["group"]})

            plan = (
                f'name = "mcp-plan"\n[defaults]\nrepo = "{repo_path}"\n'
                f'[[tasks]]\nid = "t1"\nprompt = "p"\ncmd = ["{PY}", "-c", "pass"]\n'
            )
            started = await ok(s, "plan_run", {"plan": plan})
            assert started["data"]["plan"]["name"] == "mcp-plan"
            status = await ok(s, "plan_status", {"name": "mcp-plan"})
            assert [t["key"] for t in status["data"]["tasks"]] == ["t1"]
            assert "mcp-plan" in text(await s.call_tool("plan_status", {}))

            log = await s.read_resource(AnyUrl(f"pa://sessions/{aid}/log"))
            assert "alpha is written" in log.contents[0].text  # type: ignore[union-attr]
            d = await s.read_resource(AnyUrl("pa://sessions/beta/diff"))
            assert "+made" in d.contents[0].text  # type: ignore[union-attr]

    run(go)


def test_bad_arguments_are_tool_errors_and_the_server_lives_on(
    start_server: Callable[..., Srv], repo_path: Path, tmp_path: Path
) -> None:
    """issue 18: missing or wrong arguments, unknown sessions and unknown tools answer
    clear tool errors (isError), never a crash; `wait` comes back at its timeout."""
    srv = start_server()
    gate = tmp_path / "go-on"
    # The agent works until the test lets it go on (the agent polls, not the test).
    slow = [PY, "-c", f"import os, time\nwhile not os.path.exists({str(gate)!r}): time.sleep(0.02)"]

    async def go() -> None:
        async with stdio(srv.home, repo_path) as s:
            assert "prompt" in await fails(s, "new_session", {})
            assert "attempts" in await fails(s, "new_session", {"prompt": "x", "attempts": 0})
            assert "no session has the id or title 'nope'" in await fails(
                s, "diff", {"id": "nope"}
            )
            assert "format" in await fails(s, "diff", {"id": "nope", "format": "bogus"})
            assert "timeout" in await fails(s, "wait", {"ids": ["x"], "timeout": -1})
            assert "started none" in await fails(s, "wait", {})
            assert "unknown agent" in (
                await fails(s, "new_session", {"prompt": "x", "agent": "no-such-agent"})
            ).lower()
            res = await s.call_tool("no_such_tool", {})
            assert res.isError
            assert "cannot read the plan file" in await fails(s, "plan_run", {"plan": "x.toml"})
            out = await ok(s, "new_session", {"prompt": "x", "title": "slow", "cmd": slow})
            sid = out["sessions"][0]["id"]
            waited = await ok(s, "wait", {"ids": ["slow"], "timeout": 0.2})
            assert waited["timed_out"] is True and waited["still_working"] == [sid]
            gate.touch()
            await ok(s, "wait", {"ids": [sid], "timeout": 120})
            await ok(s, "list_sessions", {})  # still serving

    run(go)


def test_allow_merge_lets_mcp_merge_and_discard(
    start_server: Callable[..., Srv], repo_path: Path
) -> None:
    """issue 18: with mcp.allow_merge = true, merge lands the session's work on its base
    (through pa's merge code) and discard archives a session."""
    srv = start_server(config="[mcp]\nallow_merge = true\n")

    async def go() -> None:
        async with stdio(srv.home, repo_path) as s:
            await ok(s, "new_session", {"prompt": "m", "title": "keep", "cmd": writes("k.txt")})
            await ok(s, "new_session", {"prompt": "d", "title": "drop", "cmd": writes("d.txt")})
            await ok(s, "wait", {"timeout": 120})
            merged = await ok(s, "merge", {"id": "keep", "strategy": "squash"})
            assert merged["data"]
            dropped = await ok(s, "discard", {"id": "drop"})
            assert dropped["data"]

    run(go)
    assert "k.txt" in git(repo_path, "ls-tree", "--name-only", "main")
    statuses = {s["title"]: s["status"] for s in srv.client.list_sessions(all=True)}
    assert statuses == {"keep": "merged", "drop": "discarded"}


