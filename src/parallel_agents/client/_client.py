"""``Client``: every session verb, written once, as a request to one of the server's
routes; a transport carries it (``_http`` to a running server, ``_local`` in-process).

Standard library only at import: the CLI loads this on every command.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parallel_agents.client._orchestration import OrchestrationVerbs
from parallel_agents.client._seg import seg
from parallel_agents.client._sse import lines, parse_sse
from parallel_agents.client._transport import Exchange, Transport, Unreachable, read_all
from parallel_agents.errors import Conflict, NotFound, PAError, UsageError
from parallel_agents.server.daemon import ServerNotRunning

if TYPE_CHECKING:
    from parallel_agents.config import Settings

API = "/api/v1"
# The note of a text diff travels in this header (percent-encoded: a header is one
# latin-1 line); the JSON diff carries it as ``note``.
NOTE_HEADER = "x-pa-note"


def _to_stderr(text: str) -> None:
    import sys

    print(text, file=sys.stderr)


def _raise_for(ex: Exchange, content: bytes) -> None:
    status = ex.status
    if status < 400:
        return
    if ex.error is not None:
        raise ex.error
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
    if status == 400 and body.get("exit_code") == PAError.exit_code:
        raise PAError(msg, hint=hint)  # an expected failure, not bad input
    if status in (400, 422):
        raise UsageError(msg, hint=hint)
    if status == 401:
        raise PAError(
            f"the server refused the token: {msg}",
            hint="the token lives in $PA_HOME/token; is PA_HOME the server's?",
        )
    raise PAError(f"server error ({status}): {msg}", hint=hint)


class Client(OrchestrationVerbs):
    """Talks to one server's routes, through ``transport``.

    ``Client(url, token)`` is a running server's client (``from_home`` finds it);
    ``Client.in_process()`` answers from the server app in this process.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        home: Path | None = None,
        timeout: float = 60.0,
        transport: Transport | None = None,
    ) -> None:
        if transport is None:
            if url is None or token is None:
                raise TypeError("Client needs a url and a token, or a transport")
            from parallel_agents.client._http import HTTPTransport

            transport = HTTPTransport(url, token, home=home)
        self.transport = transport
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

    @classmethod
    def in_process(cls, settings: Settings | None = None) -> Client:
        """The server app of ``settings.home`` (default: from the environment), answering
        in this process: no server needed (it loads what a server loads)."""
        from parallel_agents.client._local import LocalTransport

        local = LocalTransport(settings)
        return cls(transport=local, home=local.state.home)

    @property
    def url(self) -> str:
        return self.transport.url

    @property
    def token(self) -> str:
        return str(getattr(self.transport, "token", ""))

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one exchange ------------------------------------------------------------------------
    def _open(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float,
    ) -> Exchange:
        """Send one request; the response with its status, body unread. Raises
        ``Unreachable`` below HTTP."""
        from urllib.parse import urlencode

        target = API + path
        query = {k: v for k, v in (params or {}).items() if v is not None}
        if query:
            target += "?" + urlencode(query)
        hdrs = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            hdrs["Content-Type"] = "application/json"
        return self.transport.open(method, target, body=data, headers=hdrs, timeout=timeout)

    def _unreachable(self, method: str, path: str, e: Unreachable) -> PAError:
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
        limit = timeout if timeout is not None else self.timeout
        try:
            ex = self._open(method, path, params=params, body=json_body, timeout=limit)
            try:
                content = read_all(ex)
            finally:
                ex.close()
        except Unreachable as e:
            raise self._unreachable(method, path, e) from e
        _raise_for(ex, content)
        return json.loads(content)

    def stream_text(
        self,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        timeout: float = 600,
        on_headers: Callable[[dict[str, str]], None] | None = None,
    ) -> Iterator[str]:
        """A text response (e.g. a large diff) chunk by chunk, never all in memory;
        ``on_headers`` sees its headers (lower-case names) before the first chunk."""
        import codecs

        try:
            ex = self._open("GET", path, params=params, timeout=timeout)
        except Unreachable as e:
            raise self._unreachable("GET", path, e) from e
        try:
            if ex.status >= 400:
                _raise_for(ex, read_all(ex))
            if on_headers is not None:
                on_headers(ex.headers)
            try:
                yield from codecs.iterdecode(ex.chunks(), "utf-8", "replace")
            except Unreachable as e:
                raise self._unreachable("GET", path, e) from e
        finally:
            ex.close()

    def refresh(self) -> None:
        """Bring statuses up to date (a no-op when a server does it continuously)."""
        self.transport.refresh()

    # -- repos -------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return dict(self.request("GET", "/health"))

    def repo_ls(self) -> list[dict[str, Any]]:
        return list(self.request("GET", "/repos")["repos"])

    def repo_add(
        self, path: str | Path, name: str | None = None, base: str | None = None
    ) -> dict[str, Any]:
        body = {"path": str(Path(path).expanduser().absolute()), "name": name, "base": base}
        return dict(self.request("POST", "/repos", json_body=body))

    def repo_rm(self, name: str) -> dict[str, Any]:
        return dict(self.request("DELETE", f"/repos/{seg(name)}")["removed"])

    def repo_move(self, name: str, path: str | Path) -> dict[str, Any]:
        body = {"path": str(Path(path).expanduser().absolute())}
        return dict(self.request("POST", f"/repos/{seg(name)}/move", json_body=body))

    # The names scripts have used since the first client.
    list_repos = repo_ls
    add_repo = repo_add
    remove_repo = repo_rm

    # -- sessions ----------------------------------------------------------------------------
    def sessions(
        self,
        *,
        all: bool = False,
        status: str | Sequence[str] | None = None,
        repo: str | None = None,
    ) -> list[dict[str, Any]]:
        st = status if status is None or isinstance(status, str) else ",".join(status)
        params = {"all": "1" if all else None, "status": st, "repo": repo}
        return list(self.request("GET", "/sessions", params=params)["sessions"])

    list_sessions = sessions

    def get_session(self, sid: str) -> dict[str, Any]:
        """The session (unique id prefixes work) with its ``turns``."""
        return dict(self.request("GET", f"/sessions/{seg(sid)}"))

    def session(self, sid: str) -> dict[str, Any]:
        """The session with its ``turns`` and its last ``check`` (None if none ran)."""
        d = self.get_session(sid)
        d["check"] = self.request("GET", f"/sessions/{seg(d['id'])}/check")["check"]
        return d

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
        source: dict[str, Any] | None = None,
        parent: str | None = None,  # issue 18: the lead session starting these
        runtime: str | None = None,  # issue 19: local or ray
    ) -> list[dict[str, Any]]:
        """Start ``count`` sessions on the same prompt. ``repo`` defaults to the cwd.
        ``source``: from_branch / from_pr / from_issue (issue 16 §4)."""
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
            "parent": parent,
            "runtime": runtime,
            **(source or {}),
        }
        body = {k: v for k, v in body.items() if v is not None}
        # Creating many worktrees on a big repo can take minutes; a short read timeout
        # would make a retrying user create duplicates.
        limit = max(self.timeout, 600.0 + 10.0 * count)
        return list(self.request("POST", "/sessions", json_body=body, timeout=limit)["sessions"])

    def new(
        self, prompt: str, *, repo: str | None = None, cwd: Path | None = None, **kw: Any
    ) -> dict[str, Any]:
        """One session; ``repo`` is a name or a path (relative to ``cwd``), default the
        repo around ``cwd`` (default: this process's)."""
        where = Path(cwd) if cwd is not None else Path.cwd()
        ref: str
        if repo is None:
            ref = str(where.absolute())
        elif "/" in repo or repo in (".", ".."):
            # A path, as the user means it from ``cwd``; a name stays a name.
            p = Path(repo).expanduser()
            p = p if p.is_absolute() else where / p
            ref = str(p.absolute()) if p.exists() else repo
        else:
            ref = repo
        [s] = self.new_sessions(prompt, repo=ref, **kw)
        return s

    def send(self, sid: str, prompt: str) -> dict[str, Any]:
        return dict(
            self.request("POST", f"/sessions/{seg(sid)}/send", json_body={"prompt": prompt})
        )

    def stop(self, sid: str) -> dict[str, Any]:
        return dict(
            # A stop may wait for a Ray start under way, the agent's grace, then its end.
            self.request("POST", f"/sessions/{seg(sid)}/stop", timeout=max(self.timeout, 600))
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

    def rename(self, sid: str, title: str) -> dict[str, Any]:
        return dict(
            self.request("POST", f"/sessions/{seg(sid)}/rename", json_body={"title": title})
        )

    def mark_read(self, sid: str) -> dict[str, Any]:
        return dict(self.request("POST", f"/sessions/{seg(sid)}/read"))

    # -- events ------------------------------------------------------------------------------
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
        path = f"/sessions/{seg(session_id)}/stream" if session_id else "/stream"
        last = after_id
        delay = 0.1
        while True:
            headers = {"Accept": "text/event-stream"}
            if last is not None:
                headers["Last-Event-ID"] = str(last)
            params = {"kinds": ",".join(kinds)} if kinds else {}
            try:
                # The timeout bounds every read: a silent stream (the server sends
                # keep-alive comments) counts as lost after ``idle_timeout``.
                ex = self._open("GET", path, params=params, headers=headers, timeout=idle_timeout)
                try:
                    if ex.status >= 400:
                        _raise_for(ex, read_all(ex))
                    if on_connect is not None:
                        on_connect()
                    delay = 0.1
                    for msg in parse_sse(lines(ex.chunks())):
                        if msg["id"] is not None:
                            last = msg["id"]
                        if msg["data"] is None or msg["event"] == "reset":
                            continue  # a reset only moves the resume point (server/sse.py)
                        yield json.loads(msg["data"])
                finally:
                    ex.close()
            except Unreachable as e:
                if not reconnect:
                    raise ServerNotRunning(f"lost the event stream from {self.url}: {e}") from e
            else:
                if not reconnect:
                    return
            time.sleep(delay)
            delay = min(2.0, delay * 2)
            self.transport.relocate()

    # -- review --------------------------------------------------------------------------------
    def diff_json(self, sid: str, turn: int | None = None) -> dict[str, Any]:
        params = {"turn": turn, "format": "json"}
        return dict(self.request("GET", f"/sessions/{seg(sid)}/diff", params=params))

    def diff_text(
        self,
        sid: str,
        turn: int | None = None,
        *,
        stat: bool = False,
        name_only: bool = False,
        note: Callable[[str], None] | None = _to_stderr,
    ) -> Iterator[str]:
        """The patch (or ``stat``, or ``name_only``: the paths) as text. A note on what it
        shows (a discarded session's archive, a missing worktree, nested repositories)
        goes to ``note``: by default to stderr, where `pa diff` shows it."""

        def noted(headers: dict[str, str]) -> None:
            from urllib.parse import unquote

            text = headers.get(NOTE_HEADER)
            if text and note is not None:
                note(unquote(text))

        fmt = "stat" if stat else "patch"
        return self.stream_text(
            f"/sessions/{seg(sid)}/diff",
            # name_only wins over stat, as it always has.
            params={"turn": turn, "format": "name-only" if name_only else fmt},
            on_headers=noted,
        )

    def check(
        self, sid: str, command: str | None = None, timeout: float | None = None
    ) -> dict[str, Any]:
        body = {k: v for k, v in {"command": command, "timeout": timeout}.items() if v}
        limit = (timeout or 600) + 60
        return dict(
            self.request("POST", f"/sessions/{seg(sid)}/check", json_body=body, timeout=limit)
        )

    def rollback(self, sid: str, turn: int) -> dict[str, Any]:
        return dict(
            self.request("POST", f"/sessions/{seg(sid)}/rollback", json_body={"turn": turn})
        )

    def conflicts(self, repo: str | None = None) -> dict[str, Any]:
        return dict(self.request("GET", "/conflicts", params={"repo": repo}, timeout=600))

    def merge(self, ids: list[str], **kw: Any) -> dict[str, Any]:
        body = {"ids": ids, **{k: v for k, v in kw.items() if v is not None}}
        return dict(self.request("POST", "/merge", json_body=body, timeout=3600))

    def pr(self, sid: str, draft: bool = False) -> dict[str, Any]:
        return dict(
            self.request(
                "POST", f"/sessions/{seg(sid)}/pr", json_body={"draft": draft}, timeout=600
            )
        )
