"""Helpers for server tests: a real `pa` server in a subprocess, per test PA_HOME.

The server is started with `pa server start --port 0` (``python -m parallel_agents``) and
stopped afterwards; agent processes left behind by a test are killed by process group,
after checking they belong to this test's PA_HOME.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from parallel_agents.client import Client
from parallel_agents.runtime.local import alive
from tests.conftest import make_repo

PY = sys.executable
PA = [PY, "-m", "parallel_agents"]
ACTIVE = ("queued", "starting", "running", "needs_input")


def pa_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    full = dict(os.environ)
    full.update(env or {})
    return subprocess.run(
        [*PA, *args], capture_output=True, text=True, env=full, timeout=timeout, check=False
    )


def wait_for(
    pred: Callable[[], Any],
    timeout: float = 30.0,
    what: str = "condition",
    interval: float = 0.05,
    diagnose: Callable[[], str] | None = None,
) -> Any:
    """Poll ``pred`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    extra = ""
    if diagnose is not None:
        try:
            extra = "\n" + diagnose()
        except Exception as e:
            extra = f"\n(could not diagnose: {e!r})"
    raise AssertionError(
        f"timed out after {timeout:g} s waiting for {what} (last: {last!r}){extra}"
    )


def write_script(tmp: Path, name: str, body: str) -> Path:
    p = tmp / name
    p.write_text(body)
    return p


def proc_status(pid: int, key: str) -> int:
    """A kB value (VmRSS, VmHWM) from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


@dataclass
class Srv:
    home: Path
    env: dict[str, str]
    info: dict[str, Any] = field(default_factory=dict)
    client: Client = field(init=False)

    def start(self) -> Srv:
        p = pa_cli("server", "start", "--port", "0", "--json", env=self.env)
        assert p.returncode == 0, p.stdout + p.stderr
        self.info = json.loads(p.stdout)
        old = getattr(self, "client", None)
        if old is not None:
            old.close()
        self.client = Client(self.info["url"], self.token, home=self.home)
        return self

    @property
    def token(self) -> str:
        return (self.home / "token").read_text().strip()

    @property
    def pid(self) -> int:
        return int(self.info["pid"])

    @property
    def url(self) -> str:
        return str(self.info["url"])

    def kill9(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        wait_for(lambda: not alive(self.pid), 10, "the server to die")

    def stop(self) -> None:
        pa_cli("server", "stop", env=self.env)

    def diagnose(self) -> str:
        """Statuses of every session and the server log's last lines (for failures)."""
        lines = []
        try:
            for s in self.client.list_sessions(all=True):
                lines.append(f"{s['id']} {s['status']} {s.get('error')!r}")
        except Exception as e:
            lines.append(f"(no session list: {e!r})")
        log = self.home / "server.log"
        if log.exists():
            tail = [x for x in log.read_text().splitlines() if "uvicorn.access" not in x]
            lines += tail[-40:]
        return "\n".join(lines)

    def session(self, sid: str) -> dict[str, Any]:
        return self.client.get_session(sid)

    def wait_status(self, sid: str, *statuses: str, timeout: float = 30.0) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            s = self.session(sid)
            return s if s["status"] in statuses else None

        result: dict[str, Any] = wait_for(
            check, timeout, f"session {sid} to be {statuses}", diagnose=self.diagnose
        )
        return result

    def wait_output(self, sid: str, text: str, timeout: float = 30.0) -> None:
        def seen() -> bool:
            evs = self.client.events(sid, kinds=["output"], limit=10000)
            return any(text in e["payload"].get("text", "") for e in evs)

        wait_for(seen, timeout, f"{text!r} in the output of {sid}", diagnose=self.diagnose)

    def turn_file(self, sid: str, name: str, turn: int = 1) -> Path:
        return self.home / "sessions" / sid / "turns" / str(turn) / name

    def agent_pid(self, sid: str, turn: int = 1) -> int:
        path = self.turn_file(sid, "pid", turn)
        return int(wait_for(lambda: path.exists() and path.read_text().strip(), 10, "pid file"))


def _ours(pid: int, home: Path) -> bool:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"PA_HOME={home}".encode() in env


def kill_agents(home: Path) -> None:
    """SIGKILL every wrapper/agent process group still running for this PA_HOME."""
    for pidfile in [
        *home.glob("sessions/*/turns/*/pid"),
        *home.glob("sessions/*/turns/*/wrapper_pid"),
    ]:
        with contextlib.suppress(OSError, ValueError):
            pid = int(pidfile.read_text().strip())
            if alive(pid) and _ours(pid, home):
                os.killpg(pid, signal.SIGKILL)


@pytest.fixture
def start_server(pa_home: Path, tmp_path: Path) -> Iterator[Callable[..., Srv]]:
    """``start_server(config="...toml...", env={...})`` -> a running ``Srv``."""
    servers: list[Srv] = []

    def start(config: str = "", env: dict[str, str] | None = None) -> Srv:
        cfg = Path(os.environ["XDG_CONFIG_HOME"]) / "parallel-agents" / "config.toml"
        cfg.parent.mkdir(parents=True, exist_ok=True)
        cfg.write_text(config)
        srv = Srv(home=pa_home, env=dict(env or {}))
        servers.append(srv)
        return srv.start()

    yield start
    for srv in servers:
        srv.stop()
        with contextlib.suppress(Exception):
            srv.client.close()
    kill_agents(pa_home)


@pytest.fixture
def repo_path(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")
