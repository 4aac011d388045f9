"""Detached local processes: one wrapper per turn, output and exit code in files."""

from __future__ import annotations

import contextlib
import marshal
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from parallel_agents.runtime.base import LaunchSpec
from parallel_agents.runtime.base import (
    TurnFiles as TurnFiles,  # re-exported: the engines' name for a turn's folder
)
from parallel_agents.runtime.wrapper import LAUNCH, STOP, end_leftovers
from parallel_agents.runtime.wrapper import (
    TAG as TAG,  # re-exported: the supervisor tags turns with it
)

WRAPPER = str(Path(__file__).with_name("wrapper.py"))
# How long a stop waits for a wrapper that is starting to name its agent (or end): a
# Python start-up on a loaded machine, not the agent's own.
START_WAIT = 30.0


class Detached(subprocess.Popen[bytes]):
    """A child meant to outlive this process (a wrapper, a filler, a server): collected
    by ``reap`` while we live, and no ResourceWarning when we exit before it does."""

    def __del__(self) -> None:
        if self.returncode is None and self.poll() is None:
            return
        super().__del__()


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _private_dirs(d: Path) -> None:
    """``mkdir -p`` with every folder it creates readable by the owner only (the session
    folders hold prompts, output and the agent's environment)."""
    if d.is_dir():
        return
    _private_dirs(d.parent)
    with contextlib.suppress(FileExistsError):
        d.mkdir(mode=0o700)


def spawn(
    turn_dir: Path,
    argv: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    stdin: bytes | None,
    setup: list[str] | None = None,
    max_bytes: int = 0,
) -> int:
    """Start the wrapper detached from this process; returns the wrapper's pid.

    ``max_bytes``: the most the turn's stdout (and stderr) may keep, its head and tail
    (``wrapper.pump``); 0: the agent writes its files itself, without a cap."""
    _private_dirs(turn_dir)
    if stdin is not None:
        _write_private(turn_dir / "stdin", stdin)
    spec = {
        "argv": list(argv),
        "cwd": str(cwd),
        "env": dict(env),
        "setup": setup,
        "max_bytes": int(max_bytes),
    }
    # The spec holds the agent's environment (API keys): readable by the owner only.
    # marshal, not JSON: the wrapper (same interpreter) reads it without importing json.
    _write_private(turn_dir / LAUNCH, marshal.dumps(spec))
    for name in ("stdout", "stderr"):
        (turn_dir / name).touch(mode=0o600)
    log_fd = os.open(turn_dir / "wrapper.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(log_fd, "wb") as log:
        # -I: the wrapper needs nothing but built-in modules, so it is run by file name
        # and ignores PYTHONPATH; the agent inherits our environment untouched.
        proc = Detached(
            [sys.executable, "-I", "-S", WRAPPER, str(turn_dir)],
            cwd=str(turn_dir),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
            close_fds=True,
        )
    # Reap it later if we live long enough (the server does); not our child to wait for.
    with _children_lock:
        _children.append(proc)
    return proc.pid


_children: list[Detached] = []
_children_lock = threading.Lock()


def reap() -> None:
    """Collect finished wrappers started by this process (avoids zombies in the server)."""
    with _children_lock:
        for p in list(_children):
            if p.poll() is not None:
                _children.remove(p)


def wrapper_pid(files: TurnFiles) -> int | None:
    """The pid of the wrapper running this turn: from its ``wrapper_pid`` file, or, in
    the moments before the wrapper wrote it, from the child this process spawned."""
    pid = files.wrapper_pid()
    if pid is not None:
        return pid
    want = str(files.dir)
    with _children_lock:
        for p in _children:
            if isinstance(p.args, list) and p.args[-1:] == [want]:
                return p.pid
    return None


def kill_session(leader: int | None) -> int:
    """SIGKILL every process of the session led by ``leader`` (a wrapper and its agent).

    Used when the turn's files are gone, so the agent's own pid is unknown. Linux /proc.
    """
    if not leader:
        return 0
    killed = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # After the command name: state, ppid, pgrp, session, ...
        if len(fields) > 3 and fields[3] == str(leader):
            with contextlib.suppress(ProcessLookupError, PermissionError, ValueError):
                os.kill(int(stat.parent.name), signal.SIGKILL)
                killed += 1
    return killed


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    # No ``reap()`` here: it polls every wrapper this process started, and the server asks
    # this of each running session (100 sessions: 10,000 polls a pass). A zombie is told
    # apart below; the server's pass reaps once (issue 14 §3/§6).
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); look at its state.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def signal_group(pid: int | None, sig: int) -> bool:
    if not pid:
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
        return True
    return False


