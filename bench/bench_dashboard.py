"""Benchmark: the web dashboard with many sessions, in real Chromium.

Fills a temp PA_HOME straight through the Store (sessions, turns and their events, as
agents would have produced them), starts the real server, and drives Debian's Chromium
with Playwright to time:

- first render: navigation start -> the sidebar drawn with every session (median of runs);
- open a session: click -> its conversation on screen (the last 300 events are drawn; older
  ones wait behind a "show earlier events" button);
- event -> shown: an event committed to the store by another process -> its text on screen
  in the open conversation (in view inside every scrolling box, at the next animation frame
  after it appeared: bench/shown.js), median and p95;
- burst: 500 events committed at once -> the last of them on screen.

    python bench/bench_dashboard.py           # 20 sessions x 200 events (seconds)
    python bench/bench_dashboard.py --full    # 100 sessions x 1,000 events (the issue's size)

Prints a markdown table and writes bench/results/dashboard.json. The server's supervisor
loop publishes new events every ~150 ms, so that is the floor of the event latency.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))

from parallel_agents.models import Session, Status  # noqa: E402
from parallel_agents.store import Store  # noqa: E402

CHROMIUM = os.environ.get("PA_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@localhost",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@localhost",
    "GIT_CONFIG_NOSYSTEM": "1",
}
MD = (
    "I looked at `{f}` and found the problem.\n\n"
    "- the loop starts at **1**\n- the test expects 0\n\n```python\nfor i in range(n):\n"
    "    total += xs[i]\n```\n"
)


def _events(n: int, r: random.Random) -> list[tuple[str, dict[str, Any], str | None]]:
    """A plausible agent transcript of ``n`` events."""
    out: list[tuple[str, dict[str, Any], str | None]] = []
    i = 0
    while len(out) < n:
        f = f"src/mod{r.randint(0, 40)}.py"
        k = i % 7
        if k == 0:
            out.append(("message", {"text": MD.format(f=f)}, None))
        elif k == 1:
            out.append(("tool_call", {"name": "Read", "input": {"file_path": f}}, None))
        elif k == 2:
            body = "\n".join(f"{n:4} line {n} of {f}" for n in range(30))
            out.append(("tool_result", {"ok": True, "output": body}, None))
        elif k == 3:
            out.append(
                (
                    "command",
                    {"command": "pytest -q", "exit_code": r.choice([0, 1]), "output": "3 passed"},
                    None,
                )
            )
        elif k == 4:
            out.append(("file_change", {"path": f, "kind": "modified"}, None))
        elif k == 5:
            out.append(("output", {"text": f"step {i}: editing {f}"}, None))
        else:
            cost = round(r.random() / 100, 5)
            out.append(
                (
                    "usage",
                    {
                        "input_tokens": 900,
                        "output_tokens": 120,
                        "cached_tokens": 0,
                        "cost_usd": cost,
                    },
                    None,
                )
            )
        i += 1
    return out[:n]


def fill(home: Path, repo: Path, n_sessions: int, n_events: int) -> list[str]:
    store = Store(home)
    r = store.add_repo("bench", str(repo), "main")
    rnd = random.Random(7)
    now = time.time()
    ids = []
    statuses = [Status.IDLE, Status.IDLE, Status.IDLE, Status.FAILED, Status.STOPPED]
    for i in range(n_sessions):
        sid = secrets.token_hex(4)
        s = Session(
            id=sid,
            title=f"Task {i}: improve module {i % 40}",
            repo_id=r.id,
            repo_name=r.name,
            branch=f"pa/task-{i}-{sid}",
            base_ref="main",
            base_commit="0" * 40,
            worktree=str(home / "worktrees" / sid),
            agent=rnd.choice(["claude", "codex", "gemini", "mini"]),
            model=None,
            status=Status.IDLE,
            agent_session_id=None,
            created_at=now - 3600 + i,
            updated_at=now - 1800 + i,
        )
        store.insert_session(s)
        with store.tx() as db:
            store.add_turn(db, sid, f"Improve module {i % 40}: make the tests pass", {})
            store.append_events(db, sid, 1, _events(n_events, rnd))
            st = statuses[i % len(statuses)]
            if st != Status.IDLE:
                db.execute("UPDATE sessions SET status = ? WHERE id = ?", (st.value, sid))
        ids.append(sid)
    store.close()
    return ids


def start_server(home: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str, str]:
    import httpx

    log = open(home.parent / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
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
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {(home.parent / 'server.log').read_text()[-2000:]}")
        with contextlib.suppress(OSError, ValueError, httpx.HTTPError):
            info = json.loads((home / "server.json").read_text())
            token = (home / "token").read_text().strip()
            if info.get("pid") == proc.pid:
                r = httpx.get(
                    info["url"] + "/api/v1/health",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=2,
                )
                if r.status_code == 200:
                    return proc, str(info["url"]), token
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("server did not start")


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    k = max(0, min(len(s) - 1, round(p / 100 * (len(s) - 1))))
    return s[k]


def run(n_sessions: int, n_events: int, samples: int, renders: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="pa-bench-dash-"))
    home = tmp / "home"
    repo = tmp / "repo"
    repo.mkdir(parents=True)
    env = {**os.environ, **GIT_ENV, "PA_HOME": str(home), "XDG_CONFIG_HOME": str(tmp / "cfg")}
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True, env=env)
    (repo / "README.md").write_text("bench\n")
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True, env=env)
    subprocess.run(["git", "commit", "-q", "-m", "init"], cwd=repo, check=True, env=env)

    t = time.perf_counter()
    ids = fill(home, repo, n_sessions, n_events)
    fill_s = time.perf_counter() - t
    proc, url, token = start_server(home, env)
    res: dict[str, Any] = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            ctx = browser.new_context(viewport={"width": 1400, "height": 860})
            # Stamps a marker line once its text is on screen (in view, painted): outside
            # the app, no hook in it.
            ctx.add_init_script((HERE / "shown.js").read_text(encoding="utf-8"))
            page = ctx.new_page()
            page.goto(f"{url}/login?token={token}")
            page.wait_for_function("() => window.__pa && window.__pa.ready")
            # The status filter "all" shows failed/stopped too; keep it for every render.
            page.select_option("#f-status", "*")
            first: list[float] = []
            for _ in range(renders):
                page.reload()
                page.wait_for_function("() => window.__pa && window.__pa.ready")
                n = page.evaluate("() => document.querySelectorAll('#session-list .item').length")
                assert n == n_sessions, n
                first.append(
                    page.evaluate(
                        "() => performance.getEntriesByName('pa-first-render')[0].startTime"
                    )
                )
            page.wait_for_load_state("networkidle")
            # Open one session: all its events on screen.
            sid = ids[len(ids) // 2]
            opens: list[float] = []
            for _ in range(3):
                page.goto(f"{url}/#/")
                t0 = page.evaluate("() => performance.now()")
                page.click(f'#session-list .item[data-id="{sid}"]')
                page.wait_for_function(
                    "(n) => document.querySelectorAll('#view-session .convo .ev').length > 0 &&"
                    " !document.querySelector('#view-session .convo .loading') &&"
                    " window.__pa.state && document.querySelector('#view-session .convo')"
                    ".scrollHeight > 0",
                    arg=n_events,
                )
                t1 = page.evaluate(
                    "() => new Promise(r => requestAnimationFrame(() => r(performance.now())))"
                )
                opens.append(t1 - t0)
            page.wait_for_load_state("networkidle")
            store = Store(home)
            written: dict[str, float] = {}
            rnd = random.Random(3)
            for i in range(samples):
                marker = f"bench-{i}"
                with store.tx() as db:
                    store.append_events(db, sid, 1, [("output", {"text": marker}, None)])
                written[marker] = time.time() * 1000
                time.sleep(rnd.uniform(0.08, 0.2))
            page.wait_for_function(
                "(n) => Object.keys(window.__shown).length >= n",
                arg=samples,
                timeout=30_000,
                polling=100,
            )
            shown = page.evaluate("() => window.__shown")
            lat = [shown[m] - written[m] for m in written]
            # Burst: 500 events in one transaction.
            burst = [(f"bench-burst-{i}") for i in range(500)]
            with store.tx() as db:
                store.append_events(db, sid, 1, [("output", {"text": m}, None) for m in burst])
            t_burst = time.time() * 1000
            # The last line on screen (the block follows its tail: earlier ones scrolled by).
            page.wait_for_function(
                "(m) => m in window.__shown", arg=burst[-1], timeout=60_000, polling=100
            )
            burst_ms = page.evaluate("(m) => window.__shown[m]", burst[-1]) - t_burst
            store.close()
            browser.close()
        res = {
            "sessions": n_sessions,
            "events_per_session": n_events,
            "fill_store_s": round(fill_s, 2),
            "first_render_ms": {
                "median": round(statistics.median(first), 1),
                "min": round(min(first), 1),
                "max": round(max(first), 1),
                "runs": [round(x, 1) for x in first],
            },
            "open_session_ms": {"median": round(statistics.median(opens), 1), "events": n_events},
            "event_to_shown_ms": {
                "median": round(statistics.median(lat), 1),
                "p95": round(pct(lat, 95), 1),
                "max": round(max(lat), 1),
                "samples": len(lat),
            },
            "burst_500_ms": round(burst_ms, 1),
        }
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--full", action="store_true", help="100 sessions x 1,000 events")
    ap.add_argument("--sessions", type=int)
    ap.add_argument("--events", type=int)
    ap.add_argument("--samples", type=int, default=60, help="event latency samples")
    ap.add_argument("--renders", type=int, default=5, help="first-render runs")
    ap.add_argument("--out", default=str(HERE / "results" / "dashboard.json"))
    a = ap.parse_args()
    n_sessions = a.sessions or (100 if a.full else 20)
    n_events = a.events or (1000 if a.full else 200)
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    res = run(n_sessions, n_events, a.samples, a.renders)
    res["machine"] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }
    fr, ev = res["first_render_ms"], res["event_to_shown_ms"]
    rows = [
        ("sessions x events", f"{n_sessions} x {n_events:,}"),
        ("first render (sidebar with every session), median", f"{fr['median']:.0f} ms"),
        ("first render, min / max", f"{fr['min']:.0f} / {fr['max']:.0f} ms"),
        (
            f"open a session of {n_events:,} events (last 300 drawn), median",
            f"{res['open_session_ms']['median']:.0f} ms",
        ),
        ("event written -> shown, median", f"{ev['median']:.0f} ms"),
        ("event written -> shown, p95", f"{ev['p95']:.0f} ms"),
        ("500 events in one commit -> all shown", f"{res['burst_500_ms']:.0f} ms"),
    ]
    print("| measure | value |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
