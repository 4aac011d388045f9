"""Session start: `pa new` → agent process running, against raw `git worktree add`.

* ``raw_adds``: the baseline, ``git worktree add`` (a full checkout) done sequentially.
* ``concurrent``: N ``pa new`` processes started at once; per session, from its own
  launch to its agent running (the wrapper's pid file), and the makespan (first launch to
  last agent running). Compared with N sequential raw adds in the same run.
* ``single_inprocess``: ``App.new_session`` in a warm process, which is what the server
  does for every `pa new` once one runs; with and without the warm pool.
* ``via_server``: POST /api/v1/sessions to a real `pa server`, when there is one.
* ``alternating``: issue 14 §1, one `pa new` (CLI through its running server, no pool)
  against one raw ``git worktree add``, alternating, with where the time goes: the
  server's own steps (its ``Server-Timing`` header on a direct POST, alternated with
  the others), the client around them and the wrapper's start-up after them.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import Home, agent_cmd, git, started_at, stats, wait_for

AGENT = agent_cmd("--lines", "20")


def raw_adds(repo: Path, n: int, dest: Path, first: int = 0) -> list[float]:
    """Seconds per ``git worktree add`` (detached, full checkout), one after the other."""
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(first, first + n):
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
        # No automatic refills while measuring: `pa pool fill` fills before each run.
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
    lat, ends = _started(home, sids, failures)
    return {
        "sessions": n,
        "failures": len(failures),
        "failure_messages": failures[:5],
        "makespan_s": round(max(ends) - min(launched), 4) if ends else None,
        "latency_s": stats(lat),
        "worktrees_from_pool": _from_pool(home, [s for s, _ in sids]),
    }


def _started(
    home: Home, sids: list[tuple[str, float]], failures: list[str]
) -> tuple[list[float], list[float]]:
    """(latency from launch, time running) of each session's agent; the ones that never
    started are added to ``failures``."""
    lat: list[float] = []
    ends: list[float] = []
    for sid, t0 in sids:
        t = started_at(home, sid)
        if t is None:
            failures.append(f"{sid}: agent never started")
            continue
        lat.append(t - t0)
        ends.append(t)
    return lat, ends


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


def single_inprocess(
    home: Home, reps: int, between: Callable[[], object] | None = None
) -> dict[str, Any]:
    """``App.new_session`` in a warm process (one untimed start first). ``between`` runs
    before each start: the baseline, interleaved so both see the same machine."""
    with home.activated():
        from parallel_agents.sessions.orchestrator import App

        app = App.open()
        try:
            cmd = AGENT.split()
            app.new_session("warm-up", repo="bench", cmd=cmd)
            lat: list[float] = []
            call: list[float] = []
            failures = 0
            for i in range(reps):
                if between is not None:
                    between()
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


def take_vs_create(home: Home, reps: int) -> dict[str, Any]:
    """The worktree alone: ``pool_take.take`` of a warm one against ``worktrees.create``."""
    with home.activated():
        from parallel_agents import git as pa_git
        from parallel_agents.git import pool_take, worktrees
        from parallel_agents.sessions.orchestrator import App

        app = App.open()
        try:
            repo = app.store.repo_by_name("bench")
            assert repo is not None
            repo_path = Path(repo.path)
            base = pa_git.rev_parse(repo_path, "HEAD")
            assert base is not None
            root = app.settings.worktree_root / "bench"
            took: list[float] = []
            made: list[float] = []
            misses = 0
            for i in range(reps):
                t0 = time.perf_counter()
                ok = pool_take.take(
                    app.settings, repo_path, "bench", root / f"take{i}", f"pa/take{i}", base
                )
                if ok:
                    took.append(time.perf_counter() - t0)
                else:
                    misses += 1
            for i in range(max(2, reps // 2)):
                t0 = time.perf_counter()
                worktrees.create(repo_path, root / f"make{i}", f"pa/make{i}", base)
                made.append(time.perf_counter() - t0)
            return {"take_s": stats(took), "create_s": stats(made), "misses": misses}
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
        and importlib.util.find_spec("parallel_agents.cli.server") is not None
    )


class Server:
    """The home's `pa server` (the one the CLI auto-started, or a new one)."""

    def __init__(self, home: Home) -> None:
        self.home = home
        start = home.pa("server", "start", "--port", "0", "--json", check=False, timeout=120)
        info = json.loads(start.stdout) if start.returncode == 0 else home.server_info()
        if info is None:
            raise RuntimeError(start.stderr.strip()[-300:])
        self.info = info
        self.token = (home.home / "token").read_text().strip()

    def new(self, prompt: str, cmd: str = AGENT) -> str:
        """POST /api/v1/sessions through pa's own client; the new session's id."""
        from parallel_agents.client import Client

        c = Client(self.info["url"], self.token, timeout=600)
        return str(c.new_sessions(prompt, repo="bench", cmd=cmd.split())[0]["id"])

    def post(self, prompt: str, cmd: str = AGENT) -> tuple[str, dict[str, float], float]:
        """POST /api/v1/sessions with ``http.client`` (to read the response headers): the
        session id, the server's ``Server-Timing`` phases in seconds, and the seconds
        from the request to the response."""
        from http.client import HTTPConnection
        from urllib.parse import urlsplit

        u = urlsplit(self.info["url"])
        body = json.dumps({"prompt": prompt, "repo": "bench", "cmd": cmd.split()})
        conn = HTTPConnection(u.hostname or "127.0.0.1", u.port or 80, timeout=600)
        try:
            t0 = time.perf_counter()
            conn.request(
                "POST",
                "/api/v1/sessions",
                body=body.encode(),
                headers={
                    "Authorization": f"Bearer {self.token}",
                    "Content-Type": "application/json",
                },
            )
            r = conn.getresponse()
            data = json.loads(r.read())
            took = time.perf_counter() - t0
        finally:
            conn.close()
        if r.status != 201:
            raise RuntimeError(str(data)[:300])
        return str(data["sessions"][0]["id"]), server_timing(r.getheader("Server-Timing")), took

    def stop(self) -> None:
        self.home.stop_server()


