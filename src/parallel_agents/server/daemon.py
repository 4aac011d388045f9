"""One server per PA_HOME: run it in the foreground, spawn it in the background, stop it.
(Waiting until a spawned server answers takes a client: ``client.start_background``.)

``$PA_HOME/server.lock`` is held with ``flock`` for the server's whole life; the kernel
drops the lock when the process dies (even by SIGKILL), so a stale lock file never
blocks a new server, and "is a server running?" is "is the lock held?".
``$PA_HOME/server.json`` says where it listens: {pid, host, port, url, version,
started_at, home}. A second server on the same PA_HOME refuses and names the first.

This module imports neither FastAPI nor uvicorn until a server is actually run.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from parallel_agents import __version__
from parallel_agents.config import load_settings, pa_home
from parallel_agents.errors import PAError, UsageError

INFO_FILE = "server.json"
LOCK_FILE = "server.lock"
LOG_FILE = "server.log"
LOG_MAX = 5 * 1024 * 1024
DEFAULT_PORT = 7317

log = logging.getLogger("parallel_agents.server")


class ServerRunning(PAError):
    """A server already runs for this PA_HOME."""


class ServerNotRunning(PAError):
    """No server runs for this PA_HOME (or it does not answer)."""


@dataclass
class ServerInfo:
    pid: int
    host: str
    port: int
    url: str
    version: str
    started_at: float
    home: str

    @property
    def uptime(self) -> float:
        return max(0.0, time.time() - self.started_at)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# -- files -------------------------------------------------------------------------------
def _home(home: Path | None) -> Path:
    return Path(home) if home is not None else pa_home()


def read_info(home: Path | None = None) -> ServerInfo | None:
    path = _home(home) / INFO_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return ServerInfo(
            pid=int(data["pid"]),
            host=str(data["host"]),
            port=int(data["port"]),
            url=str(data["url"]),
            version=str(data.get("version", "")),
            started_at=float(data["started_at"]),
            home=str(data.get("home", "")),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_info(home: Path, info: ServerInfo) -> None:
    path = home / INFO_FILE
    tmp = path.with_name(f".{INFO_FILE}.{os.getpid()}")
    tmp.write_text(json.dumps(info.to_json(), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _remove_info_if_ours(home: Path) -> None:
    info = read_info(home)
    if info is not None and info.pid == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            (home / INFO_FILE).unlink()


def lock_held(home: Path | None = None) -> bool:
    """Is some process holding ``server.lock``? (Takes and drops it if free.)"""
    path = _home(home) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops our lock, if we got it
    return False


def _pid_alive(pid: int) -> bool:
    from parallel_agents.runtime.local import alive

    return pid > 0 and alive(pid)


def status(home: Path | None = None) -> ServerInfo | None:
    """The running server of this PA_HOME, or None (stale files are ignored)."""
    h = _home(home)
    info = read_info(h)
    if info is None or not _pid_alive(info.pid):
        return None
    if not lock_held(h):
        return None
    return info


# -- running in the foreground -------------------------------------------------------------
class _Redact(logging.Filter):
    """Keeps the token (and anything passed as ``?token=``/Bearer) out of the log."""

    _PATTERNS = (
        re.compile(r"(token=)[^&\s\"']+"),
        re.compile(r"(Bearer\s+)\S+", re.IGNORECASE),
    )

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:
            return True
        clean = msg.replace(self.token, "***") if self.token else msg
        for pat in self._PATTERNS:
            clean = pat.sub(r"\1***", clean)
        if clean != msg:
            record.msg = clean
            record.args = None
        return True


def _setup_logging(token: str, level: str, log_file: Path | None = None) -> None:
    handler: logging.Handler
    if log_file is not None:
        from logging.handlers import RotatingFileHandler

        class _Private(RotatingFileHandler):
            def _open(self) -> Any:  # a rotated-in file is private too
                private_log(Path(self.baseFilename))
                return super()._open()

        handler = _Private(log_file, maxBytes=LOG_MAX, backupCount=2, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_Redact(token))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level.upper())


def private_log(path: Path) -> None:
    """Create ``path`` readable by the owner only, or tighten it (older pa made it 0644):
    the log shows session ids, paths and errors."""
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    with contextlib.suppress(OSError):
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)


def _acquire_lock(home: Path) -> int:
    fd = os.open(home / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + 0.5  # another process may be probing it this instant
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                info = read_info(home)
                where = f" (pid {info.pid}, {info.url})" if info else " (it is starting up)"
                raise ServerRunning(
                    f"a pa server is already running for PA_HOME {home}{where}",
                    hint="use it, stop it with `pa server stop`, or set another PA_HOME",
                ) from None
            time.sleep(0.02)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise UsageError(f"cannot listen on host {host!r}: {e}") from e
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
        sock.listen(2048)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            alt = port + 1 if 0 < port < 65535 else 0
            raise UsageError(
                f"port {port} on {host} is already in use",
                hint=f"choose another port, e.g. --port {alt} (or --port 0 for any free one)",
            ) from None
        if e.errno in (errno.EACCES, errno.EPERM):
            raise UsageError(
                f"not allowed to listen on {host}:{port}",
                hint="use a port above 1023, e.g. --port 7317",
            ) from None
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.set_inheritable(False)
    return sock


def _bind_or_any(host: str, port: int, *, any_if_busy: bool) -> socket.socket:
    try:
        return _bind(host, port)
    except UsageError:
        if any_if_busy and port and _bind_errno(host, port) == errno.EADDRINUSE:
            return _bind(host, 0)
        raise


def _bind_errno(host: str, port: int) -> int | None:
    """Why binding ``host:port`` fails right now (None: it would not)."""
    probe = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    with probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            return e.errno
    return None


def run(
    home: Path | None = None,
    host: str | None = None,
    port: int | None = None,
    *,
    log_level: str = "info",
    log_file: Path | None = None,
    on_ready: Callable[[ServerInfo, str], None] | None = None,
) -> None:
    """Serve in this process until SIGINT/SIGTERM. Raises ServerRunning or UsageError.

    Logs go to stderr, or to ``log_file`` (rotated at 5 MB, two old files kept).
    """
    settings = load_settings()
    if home is not None:
        settings.home = Path(home)
    from parallel_agents.store import ensure_home  # not on the client's path: it is heavy

    h = ensure_home(settings.home)
    host = host or str(settings.get("server.host") or "127.0.0.1")
    # Only a port asked for on the command line must be that port; the setting's (default
    # 7317) may be held by another PA_HOME's server: any free one will do, as for autostart,
    # since clients find the port in server.json.
    asked = port is not None
    if port is None:
        configured = settings.get("server.port")
        port = DEFAULT_PORT if configured is None else int(configured)
    if not 0 <= port <= 65535:
        raise UsageError(f"port {port} is out of range (0-65535)")
    lock_fd = _acquire_lock(h)
    try:
        sock = _bind_or_any(host, port, any_if_busy=not asked)
        actual = int(sock.getsockname()[1])
        from parallel_agents.server.auth import load_or_create_token

        token = load_or_create_token(h)
        _setup_logging(token, log_level, log_file)

        import uvicorn

        from parallel_agents.server.app import create_app
        from parallel_agents.server.loop import url_for

        app = create_app(h, settings=settings)
        app.state.pa.bind(host, actual)
        info = ServerInfo(
            pid=os.getpid(),
            host=host,
            port=actual,
            url=url_for(host, actual),
            version=__version__,
            started_at=app.state.pa.started_at,
            home=str(h),
        )
        _write_info(h, info)
        log.info("pa server %s for %s on %s (pid %d)", __version__, h, info.url, info.pid)
        if actual != port and port:
            log.warning("port %d is in use: listening on %d instead", port, actual)
        if on_ready is not None:
            on_ready(info, token)
        config = uvicorn.Config(
            app,
            log_config=None,
            log_level=log_level,
            access_log=True,
            lifespan="on",
            timeout_graceful_shutdown=2,
            server_header=False,
        )
        _quiet_server(uvicorn.Server)(config).run(sockets=[sock])
    finally:
        _remove_info_if_ours(h)
        os.close(lock_fd)


def _quiet_server(base: type[Any]) -> type[Any]:
    """uvicorn.Server that exits normally on SIGTERM/SIGINT instead of re-raising the
    signal after shutdown (which would skip our cleanup and exit with -15)."""

    class QuietServer(base):  # type: ignore[misc]
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            sigs = (signal.SIGINT, signal.SIGTERM)
            old = {sig: signal.signal(sig, self.handle_exit) for sig in sigs}
            try:
                yield
            finally:
                for sig, handler in old.items():
                    signal.signal(sig, handler)

    return QuietServer


# -- managing a background server -------------------------------------------------------------
_spawned: list[subprocess.Popen[bytes]] = []  # reaped by _reap while we live


def _reap() -> None:
    for p in list(_spawned):
        if p.poll() is not None:
            _spawned.remove(p)


def _log_error(log_path: Path, offset: int) -> tuple[str, str | None]:
    try:
        with open(log_path, "rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", "replace")
    except OSError:
        text = ""
    err = hint = None
    for line in text.splitlines():
        if line.startswith("error: "):
            err = line[len("error: ") :]
        elif line.startswith("hint: "):
            hint = line[len("hint: ") :]
    if err is None:
        tail = text.strip().splitlines()[-5:]
        err = "the server exited while starting" + (": " + " | ".join(tail) if tail else "")
    return err, hint


class Spawned:
    """A server this process just started in the background, not yet known to answer.

    Waiting until it answers (``parallel_agents.client.start_background``) needs a client;
    this module knows only the process, the lock and the files.
    """

    def __init__(self, home: Path, proc: subprocess.Popen[bytes], log_path: Path, offset: int):
        self.home = home
        self.proc = proc
        self.log_path = log_path
        self._offset = offset  # where this start's lines begin in the log

    def info(self) -> ServerInfo | None:
        """Its ``server.json``, once it wrote it (it then listens)."""
        info = read_info(self.home)
        return info if info is not None and info.pid == self.proc.pid else None

    def exited(self) -> bool:
        return self.proc.poll() is not None

    def winner(self) -> ServerInfo:
        """After it exited: the server that won a race with it, or ServerNotRunning with
        the error it logged."""
        end = time.monotonic() + 5
        while time.monotonic() < end:
            cur = status(self.home)
            if cur is not None:
                return cur
            if not lock_held(self.home):
                break
            time.sleep(0.05)
        err, hint = _log_error(self.log_path, self._offset)
        raise ServerNotRunning(err, hint=hint or f"see {self.log_path}")

    def abandon(self) -> None:
        """It did not answer in time: stop it."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGTERM)


