"""The transport to a running server: the standard library's ``http.client``, one short
connection per call (the server is local). httpx would cost a `pa` command 0.2 s of
start-up, more than the rest of a typical call; ``http.client`` itself is imported on
the first request, not with the package.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from parallel_agents.client._transport import Unreachable

if TYPE_CHECKING:
    from http.client import HTTPConnection, HTTPResponse

    from parallel_agents.errors import PAError


class _Exchange:
    def __init__(self, conn: HTTPConnection, response: HTTPResponse) -> None:
        self._conn = conn
        self._r = response
        self.status = response.status
        self.headers = {k.lower(): v for k, v in response.getheaders()}
        self.error: PAError | None = None  # over a socket, only the error JSON arrives

    def chunks(self) -> Iterator[bytes]:
        from http.client import HTTPException

        try:
            # read1: what has arrived, at once (an SSE stream's events one by one).
            yield from iter(lambda: self._r.read1(65536), b"")
        except (OSError, HTTPException) as e:
            raise Unreachable(e) from e

    def close(self) -> None:
        self._conn.close()


class HTTPTransport:
    """The server at ``url``, with the bearer ``token``; ``home`` (its PA_HOME) lets a
    lost connection find a restarted server again."""

    def __init__(self, url: str, token: str, *, home: Path | None = None) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.home = home

    def open(
        self,
        method: str,
        target: str,
        *,
        body: bytes | None,
        headers: dict[str, str],
        timeout: float,
    ) -> _Exchange:
        from http.client import HTTPConnection, HTTPException
        from urllib.parse import urlsplit

        u = urlsplit(self.url)
        hdrs = {"Authorization": f"Bearer {self.token}", **headers}
        conn = HTTPConnection(u.hostname or "127.0.0.1", u.port or 80, timeout=timeout)
        try:
            conn.request(method, u.path + target, body=body, headers=hdrs)
            return _Exchange(conn, conn.getresponse())
        except (OSError, HTTPException) as e:
            conn.close()
            raise Unreachable(e) from e

    def refresh(self) -> None:
        """The server's loop keeps statuses up to date."""

    def relocate(self) -> None:
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

    def close(self) -> None:
        """Nothing to release: every call has its own connection."""
