"""Memory per running session: growth of the process that supervises them (the server
when there is one, else a supervisor loop like `pa wait` runs), and the per-session
wrapper process the design adds on top of the agent itself."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import Home, agent_cmd, stats, wait_for

# A supervisor loop without a server: what `pa wait` / `pa logs -f` do, forever.
TICKER = r"""
import time
from parallel_agents.sessions.orchestrator import App
app = App.open()
print("ready", flush=True)
while True:
    app.sup.tick()
    time.sleep(0.1)
"""


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _settle(pid: int, seconds: float = 1.5) -> int:
    """RSS after it stops moving much (polling, bounded)."""
    deadline = time.monotonic() + seconds
    last = rss_kb(pid)
    while time.monotonic() < deadline:
        time.sleep(0.25)
        last = max(last, rss_kb(pid))
    return last


def run(root: Path, repo: Path, n: int, use_server: bool) -> dict[str, Any]:
    home = Home(root, autostart=use_server)
    home.write_settings("[limits]\nmax_running = 0\n")
    home.pa("repo", "add", str(repo), "--name", "bench")
    hold = agent_cmd("--lines", "200", "--rate", "20", "--hold", "120")
    ticker = None
    srv = None
    try:
        if use_server:
            from bench.spawn import Server

            srv = Server(home)
            pid = int(srv.info["pid"])
            kind = "server"
        else:
            ticker = subprocess.Popen(
                [sys.executable, "-c", TICKER], env=home.env(), stdout=subprocess.PIPE, text=True
            )
            assert ticker.stdout is not None
            ticker.stdout.readline()
            pid = ticker.pid
            kind = "supervisor loop (no server)"

        def start(prompt: str) -> str:
            if srv is not None:
                return srv.new(prompt, cmd=hold)
            p = home.pa("new", prompt, "--repo", "bench", "--cmd", hold, "--json")
            return str(json.loads(p.stdout)["id"])

        # One session first, so imports and caches are warm in the supervising process.
        first = start("warm-up")
        wait_for(home.turn_file(first, "pid").exists, 120, "the first agent")
        before = _settle(pid)
        sids = [start(f"mem {i}") for i in range(n)]
        for sid in sids:
            wait_for(home.turn_file(sid, "pid").exists, 300, f"session {sid}")
        after = _settle(pid, 3.0)
        wrappers = []
        for sid in sids:
            try:
                wpid = int(home.turn_file(sid, "wrapper_pid").read_text())
                wrappers.append(rss_kb(wpid) / 1024)
            except (OSError, ValueError):
                pass
        return {
            "sessions": n,
            "supervisor": kind,
            "rss_before_mb": round(before / 1024, 1),
            "rss_after_mb": round(after / 1024, 1),
            "per_session_mb": round((after - before) / 1024 / n, 3),
            "wrapper_rss_mb": stats(wrappers),
        }
    finally:
        if ticker is not None:
            ticker.kill()
            ticker.wait()
            if ticker.stdout:
                ticker.stdout.close()
        home.kill_agents()
