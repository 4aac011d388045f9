"""How the server says no: every error is JSON ``{"error": message, "hint": hint-or-null}``
(a refusal of pa's own also carries ``exit_code``, the CLI's exit status for it).

400 (bad input), 404 (no such repo/session), 409 (not possible in the session's current
state), 401 (token, see ``auth``), 422 (request body or query does not validate;
``detail`` lists the fields, ``error`` says it in plain words). Unexpected failures are
500 with the same shape.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from parallel_agents.errors import Conflict, NotFound, PAError

log = logging.getLogger("parallel_agents.server")


def status_code_for(e: PAError) -> int:
    if isinstance(e, NotFound):
        return 404
    if isinstance(e, Conflict):
        return 409
    return 400  # UsageError and every other expected failure


def _num(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _plain(err: Mapping[str, Any]) -> str:
    """One validation error as a sentence a person can act on (`turn must be 1 or more`),
    never pydantic's wording, which names its internals (query.turn, Input should…)."""
    loc = [x for x in err.get("loc", ()) if x not in ("body", "query", "path", "header")]
    name = ".".join(str(x) for x in loc) or "the request"
    kind = str(err.get("type", ""))
    ctx = err.get("ctx") or {}
    if kind == "greater_than_equal":
        return f"{name} must be {_num(ctx.get('ge'))} or more"
    if kind == "greater_than":
        return f"{name} must be more than {_num(ctx.get('gt'))}"
    if kind == "less_than_equal":
        return f"{name} must be {_num(ctx.get('le'))} or less"
    if kind == "less_than":
        return f"{name} must be less than {_num(ctx.get('lt'))}"
    if kind == "missing":
        return f"{name} is required"
    if kind.startswith("int_"):
        return f"{name} must be a whole number"
    if kind.startswith("float_") or kind in ("decimal_parsing", "decimal_type"):
        return f"{name} must be a number"
    if kind.startswith("bool_"):
        return f"{name} must be true or false"
    if kind in ("string_too_long", "too_long"):
        return f"{name} is too long (at most {ctx.get('max_length')})"
    if kind in ("string_too_short", "too_short"):
        n = ctx.get("min_length")
        return f"{name} must not be empty" if n == 1 else f"{name} is too short (at least {n})"
    if kind in ("literal_error", "enum"):
        return f"{name} must be one of {ctx.get('expected')}"
    if kind == "json_invalid":
        return "the request body is not valid JSON"
    if kind == "extra_forbidden":
        return f"{name} is not a known field"
    if kind.endswith("_type"):
        return f"{name} has the wrong type"
    return f"{name} is not valid"


def validation_message(errors: Sequence[Mapping[str, Any]]) -> str:
    """What a request that does not validate gets as its ``error``: plain sentences."""
    parts = list(dict.fromkeys(_plain(e) for e in errors[:5]))
    return "; ".join(parts) or "the request is not valid"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(PAError)
    async def pa_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, PAError)
        # The exit code travels too: a plain PAError (exit 1) and bad input (exit 2) both
        # answer 400, and a CLI talking to a server must exit as an in-process one would.
        body = {"error": exc.message, "hint": exc.hint, "exit_code": exc.exit_code}
        return JSONResponse(body, status_code=status_code_for(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = exc.errors()
        detail = [{k: v for k, v in err.items() if k in ("loc", "msg", "type")} for err in errors]
        return JSONResponse(
            {"error": validation_message(errors), "hint": None, "detail": detail},
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return JSONResponse(
            {"error": str(exc.detail), "hint": None},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def crash(_request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error", exc_info=exc)
        return JSONResponse(
            {"error": f"internal error: {type(exc).__name__}: {exc}", "hint": "see server.log"},
            status_code=500,
        )
