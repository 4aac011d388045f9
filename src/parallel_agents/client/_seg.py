"""One URL path segment from a repo name, session id or group name."""

from __future__ import annotations

from parallel_agents.errors import UsageError


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
