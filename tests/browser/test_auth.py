"""Nothing is reachable without the token: pages, static files, every API route, the event
stream and websockets; `pa up`'s one-time link logs a browser in exactly once."""

from __future__ import annotations

import json
import re
import socket
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from click.testing import CliRunner

from .conftest import Server, js_wait, new_page


def test_pages_and_static_files_need_the_login(server: Server, browser: Any) -> None:
    page = new_page(browser, server, login=False)
    resp = page.goto("/")
    assert urlsplit(page.url).path == "/welcome"
    assert resp is not None and resp.status == 401
    text = page.inner_text("body")
    assert "Log in to Parallel Agents" in text
    assert "pa server status" in text
    assert page.evaluate("() => window.__pa === undefined")
    for path in ("/static/js/app.js", "/static/style.css", "/static/vendor/versions.json"):
        r = page.request.get(path)
        assert r.status == 401, path
    # A wrong token neither logs in nor sets a cookie.
    r = page.request.get("/login?token=wrong", max_redirects=0)
    assert r.status == 401
    assert not page.context.cookies()
    # A forged cookie is no better than none.
    page.context.add_cookies([{"name": "pa_session", "value": "forged", "url": server.url}])
    page.goto("/")
    assert urlsplit(page.url).path == "/welcome"
    assert "no valid login" in page.inner_text("body")
    page.context.close()


def test_every_api_route_refuses_without_token(server: Server) -> None:
    spec = server.http.get("/openapi.json").json()
    anon = httpx.Client(base_url=server.url, timeout=10)
    checked = 0
    for path, ops in spec["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        for method in ops:
            if method.upper() not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                continue
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Cookie": "pa_session=x"}):
                r = anon.request(method.upper(), concrete, headers=headers, json={})
                assert r.status_code == 401, (method, path, headers, r.status_code, r.text)
            checked += 1
    r = anon.get("/api/v1/openapi.json")
    assert r.status_code == 401
    r = anon.get("/api/v1/stream", headers={"Accept": "text/event-stream"})
    assert r.status_code == 401
    anon.close()
    assert checked >= 10, checked


def test_login_cookie_is_httponly_and_strict(server: Server, browser: Any) -> None:
    page = new_page(browser, server)
    cookies = page.context.cookies()
    assert [c["name"] for c in cookies] == ["pa_session"]
    c = cookies[0]
    assert c["httpOnly"] is True
    assert c["sameSite"] == "Strict"
    assert server.token not in c["value"]
    assert page.evaluate("() => document.cookie") == ""
    # The page itself forbids loading code from elsewhere.
    csp = page.request.get("/").headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    page.context.close()


def test_pa_up_prints_a_one_time_link(server: Server, browser: Any) -> None:
    from parallel_agents.cli.web import up

    res = CliRunner().invoke(
        up, ["--no-open", "--json"], env={"PA_HOME": str(server.home)}, catch_exceptions=False
    )
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["url"] == server.url and d["started"] is False
    assert "/login/once?code=" in d["login_url"] and server.token not in d["login_url"]
    page = new_page(browser, server, login=False)
    page.goto(d["login_url"])
    js_wait(page, "() => window.__pa && window.__pa.ready")
    assert urlsplit(page.url).path == "/"
    # The same link a second time, in another browser: refused.
    other = new_page(browser, server, login=False)
    resp = other.goto(d["login_url"])
    assert resp is not None and resp.status == 401
    assert "already used or has expired" in other.inner_text("body")
    assert not other.context.cookies()
    res = CliRunner().invoke(up, ["--no-open"], env={"PA_HOME": str(server.home)})
    assert res.exit_code == 0 and "one-time login link" in res.output
    page.context.close()
    other.context.close()


def _ws_handshake(server: Server, path: str, origin: str, *, token: bool) -> str:
    """The status line the server answers a websocket upgrade with."""
    host, port = urlsplit(server.url).hostname, urlsplit(server.url).port
    assert host and port
    query = f"?token={server.token}" if token else ""
    req = (
        f"GET {path}{query} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        f"Origin: {origin}\r\n\r\n"
    )
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(req.encode())
        return sock.recv(4096).decode("latin-1").split("\r\n", 1)[0]


def test_websocket_with_wrong_origin_is_refused(server: Server) -> None:
    import importlib.util

    if not any(importlib.util.find_spec(m) for m in ("websockets", "wsproto")):
        pytest.skip("uvicorn has no websocket support here (pip install websockets)")
    sid = server.start("auth", "for the terminal delay=0.1")[0]["id"]
    path = f"/api/v1/sessions/{sid}/terminal"
    for origin in (
        "http://evil.example",
        "null",
        f"http://127.0.0.1:{urlsplit(server.url).port + 1}",
    ):
        status = _ws_handshake(server, path, origin, token=True)
        assert status.split()[1] == "403", (origin, status)
    # Right origin but no token: refused too; right origin and token: the socket opens.
    assert _ws_handshake(server, path, server.url, token=False).split()[1] == "403"
    assert _ws_handshake(server, path, server.url, token=True).split()[1] == "101"
