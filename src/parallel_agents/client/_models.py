"""The API's JSON turned back into the model dataclasses."""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from parallel_agents.models import Event, Session


def session_from_json(d: dict[str, Any]) -> Session:
    from parallel_agents.models import Session, Status

    names = {f.name for f in fields(Session)}
    kw = {k: v for k, v in d.items() if k in names}
    kw["status"] = Status(d["status"])
    return Session(**kw)


def event_from_json(d: dict[str, Any]) -> Event:
    from parallel_agents.models import Event

    names = {f.name for f in fields(Event)}
    kw = {k: v for k, v in d.items() if k in names}
    kw.setdefault("raw", None)
    return Event(**kw)
