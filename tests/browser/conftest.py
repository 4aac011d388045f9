"""Browser tier: the real server in a temp PA_HOME, Debian's Chromium driven by Playwright.

One server and one browser per test module (starting them is most of the cost); each
test gets a fresh browser context (cookies, localStorage) that is logged in through the
real ``/login?token=`` route. Sessions are created through the REST API and run the
``command`` agent with ``fake_agent.py``, a small script that writes a file and prints.

Screenshots land in ``test-artifacts/browser/``; ``scripts/screenshots.sh`` copies the
ones the README shows to ``docs/img/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
FAKE_AGENT = Path(__file__).with_name("fake_agent.py")
VENDOR = ROOT / "src" / "parallel_agents" / "web" / "static" / "vendor"
CHROMIUM = os.environ.get("PA_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
VIEWPORT = {"width": 1400, "height": 860}
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


def _require_browser() -> None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install playwright)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    if not (VENDOR / "versions.json").exists():
        pytest.fail("the dashboard's vendor files are missing: run scripts/build-web.sh")


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=env
    ).stdout


@dataclass
class Server:
    url: str
    token: str
    home: Path
    proc: subprocess.Popen[bytes]
    base: Path
    repos: dict[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.http = httpx.Client(
            base_url=self.url + "/api/v1",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=60,
        )

    def api(self, method: str, path: str, body: Any = None, ok: bool = True) -> Any:
        r = self.http.request(method, path, json=body)
        if ok and r.status_code >= 400:
            raise AssertionError(f"{method} {path} -> {r.status_code}: {r.text}")
        return r.json() if r.headers.get("content-type", "").startswith("application/json") else r

    def has_route(self, method: str, path: str) -> bool:
        spec = self.http.get("/openapi.json").json()
        return method.lower() in spec.get("paths", {}).get("/api/v1" + path, {})

    def repo(self, name: str, files: dict[str, str] | None = None) -> Path:
        """A fresh git repo registered under ``name``."""
        if name in self.repos:
            return self.repos[name]
        path = self.base / "repos" / name
        path.mkdir(parents=True)
        git(path, "init", "-q", "-b", "main")
        for rel, text in (
            files or {"README.md": f"# {name}\n", "src/app.py": "print(1)\n"}
        ).items():
            p = path / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
        git(path, "add", "-A")
        git(path, "commit", "-q", "-m", "initial")
        self.api("POST", "/repos", {"path": str(path), "name": name})
        self.repos[name] = path
        return path

    def start(self, repo: str, prompt: str, *, count: int = 1, **kw: Any) -> list[dict[str, Any]]:
        """Start ``count`` sessions of the fake command agent."""
        self.repo(repo)
        body = {
            "prompt": prompt,
            "repo": repo,
            "agent": "command",
            "cmd": [sys.executable, str(FAKE_AGENT)],
            "count": count,
            **kw,
        }
        out = self.api("POST", "/sessions", body)
        return list(out["sessions"])

    def session(self, sid: str) -> dict[str, Any]:
        return dict(self.api("GET", f"/sessions/{sid}"))

    def wait(self, sid: str, *statuses: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            s = self.session(sid)
            if s["status"] in statuses:
                return s
            if time.monotonic() > deadline:
                raise AssertionError(f"session {sid} is {s['status']}, not {statuses}: {s}")
            time.sleep(0.1)


def _wait_for_server(home: Path, proc: subprocess.Popen[bytes], log: Path) -> tuple[str, str]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {log.read_text()[-3000:]}")
        with contextlib.suppress(OSError, ValueError):
            info = json.loads((home / "server.json").read_text())
            token = (home / "token").read_text().strip()
            if info.get("pid") == proc.pid:
                r = httpx.get(
                    info["url"] + "/api/v1/health",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=2,
                )
                if r.status_code == 200:
                    return str(info["url"]), token
        time.sleep(0.05)
    raise RuntimeError(f"the server did not answer in 30 s: {log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    _require_browser()
    base = tmp_path_factory.mktemp("browser")
    home = base / "home"
    home.mkdir()
    env = {
        **os.environ,
        **GIT_ENV,
        "PA_HOME": str(home),
        "XDG_CONFIG_HOME": str(base / "config"),
        "XDG_DATA_HOME": str(base / "data"),
        # No background warm pool (on by default for users): its filler writing into a repo
        # races the tests that move or delete it. tests/conftest.py does the same per test,
        # but this module-wide server starts before that fixture runs.
        "PA_POOL_DISK_BUDGET": "0",
    }
    env.pop("PA_CONFIG", None)
    env.pop("PA_URL", None)
    agents_bin = ROOT / ".agents" / "bin"  # real agent CLIs, when scripts/install-agents.sh ran
    if agents_bin.is_dir():
        env["PATH"] = f"{agents_bin}:{env.get('PATH', '/usr/bin:/bin')}"
    log = base / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "parallel_agents",
                "serve",
                "--port",
                "0",
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        url, token = _wait_for_server(home, proc, log)
        srv = Server(url=url, token=token, home=home, proc=proc, base=base)
        yield srv
        srv.http.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# Module scope, not session: Playwright's sync API keeps an event loop running in this
# thread while it lives, which would break `asyncio.run` in the test modules after these.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def new_page(browser: Any, server: Server, *, login: bool = True, **ctx: Any) -> Any:
    context = browser.new_context(viewport=VIEWPORT, base_url=server.url, **ctx)
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page.on(
        "console",
        lambda m: (
            errors.append(f"console.error: {m.text} @ {m.location}")
            if m.type == "error" and "Failed to load resource" not in m.text
            else None
        ),
    )
    page.pa_errors = errors
    if login:
        page.goto(f"/login?token={server.token}")
        page.wait_for_function("() => window.__pa && window.__pa.ready")
    return page


@pytest.fixture
def page(browser: Any, server: Server, request: pytest.FixtureRequest) -> Iterator[Any]:
    pg = new_page(browser, server)
    yield pg
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        shot(pg, f"FAILED-{request.node.name}")
    errors = list(pg.pa_errors)
    pg.context.close()
    assert not errors, "errors in the page:\n" + "\n".join(errors)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{rep.when}", rep)


def shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def js_wait(page: Any, fn: str, timeout: float = 15_000) -> Any:
    """wait_for_function with a function (string predicates need eval, which the CSP forbids)."""
    return page.wait_for_function(fn, timeout=timeout)
