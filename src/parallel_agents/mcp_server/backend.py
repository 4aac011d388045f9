"""What the MCP tools need from pa: its REST API, called in one of two ways."""

from __future__ import annotations

from typing import Any, Protocol


class Backend(Protocol):
    """pa's ``/api/v1`` as the tools call it. Errors are raised as ``PAError``."""

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """The JSON answer of ``method`` ``/api/v1{path}``."""

    def text(self, path: str, params: dict[str, Any], cap: int) -> tuple[str, bool, str | None]:
        """A text answer (a diff, a log), at most ``cap`` bytes: the text, whether it was
        cut, and the server's note on what it shows (or None)."""

    def refresh(self) -> None:
        """Move statuses on (a no-op next to a running server's loop)."""
