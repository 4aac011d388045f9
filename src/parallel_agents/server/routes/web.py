"""The dashboard's pages: ``/`` (the app), ``/welcome`` (how to log in), ``/login`` (the
token URL ``pa server status`` prints), ``/login/once`` (the one-time link ``pa up``
opens) and ``/static/...``.

The auth middleware guards ``/api/v1``; these routes check the same login cookie (or a
Bearer token) themselves, so without the token nothing but the how-to-log-in page is
served. Files come from the package (``parallel_agents/web``); third-party files live in
``web/static/vendor/``, built by ``scripts/build-web.sh`` from ``package-lock.json`` (every
wheel and sdist carries them: ``hatch_build.py`` runs the script at build time).
"""

from __future__ import annotations

import hashlib
import html as htmllib
import mimetypes
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from parallel_agents.server import login as once
from parallel_agents.server.auth import COOKIE, Guard

WEB = Path(__file__).resolve().parents[2] / "web"
STATIC = WEB / "static"
TEMPLATES = WEB / "templates"

router = APIRouter(include_in_schema=False)

_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".woff2": "font/woff2",
}

# The dashboard loads nothing from elsewhere; diff2html and xterm set inline styles.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; media-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def logged_in(request: Request) -> bool:
    """The ``pa_session`` cookie or ``Authorization: Bearer <token>`` is valid."""
    guard: Guard | None = getattr(request.app.state, "guard", None)
    if guard is None:
        return False
    auth = request.headers.get("authorization") or ""
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and guard.token_ok(value.strip()):
        return True
    return guard.cookie_ok(request.cookies.get(COOKIE))


@lru_cache(maxsize=1)
def asset_version() -> str:
    """Changes whenever a dashboard file changes: busts the browser cache for app.js."""
    h = hashlib.sha256()
    for p in sorted(STATIC.rglob("*")):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.relative_to(STATIC)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:12]


def _page(name: str, **values: str) -> str:
    text = (TEMPLATES / name).read_text(encoding="utf-8")
    for k, v in values.items():
        text = text.replace("{{" + k + "}}", v)
    return text


def vendor_missing() -> bool:
    return not (STATIC / "vendor" / "versions.json").is_file()


def vendor_hint() -> str:
    """How to get the third-party files, for this installation: only a source checkout
    (an editable install) has scripts/build-web.sh; a wheel user has nothing to run."""
    root = WEB.parents[2]
    if (root / "scripts" / "build-web.sh").is_file() and (root / "package-lock.json").is_file():
        return f"run scripts/build-web.sh in {root} (needs Node.js and npm), then reload"
    return (
        "this installation was built without them: reinstall parallel-agents with pip "
        "(building it from a clone needs Node.js and npm)"
    )


@router.get("/")
def index(request: Request) -> Response:
    if not logged_in(request):
        return RedirectResponse("/welcome", status_code=303, headers={"Cache-Control": "no-store"})
    html = _page("index.html", version=asset_version())
    if vendor_missing():
        html = html.replace(
            "<body>",
            '<body><div class="banner">The dashboard\'s third-party files are missing '
            f"(diff viewer, terminal, Markdown): {htmllib.escape(vendor_hint())}.</div>",
            1,
        )
    return HTMLResponse(html, headers={**SECURITY_HEADERS, "Cache-Control": "no-store"})


@router.get("/welcome")
def welcome(request: Request) -> Response:
    """How to log in. Served without the token: it shows nothing about the sessions."""
    if logged_in(request):
        return RedirectResponse("/", status_code=303)
    reason = (
        "This browser has no valid login yet, or the server's token changed."
        if request.cookies.get(COOKIE)
        else "This browser is not logged in yet."
    )
    return HTMLResponse(
        _page("login.html", reason=reason),
        status_code=401,
        headers={**SECURITY_HEADERS, "Cache-Control": "no-store"},
    )


@router.get("/login")
def login(request: Request, token: str = "", next: str = "/") -> Response:
    """Trade the token for the ``pa_session`` cookie, then go to the dashboard."""
    guard: Guard = request.app.state.guard
    if not guard.token_ok(token):
        return JSONResponse(
            {"error": "wrong or missing token", "hint": "use the URL `pa server status` prints"},
            status_code=401,
        )
    target = next if next.startswith("/") and not next.startswith("//") else "/"
    return _logged_in_at(target, guard)


def _logged_in_at(target: str, guard: Guard) -> Response:
    """A redirect to ``target`` that sets the login cookie."""
    resp = RedirectResponse(target, status_code=303)
    resp.set_cookie(
        COOKIE,
        guard.cookie_value,
        httponly=True,
        samesite="strict",
        path="/",
        max_age=30 * 24 * 3600,
    )
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["Cache-Control"] = "no-store"
    return resp


@router.get("/login/once")
def login_once(request: Request, code: str = "") -> Response:
    """Trade a one-time code from ``pa up`` for the login cookie, then show the dashboard."""
    guard: Guard = request.app.state.guard
    home = request.app.state.pa.home
    if not once.redeem(home, code):
        return HTMLResponse(
            _page(
                "login.html",
                reason="This login link was already used or has expired: run `pa up` again.",
            ),
            status_code=401,
            headers={**SECURITY_HEADERS, "Cache-Control": "no-store"},
        )
    return _logged_in_at("/", guard)


@router.get("/static/{path:path}")
def static(request: Request, path: str) -> Response:
    if not logged_in(request):
        return Response("not logged in: open the URL from `pa server status`", status_code=401)
    target = (STATIC / path).resolve()
    if not target.is_relative_to(STATIC) or not target.is_file():
        hint = f" ({vendor_hint()})" if path.startswith("vendor/") else ""
        return Response(f"not found: /static/{path}{hint}", status_code=404)
    st = target.stat()
    etag = f'"{st.st_mtime_ns:x}-{st.st_size:x}"'
    headers = {
        "ETag": etag,
        "Cache-Control": "no-cache",  # revalidate: cheap 304s, never a stale dashboard
        "X-Content-Type-Options": "nosniff",
    }
    if etag in (request.headers.get("if-none-match") or ""):
        return Response(status_code=304, headers=headers)
    ctype = _TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0]
    return Response(
        target.read_bytes(), media_type=ctype or "application/octet-stream", headers=headers
    )
