"""Every MCP tool and resource of pa, registered on a FastMCP server (see docs/mcp.md).

Sessions are named by id (or a unique prefix) or by their unique title: a lead agent
names its children as it titled them, before it could know their ids.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from mcp.server.fastmcp import Context, FastMCP
from mcp.types import CallToolResult
from pydantic import Field

from parallel_agents.config import mcp_allow_merge
from parallel_agents.errors import PAError
from parallel_agents.mcp_server.shapes import (
    Answer,
    DiffOut,
    NewSessionOut,
    SessionInfo,
    SessionsOut,
    WaitOut,
)
from parallel_agents.mcp_server.tools import (
    DIFF_CAP,
    LOG_CAP,
    MAX_WAIT,
    MERGE_OFF,
    WORKING,
    Tools,
    brief,
    line,
    result,
    seg,
)

INSTRUCTIONS = (
    "pa runs coding agents in parallel, each in its own git worktree and branch. "
    "Start sessions with new_session (give each a unique title), wait for them with wait, "
    "read their work with diff, follow up with send. Merging is a person's call unless "
    "mcp.allow_merge is set."
)

NAME = "pa"
Ctx = Context[Any, Any, Any]
Id = Annotated[str, Field(description="A session's id (or a unique prefix) or its unique title.")]


def build(tools: Tools) -> FastMCP:
    """The MCP server with every tool and resource, over ``tools``' backend."""
    mcp = FastMCP(NAME, instructions=INSTRUCTIONS, log_level="WARNING")
    register(mcp, tools)
    return mcp


