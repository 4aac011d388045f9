"""The registered repositories: list, add, remove, move."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from parallel_agents.server.routes._request import thread_app

router = APIRouter(prefix="/api/v1")


class NewRepo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="Path of the git repository (on the server's machine).")
    name: str | None = None
    base: str | None = Field(None, description="Default base branch for new sessions.")


@router.get("/repos")
def list_repos(request: Request) -> dict[str, Any]:
    return {"repos": [r.__dict__ for r in thread_app(request).store.repos()]}


@router.post("/repos", status_code=201)
def add_repo(request: Request, body: NewRepo) -> dict[str, Any]:
    r = thread_app(request).add_repo(body.path, name=body.name, base=body.base)
    return dict(r.__dict__)


@router.delete("/repos/{name}")
def remove_repo(request: Request, name: str) -> dict[str, Any]:
    r = thread_app(request).remove_repo(name)
    return {"removed": r.__dict__}


class MovedRepo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="Where the repository is now (on the server's machine).")


@router.post("/repos/{name}/move")
def move_repo(request: Request, name: str, body: MovedRepo) -> dict[str, Any]:
    """Re-point a registered repo at the folder it was moved to; repair worktree links."""
    return thread_app(request).move_repo(name, body.path)