def spawn(
    home: Path | None = None, host: str | None = None, port: int | None = None
) -> ServerInfo | Spawned:
    """Start a detached server unless one runs (then: its info). Does not wait for it."""
    from parallel_agents.store import ensure_home  # not on the client's path: it is heavy

    h = ensure_home(_home(home))
    _reap()
    cur = status(h)
    if cur is not None:
        return cur
    log_path = h / LOG_FILE
    with contextlib.suppress(OSError):
        if log_path.stat().st_size > LOG_MAX:
            os.replace(log_path, h / (LOG_FILE + ".1"))
    try:
        offset = log_path.stat().st_size
    except OSError:
        offset = 0
    argv = [
        sys.executable,
        "-m",
        "parallel_agents",
        "serve",
        "--log-file",
        str(log_path),
    ]
    if host:
        argv += ["--host", host]
    if port is not None:
        argv += ["--port", str(port)]
    env = dict(os.environ)
    env["PA_HOME"] = str(h)
    from parallel_agents.runtime.local import Detached

    private_log(log_path)
    with open(log_path, "ab") as out:
        proc = Detached(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=str(h),
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    _spawned.append(proc)
    return Spawned(h, proc, log_path, offset)


def stop(home: Path | None = None, timeout: float = 15.0) -> ServerInfo | None:
    """Stop the running server (SIGTERM, then SIGKILL). None if none was running."""
    h = _home(home)
    _reap()
    info = status(h)
    if info is None:
        if not lock_held(h):
            with contextlib.suppress(FileNotFoundError):
                (h / INFO_FILE).unlink()  # stale
        return None
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(info.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            _reap()
            if not _pid_alive(info.pid) or not lock_held(h):
                break
            time.sleep(0.05)
        else:
            continue
        break
    deadline = time.monotonic() + 5
    while lock_held(h) and time.monotonic() < deadline:
        time.sleep(0.05)
    if not lock_held(h):
        with contextlib.suppress(FileNotFoundError):
            (h / INFO_FILE).unlink()
    _reap()
    return info
