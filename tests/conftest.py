"""Shared fixtures: every test gets its own PA_HOME, config and git identity."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def pa_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Point PA_HOME (and XDG config) at a temp dir so no test touches the real home.

    A server some test left running in that home is stopped afterwards, so none outlives
    the suite (they would hold ports and CPU).
    """
    base = tmp_path_factory.mktemp("pa")
    home = base / "home"
    monkeypatch.setenv("PA_HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(base / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(base / "data"))
    monkeypatch.delenv("PA_CONFIG", raising=False)
    # The CLI works in-process unless a test asks for the background server (server_mode).
    monkeypatch.setenv("PA_SERVER_AUTOSTART", "0")
    monkeypatch.delenv("PA_URL", raising=False)
    # The warm pool is on by default for users; in tests it is off (a budget of 0), so no
    # test repo fills a pool in the background. Pool tests opt in with `pool_on`.
    monkeypatch.setenv("PA_POOL_DISK_BUDGET", "0")
    for k, v in {
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
        "GIT_CONFIG_NOSYSTEM": "1",
    }.items():
        monkeypatch.setenv(k, v)
    yield home
    _stop_leftover_server(home)


@pytest.fixture
def pool_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """The warm pool as users get it: the budget from the settings (default 5%)."""
    monkeypatch.delenv("PA_POOL_DISK_BUDGET")


def _stop_leftover_server(home: Path) -> None:
    import json
    import signal
    import time

    try:
        pid = int(json.loads((home / "server.json").read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return
        except (ProcessLookupError, OSError):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def make_repo(path: Path, files: dict[str, str] | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    for name, content in (
        files or {"README.md": "# demo\n", "src/app.py": "print('hi')\n"}
    ).items():
        p = path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


def output_lines(events: Any, kind: str = "output") -> list[str]:
    """The plain lines a session's ``kind`` events hold, in order: one event holds a run of
    them, joined by "\n" (issue 14 §5). ``events``: ``Event``s or their JSON dicts."""
    out: list[str] = []
    for e in events:
        k, payload = (e["kind"], e["payload"]) if isinstance(e, dict) else (e.kind, e.payload)
        if k == kind and "output_cut" not in payload:
            out += str(payload.get("text", "")).split("\n")
    return out


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


def pa(
    *args: str,
    cwd: Path | None = None,
    input: str | None = None,
    env: dict[str, str] | None = None,
    check: bool = False,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run the real `pa` console entry point in a subprocess."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    proc = subprocess.run(
        [sys.executable, "-m", "parallel_agents", *args],
        cwd=cwd,
        input=input,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"pa {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


@pytest.fixture
def pa_run() -> Iterator[object]:
    yield pa


@pytest.fixture
def server_mode(monkeypatch: pytest.MonkeyPatch, pa_home: Path) -> Iterator[Path]:
    """CLI commands start and use the background server; it is stopped afterwards."""
    monkeypatch.setenv("PA_SERVER_AUTOSTART", "1")
    try:
        yield pa_home
    finally:
        pa("server", "stop", timeout=60)


# -- skips that hide a broken checkout fail the run ----------------------------------------
# A skip for missing fixtures/captures would make a clone that lacks them look green; such a
# skip is a failure. Every other skip reason says what to install or set.
MISSING_FIXTURES = re.compile(
    r"\b(fixtures?|captures?)\b[^.;]*\b(missing|not found|absent)\b"
    r"|\b(missing|no)\b[^.;]*\b(fixtures?|captures?)\b",
    re.IGNORECASE,
)
_fixture_skips: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    reason = reason.removeprefix("Skipped: ")
    if MISSING_FIXTURES.search(reason):
        _fixture_skips.append(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _fixture_skips and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _fixture_skips:
        return
    terminalreporter.section("skipped for missing fixtures: the run fails", red=True, bold=True)
    for line in _fixture_skips:
        terminalreporter.line(line)
    terminalreporter.line(
        "fixtures are committed under tests/fixtures; restore them (git checkout) or "
        "re-record the agent captures with scripts/record-captures"
    )