def register(mcp: FastMCP, t: Tools) -> None:
    """Add every tool and resource to ``mcp``."""
    b = t.backend

    def info(s: dict[str, Any], summary: bool = False) -> dict[str, Any]:
        return brief(s, t.summary(s["id"]) if summary else None)

    @mcp.tool()
    async def new_session(
        prompt: Annotated[str, Field(min_length=1, description="The task for the agent.")],
        ctx: Ctx,
        agent: Annotated[str | None, Field(description="Agent CLI (default: pa's).")] = None,
        model: str | None = None,
        repo: Annotated[
            str | None, Field(description="Repo name or path (default: the caller's).")
        ] = None,
        base: Annotated[str | None, Field(description="Base branch or commit.")] = None,
        attempts: Annotated[
            int, Field(ge=1, le=100, description="More than 1: a best-of-N group.")
        ] = 1,
        title: Annotated[
            str | None, Field(description="A unique title to name the session by later.")
        ] = None,
        cmd: Annotated[
            list[str] | None, Field(description="The command agent's argv (agent 'command').")
        ] = None,
        runtime: Annotated[
            Literal["local", "ray"] | None,
            Field(description="Where its turns run: this machine or the Ray cluster (issue 19)."),
        ] = None,
    ) -> Annotated[CallToolResult, NewSessionOut]:
        """Start a session (or `attempts` sessions on one prompt) in its own worktree."""
        parent = t.caller(ctx)

        def go() -> dict[str, Any]:
            if title:
                taken = [
                    s["id"]
                    for s in b.call("GET", "/sessions", params={"all": "1"})["sessions"]
                    if s.get("title") == title
                ]
                if taken:
                    raise PAError(
                        f"the title {title!r} is taken by session {taken[0]}",
                        hint="give each session its own title",
                    )
            body: dict[str, Any] = {
                "prompt": prompt,
                "repo": repo or t.default_repo(parent),
                "model": model,
                "base": base,
                "title": title,
                "cmd": cmd,
                "runtime": runtime,
            }
            if attempts > 1:  # the attempts are children too: linked and capped as one
                body.update(attempts=attempts, agents=[agent] if agent else None, parent=parent)
                out = b.call("POST", "/attempts", body=_clean(body), timeout=900)
                return {"sessions": out["sessions"], "group": out["group"].get("name")}
            body.update(agent=agent, parent=parent)  # the lineage link, capped by pa
            out = b.call("POST", "/sessions", body=_clean(body), timeout=900)
            return {"sessions": out["sessions"], "group": None}

        out = await t.run(go)
        t.started.setdefault(parent, []).extend(s["id"] for s in out["sessions"])
        data = NewSessionOut(sessions=[SessionInfo(**brief(s)) for s in out["sessions"]],
                             group=out["group"])
        text = "started:\n" + "\n".join(line(s) for s in out["sessions"])
        return result(text, data)

    @mcp.tool()
    async def list_sessions(
        ctx: Ctx,
        status: Annotated[
            str | None, Field(description="Comma-separated statuses, e.g. 'idle,failed'.")
        ] = None,
        repo: Annotated[str | None, Field(description="Repo name or path.")] = None,
        mine: Annotated[bool, Field(description="Only the sessions the caller started.")] = False,
        all: Annotated[bool, Field(description="Include merged and discarded.")] = False,
    ) -> Annotated[CallToolResult, SessionsOut]:
        """List sessions (live ones unless `all` or `status` says otherwise)."""
        caller = t.caller(ctx)

        def go() -> list[dict[str, Any]]:
            b.refresh()
            params = {"status": status, "repo": repo, "all": "1" if all or mine else None}
            found = b.call("GET", "/sessions", params=_clean(params))["sessions"]
            if mine:
                kids = set(t.children(caller))
                found = [s for s in found if s["id"] in kids]
            return [brief(s) for s in found]

        found = await t.run(go)
        text = "\n".join(line(s) for s in found) or "no sessions"
        return result(text, SessionsOut(sessions=[SessionInfo(**s) for s in found]))

    @mcp.tool()
    async def session_status(id: Id) -> Annotated[CallToolResult, SessionInfo]:
        """One session: its status, branch, worktree and the end of its last answer."""

        def go() -> dict[str, Any]:
            b.refresh()
            return info(t.resolve(id), summary=True)

        s = await t.run(go)
        text = line(s) + (f"\n{s['summary']}" if s.get("summary") else "")
        return result(text, SessionInfo(**s))

    @mcp.tool()
    async def wait(
        ctx: Ctx,
        ids: Annotated[
            list[str], Field(description="Sessions (ids or titles); empty: all the caller's own.")
        ] = [],  # noqa: B006 - the schema's default; never mutated
        timeout: Annotated[
            float, Field(gt=0, le=MAX_WAIT, description="Seconds to wait at most.")
        ] = 600,
    ) -> Annotated[CallToolResult, WaitOut]:
        """Wait until each session stops working (idle, needs input, failed, stopped…)."""
        caller = t.caller(ctx)

        def targets() -> list[str]:
            if ids:
                return [t.resolve(x)["id"] for x in ids]
            mine = t.children(caller)
            if not mine:
                raise PAError(
                    "no sessions to wait for: this caller started none",
                    hint="name them: wait(ids=[...])",
                )
            return mine

        wanted = await t.run(targets)
        deadline = anyio.current_time() + timeout
        delay = 0.05
        while True:

            def poll() -> list[dict[str, Any]]:
                b.refresh()
                return [b.call("GET", f"/sessions/{seg(i)}") for i in wanted]

            now = await t.run(poll)
            busy = [s["id"] for s in now if s["status"] in WORKING]
            if not busy or anyio.current_time() >= deadline:
                break
            await anyio.sleep(min(delay, max(0.0, deadline - anyio.current_time())))
            delay = min(1.0, delay * 1.5)
        done = await t.run(lambda: [info(s, summary=s["status"] not in WORKING) for s in now])
        data = WaitOut(
            sessions=[SessionInfo(**s) for s in done], timed_out=bool(busy), still_working=busy
        )
        parts = [line(s) + (f"\n  {s['summary']}" if s.get("summary") else "") for s in done]
        if busy:
            parts.append(f"timed out after {timeout:g}s; still working: {', '.join(busy)}")
        return result("\n".join(parts), data)

    @mcp.tool()
    async def diff(
        id: Id,
        format: Literal["stat", "patch"] = "patch",
        max_bytes: Annotated[int, Field(ge=1000, le=10_000_000)] = DIFF_CAP,
    ) -> Annotated[CallToolResult, DiffOut]:
        """A session's changes against its base: a stat or the patch, cut at max_bytes."""

        def go() -> tuple[str, str, bool, str | None]:
            sid = t.resolve(id)["id"]
            text, cut, note = b.text(f"/sessions/{seg(sid)}/diff", {"format": format}, max_bytes)
            return sid, text, cut, note

        sid, text, cut, note = await t.run(go)
        if cut:
            more = f"cut at {max_bytes} bytes: ask with a larger max_bytes, or read the "
            note = ((note + "; ") if note else "") + more + f"resource pa://sessions/{sid}/diff"
        data = DiffOut(id=sid, format=format, text=text, truncated=cut, note=note)
        shown = (text or "(no changes)\n") + (f"\n[{note}]" if note else "")
        return result(shown, data)

    @mcp.tool()
    async def send(
        id: Id, prompt: Annotated[str, Field(min_length=1)]
    ) -> Annotated[CallToolResult, SessionInfo]:
        """Send a follow-up prompt: the session's next turn, same worktree and conversation."""

        def go() -> dict[str, Any]:
            sid = t.resolve(id)["id"]
            b.refresh()
            return brief(b.call("POST", f"/sessions/{seg(sid)}/send", body={"prompt": prompt}))

        s = await t.run(go)
        return result(line(s), SessionInfo(**s))

    @mcp.tool()
    async def conflicts(
        ids: Annotated[list[str], Field(description="Sessions to look at; empty: all.")] = [],  # noqa: B006
        repo: str | None = None,
    ) -> Annotated[CallToolResult, Answer]:
        """Which live sessions would conflict with their base or with each other."""

        def go() -> dict[str, Any]:
            wanted = {t.resolve(x)["id"] for x in ids}
            data = dict(b.call("GET", "/conflicts", params=_clean({"repo": repo}), timeout=600))
            if wanted:
                data["sessions"] = {k: v for k, v in data["sessions"].items() if k in wanted}
                data["pairs"] = [p for p in data["pairs"] if {p["a"], p["b"]} & wanted]
            return data

        data = await t.run(go)
        rows = [f"{p['a']} × {p['b']}: {', '.join(p['paths'])}" for p in data["pairs"]]
        rows += [
            f"{sid} conflicts with its base: {', '.join(s['base_conflict_paths'])}"
            for sid, s in data["sessions"].items()
            if not s.get("clean_with_base", True)
        ]
        return result("\n".join(rows) or "no conflicts forecast", Answer(data=data))

    @mcp.tool()
    async def check(
        id: Id,
        command: Annotated[str | None, Field(description="Default: the repo's check.")] = None,
    ) -> Annotated[CallToolResult, Answer]:
        """Run the repo's check (tests) in the session's worktree and report the outcome."""

        def go() -> dict[str, Any]:
            sid = t.resolve(id)["id"]
            body = _clean({"command": command})
            return dict(b.call("POST", f"/sessions/{seg(sid)}/check", body=body, timeout=3600))

        data = await t.run(go)
        verdict = "passed" if data.get("ok") else "timed out" if data.get("timed_out") else "failed"
        text = f"check {verdict}: {data.get('command', '')} (exit {data.get('exit_code')})"
        tail = str(data.get("output_tail") or "")[-2000:]
        return result(text + (f"\n{tail}" if tail else ""), Answer(data=data))

    def guard(verb: str) -> None:
        if not mcp_allow_merge(t.settings):
            raise PAError(f"{verb} is off over MCP: {MERGE_OFF}", hint="pa merge ID; pa discard ID")

    @mcp.tool()
    async def merge(
        id: Id, strategy: Literal["merge", "squash", "rebase"] | None = None
    ) -> Annotated[CallToolResult, Answer]:
        """Merge a session's branch into its base with pa's merge code (needs mcp.allow_merge)."""

        def go() -> dict[str, Any]:
            guard("merge")
            sid = t.resolve(id)["id"]
            body = _clean({"strategy": strategy})
            return dict(b.call("POST", f"/sessions/{seg(sid)}/merge", body=body, timeout=3600))

        data = await t.run(go)
        return result(_merged_text(data), Answer(data=data))

    @mcp.tool()
    async def discard(id: Id) -> Annotated[CallToolResult, Answer]:
        """Discard a session: stop it, archive its work, remove its worktree (mcp.allow_merge)."""

        def go() -> dict[str, Any]:
            guard("discard")
            sid = t.resolve(id)["id"]
            return dict(b.call("POST", f"/sessions/{seg(sid)}/discard", timeout=600))

        data = await t.run(go)
        return result(f"discarded {data.get('id', id)} (its work is archived)", Answer(data=data))

    @mcp.tool()
    async def compare(
        group: Annotated[str, Field(min_length=1, description="An attempts group's name or id.")],
    ) -> Annotated[CallToolResult, Answer]:
        """Compare a best-of-N group's attempts side by side (changes, checks, status)."""
        data = await t.run(
            lambda: dict(b.call("GET", f"/groups/{seg(group)}/compare", timeout=600))
        )
        rows = [
            f"{a.get('label', '')} {a.get('session', a.get('id', ''))} {a.get('status', '')}"
            for a in data.get("attempts", [])
        ]
        return result("\n".join(rows) or f"group {group}", Answer(data=data))

    @mcp.tool()
    async def plan_run(
        plan: Annotated[
            str, Field(min_length=1, description="A plan file's TOML text, or its path.")
        ],
        name: str | None = None,
    ) -> Annotated[CallToolResult, Answer]:
        """Check a plan (docs/plan.schema.json) and start it: its tasks run in order."""

        def go() -> dict[str, Any]:
            body: dict[str, Any] = {"text": plan, "name": name}
            if "\n" not in plan and plan.strip().endswith(".toml"):
                path = Path(plan.strip()).expanduser()
                if not path.is_absolute() and t.cwd is not None:
                    path = t.cwd / path
                try:
                    body["text"] = path.read_text(encoding="utf-8")
                except OSError as e:
                    raise PAError(f"cannot read the plan file {path}: {e}") from None
                body.update(source=str(path), folder=str(path.parent))
            if t.cwd is not None:
                body["cwd"] = str(t.cwd)
            return dict(b.call("POST", "/plans", body=_clean(body), timeout=600))

        data = await t.run(go)
        return result(_plan_text(data), Answer(data=data))

    @mcp.tool()
    async def plan_status(
        name: Annotated[str | None, Field(description="A plan's name; none: every plan.")] = None,
    ) -> Annotated[CallToolResult, Answer]:
        """A plan's tasks and their states (or every plan, in brief)."""

        def go() -> dict[str, Any]:
            b.refresh()
            if name:
                return dict(b.call("GET", f"/plans/{seg(name)}", timeout=600))
            return {"plans": b.call("GET", "/plans", timeout=600)["plans"]}

        data = await t.run(go)
        if name:
            text = _plan_text(data)
        else:
            text = "\n".join(_plan_text(p) for p in data["plans"]) or "no plans"
        return result(text, Answer(data=data))

    @mcp.resource("pa://sessions/{sid}/log", mime_type="text/plain")
    async def session_log(sid: str) -> str:
        """A session's conversation and output as text (the newest end, capped)."""
        return await t.run(lambda: _log_text(t, sid))

    @mcp.resource("pa://sessions/{sid}/diff", mime_type="text/x-diff")
    async def session_diff(sid: str) -> str:
        """A session's patch against its base."""

        def go() -> str:
            real = t.resolve(sid)["id"]
            text, cut, _ = b.text(f"/sessions/{seg(real)}/diff", {"format": "patch"}, 10_000_000)
            return text + ("\n[cut at 10 MB]\n" if cut else "")

        return await t.run(go)


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _merged_text(data: dict[str, Any]) -> str:
    merged = data.get("merged") or []
    rows = [f"merged {m.get('id', m) if isinstance(m, dict) else m}" for m in merged]
    rows += [f"not merged: {x}" for x in data.get("failed") or data.get("skipped") or []]
    return "\n".join(rows) or "merge done"


