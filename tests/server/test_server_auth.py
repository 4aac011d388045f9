"""Token, login cookie, Host and Origin checks; errors; OpenAPI; secrets kept out of logs."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.server.conftest import Srv

PY = sys.executable


def test_requests_without_the_token_are_refused_and_change_nothing(
    start_server: Callable[..., Srv], repo_path: Path, pa_home: Path
) -> None:
    srv = start_server()
    url, token = srv.url, srv.token
    good = {"Authorization": f"Bearer {token}"}
    body = {"prompt": "x", "repo": str(repo_path), "cmd": [PY, "-c", "print(1)"]}
    with httpx.Client(base_url=url) as h:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
            for method, path, kw in (
                ("GET", "/api/v1/sessions", {}),
                ("POST", "/api/v1/sessions", {"json": body}),
                ("POST", "/api/v1/repos", {"json": {"path": str(repo_path)}}),
                ("GET", "/api/v1/openapi.json", {}),
                ("GET", "/api/v1/stream", {}),
            ):
                r = h.request(method, path, headers=headers, **kw)
                assert r.status_code == 401, (method, path, headers, r.text)
                assert r.json()["error"] == "missing or wrong token"
                assert r.headers["www-authenticate"] == "Bearer"
        # ?token= is for streams (SSE/websocket) only.
        r = h.get("/api/v1/sessions", params={"token": token})
        assert r.status_code == 401
        with h.stream("GET", "/api/v1/stream", params={"token": token}) as s:
            assert s.status_code == 200
            assert s.headers["content-type"].startswith("text/event-stream")
        # Nothing was done by the refused calls.
        r = h.get("/api/v1/sessions", params={"all": "1"}, headers=good)
        assert r.status_code == 200 and r.json() == {"sessions": []}
        assert h.get("/api/v1/repos", headers=good).json() == {"repos": []}
        assert not (pa_home / "worktrees").exists()

        spec = h.get("/api/v1/openapi.json", headers=good).json()
        for path in (
            "/api/v1/health",
            "/api/v1/repos",
            "/api/v1/sessions",
            "/api/v1/sessions/{sid}",
            "/api/v1/sessions/{sid}/events",
            "/api/v1/sessions/{sid}/send",
            "/api/v1/sessions/{sid}/stop",
            "/api/v1/sessions/{sid}/discard",
            "/api/v1/sessions/{sid}/restore",
            "/api/v1/sessions/{sid}/read",
            "/api/v1/events",
            "/api/v1/stream",
            "/api/v1/sessions/{sid}/stream",
        ):
            assert path in spec["paths"], path

    log = (pa_home / "server.log").read_text()
    assert "token=***" in log  # the stream request was logged, redacted
    assert token not in log


def test_login_sets_an_httponly_strict_cookie(start_server: Callable[..., Srv]) -> None:
    srv = start_server()
    with httpx.Client(base_url=srv.url) as h:
        bad = h.get("/login", params={"token": "nope"})
        assert bad.status_code == 401 and "set-cookie" not in bad.headers
        assert "pa_session" not in h.cookies

        r = h.get("/login", params={"token": srv.token})
        assert r.status_code == 303 and r.headers["location"] == "/"
        cookie = r.headers["set-cookie"]
        assert cookie.startswith("pa_session=")
        assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower() and "Path=/" in cookie
        assert srv.token not in cookie  # the cookie is derived from the token, not the token
        # The cookie alone authorises API calls.
        assert h.get("/api/v1/sessions").status_code == 200
        assert h.get("/api/v1/health").json()["pid"] == srv.pid

        evil = h.get("/login", params={"token": srv.token, "next": "//evil.example/x"})
        assert evil.headers["location"] == "/"
        deep = h.get("/login", params={"token": srv.token, "next": "/sessions/abc"})
        assert deep.headers["location"] == "/sessions/abc"

    with httpx.Client(base_url=srv.url, cookies={"pa_session": "forged"}) as h:
        assert h.get("/api/v1/sessions").status_code == 401


def test_host_and_origin_checks(
    start_server: Callable[..., Srv], repo_path: Path, pa_home: Path
) -> None:
    srv = start_server()
    port = srv.info["port"]
    auth = {"Authorization": f"Bearer {srv.token}"}
    with httpx.Client(base_url=srv.url, headers=auth) as h:
        for host in ("evil.example", f"evil.example:{port}", "127.0.0.1", f"127.0.0.1:{port + 1}"):
            r = h.get("/api/v1/health", headers={"Host": host})
            assert r.status_code == 400, host
            assert r.json()["error"] == "invalid Host header"
        # DNS rebinding protection applies to the login page too.
        r = h.get("/login", params={"token": srv.token}, headers={"Host": "evil.example"})
        assert r.status_code == 400
        for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"LOCALHOST:{port}"):
            assert h.get("/api/v1/health", headers={"Host": host}).status_code == 200, host

        body = {"path": str(repo_path)}
        r = h.post("/api/v1/repos", json=body, headers={"Origin": "http://evil.example"})
        assert r.status_code == 403
        r = h.post("/api/v1/repos", json=body, headers={"Origin": "null"})
        assert r.status_code == 403
        assert h.get("/api/v1/repos").json() == {"repos": []}
        # A GET from another origin is not state-changing: the token decides.
        assert h.get("/api/v1/repos", headers={"Origin": "http://evil.example"}).status_code == 200
        r = h.post("/api/v1/repos", json=body, headers={"Origin": f"http://localhost:{port}"})
        assert r.status_code == 201, r.text
        assert r.json()["name"] == "repo"


def test_error_responses(start_server: Callable[..., Srv], repo_path: Path, tmp_path: Path) -> None:
    secret = "sk-ant-api03-NOT-A-REAL-KEY-but-secret"
    srv = start_server(env={"ANTHROPIC_API_KEY": secret})
    c = srv.client
    with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {srv.token}"}) as h:
        r = h.get("/api/v1/sessions/doesnotexist")
        assert r.status_code == 404
        assert set(r.json()) == {"error", "hint", "exit_code"} and "no session" in r.json()["error"]
        r = h.post("/api/v1/sessions", json={"prompt": "x", "repo": str(repo_path), "count": 0})
        assert r.status_code == 422 and "count" in r.json()["error"]
        r = h.post("/api/v1/sessions", json={"prompt": "x", "repo": "r", "colour": "red"})
        assert r.status_code == 422 and "colour" in r.json()["error"]
        r = h.post("/api/v1/sessions", json={"repo": str(repo_path)})
        assert r.status_code == 422 and "prompt" in r.json()["error"]
        r = h.post("/api/v1/sessions", json={"prompt": "x", "cmd": [PY]})
        assert r.status_code == 400 and "repo" in r.json()["error"]
        r = h.post("/api/v1/sessions", json={"prompt": "  ", "repo": str(repo_path), "cmd": [PY]})
        assert r.status_code == 400 and "empty" in r.json()["error"]
        r = h.post(
            "/api/v1/sessions", json={"prompt": "x", "repo": str(tmp_path / "nope"), "cmd": [PY]}
        )
        assert r.status_code == 404
        r = h.post(
            "/api/v1/sessions",
            json={"prompt": "x", "repo": str(repo_path), "cmd": "unbalanced 'quote"},
        )
        assert r.status_code == 400 and "cmd" in r.json()["error"]
        r = h.get("/api/v1/sessions", params={"status": "sleeping"})
        assert r.status_code == 400 and "running" in r.json()["hint"]
        r = h.get("/api/v1/stream", headers={"Last-Event-ID": "abc"})
        assert r.status_code == 400
        r = h.delete("/api/v1/repos/nope")
        assert r.status_code == 404
        r = h.get("/api/v1/nothing-here")
        assert r.status_code == 404 and "error" in r.json()

    hold = tmp_path / "hold.py"
    hold.write_text("import time\nprint('ready', flush=True)\ntime.sleep(60)\n")
    [s] = c.new_sessions("hold on", repo=repo_path, cmd=[PY, str(hold)])
    srv.wait_output(s["id"], "ready")
    with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {srv.token}"}) as h:
        r = h.post(f"/api/v1/sessions/{s['id'][:4]}/send", json={"prompt": "more"})
        assert r.status_code == 409 and "still running" in r.json()["error"]
        assert "pa stop" in r.json()["hint"]
        r = h.delete("/api/v1/repos/repo")
        assert r.status_code == 409 and s["id"] in r.json()["error"]
    stopped = c.stop(s["id"])
    assert stopped["status"] == "stopped"

    # Secrets stay out of the log, the database and the files pa writes.
    home = srv.home
    written = [home / "server.log", home / "server.json", home / "pa.db", home / "pa.db-wal"]
    written += list(home.glob("sessions/*/turns/*/*"))
    for path in written:
        if path.is_file():
            data = path.read_bytes()
            assert secret.encode() not in data, path
            assert srv.token.encode() not in data, path
