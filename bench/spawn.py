"""Session start: `pa new` → agent process running, against raw `git worktree add`.

* ``raw_adds``: the baseline, ``git worktree add`` (a full checkout) done sequentially.
* ``concurrent``: N ``pa new`` processes started at once; per session, from its own
  launch to its agent running (the wrapper's pid file), and the makespan (first launch to
  last agent running). Compared with N sequential raw adds in the same run.
* ``single_inprocess``: ``App.new_session`` in a warm process, which is what the server
  does for every `pa new` once one runs; with and without the warm pool.
* ``via_server``: POST /api/v1/sessions to a real `pa server`, when there is one.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import Home, agent_cmd, git, started_at, stats, wait_for

AGENT = agent_cmd("--lines", "20")


def raw_adds(repo: Path, n: int, dest: Path) -> list[float]:
    """Seconds per ``git worktree add`` (detached, full checkout), one after the other."""
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        subprocess.run(
            ["git", "worktree", "add", "-q", "--detach", str(dest / f"raw{i:03d}"), "main"],
            cwd=repo,
            check=True,
            capture_output=True,
        )
        out.append(time.perf_counter() - t0)
    return out


def setup_home(home: Home, repo: Path, *, pool_size: int = 0) -> None:
    home.write_settings(
        "[limits]\nmax_running = 0\n"  # start every session at once: no queueing
        f"[pool]\nsize = {pool_size}\nmax = {max(pool_size, 1)}\nbackground = false\n"
    )
    if not (home.home / "pa.db").exists():
        home.pa("repo", "add", str(repo), "--name", "bench")


def concurrent(home: Home, n: int) -> dict[str, Any]:
    """N `pa new` processes launched together."""
    procs = []
    launched = []
    for i in range(n):
        launched.append(time.time())
        procs.append(
            subprocess.Popen(
                home.pa_argv("new", f"bench task {i}", "--repo", "bench", "--cmd", AGENT, "--json"),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=home.env(),
            )
        )
    failures: list[str] = []
    sids: list[tuple[str, float]] = []
    for t0, p in zip(launched, procs, strict=True):
        out, err = p.communicate(timeout=900)
        if p.returncode != 0:
            failures.append(err.strip().splitlines()[-1] if err.strip() else f"exit {p.returncode}")
            continue
        sids.append((json.loads(out)["id"], t0))
    lat: list[float] = []
    ends: list[float] = []
    for sid, t0 in sids:
        t = started_at(home, sid)
        if t is None:
            failures.append(f"{sid}: agent never started")
            continue
        lat.append(t - t0)
        ends.append(t)
    return {
        "sessions": n,
        "failures": len(failures),
        "failure_messages": failures[:5],
        "makespan_s": round(max(ends) - min(launched), 4) if ends else None,
        "latency_s": stats(lat),
        "worktrees_from_pool": _from_pool(home, [s for s, _ in sids]),
    }


def _from_pool(home: Home, sids: list[str]) -> int:
    """How many of these sessions got a warm worktree (their git admin dir is a pool token)."""
    n = 0
    db = home.home / "pa.db"
    import sqlite3

    con = sqlite3.connect(str(db))
    try:
        for sid in sids:
            row = con.execute("SELECT worktree FROM sessions WHERE id = ?", (sid,)).fetchone()
            if row is None:
                continue
            gitfile = Path(row[0]) / ".git"
            try:
                admin = gitfile.read_text().split("worktrees/", 1)[1].strip()
            except (OSError, IndexError):
                continue
            n += admin != sid
    finally:
        con.close()
    return n


def fill_pool(home: Home, n: int) -> float:
    t0 = time.perf_counter()
    home.pa("pool", "fill", "--repo", "bench", "--size", str(n), timeout=3600)
    return time.perf_counter() - t0


def pool_cli(home: Home) -> bool:
    """Is `pa pool` available on the command line (cli_ops registered)?"""
    return home.pa("pool", "--help", check=False).returncode == 0


def fill_pool_inprocess(home: Home, n: int) -> float:
    with home.activated():
        from parallel_agents import pool
        from parallel_agents.service import App

        app = App.open()
        try:
            repo = app.store.repo_by_name("bench")
            assert repo is not None
            t0 = time.perf_counter()
            rep = pool.fill(app.settings, repo, target=n)
            if rep.errors:
                raise RuntimeError("; ".join(rep.errors))
            return time.perf_counter() - t0
        finally:
            app.close()


def single_inprocess(home: Home, reps: int) -> dict[str, Any]:
    """``App.new_session`` in a warm process (one untimed start first)."""
    with home.activated():
        from parallel_agents.service import App

        app = App.open()
        try:
            cmd = AGENT.split()
            app.new_session("warm-up", repo="bench", cmd=cmd)
            lat: list[float] = []
            call: list[float] = []
            failures = 0
            for i in range(reps):
                t0 = time.time()
                p0 = time.perf_counter()
                try:
                    s = app.new_session(f"single {i}", repo="bench", cmd=cmd)
                except Exception:  # counted, not fatal: the table says how many
                    failures += 1
                    continue
                call.append(time.perf_counter() - p0)
                t = started_at(home, s.id)
                if t is None:
                    failures += 1
                    continue
                lat.append(t - t0)
            return {"latency_s": stats(lat), "call_s": stats(call), "failures": failures}
        finally:
            app.close()


def single_cli(home: Home, reps: int) -> dict[str, Any]:
    lat: list[float] = []
    failures = 0
    for i in range(reps):
        t0 = time.time()
        p = home.pa("new", f"cli {i}", "--repo", "bench", "--cmd", AGENT, "--json", check=False)
        if p.returncode != 0:
            failures += 1
            continue
        t = started_at(home, json.loads(p.stdout)["id"])
        if t is None:
            failures += 1
            continue
        lat.append(t - t0)
    return {"latency_s": stats(lat), "failures": failures}


def server_available() -> bool:
    import importlib.util

    return (
        importlib.util.find_spec("parallel_agents.server.daemon") is not None
        and importlib.util.find_spec("parallel_agents.cli_server") is not None
    )


def via_server(home: Home, reps: int) -> dict[str, Any] | None:
    """POST /api/v1/sessions to a running `pa server`; None when there is no server."""
    if not server_available():
        return None
    import httpx

    env = home.env()
    start = subprocess.run(
        [
            sys.executable,
            "-m",
            "parallel_agents.cli_server",
            "server",
            "start",
            "--port",
            "0",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    if start.returncode != 0:
        return {"error": start.stderr.strip()[-300:]}
    info = json.loads(start.stdout)
    token = (home.home / "token").read_text().strip()
    lat: list[float] = []
    failures = 0
    try:
        with httpx.Client(
            base_url=info["url"], headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as h:
            body = {"prompt": "warm-up", "repo": "bench", "cmd": AGENT.split()}
            h.post("/api/v1/sessions", json=body).raise_for_status()
            for i in range(reps):
                body["prompt"] = f"server {i}"
                t0 = time.time()
                r = h.post("/api/v1/sessions", json=body)
                if r.status_code != 201:
                    failures += 1
                    continue
                data = r.json()
                sess = data["sessions"][0] if "sessions" in data else data
                t = started_at(home, sess["id"])
                if t is None:
                    failures += 1
                    continue
                lat.append(t - t0)
    finally:
        subprocess.run(
            [sys.executable, "-m", "parallel_agents.cli_server", "server", "stop"],
            capture_output=True,
            env=env,
            timeout=60,
        )
    return {"latency_s": stats(lat), "failures": failures}


def wait_idle(home: Home, timeout: float = 600) -> None:
    """Let the fake agents of this home finish (they write a few lines and exit)."""

    def done() -> bool:
        for pid_file in home.home.glob("sessions/*/turns/*/wrapper_pid"):
            exit_file = pid_file.with_name("exit")
            if not exit_file.exists():
                return False
        return True

    wait_for(done, timeout, "the fake agents to exit")


def worktree_count(repo: Path) -> int:
    return git(repo, "worktree", "list", "--porcelain").count("worktree ")


__all__ = [
    "concurrent",
    "fill_pool",
    "raw_adds",
    "setup_home",
    "single_cli",
    "single_inprocess",
    "via_server",
    "wait_idle",
]