def _plan_text(p: dict[str, Any]) -> str:
    head = p.get("plan") or p
    tasks = p.get("tasks")
    if isinstance(tasks, list):
        states = ", ".join(f"{x.get('key', '?')}={x.get('state', '?')}" for x in tasks)
    else:  # the plan list: tasks counted by state
        states = ", ".join(f"{k} {v}" for k, v in (p.get("counts") or {}).items())
    return f"plan {head.get('name', '?')} {head.get('state', '')}".rstrip() + (
        f": {states}" if states else ""
    )


def _log_text(t: Tools, ref: str) -> str:
    sid = t.resolve(ref)["id"]
    out: list[str] = []
    size = 0
    after = 0
    while True:
        page = t.backend.call(
            "GET",
            f"/sessions/{seg(sid)}/events",
            params={"after_seq": after, "limit": 1000, "kinds": "message,output,result,error"},
        )
        for e in page.get("events", []):
            payload = e.get("payload") or {}
            text = str(payload.get("text") or payload.get("message") or "")
            if text:
                out.append(f"[{e['kind']}] {text}")
                size += len(text)
        after = page.get("last_seq") or after
        if not page.get("more"):
            break
    joined = "\n".join(out)
    return joined if size <= LOG_CAP else "[…older output cut]\n" + joined[-LOG_CAP:]
