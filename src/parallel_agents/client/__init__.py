"""A small HTTP client for the pa server, used by the CLI (and anyone scripting pa).

    from parallel_agents.client import Client, ensure_server

    c = ensure_server()                      # starts a background server if needed
    [s] = c.new_sessions("fix the bug", repo="myrepo", cmd=["./agent.sh"])
    for ev in c.stream(session_id=s["id"]):  # follows, reconnecting with Last-Event-ID
        print(ev["kind"], ev["payload"])

Sessions and events come back as the API's JSON dicts; ``session_from_json`` and
``event_from_json`` turn them into the model dataclasses. Errors come back as the
same ``PAError`` subclasses the orchestrator raises (NotFound, Conflict, UsageError).
It speaks HTTP with the standard library's ``http.client``, one short connection per
call (the server is local): httpx would cost a `pa` command 0.2 s of start-up, more
than the rest of a typical call.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parallel_agents.errors import Conflict, NotFound, PAError, UsageError
from parallel_agents.server.daemon import ServerNotRunning

if TYPE_CHECKING:
    from http.client import HTTPConnection, HTTPResponse

    from parallel_agents.models import Event, Session
    from parallel_agents.server.daemon import ServerInfo

__all__ = ["Client", "ServerNotRunning", "ensure_server", "event_from_json", "session_from_json"]


def seg(value: str) -> str:
    """``value`` as one URL path segment: '?', '#', '%' and spaces are data, not syntax
    (``pa repo rm 'other?y'`` must never reach the repo ``other``).

    The server decodes '%2F' before routing, so '/' (and '.', '..') cannot travel in one
    segment at all; no repo name or session id contains them.
    """
    from urllib.parse import quote

    if "/" in value or value in (".", ".."):
        raise UsageError(
            f"{value!r} is not a repo name or session id",
            hint="see `pa repo ls` and `pa ls --all`",
        )
    return quote(value, safe="")


def _raise_for(status: int, content: bytes) -> None:
    if status < 400:
        return
    text = content.decode("utf-8", "replace")
    try:
        body = json.loads(text)
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    msg = str(body.get("error") or text.strip() or f"HTTP {status}")
    hint = body.get("hint")
    if status == 404:
        raise NotFound(msg, hint=hint)
    if status == 409:
        raise Conflict(msg, hint=hint)
    if status in (400, 422):
        raise UsageError(msg, hint=hint)
    if status == 401:
        raise PAError(
            f"the server refused the token: {msg}",
            hint="the token lives in $PA_HOME/token; is PA_HOME the server's?",
        )
    raise PAError(f"server error ({status}): {msg}", hint=hint)


class _Unreachable(Exception):
    """The exchange failed below HTTP (refused, reset, timed out, malformed)."""

    def __init__(self, err: Exception) -> None:
        super().__init__(str(err) or type(err).__name__)
        self.timed_out = isinstance(err, TimeoutError)


def parse_sse(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """SSE messages as {"id": int|None, "event": str, "data": str} (comments skipped).

    Id-only messages (no data) are yielded too, with ``data`` None: they move the
    resume point without carrying an event.
    """
    ev_id: str | None = None
    event = "message"
    data: list[str] = []
    seen_field = False
    for raw in lines:
        line = raw.rstrip("\r")
        if not line:
            if seen_field:
                yield {
                    "id": int(ev_id) if ev_id and ev_id.isdigit() else None,
                    "event": event,
                    "data": "\n".join(data) if data else None,
                }
            ev_id, event, data, seen_field = None, "message", [], False
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            ev_id = value
            seen_field = True
        elif name == "event":
            event = value
            seen_field = True
        elif name == "data":
            data.append(value)
            seen_field = True


class Client:
    """Talks to one server: ``url`` plus the bearer ``token``."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        home: Path | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.home = home
        self.timeout = timeout

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_home(cls, home: Path | None = None, **kw: Any) -> Client:
        """The client of the server running for PA_HOME ``home`` (default: the env's)."""
        from parallel_agents.config import pa_home
        from parallel_agents.server import daemon
        from parallel_agents.server.auth import read_token

        h = Path(home) if home is not None else pa_home()
        info = daemon.status(h)
        if info is None:
            raise ServerNotRunning(
                f"no pa server is running for PA_HOME {h}", hint="start one: pa server start"
            )
        token = read_token(h)
        if not token:
            raise ServerNotRunning(f"no token in {h}", hint="restart the server")
        return cls(info.url, token, home=h, **kw)

    def close(self) -> None:
        """Nothing to release (every call has its own connection); kept for ``with``."""

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float,
    ) -> tuple[HTTPConnection, HTTPResponse]:
        """Send one request; the connection (to close) and the response (status and
        headers read, body not). Raises ``_Unreachable`` below HTTP."""
        from http.client import HTTPConnection, HTTPException
        from urllib.parse import urlencode, urlsplit

        u = urlsplit(self.url)
        target = u.path + "/api/v1" + path
        query = {k: v for k, v in (params or {}).items() if v is not None}
        if query:
            target += "?" + urlencode(query)
        hdrs = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            hdrs["Content-Type"] = "application/json"
        conn = HTTPConnection(u.hostname or "127.0.0.1", u.port or 80, timeout=timeout)
        try:
            conn.request(method, target, body=data, headers=hdrs)
            return conn, conn.getresponse()
        except (OSError, HTTPException) as e:
            conn.close()
            raise _Unreachable(e) from e

    def _unreachable(self, method: str, path: str, e: _Unreachable) -> PAError:
        if e.timed_out:
            return PAError(
                f"the pa server at {self.url} did not answer {method} {path} in time: {e}",
                hint="it may still be working on it: check `pa ls` before retrying",
            )
        return ServerNotRunning(
            f"cannot reach the pa server at {self.url}: {e}",
            hint="is it running? pa server status",
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        from http.client import HTTPException

        limit = timeout if timeout is not None else self.timeout
        try:
            conn, r = self._open(method, path, params=params, body=json_body, timeout=limit)
            try:
                content = r.read()
            except (OSError, HTTPException) as e:
                raise _Unreachable(e) from e
            finally:
                conn.close()
        except _Unreachable as e:
            raise self._unreachable(method, path, e) from e
        _raise_for(r.status, content)
        return json.loads(content)

    def stream_text(
        self, path: str, *, params: dict[str, Any] | None = None, timeout: float = 600
    ) -> Iterator[str]:
        """A text response (e.g. a large diff) chunk by chunk, never all in memory."""
        import codecs
        from http.client import HTTPException

        try:
            conn, r = self._open("GET", path, params=params, timeout=timeout)
        except _Unreachable as e:
            raise self._unreachable("GET", path, e) from e
        try:
            if r.status >= 400:
                _raise_for(r.status, r.read())
            try:
                yield from codecs.iterdecode(iter(lambda: r.read1(65536), b""), "utf-8", "replace")
            except (OSError, HTTPException) as e:
                raise self._unreachable("GET", path, _Unreachable(e)) from e
        finally:
            conn.close()

    # -- the API ----------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return dict(self.request("GET", "/health"))

    def list_repos(self) -> list[dict[str, Any]]:
        return list(self.request("GET", "/repos")["repos"])

    def add_repo(
        self, path: str | Path, name: str | None = None, base: str | None = None
    ) -> dict[str, Any]:
        body = {"path": str(Path(path).expanduser().absolute()), "name": name, "base": base}
        return dict(self.request("POST", "/repos", json_body=body))

    def remove_repo(self, name: str) -> dict[str, Any]:
        return dict(self.request("DELETE", f"/repos/{seg(name)}")["removed"])

    def list_sessions(
        self,
        *,
        all: bool = False,
        status: str | Sequence[str] | None = None,
        repo: str | None = None,
    ) -> list[dict[str, Any]]:
        st = status if status is None or isinstance(status, str) else ",".join(status)
        params = {"all": "1" if all else None, "status": st, "repo": repo}
        return list(self.request("GET", "/sessions", params=params)["sessions"])

    def get_session(self, sid: str) -> dict[str, Any]:
        """The session (unique id prefixes work) with its ``turns``."""
        return dict(self.request("GET", f"/sessions/{seg(sid)}"))

    def new_sessions(
        self,
        prompt: str,
        *,
        repo: str | Path | None = None,
        agent: str | None = None,
        cmd: Sequence[str] | str | None = None,
        model: str | None = None,
        base: str | None = None,
        title: str | None = None,
        timeout: float | None = None,
        count: int = 1,
        interactive: bool = False,
        env: dict[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Start ``count`` sessions on the same prompt. ``repo`` defaults to the cwd."""
        if repo is None:
            repo = Path.cwd()
        elif isinstance(repo, Path):
            repo = str(repo.expanduser().absolute())
        body: dict[str, Any] = {
            "prompt": prompt,
            "repo": str(repo),
            "agent": agent,
            "cmd": cmd if cmd is None or isinstance(cmd, str) else list(cmd),
            "model": model,
            "base": base,
            "title": title,
            "timeout": timeout,
            "count": count,
            "interactive": interactive,
            "env": env,
        }
        body = {k: v for k, v in body.items() if v is not None}
        # Creating many worktrees on a big repo can take minutes; a short read timeout
        # would make a retrying user create duplicates.
        limit = max(self.timeout, 600.0 + 10.0 * count)
        return list(self.request("POST", "/sessions", json_body=body, timeout=limit)["sessions"])

    def send(self, sid: str, prompt: str) -> dict[str, Any]:
        return dict(
            self.request("POST", f"/sessions/{seg(sid)}/send", json_body={"prompt": prompt})
        )

    def stop(self, sid: str) -> dict[str, Any]:
        return dict(
            self.request("POST", f"/sessions/{seg(sid)}/stop", timeout=max(self.timeout, 120))
        )

    def discard(self, sid: str) -> dict[str, Any]:
        return dict(
            self.request("POST", f"/sessions/{seg(sid)}/discard", timeout=max(self.timeout, 120))
        )

    def restore(self, sid: str, archive: str | None = None) -> dict[str, Any]:
        body = {"archive": archive} if archive else None
        return dict(
            self.request(
                "POST",
                f"/sessions/{seg(sid)}/restore",
                json_body=body,
                timeout=max(self.timeout, 120),
            )
        )

    def mark_read(self, sid: str) -> dict[str, Any]:
        return dict(self.request("POST", f"/sessions/{seg(sid)}/read"))

    def events_page(
        self,
        sid: str | None = None,
        *,
        after_seq: int = 0,
        after_id: int = 0,
        limit: int | None = None,
        kinds: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """One page as the API returns it: ``events``, ``last_seq``/``last_id``, ``more``."""
        k = ",".join(kinds) if kinds else None
        if sid is not None:
            params = {"after_seq": after_seq, "limit": limit, "kinds": k}
            return dict(self.request("GET", f"/sessions/{seg(sid)}/events", params=params))
        params = {"after_id": after_id, "limit": limit, "kinds": k}
        return dict(self.request("GET", "/events", params=params))

    def events(
        self,
        sid: str | None = None,
        *,
        after_seq: int = 0,
        after_id: int = 0,
        limit: int | None = None,
        kinds: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """One page of events: a session's (after ``after_seq``) or everyone's (by id)."""
        page = self.events_page(
            sid, after_seq=after_seq, after_id=after_id, limit=limit, kinds=kinds
        )
        return list(page["events"])

    def all_events(
        self,
        sid: str | None = None,
        *,
        after_seq: int = 0,
        after_id: int = 0,
        kinds: Sequence[str] | None = None,
        page: int = 5000,
    ) -> list[dict[str, Any]]:
        """Every event (of a session, or of all), page by page."""
        out: list[dict[str, Any]] = []
        while True:
            got = self.events_page(
                sid, after_seq=after_seq, after_id=after_id, limit=page, kinds=kinds
            )
            out.extend(got["events"])
            if not got.get("more"):
                return out
            if sid is not None:
                after_seq = int(got["last_seq"])
            else:
                after_id = int(got["last_id"])

    def stream(
        self,
        after_id: int | None = None,
        *,
        session_id: str | None = None,
        kinds: Sequence[str] | None = None,
        reconnect: bool = True,
        on_connect: Callable[[], None] | None = None,
        idle_timeout: float = 60.0,
    ) -> Iterator[dict[str, Any]]:
        """Follow the SSE stream, yielding event dicts (with their global ``id``).

        ``after_id`` None means from now (all sessions) or from the start (one session).
        With ``reconnect`` a dropped connection (or a restarted server, found again
        through PA_HOME) resumes with ``Last-Event-ID``: no event is missed or repeated.
        """
        from http.client import HTTPException

        path = f"/sessions/{seg(session_id)}/stream" if session_id else "/stream"
        last = after_id
        delay = 0.1
        while True:
            headers = {"Accept": "text/event-stream"}
            if last is not None:
                headers["Last-Event-ID"] = str(last)
            params = {"kinds": ",".join(kinds)} if kinds else {}
            try:
                # The socket timeout bounds every read: a silent stream (the server
                # sends keep-alive comments) counts as lost after ``idle_timeout``.
                conn, r = self._open(
                    "GET", path, params=params, headers=headers, timeout=idle_timeout
                )
                try:
                    if r.status >= 400:
                        _raise_for(r.status, r.read())
                    if on_connect is not None:
                        on_connect()
                    delay = 0.1
                    lines = (
                        raw.decode("utf-8", "replace").rstrip("\n") for raw in iter(r.readline, b"")
                    )
                    for msg in parse_sse(lines):
                        if msg["id"] is not None:
                            last = msg["id"]
                        if msg["data"] is None or msg["event"] == "reset":
                            continue  # a reset only moves the resume point (server/sse.py)
                        yield json.loads(msg["data"])
                except (OSError, HTTPException) as e:
                    raise _Unreachable(e) from e
                finally:
                    conn.close()
            except _Unreachable as e:
                if not reconnect:
                    raise ServerNotRunning(f"lost the event stream from {self.url}: {e}") from e
            else:
                if not reconnect:
                    return
            time.sleep(delay)
            delay = min(2.0, delay * 2)
            self._refresh()

    def _refresh(self) -> None:
        """After a lost connection: the server may have restarted on another port."""
        if self.home is None:
            return
        from parallel_agents.server import daemon
        from parallel_agents.server.auth import read_token

        info = daemon.read_info(self.home)
        token = read_token(self.home)
        if info is None or token is None:
            return
        if info.url.rstrip("/") != self.url or token != self.token:
            self.url, self.token = info.url.rstrip("/"), token


def ensure_server(home: Path | None = None, *, timeout: float = 30.0) -> Client:
    """A client of this PA_HOME's server, starting one in the background if none runs."""
    from parallel_agents.config import load_settings, pa_home
    from parallel_agents.server import daemon
    from parallel_agents.server.auth import read_token

    h = Path(home) if home is not None else pa_home()
    info: ServerInfo | None = daemon.status(h)
    if info is None:
        settings = load_settings()
        host = str(settings.get("server.host") or "127.0.0.1")
        configured = settings.get("server.port")
        port = daemon.DEFAULT_PORT if configured is None else int(configured)
        # Another PA_HOME's server may hold the default port: any free one will do, since
        # clients find the port in server.json.
        if port and not _port_free(host, port):
            port = 0
        info, _ = daemon.start_background(h, host=host, port=port, timeout=timeout)
    token = read_token(h)
    if not token:
        raise ServerNotRunning(f"no token in {h}", hint="restart the server")
    return Client(info.url, token, home=h)


def _port_free(host: str, port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


# -- JSON -> models ---------------------------------------------------------------------------
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