def server_timing(header: str | None) -> dict[str, float]:
    """``a;dur=1.5, b;dur=2`` -> {"a": 0.0015, "b": 0.002} (seconds)."""
    out: dict[str, float] = {}
    for part in (header or "").split(","):
        name, _, rest = part.strip().partition(";")
        if name and rest.startswith("dur="):
            out[name] = float(rest[4:]) / 1000
    return out


def _turn_started(home: Home, sid: str) -> float | None:
    """When the server had launched the wrapper of turn 1 (the turn's ``started_at``)."""
    import sqlite3

    con = sqlite3.connect(str(home.home / "pa.db"))
    try:
        row = con.execute(
            "SELECT started_at FROM turns WHERE session_id = ? AND n = 1", (sid,)
        ).fetchone()
    finally:
        con.close()
    return float(row[0]) if row and row[0] is not None else None


def alternating(home: Home, repo: Path, reps: int, dest: Path) -> dict[str, Any]:
    """Issue 14 §1: ``reps`` rounds of (raw ``git worktree add``, `pa new` through the
    running server, the same start as a direct POST), each from its launch to its agent
    running, and the per-phase medians of where pa's time went."""
    srv = Server(home)
    raw: list[float] = []
    cli: list[float] = []
    api: list[float] = []
    cli_call: list[float] = []
    wrapper: list[float] = []
    http: list[float] = []
    phases: dict[str, list[float]] = {}
    failures: list[str] = []
    try:
        srv.post("warm-up")
        home.pa("new", "warm-up", "--repo", "bench", "--cmd", AGENT, "--json")
        for i in range(reps):
            raw.extend(raw_adds(repo, 1, dest, first=i))
            t0 = time.time()
            p = home.pa("new", f"cli {i}", "--repo", "bench", "--cmd", AGENT, "--json", check=False)
            call = time.time() - t0
            if p.returncode != 0:
                failures.append(p.stderr.strip()[-200:] or f"exit {p.returncode}")
            else:
                sid = json.loads(p.stdout)["id"]
                t = started_at(home, sid)
                if t is None:
                    failures.append(f"{sid}: agent never started")
                else:
                    cli.append(t - t0)
                    cli_call.append(call)
            t0 = time.time()
            try:
                sid, timing, took = srv.post(f"api {i}")
            except (RuntimeError, OSError) as e:
                failures.append(str(e)[:200])
                continue
            t = started_at(home, sid)
            launched = _turn_started(home, sid)
            if t is None or launched is None:
                failures.append(f"{sid}: agent never started")
                continue
            api.append(t - t0)
            wrapper.append(max(0.0, t - launched))
            http.append(max(0.0, took - sum(timing.values())))
            for k, v in timing.items():
                phases.setdefault(k, []).append(v)
    finally:
        srv.stop()
    med = {k: stats(v)["median"] for k, v in phases.items()}
    raw_med = stats(raw).get("median")
    cli_med = stats(cli).get("median")
    api_med = stats(api).get("median")
    breakdown: dict[str, float | None] = {}
    if cli_med is not None and api_med is not None:
        # What the CLI adds to the same request: Python start-up, imports, its own
        # connection, printing the reply.
        breakdown["client: start-up, imports, request"] = round(max(0.0, cli_med - api_med), 4)
    breakdown["HTTP round trip (outside the handler)"] = stats(http).get("median")
    for k, v in med.items():
        breakdown[f"server: {k}"] = v
    breakdown["wrapper start-up (launched -> agent running)"] = stats(wrapper).get("median")
    return {
        "reps": reps,
        "raw_s": stats(raw),
        "cli_s": stats(cli),
        "cli_call_s": stats(cli_call),
        "api_s": stats(api),
        "ratio": round(cli_med / raw_med, 3) if cli_med and raw_med else None,
        "api_ratio": round(api_med / raw_med, 3) if api_med and raw_med else None,
        "phases_s": breakdown,
        "failures": len(failures),
        "failure_messages": failures[:5],
    }


