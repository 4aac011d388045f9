"""Map-reduce (issue 15 §4): start a map group, list and show map groups, resume and reduce one.

The verbs live in ``sessions.mapreduce``; a group's JSON is its report (``sessions.map_report``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from parallel_agents.cmdline import argv_of
from parallel_agents.errors import UsageError
from parallel_agents.server.routes._request import thread_app
from parallel_agents.sessions import map_report, mapreduce

router = APIRouter(prefix="/api/v1")


class NewMap(BaseModel):
    model_config = ConfigDict(extra="forbid")
    template: str = Field(description="The prompt of every item: {item}, or {FIELD} of JSON lines.")
    items: str = Field(description="The items, one a line (or one JSON object a line).")
    repo: str | None = Field(None, description="Registered repo name, or a path to a repo.")
    agent: str | None = None
    cmd: list[str] | str | None = Field(
        None, description="Program of the command agent: argv list, or split like a shell."
    )
    model: str | None = None
    base: str | None = None
    name: str | None = Field(None, description="The group's name (default: map-<id>).")
    timeout: float | None = Field(None, gt=0, description="Seconds per turn before a stop.")
    env: dict[str, str] | None = Field(
        None, description="Extra environment for every agent (kept in a 0600 file, never echoed)."
    )


class Reduce(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent: str | None = None
    cmd: list[str] | str | None = None
    model: str | None = None
    prompt: str | None = Field(None, description="More instructions for the reducer.")
    name: str | None = Field(None, description="The reduce group's name.")
    timeout: float | None = Field(None, gt=0, description="Seconds per turn before a stop.")
    env: dict[str, str] | None = Field(
        None, description="Extra environment for the reducer (kept in a 0600 file, never echoed)."
    )


@router.post("/maps", status_code=201)
def new_map(request: Request, body: NewMap) -> dict[str, Any]:
    if not body.repo:
        raise UsageError(
            "say which repo: 'repo' is a registered repo name or a path",
            hint="see GET /api/v1/repos",
        )
    return mapreduce.start_map(
        thread_app(request),
        body.template,
        body.items,
        repo=body.repo,
        agent=body.agent,
        cmd=argv_of(body.cmd),
        model=body.model,
        base=body.base,
        name=body.name,
        timeout=body.timeout,
        env=body.env,
    )


@router.get("/maps")
def list_maps(request: Request) -> dict[str, Any]:
    return {"groups": map_report.map_groups(thread_app(request).store)}


@router.get("/maps/{ref}")
def show_map(request: Request, ref: str) -> dict[str, Any]:
    return map_report.report(thread_app(request).store, ref)


@router.post("/maps/{ref}/resume")
def resume(request: Request, ref: str) -> dict[str, Any]:
    return mapreduce.resume(thread_app(request), ref)


@router.post("/maps/{ref}/reduce", status_code=201)
def reduce(request: Request, ref: str, body: Reduce) -> dict[str, Any]:
    return mapreduce.reduce(
        thread_app(request),
        ref,
        agent=body.agent,
        cmd=argv_of(body.cmd),
        model=body.model,
        prompt=body.prompt,
        name=body.name,
        timeout=body.timeout,
        env=body.env,
    )
