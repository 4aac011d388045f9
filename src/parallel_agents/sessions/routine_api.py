"""Issue 17: a routine's HTTP trigger, ``POST /api/v1/routines/NAME/fire``.

Its own token, never the server's: made at ``add --api`` (or ``token --rotate``), shown
once, stored as its SHA-256 only and compared in constant time. Refusals, in this order:

- 401 for a missing, wrong or revoked token, a routine without ``--api`` and a name that
  matches no routine alike (the answer does not reveal which names exist);
- 400 for a body that is not ``{"text": "..."}`` (capped, no control characters);
- 409 for a paused routine;
- 429 (with ``Retry-After``) past ``routines.fire_per_minute`` admitted calls a minute;
- 409 when the overlap policy says no: ``skip`` and ``queue`` alike refuse a fire while
  the previous run works (a queued fire would have to keep its text until then; the caller
  retries instead), ``allow`` starts it; 409 too while ``--max-unreviewed`` runs wait
  unread in the inbox.

Every call that reaches the route is recorded (time, remote address, status, run), never
its token; one refused earlier by the Host or Origin checks (``server/auth.py``) is not. A fire that
passes claims a run (reason ``api``, due at the call's time) and starts its session;
``text`` fills ``{text}``, or is added after the prompt when it has no ``{text}``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import secrets
import string
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from parallel_agents import config
from parallel_agents.errors import Conflict, PAError, UsageError
from parallel_agents.store import Routine

if TYPE_CHECKING:
    from parallel_agents.sessions.orchestrator import App

TOKEN_PREFIX = "pa_rt_"  # recognisable by secret scanners and people alike
MAX_BODY = 64 * 1024  # bytes of request body read at most
MAX_TEXT = 8000  # characters of ``text``
WINDOW = 60.0  # seconds the rate limit counts over
_NAME_KEPT = 200  # characters of a caller's routine name recorded
# Held from the overlap check to the run's claim: two fires at once cannot both find the
# routine idle (a claimed run counts as working, so the lock need not cover the start).
_CLAIM = threading.Lock()


@dataclass
class Answer:
    """What the fire route answers: a status, a JSON body, extra headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def new_token() -> tuple[str, str]:
    """A fresh routine token and the hash to store."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, digest(token)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def has_api(app: App, r: Routine) -> bool:
    return app.store.routine_token_hash(r.id) is not None


def rotate(app: App, name: str) -> dict[str, Any]:
    """A new token for ``name``'s HTTP trigger (the old one stops working now), shown once."""
    r = app.store.routine(name)
    if not has_api(app, r):
        raise Conflict(
            f"routine {name!r} has no HTTP trigger",
            hint="add the routine with --api (pa routine rm, then pa routine add ... --api)",
        )
    token, h = new_token()
    app.store.set_routine_token(r.id, h)
    return {"routine": name, "token": token}


def calls(app: App, name: str, limit: int = 100) -> list[dict[str, Any]]:
    """The calls to ``name``'s HTTP trigger since it was added, newest first."""
    r = app.store.routine(name)
    return [
        {"at": c.at, "remote": c.remote, "code": c.code, "run": c.run, "error": c.error}
        for c in app.store.routine_calls(name, since=r.created_at, limit=limit)
    ]


def _unauthorized() -> Answer:
    return Answer(
        401,
        {
            "error": "missing or wrong routine token",
            "hint": "send 'Authorization: Bearer <the routine's token>' (shown once by "
            "`pa routine add --api`; `pa routine token NAME --rotate` makes a new one)",
        },
        {"WWW-Authenticate": "Bearer"},
    )


