"""Who may talk to the server: the token, the login cookie, Host and Origin checks.

* The token is random, created on first start at ``$PA_HOME/token`` with mode 0600.
* Every ``/api/v1/...`` and ``/mcp`` (issue 18) request needs it: ``Authorization:
  Bearer <token>``, or the ``pa_session`` cookie that ``GET /login?token=<token>`` sets
  (HttpOnly, SameSite=Strict) before redirecting to ``/``. A ``?token=`` query parameter is
  accepted only on SSE streams (``.../stream``) and websockets, where headers are awkward.
* The ``Host`` header must name the server as bound (``127.0.0.1:<port>``,
  ``localhost:<port>`` or the bind host), which defeats DNS rebinding.
* ``Origin``, when a browser sends it, must be the server itself on websockets and on
  state-changing requests.
* One exception to the token (issue 17): ``POST /api/v1/routines/NAME/fire`` is a
  routine's HTTP trigger, authenticated by that routine's own token in its route
  (``sessions/routine_api.py``), never by the server's. Host and Origin still apply.

Only the standard library is imported at module level: the CLI reads the token through
this module without loading Starlette.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import os
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from parallel_agents.errors import PAError

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection
    from starlette.websockets import WebSocket

TOKEN_FILE = "token"
COOKIE = "pa_session"
API_PREFIX = "/api/v1"
MCP_PATH = "/mcp"  # issue 18: the MCP tools over HTTP, behind the same token
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


# -- the token file --------------------------------------------------------------------
def token_path(home: Path) -> Path:
    return home / TOKEN_FILE


def read_token(home: Path) -> str | None:
    """The token, or None when none was created yet. Tightens loose permissions."""
    path = token_path(home)
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    if st.st_mode & 0o077:
        os.chmod(path, 0o600)
    token = path.read_text(encoding="utf-8").strip()
    if not token:
        raise PAError(f"the token file {path} is empty", hint=f"delete it ({path}) and restart")
    return token


def load_or_create_token(home: Path) -> str:
    """Read ``$PA_HOME/token``; create it (0600, atomically) when missing."""
    existing = read_token(home)
    if existing:
        return existing
    home.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    tmp = home / f".token-{os.getpid()}-{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(token + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, token_path(home))  # fails if another process won the race
        except FileExistsError:
            again = read_token(home)
            assert again
            return again
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return token


def session_value(token: str) -> str:
    """The cookie value: derived from the token, so the cookie does not carry the token."""
    return hmac.new(token.encode(), b"pa_session/v1", hashlib.sha256).hexdigest()


# -- the checks ------------------------------------------------------------------------
def _split_host(value: str) -> tuple[str, str]:
    """``host:port`` -> (host, port); IPv6 literals come in brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        return host, rest.removeprefix(":")
    host, _, port = value.rpartition(":")
    if not host:  # no port at all
        return port, ""
    return host, port


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class Guard:
    """Holds the token and the bind address; answers "may this request proceed?"."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.cookie_value = session_value(token)
        self.bind_host = "127.0.0.1"
        self.port: int | None = None

    def bind(self, host: str, port: int) -> None:
        self.bind_host = host.strip("[]").lower()
        self.port = port

    # Host ---------------------------------------------------------------------------
    def host_ok(self, value: str | None) -> bool:
        if not value or self.port is None:
            return False
        host, port = _split_host(value)
        if port != str(self.port):
            return False
        if host in ("127.0.0.1", "localhost", self.bind_host):
            return True
        if host == "::1" and self.bind_host in ("::1", "::"):
            return True
        # Bound to every interface: any IP literal is fine (DNS rebinding needs a name).
        return self.bind_host in ("0.0.0.0", "::") and _is_ip(host)

    def origin_ok(self, origin: str | None) -> bool:
        """True for no Origin (non-browser clients) or the server's own origin."""
        if origin is None:
            return True
        parts = urlsplit(origin)
        return parts.scheme == "http" and self.host_ok(parts.netloc)

    # token ---------------------------------------------------------------------------
    def token_ok(self, candidate: str | None) -> bool:
        if not candidate:
            return False
        return hmac.compare_digest(candidate.encode(), self.token.encode())

    def cookie_ok(self, candidate: str | None) -> bool:
        if not candidate:
            return False
        c = candidate.encode()
        return hmac.compare_digest(c, self.cookie_value.encode()) or self.token_ok(candidate)

    def authorized(
        self,
        headers: MutableMapping[str, str] | Any,
        cookies: dict[str, str],
        query: dict[str, list[str]],
        *,
        allow_query: bool,
    ) -> bool:
        auth = headers.get("authorization") or ""
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and self.token_ok(value.strip()):
            return True
        if self.cookie_ok(cookies.get(COOKIE)):
            return True
        return allow_query and any(self.token_ok(v) for v in query.get("token", []))


