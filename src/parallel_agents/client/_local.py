"""The in-process transport: the server's own ASGI app, called in this process.

It serves `PA_SERVER_AUTOSTART=0` / ``server.autostart = false`` with the very routes a
running server answers with, so the JSON, the errors and the rules are the same.
It is safe next to a server: ingestion and status changes are transactional and
idempotent, so whichever process gets there first does the work.

Each request runs the app (no lifespan, so no supervisor loop thread) on an event loop
of its own thread; the body comes back through a small queue, chunk by chunk, so a large
diff is never all in memory. With no loop running, nothing moves statuses on between
commands: ``refresh`` does one catch-up pass, as the CLI asks before reading them.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

from parallel_agents.errors import PAError
from parallel_agents.server.asgi_scope import http_scope

if TYPE_CHECKING:
    from parallel_agents.config import Settings

# The address the app's Host check is told it serves (no socket is bound): requests
# name it as their Host, as a browser would name a real server.
HOST = "127.0.0.1"
PORT = 0
RAISED = "pa.raised"  # scope key: the PAErrors the app answered with error JSON
_QUEUED = 16  # body chunks in flight: a slow reader (`pa diff | less`) holds the app back

Message = MutableMapping[str, Any]


class _Exchange:
    """One request on its own thread; the messages the app sends come through ``_q``."""

    def __init__(self, app: Any, scope: dict[str, Any], body: bytes) -> None:
        self._q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=_QUEUED)
        self._closed = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._gone: asyncio.Event | None = None
        self._ended = False
        self._thread = threading.Thread(
            target=self._run, args=(app, scope, body), name="pa-in-process", daemon=True
        )
        self._thread.start()
        kind, value = self._q.get()
        if kind == "error":
            self._ended = True
            raise value
        self.status: int = value[0]
        self.headers: dict[str, str] = value[1]
        raised: list[PAError] = scope[RAISED]
        self.error: PAError | None = raised[-1] if raised else None

    def _put(self, item: tuple[str, Any]) -> bool:
        """Hand ``item`` to the reader, waiting while the queue is full (False: closed)."""
        while not self._closed.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, app: Any, scope: dict[str, Any], body: bytes) -> None:
        started = ended = False
        unread = [body]

        async def receive() -> Message:
            if unread:
                return {"type": "http.request", "body": unread.pop(), "more_body": False}
            assert self._gone is not None
            await self._gone.wait()
            return {"type": "http.disconnect"}

        async def send(msg: Message) -> None:
            nonlocal started, ended
            if msg["type"] == "http.response.start":
                started = True
                headers = {
                    bytes(k).decode("latin-1").lower(): bytes(v).decode("latin-1")
                    for k, v in msg.get("headers", [])
                }
                self._put(("start", (int(msg["status"]), headers)))
            elif msg["type"] == "http.response.body":
                data = bytes(msg.get("body", b""))
                if data and not await asyncio.to_thread(self._put, ("body", data)):
                    raise OSError("the reader closed the response")  # ASGI 2.4: a disconnect
                if not msg.get("more_body", False):
                    ended = True
                    self._put(("end", None))

        async def call() -> None:
            self._loop = asyncio.get_running_loop()
            self._gone = asyncio.Event()
            if self._closed.is_set():
                self._gone.set()
            await app(scope, receive, send)

        try:
            asyncio.run(call())
        except BaseException as e:
            if not started:  # the caller raises it: a crash is not swallowed here
                self._put(("error", e))
                return
            # After the response began (Starlette re-raises what its 500 answered; a
            # stream broke off), the reader has what a socket would have given it.
        if not ended:
            self._put(("end", None))

    def chunks(self) -> Iterator[bytes]:
        while not self._ended:
            kind, value = self._q.get()
            if kind == "body":
                yield value
            elif kind == "error":
                self._ended = True
                raise value
            else:
                self._ended = True

    def close(self) -> None:
        self._closed.set()
        loop, gone = self._loop, self._gone
        if loop is not None and gone is not None:
            # RuntimeError: its loop is closed, the request is over.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(gone.set)


class LocalTransport:
    """The server app of ``settings.home``, answering in this process."""

    def __init__(self, settings: Settings | None = None) -> None:
        from parallel_agents.server.app import create_app

        self.app = create_app(settings=settings)
        self.state = self.app.state.pa
        self._keep_errors()
        self.state.bind(HOST, PORT)
        self.url = f"http://{HOST}:{PORT}"
        self._headers = [
            (b"host", f"{HOST}:{PORT}".encode()),
            (b"authorization", f"Bearer {self.state.token}".encode()),
        ]

    def _keep_errors(self) -> None:
        """Have the app's PAError handler also leave the exception in the scope: the
        client raises it as it is (its class and exit code), as in-process pa always did."""
        handlers = self.app.exception_handlers
        answer: Any = handlers[PAError]  # the route's: async, answers with error JSON

        async def kept(request: Any, exc: Exception) -> Any:
            request.scope[RAISED].append(exc)
            return await answer(request, exc)

        handlers[PAError] = kept  # before the first request: the app reads it then

    def open(
        self,
        method: str,
        target: str,
        *,
        body: bytes | None,
        headers: dict[str, str],
        timeout: float,
    ) -> _Exchange:
        # ``timeout`` guards against a server that hangs; here the work runs in this
        # process, and a slow verb (a big merge) must finish, as it did in-process before.
        path, _, query = target.partition("?")
        data = body or b""
        hdrs = [*self._headers, (b"content-length", str(len(data)).encode())]
        hdrs += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        scope = {**http_scope(method, path, query, hdrs, PORT), RAISED: []}
        return _Exchange(self.app, scope, data)

    def refresh(self) -> None:
        """One catch-up pass of what the server's loop does: ingest output, end turns,
        start queued sessions, run pending checks (this thread's orchestrator)."""
        self.state.app().refresh()

    def relocate(self) -> None:
        """Nothing moves: the app is here."""

    def close(self) -> None:
        """The app holds nothing that outlives this process's threads."""
