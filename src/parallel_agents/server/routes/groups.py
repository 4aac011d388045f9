"""Groups over the API (issue 15): list and show them; best-of-N attempts: start, compare,
judge, pick (``sessions.attempts``, ``sessions.judge``)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from parallel_agents.cmdline import argv_of
from parallel_agents.errors import UsageError
from parallel_agents.server.routes._request import thread_app
from parallel_agents.sessions import attempts as attempts_service
from parallel_agents.sessions.views import session_json

router = APIRouter(prefix="/api/v1")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewAttempts(_Body):
    prompt: str
    attempts: int = Field(description="How many sessions try the prompt (1..limits.max_attempts).")
    agents: list[str] | None = Field(None, description="Agents, round-robin over the attempts.")
    repo: str | None = Field(None, description="Registered repo name, or a path to a repo.")
    cmd: list[str] | str | None = Field(None, description="Program of the command agent.")
    model: str | None = None
    base: str | None = None
    title: str | None = None
    name: str | None = Field(None, description="The group's name (default attempts-<id>).")
    timeout: float | None = Field(None, gt=0)
    env: dict[str, str] | None = None
    parent: str | None = Field(None, description="Id of the parent session (issue 18).")
    # issue 19: where the attempts' turns run (default: setting runtime.kind)
    runtime: Literal["local", "ray"] | None = Field(None, description="local or ray.")


class JudgeBody(_Body):
    agent: str = Field(min_length=1)
    cmd: list[str] | str | None = None
    model: str | None = None
    timeout: float | None = Field(None, gt=0, le=86_400)


class PickBody(_Body):
    attempt: str = Field(min_length=1, max_length=20)
    merge: bool = True
    strategy: Literal["merge", "squash", "rebase"] | None = None
    into: str | None = Field(default=None, max_length=255)


@router.get("/groups")
def list_groups(request: Request, kind: str | None = None) -> dict[str, Any]:
    store = thread_app(request).store
    out = []
    for g in store.groups(kind):
        d = g.to_json()
        states: dict[str, int] = {}
        # An attempts group's tasks follow their sessions: brought up to date first.
        ts = attempts_service.tasks(store, g) if g.kind == "attempts" else store.group_tasks(g.id)
        for t in ts:
            states[t.state] = states.get(t.state, 0) + 1
        d["tasks"] = states
        out.append(d)
    return {"groups": out}


@router.get("/groups/{ref}")
def show_group(request: Request, ref: str) -> dict[str, Any]:
    store = thread_app(request).store
    return attempts_service.group_json(store, store.group(ref))


@router.post("/attempts", status_code=201)
def new_attempts(request: Request, body: NewAttempts) -> dict[str, Any]:
    app = thread_app(request)
    if not body.repo:
        raise UsageError("say which repo: 'repo' is a registered repo name or a path")
    g, made = attempts_service.start(
        app,
        body.prompt,
        body.attempts,
        body.agents,
        repo=body.repo,
        cmd=argv_of(body.cmd),
        model=body.model,
        base=body.base,
        title=body.title,
        timeout=body.timeout,
        env=body.env,
        name=body.name,
        parent=body.parent,
        runtime=body.runtime,
    )
    return {
        "group": attempts_service.group_json(app.store, g),
        "sessions": [session_json(s) for s in made],
    }


@router.get("/groups/{ref}/compare")
def compare(request: Request, ref: str) -> dict[str, Any]:
    return attempts_service.compare(thread_app(request), ref)


@router.post("/groups/{ref}/judge")
def judge(request: Request, ref: str, body: JudgeBody) -> dict[str, Any]:
    from parallel_agents.sessions import judge as judge_service

    app = thread_app(request)
    g = attempts_service.group(app.store, ref)
    members = [
        (t.key, app.store.session(t.session_id))
        for t in attempts_service.attempt_tasks(attempts_service.tasks(app.store, g))
        if t.session_id and t.state != "discarded"
    ]
    judge_service.start(
        app, g, members, body.agent, cmd=argv_of(body.cmd), model=body.model, timeout=body.timeout
    )
    return attempts_service.compare(app, ref)


@router.post("/groups/{ref}/pick")
def pick(request: Request, ref: str, body: PickBody) -> dict[str, Any]:
    return attempts_service.pick(
        thread_app(request),
        ref,
        body.attempt,
        merge=body.merge,
        strategy=body.strategy,
        into=body.into,
    )
