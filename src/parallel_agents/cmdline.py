"""``--cmd`` strings: split like a shell would, then executed as argv (never by a shell).

Its own module because `pa new` needs it before anything heavy is imported.
"""

from __future__ import annotations

import shlex

from parallel_agents.errors import UsageError


def split_cmd(cmd: str) -> list[str]:
    """``cmd`` as argv; a clear UsageError when it cannot be parsed or is empty."""
    try:
        argv = shlex.split(cmd)
    except ValueError as e:
        raise UsageError(f"cannot parse --cmd {cmd!r}: {e}") from e
    if not argv:
        raise UsageError("--cmd is empty")
    return argv


def argv_of(cmd: list[str] | str | None) -> list[str] | None:
    """A request's ``cmd`` as argv: a string is split like a shell would, a list is taken
    as it is (an empty list, or an empty program, is refused)."""
    if isinstance(cmd, str):
        return split_cmd(cmd)
    if cmd is not None and (not cmd or not cmd[0]):
        raise UsageError("'cmd' is empty")
    return list(cmd) if cmd is not None else None