def _bearer(authorization: str | None) -> str:
    scheme, _, value = (authorization or "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def _authorized(app: App, name: str, token: str) -> tuple[Routine | None, str | None]:
    """The routine when ``token`` is its HTTP trigger's, else None and why (for the record)."""
    given = digest(token) if token else ""
    try:
        r = app.store.routine(name)
    except PAError:
        return None, "no such routine"
    stored = app.store.routine_token_hash(r.id)
    if stored is None:
        return None, "the routine has no HTTP trigger"
    if not token:
        return None, "no token"
    if not hmac.compare_digest(given, stored):
        return None, "wrong token"
    return r, None


def parse_body(raw: bytes) -> str:
    """``text`` from a body ``{"text": "..."}`` (or an empty body); UsageError otherwise."""
    if len(raw) > MAX_BODY:
        raise UsageError(f"the body is over {MAX_BODY} bytes", hint=f"keep text under {MAX_TEXT}")
    if not raw.strip():
        return ""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise UsageError("the body is not JSON", hint='send {"text": "..."} or nothing') from None
    if not isinstance(data, dict) or set(data) - {"text"}:
        raise UsageError(
            'the body must be a JSON object with only "text"', hint='send {"text": "..."}'
        )
    text = data.get("text", "")
    if text is None:
        return ""
    if not isinstance(text, str):
        raise UsageError('"text" must be a string', hint='send {"text": "..."}')
    if len(text) > MAX_TEXT:
        raise UsageError(f'"text" is over {MAX_TEXT} characters', hint="send a shorter text")
    for ch in text:
        if ch not in "\n\t" and unicodedata.category(ch) in ("Cc", "Cs"):
            raise UsageError(
                f'"text" contains the control character {ch!r}',
                hint="send plain text (new lines and tabs are fine)",
            )
    return text


def _with_text(r: Routine, text: str) -> Routine:
    """``r`` whose prompt takes ``text``: in ``{text}``, or after the prompt without one."""
    fields = {f for _, f, _, _ in string.Formatter().parse(r.prompt) if f is not None}
    if not text or "text" in fields:
        return r
    return dataclasses.replace(r, prompt=r.prompt + "\n\n{text}")


def fire(
    app: App,
    name: str,
    authorization: str | None,
    raw: bytes,
    remote: str,
    now: float | None = None,
) -> Answer:
    """Answer one call to ``name``'s HTTP trigger, recording it whatever the outcome."""
    from parallel_agents.sessions import routine_runner

    now = time.time() if now is None else now
    kept = name[:_NAME_KEPT]
    r, why = _authorized(app, name, _bearer(authorization))
    if r is None:
        app.store.record_call(kept, now, remote, 401, why)
        return _unauthorized()
    try:
        text = parse_body(raw)
    except UsageError as e:
        app.store.record_call(kept, now, remote, 400, e.message)
        return Answer(400, {"error": e.message, "hint": e.hint})
    if r.paused:
        app.store.record_call(kept, now, remote, 409, "paused")
        return Answer(
            409,
            {"error": f"routine {name!r} is paused", "hint": f"pa routine resume {name}"},
        )
    limit = config.routine_fire_per_minute(app.settings)
    call, wait = app.store.admit_call(r.name, now, remote, limit, WINDOW)
    if call is None:
        secs = max(1, int(wait + 0.999))
        return Answer(
            429,
            {
                "error": f"routine {name!r} was fired {limit} times in the last minute",
                "hint": f"retry in {secs} s (setting routines.fire_per_minute)",
            },
            {"Retry-After": str(secs)},
        )
    overlap = r.policies.get("overlap", "skip")
    run = None
    with _CLAIM:
        if overlap != "allow" and routine_runner._busy(app, r):
            msg = "the previous run is still working"
            app.store.finish_call(call, 409, error=msg)
            return Answer(
                409,
                {
                    "error": f"routine {name!r} not started: {msg} (overlap {overlap})",
                    "hint": "retry when it is done, or add the routine with --overlap allow",
                },
            )
        blocked = routine_runner.unreviewed_block(app, r)
        if blocked:  # --max-unreviewed holds fires back like due times and git events
            app.store.finish_call(call, 409, error=blocked)
            return Answer(409, {"error": f"routine {name!r} not started: {blocked}",
                                "hint": "pa inbox lists them"})
        # The call's time is its due time; another run due at the very same instant
        # (UNIQUE) moves it by a microsecond.
        for k in range(5):
            run = app.store.claim_run(r.name, now + k * 1e-6, "api", None, advance=False)
            if run is not None:
                break
    if run is None:
        app.store.finish_call(call, 500, error="no run could be claimed")
        return Answer(500, {"error": "no run could be claimed", "hint": "retry"})
    done = routine_runner.start(app, _with_text(r, text), run, extra={"text": text})
    if done.state != "started":
        app.store.finish_call(call, 500, run=done.n, error=done.error)
        return Answer(
            500,
            {"error": f"run #{done.n} of {name} failed: {done.error}", "hint": None,
             "routine": r.name, "run": done.n},
        )
    app.store.finish_call(call, 202, run=done.n)
    return Answer(202, {"routine": r.name, "run": done.n, "session": done.session_id})
