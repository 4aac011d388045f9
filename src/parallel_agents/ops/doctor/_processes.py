"""Processes: what live processes have open (``_Procs``), and processes a session that is
not running left behind (``stray_process``).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from parallel_agents.models import Session
from parallel_agents.ops.doctor._report import Finding, Report

if TYPE_CHECKING:
    from parallel_agents.sessions.orchestrator import App


def _pid_alive(pid: int) -> bool:
    from parallel_agents.runtime.local import alive

    return pid > 0 and alive(pid)


class _Procs:
    """What live processes have open and run (read from /proc once, lazily)."""

    def __init__(self) -> None:
        self._open: set[str] | None = None
        self._cmdlines: list[str] | None = None

    def refresh(self) -> None:
        self._open = None
        self._cmdlines = None

    def is_open(self, path: Path) -> bool:
        if self._open is None:
            self._open = set()
            for pid in _pids():
                fd_dir = f"/proc/{pid}/fd"
                with contextlib.suppress(OSError):
                    for fd in os.listdir(fd_dir):
                        with contextlib.suppress(OSError):
                            self._open.add(os.readlink(f"{fd_dir}/{fd}"))
        return str(path) in self._open or os.path.realpath(path) in self._open

    def mentions(self, text: str) -> bool:
        if self._cmdlines is None:
            self._cmdlines = []
            for pid in _pids():
                with contextlib.suppress(OSError):
                    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
                    self._cmdlines.append(raw.replace(b"\0", b" ").decode("utf-8", "replace"))
        return any(text in c for c in self._cmdlines)


def _pids() -> list[str]:
    try:
        return [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return []


def _check_stray_processes(app: App, rep: Report, repair: bool) -> None:
    """Processes left by a session that is not running: those its agent started (they
    carry its tag, ``runtime.wrapper.TAG``; ended by --repair) and any other process
    working inside its worktree (someone's shell or editor: reported, never touched)."""
    from parallel_agents.runtime import local
    from parallel_agents.runtime.wrapper import TAG
    from parallel_agents.sessions import interactive

    sessions = {s.id: s for s in app.store.sessions()}

    def live(s: Session) -> bool:
        return s.status.active or (s.interactive and s.status in interactive.LIVE)

    roots = {os.path.realpath(s.worktree): s for s in sessions.values() if not live(s)}
    mine = local.ancestors()
    prefix = f"{TAG}=".encode()
    to_end: dict[str, list[Finding]] = {}
    for name in _pids():
        pid = int(name)
        if pid in mine:
            continue
        try:
            if Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] == b"Z":
                continue
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            cwd = os.readlink(f"/proc/{pid}/cwd").removesuffix(" (deleted)")
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").strip()
        except (OSError, IndexError):
            continue
        tagged = [v[len(prefix) :] for v in env if v.startswith(prefix)]
        tag = tagged[0].decode("utf-8", "replace") if tagged else ""
        owner = sessions.get(tag)  # a tag from another PA_HOME names no session here
        if owner is None:
            owner = next(
                (s for root, s in roots.items() if cwd == root or cwd.startswith(root + "/")),
                None,
            )
            tag = ""
        if owner is None or live(owner):
            continue
        how = "was started by" if tag else "works in the worktree of"
        f = rep.add(
            Finding(
                "stray_process",
                f"pid {pid}",
                f"{cmd.decode('utf-8', 'replace')[:200]} {how} session {owner.id}, which is "
                f"{owner.status.value} (cwd {cwd})",
                repo=owner.repo_name,
                fix="end it (SIGTERM, then SIGKILL)" if tag else None,
            )
        )
        if tag:
            to_end.setdefault(owner.id, []).append(f)
        else:
            f.detail += "; not started by pa, so left alone"
            f.problem = False
    if repair:
        for sid, found in to_end.items():
            local.end_tagged(sid)
            for f in found:
                f.repaired = not _pid_alive(int(f.subject.removeprefix("pid ")))
                if not f.repaired:
                    f.error = "it is still running"
