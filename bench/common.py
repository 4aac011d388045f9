"""Shared plumbing for the benchmarks: isolated pa homes, `pa` runs, timing, machine info."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
FAKE_AGENT = HERE / "fake_agent.py"


def machine() -> dict[str, Any]:
    mem_kb = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    git_v = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "load": load(),
        "cores": os.cpu_count(),
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "cpu": cpu,
        "python": platform.python_version(),
        "git": git_v.removeprefix("git version "),
        "os": f"{platform.system()} {platform.release()}",
    }


def load() -> float:
    """1-minute load average: other work on the machine skews every figure."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return 0.0


def stats(xs: list[float]) -> dict[str, float]:
    if not xs:
        return {}
    s = sorted(xs)
    p95 = s[min(len(s) - 1, round(0.95 * (len(s) - 1)))]
    return {
        "median": round(statistics.median(s), 4),
        "p95": round(p95, 4),
        "min": round(s[0], 4),
        "max": round(s[-1], 4),
        "n": len(s),
    }


def ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:,.0f} ms" if seconds < 10 else f"{seconds:,.1f} s"


@dataclass
class Home:
    """One isolated PA_HOME with its own settings file and git identity."""

    root: Path
    autostart: bool = True  # the CLI starts and uses a server (pa's default)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "PA_HOME": str(self.home),
                "PA_CONFIG": str(self.config),
                "GIT_AUTHOR_NAME": "bench",
                "GIT_AUTHOR_EMAIL": "bench@localhost",
                "GIT_COMMITTER_NAME": "bench",
                "GIT_COMMITTER_EMAIL": "bench@localhost",
                "GIT_CONFIG_NOSYSTEM": "1",
                "PA_SERVER_AUTOSTART": "1" if self.autostart else "0",
                "PYTHONPATH": os.pathsep.join(
                    p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH", "")) if p
                ),
            }
        )
        return env

    def write_settings(self, text: str) -> None:
        """The settings file: ``text`` plus a server on any free port."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.config.write_text(text + "\n[server]\nport = 0\n", encoding="utf-8")

    def server_info(self) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads((self.home / "server.json").read_text())
        except (OSError, ValueError):
            return None
        return data

    def stop_server(self) -> None:
        if (self.home / "server.json").exists():
            self.pa("server", "stop", check=False, timeout=120)

    @contextlib.contextmanager
    def activated(self) -> Iterator[None]:
        """This home in os.environ, for in-process use of the library."""
        keys = (
            "PA_HOME",
            "PA_CONFIG",
            "GIT_AUTHOR_NAME",
            "GIT_AUTHOR_EMAIL",
            "GIT_COMMITTER_NAME",
            "GIT_COMMITTER_EMAIL",
            "GIT_CONFIG_NOSYSTEM",
        )
        old = {k: os.environ.get(k) for k in keys}
        env = self.env()
        os.environ.update({k: env[k] for k in keys})
        try:
            yield
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def pa_argv(self, *args: str) -> list[str]:
        """The installed `pa` script beside this interpreter (what users run: no runpy,
        and its own launcher), else ``python -m parallel_agents``."""
        script = Path(sys.executable).with_name("pa")
        if script.is_file() and os.access(script, os.X_OK):
            return [str(script), *args]
        return [sys.executable, "-m", "parallel_agents", *args]

    def pa(
        self, *args: str, timeout: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        p = subprocess.run(
            self.pa_argv(*args), capture_output=True, text=True, env=self.env(), timeout=timeout
        )
        if check and p.returncode != 0:
            raise RuntimeError(f"pa {' '.join(args)} failed ({p.returncode}): {p.stderr}")
        return p

    def turn_file(self, sid: str, name: str, turn: int = 1) -> Path:
        return self.home / "sessions" / sid / "turns" / str(turn) / name

    def kill_agents(self) -> None:
        """Stop this home's server, then SIGKILL every wrapper and agent process group."""
        self.stop_server()
        for name in ("pid", "wrapper_pid"):
            for f in self.home.glob(f"sessions/*/turns/*/{name}"):
                with contextlib.suppress(OSError, ValueError):
                    os.killpg(int(f.read_text().strip()), signal.SIGKILL)


def wait_for(pred: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``pred`` until truthy; raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(delay)
        delay = min(0.05, delay * 1.5)


def started_at(home: Home, sid: str, timeout: float = 300) -> float | None:
    """Wall-clock time the agent of turn 1 was running (the wrapper's pid file)."""
    f = home.turn_file(sid, "pid")
    try:
        wait_for(f.exists, timeout, f"session {sid} to start")
    except TimeoutError:
        return None
    return f.stat().st_mtime


def agent_cmd(*args: str) -> str:
    return " ".join([sys.executable, "-S", str(FAKE_AGENT), *args])


def disk_bytes(path: Path) -> int:
    """Bytes a file or folder takes on disk (allocated blocks, as `du` counts them)."""
    if path.is_file():
        return path.stat().st_blocks * 512
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += (Path(root) / f).stat().st_blocks * 512
    return total


def tempdir(prefix: str) -> Path:
    base = os.environ.get("PA_BENCH_TMP") or None
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))


def remove_tree(path: Path) -> None:
    """Delete a (large) tree with rm, which beats shutil.rmtree on many files."""
    if shutil.which("rm"):
        subprocess.run(["rm", "-rf", str(path)], check=False)
    else:  # pragma: no cover
        shutil.rmtree(path, ignore_errors=True)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def read_json(path: Path) -> Any:
    """The JSON in ``path``, or None when it is missing or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
