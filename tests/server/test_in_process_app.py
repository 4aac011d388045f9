"""Issue 13: the server's ASGI app works in-process, without its lifespan (the in-process
client drives it that way): ``create_app(home)`` and plain HTTP scopes through httpx,
with the routes, the error shape and the login cookie wired by ``create_app``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from parallel_agents.server.app import create_app
from parallel_agents.server.loop import ServerState
from parallel_agents.sessions.views import session_json
from parallel_agents.store import Store

HOST = "127.0.0.1:7317"


def _calls(app: Any, requests: list[tuple[str, str, dict[str, Any] | None]]) -> list[Any]:
    """Each (method, url, json body) through the app in order, one client (it keeps
    cookies); /api/v1 calls carry the token. The responses."""
    token = app.state.pa.token

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{HOST}") as c:
            out = []
            for method, url, body in requests:
                api = url.startswith("/api/v1")
                headers = {"Authorization": f"Bearer {token}"} if api else {}
                out.append(await c.request(method, url, json=body, headers=headers))
            return out

    return asyncio.run(run())


def test_create_app_runs_in_process_without_lifespan(pa_home: Path, repo_path: Path) -> None:
    app = create_app(pa_home)
    state = app.state.pa
    assert isinstance(state, ServerState)
    assert app.state.guard is state.guard
    state.bind("127.0.0.1", 7317)
    health, statuses, missing, added, login, page, listed = _calls(
        app,
        [
            ("GET", "/api/v1/health", None),
            ("GET", "/api/v1/statuses", None),
            ("GET", "/api/v1/sessions/nope", None),
            ("POST", "/api/v1/repos", {"path": str(repo_path), "name": "demo"}),
            ("GET", f"/login?token={state.token}&next=/", None),
            ("GET", "/", None),  # the cookie /login set logs this client in
            ("GET", "/api/v1/sessions", None),
        ],
    )
    assert health.status_code == 200 and health.json()["supervisor"]["alive"] is False
    assert "queued" in {s["name"] for s in statuses.json()["statuses"]}
    assert missing.status_code == 404
    assert set(missing.json()) == {"error", "hint", "exit_code"}
    assert added.status_code == 201 and added.json()["name"] == "demo"
    assert login.status_code == 303 and login.headers["location"] == "/"
    assert "pa_session=" in login.headers["set-cookie"]
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert listed.json() == {"sessions": []}


def test_session_json_is_the_api_shape(pa_home: Path, repo_path: Path) -> None:
    """GET /sessions/{id} is ``sessions.views.session_json`` plus the turns."""
    app = create_app(pa_home)
    state = app.state.pa
    state.bind("127.0.0.1", 7317)
    body = {"prompt": "x", "repo": str(repo_path), "cmd": ["true"]}
    [made] = _calls(app, [("POST", "/api/v1/sessions", body)])
    assert made.status_code == 201, made.text
    sid = made.json()["sessions"][0]["id"]
    [got] = _calls(app, [("GET", f"/api/v1/sessions/{sid}", None)])
    d = got.json()
    # ``turns`` is the list of turns here, a count in the session itself.
    assert d["worktree_exists"] is True and isinstance(d["turns"], list)
    s = Store(pa_home).session(sid)
    want = session_json(s)
    # The session moves on between the two reads (its turn runs): compare the shape.
    # GET /sessions/{id} adds the run script's status (issue 16 §1) and the sessions it
    # started (issue 18).
    assert set(d) - {"run", "children"} == set(want) and d["id"] == want["id"] == sid