def stop(files: TurnFiles, grace: float) -> None:
    """Interrupt, then terminate, then kill the agent's process group.

    A stop that comes before the wrapper named its agent (it is starting, or between
    the setup command and the agent) leaves its mark (``wrapper.STOP``) first: a wrapper
    that has not started the agent yet then starts none and writes the exit record; one
    that has, names it, and it is signalled here. Whichever comes is waited for."""
    with contextlib.suppress(OSError):  # no folder: no wrapper will ever look
        (files.dir / STOP).touch(mode=0o600)
    pid = _agent_pid(files)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        if not signal_group(pid, sig):
            return
        deadline = time.monotonic() + (grace if sig != signal.SIGKILL else 5.0)
        while time.monotonic() < deadline:
            if files.exit_info() is not None or not alive(pid):
                return
            time.sleep(0.05)


def _agent_pid(files: TurnFiles) -> int | None:
    """The pid of the turn's running agent (or setup command), waited for while its
    wrapper is starting it; None once the turn ended or its wrapper is gone (or never
    started: no launch spec)."""
    deadline = time.monotonic() + START_WAIT
    while files.exit_info() is None:
        pid = files.pid()
        if pid and alive(pid):
            return pid
        wpid = wrapper_pid(files)
        if wpid is None and files.launch() is None:
            return None
        if (wpid is not None and not alive(wpid)) or time.monotonic() > deadline:
            return None
        time.sleep(0.02)  # the wrapper writes its agent's pid as soon as it spawned it
    return None


def ancestors() -> frozenset[int]:
    """This process and its parents: a `pa` run by an agent must not end itself."""
    out = {os.getpid()}
    pid = os.getppid()
    while pid > 1 and pid not in out:
        out.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
    return frozenset(out)


def end_tagged(sid: str, grace: float = 2.0) -> int:
    """End every process still carrying session ``sid``'s tag (``wrapper.TAG``): what its
    agent started in the background, setsid daemons included. Returns how many there were.

    Used by stop and discard, so nothing an agent started outlives them (the wrapper does
    the same at the end of each headless turn)."""
    return end_leftovers(-1, f"{TAG}={sid}".encode(), grace, exclude=ancestors())


class LocalRuntime:
    """The default runtime: each turn a detached wrapper on this machine, writing its
    output and exit record straight into the turn's files."""

    kind = "local"
    end_wait = 10.0

    def start(self, files: TurnFiles, spec: LaunchSpec) -> int | None:
        return spawn(
            files.dir,
            spec.argv,
            cwd=spec.cwd,
            env=spec.env,
            stdin=spec.stdin,
            setup=spec.setup,
            max_bytes=spec.max_bytes,
        )

    def read(self, files: TurnFiles, offset: int, size: int) -> tuple[bytes, int]:
        return files.read_stdout(offset, size)

    def exit_info(self, files: TurnFiles) -> dict[str, object] | None:
        return files.exit_info()

    def alive(self, files: TurnFiles) -> bool:
        wpid = files.wrapper_pid()
        if wpid is None:
            # Just spawned: the wrapper has not written its pid yet. Give it time.
            launch = files.launch()
            try:
                if launch is None:
                    return False
                age = time.time() - launch.stat().st_mtime
            except OSError:
                return False
            return age < 30
        if alive(wpid):
            return True
        # The wrapper may have written the exit record after our first look.
        return files.exit_info() is not None

    def stop(self, files: TurnFiles, grace: float) -> None:
        stop(files, grace)
