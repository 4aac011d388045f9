"""A ``server.json`` that names a server no longer holding the server lock."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from parallel_agents.ops.doctor._processes import _pid_alive
from parallel_agents.ops.doctor._report import Finding, Report

if TYPE_CHECKING:
    from parallel_agents.sessions.orchestrator import App


SERVER_INFO = "server.json"

SERVER_LOCK = "server.lock"


def _server_lock_held(home: Path) -> bool:
    try:
        fd = os.open(home / SERVER_LOCK, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _check_server(app: App, rep: Report, repair: bool) -> None:
    home = app.store.home
    info_path = home / SERVER_INFO
    if not info_path.exists():
        return
    try:
        pid = int(json.loads(info_path.read_text(encoding="utf-8")).get("pid") or 0)
    except (OSError, ValueError, AttributeError):
        pid = 0
    if _server_lock_held(home) and _pid_alive(pid):
        return
    f = rep.add(
        Finding(
            "server_stale",
            str(info_path),
            f"server.json names pid {pid or '?'}, but no server holds {SERVER_LOCK}",
            fix="remove server.json (clients would otherwise try a dead server)",
        )
    )
    if repair:
        with contextlib.suppress(FileNotFoundError):
            info_path.unlink()
        f.repaired = True