def is_fire_path(path: str) -> bool:
    """``/api/v1/routines/NAME/fire``: a routine's HTTP trigger, whose route checks the
    routine's own token (issue 17). Exactly that shape: one non-empty NAME segment."""
    head, _, rest = path.partition(API_PREFIX + "/routines/")
    name, sep, tail = rest.partition("/")
    return head == "" and bool(rest) and bool(name) and sep == "/" and tail == "fire"


def _cookies(header: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in (header or "").split(";"):
        k, sep, v = part.strip().partition("=")
        if sep and k:
            out.setdefault(k, v)
    return out


def _error(status: int, error: str, hint: str | None) -> Any:
    from starlette.responses import JSONResponse

    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": error, "hint": hint}, status_code=status, headers=headers)


class AuthMiddleware:
    """Pure ASGI middleware (streams pass straight through) enforcing the rules above."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        from starlette.datastructures import Headers

        headers = Headers(scope=scope)
        problem = self.check(
            kind,
            scope.get("method", "GET"),
            scope.get("path", ""),
            headers,
            parse_qs(scope.get("query_string", b"").decode("latin-1")),
        )
        if problem is None:
            await self.app(scope, receive, send)
            return
        status, error, hint = problem
        if kind == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": error[:120]})
            return
        await _error(status, error, hint)(scope, receive, send)

    def check(
        self,
        kind: str,
        method: str,
        path: str,
        headers: Any,
        query: dict[str, list[str]],
    ) -> tuple[int, str, str | None] | None:
        g = self.guard
        if not g.host_ok(headers.get("host")):
            return (
                400,
                "invalid Host header",
                f"connect to http://127.0.0.1:{g.port}/ (DNS rebinding protection)",
            )
        origin = headers.get("origin")
        if (kind == "websocket" or method.upper() not in SAFE_METHODS) and not g.origin_ok(origin):
            return 403, f"cross-origin request from {origin!r} refused", None
        if kind == "http" and method.upper() == "POST" and is_fire_path(path):
            return None
        guarded = (API_PREFIX, MCP_PATH)
        if any(path == p or path.startswith(p + "/") for p in guarded):
            allow_query = kind == "websocket" or path.endswith("/stream")
            cookies = _cookies(headers.get("cookie"))
            if not g.authorized(headers, cookies, query, allow_query=allow_query):
                return (
                    401,
                    "missing or wrong token",
                    "send 'Authorization: Bearer <token>' (the token is in $PA_HOME/token; "
                    "`pa server status` prints a login URL)",
                )
        return None


def check_connection(conn: HTTPConnection) -> str | None:
    """Why this request/websocket may not proceed, or None. Needs the app's guard."""
    guard: Guard = conn.app.state.guard
    kind = conn.scope["type"]
    mw = AuthMiddleware(conn.app, guard)
    problem = mw.check(
        kind,
        conn.scope.get("method", "GET"),
        API_PREFIX + "/ws",  # always demand the token, whatever the route's path
        conn.headers,
        parse_qs(conn.scope.get("query_string", b"").decode("latin-1")),
    )
    return None if problem is None else problem[1]


async def check_ws(websocket: WebSocket) -> bool:
    """Gate for websocket routes: Host, Origin and token; closes with 1008 when refused.

    Use at the top of a websocket endpoint::

        if not await check_ws(websocket):
            return
        await websocket.accept()
    """
    problem = check_connection(websocket)
    if problem is None:
        return True
    await websocket.close(code=1008, reason=problem[:120])
    return False
