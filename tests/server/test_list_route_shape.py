"""issue 14 §6: GET /api/v1/sessions is written straight as JSON (not through FastAPI's
generic encoder, most of its time at 1,000 sessions): the same sessions, fields and text as
``sessions.views.session_json`` plus the latest check, filters kept."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from parallel_agents.server.app import create_app
from parallel_agents.sessions.views import session_json
from parallel_agents.store import Store


def _get(app: Any, urls: list[str]) -> list[httpx.Response]:
    token = app.state.pa.token

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:7317") as c:
            h = {"Authorization": f"Bearer {token}"}
            return [await c.get(u, headers=h) for u in urls]

    return asyncio.run(run())


def test_list_is_session_json_with_checks(pa_home: Path, repo_path: Path) -> None:
    app = create_app(pa_home)
    app.state.pa.bind("127.0.0.1", 7317)

    async def make() -> list[str]:
        transport = httpx.ASGITransport(app=app)
        h = {"Authorization": f"Bearer {app.state.pa.token}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:7317") as c:
            body = {"prompt": "x", "repo": str(repo_path), "cmd": ["true"], "count": 3}
            r = await c.post("/api/v1/sessions", json=body, headers=h)
            assert r.status_code == 201, r.text
            return [s["id"] for s in r.json()["sessions"]]

    ids = asyncio.run(make())
    store = Store(pa_home)
    try:
        store.update_session(ids[0], title="ünïcode — title")
        store.record_check(ids[1], 1, "0" * 40, "true", True, 0, False, 0.1, "", {"ok": True})
        want = {s.id: {**session_json(s), "check": None} for s in store.sessions()}
        want[ids[1]]["check"] = store.check_summaries()[ids[1]]
    finally:
        store.close()
    listed, by_status, none = _get(
        app, ["/api/v1/sessions?all=1", "/api/v1/sessions?status=failed", "/api/v1/sessions?repo=nope"]
    )
    assert listed.status_code == 200
    assert listed.headers["content-type"].startswith("application/json")
    assert "ünïcode — title" in listed.content.decode()  # text as it is, not \\u escapes
    got = {d["id"]: d for d in listed.json()["sessions"]}
    assert got == want
    assert [d["id"] for d in listed.json()["sessions"]] == [
        s for s in sorted(want, key=lambda i: (want[i]["created_at"], i))
    ]
    assert by_status.status_code == 200 and by_status.json() == {"sessions": []}
    assert none.status_code == 404 or none.status_code == 400