def phase_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: one column per repo size, one row per phase (medians), then the totals."""
    if not rows:
        return ""
    names: list[str] = []
    for r in rows:
        names.extend(k for k in r["phases_s"] if k not in names)
    head = ["where the time of one `pa new` goes (median)"] + [f"{r['files']:,} files" for r in rows]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def cell(v: float | None) -> str:
        return "-" if v is None else f"{v * 1000:,.1f} ms"

    for n in names:
        out.append("| " + " | ".join([n] + [cell(r["phases_s"].get(n)) for r in rows]) + " |")
    for label, key in (
        ("total: `pa new` → agent running", "cli_s"),
        ("total: POST → agent running", "api_s"),
        ("baseline: `git worktree add`", "raw_s"),
    ):
        out.append(
            "| **" + label + "** | " + " | ".join(cell(r[key].get("median")) for r in rows) + " |"
        )
    out.append(
        "| **ratio `pa new` / git** | "
        + " | ".join("-" if r["ratio"] is None else f"{r['ratio']:.2f}×" for r in rows)
        + " |"
    )
    return "\n".join(out)


def via_server(home: Home, reps: int) -> dict[str, Any] | None:
    """POST /api/v1/sessions to a running `pa server`, one after the other."""
    if not server_available():
        return None
    try:
        srv = Server(home)
    except RuntimeError as e:
        return {"error": str(e)}
    lat: list[float] = []
    failures = 0
    try:
        srv.new("warm-up")
        for i in range(reps):
            t0 = time.time()
            try:
                sid = srv.new(f"server {i}")
            except Exception:  # counted in the table
                failures += 1
                continue
            t = started_at(home, sid)
            if t is None:
                failures += 1
                continue
            lat.append(t - t0)
    finally:
        srv.stop()
    return {"latency_s": stats(lat), "failures": failures}


def concurrent_server(home: Home, n: int) -> dict[str, Any] | None:
    """N POST /api/v1/sessions at once (one client thread each) to a `pa server`."""
    if not server_available():
        return None
    import threading
    from concurrent.futures import ThreadPoolExecutor

    srv = Server(home)
    try:
        srv.new("warm-up")
        gate = threading.Barrier(n)

        def one(i: int) -> tuple[float, str | None, str | None]:
            gate.wait()
            t0 = time.time()
            try:
                return t0, srv.new(f"bench task {i}"), None
            except Exception as e:  # counted in the table
                return t0, None, str(e)[:200]

        with ThreadPoolExecutor(max_workers=n) as ex:
            results = list(ex.map(one, range(n)))
    finally:
        srv.stop()
    failures = [err for _, sid, err in results if sid is None and err]
    ok = [(sid, t0) for t0, sid, _ in results if sid is not None]
    lat, ends = _started(home, ok, failures)
    first = min(t0 for t0, _, _ in results)
    return {
        "sessions": n,
        "failures": len(failures),
        "failure_messages": failures[:5],
        "makespan_s": round(max(ends) - first, 4) if ends else None,
        "latency_s": stats(lat),
    }


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
    "alternating",
    "concurrent",
    "fill_pool",
    "phase_table",
    "raw_adds",
    "setup_home",
    "single_cli",
    "single_inprocess",
    "via_server",
    "wait_idle",
]
