"""What a transport is: it carries one HTTP exchange to the server's routes and back.

``Client`` writes every verb once, as a request to a route; a transport delivers it,
over a socket (``_http``) or by calling the server's ASGI app in this process
(``_local``). Standard library only: the CLI imports this on every command.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from parallel_agents.errors import PAError


class Unreachable(Exception):
    """The exchange failed below HTTP (refused, reset, timed out, malformed)."""

    def __init__(self, err: Exception) -> None:
        super().__init__(str(err) or type(err).__name__)
        self.timed_out = isinstance(err, TimeoutError)


class Exchange(Protocol):
    """A response whose status and headers are known and whose body is still to be read."""

    status: int
    headers: dict[str, str]  # names in lower case
    # The orchestrator's own exception behind an error response, where the app runs in
    # this process: its class and exit code, which the error JSON does not carry (a
    # plain PAError, exit 1, reads as a 400, a UsageError).
    error: PAError | None

    def chunks(self) -> Iterator[bytes]:
        """The body as it arrives (raises ``Unreachable`` when the exchange breaks)."""
        ...

    def close(self) -> None: ...


class Transport(Protocol):
    url: str

    def open(
        self,
        method: str,
        target: str,
        *,
        body: bytes | None,
        headers: dict[str, str],
        timeout: float,
    ) -> Exchange:
        """Send one request (``target``: path and query under the server's root)."""
        ...

    def refresh(self) -> None:
        """Bring session statuses up to date, where no server does it continuously."""
        ...

    def relocate(self) -> None:
        """After a lost connection: find the server again (it may have restarted)."""
        ...

    def close(self) -> None: ...


def read_all(ex: Exchange) -> bytes:
    return b"".join(ex.chunks())
