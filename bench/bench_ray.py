"""Benchmark (issue 19): N fake-agent sessions on a Ray cluster of 3 simulated nodes,
against the local runtime in the same run.

What is real: every session is a real pa session made through pa's own API (``Client``
-> ``POST /api/v1/sessions``, the way bench/scale.py makes them) on a real ``pa server``,
once with ``runtime: "local"`` and once with ``runtime: "ray"``; the Ray runs go to a
``ray.cluster_utils.Cluster`` on this machine (loopback): a head without ``pa_agent``
slots and 3 worker nodes of 1 CPU with enough slots for every session, so each session is
a detached actor (one Ray worker process) on a worker node. What is fake is the agent
(bench/fake_agent.py): it writes one line, waits for a "go" file, then writes the rest of
its replayed capture at once and stays alive until an "end" file appears.

Per runtime: spawn (request -> the agent's first line ingested: per session, and the
makespan divided by N), the ingest rate (events/s from "go" until every session's read
offset is at the end of its output, through the same ingestion), status latency (`pa ls`
through the server, and GET /api/v1/sessions) while every session runs, the orchestrator's
(the `pa server` process) CPU seconds and peak RSS, the machine's memory per session,
failures, and for Ray the sessions per node; ratios ray/local.

    python bench/bench_ray.py                   # 200 sessions (the issue's size)
    python bench/bench_ray.py --sessions 10
    python -m bench --only ray [--ray-sessions N]

Prints a markdown table and writes bench/results/ray.json. Everything it starts (sessions,
agents, the cluster, its temporary folder) is ended at the end; never `ray stop`.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "src"))

from bench import common, synth  # noqa: E402
from bench.common import FAKE_AGENT, Home, stats, wait_for  # noqa: E402
from bench.fake_agent import source_lines  # noqa: E402
from bench.memory import rss_kb  # noqa: E402

NODES = 3
BATCH = 25  # sessions a request, as bench/scale.py
RUNTIMES = ("local", "ray")


def log(msg: str) -> None:
    print(f"[ray-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process has used."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def mem_available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return 0.0


def expected_bytes(lines: int) -> int:
    """Bytes fake_agent.py writes for ``--lines`` (it cycles through the same source)."""
    src, _ = source_lines()
    return sum(len((src[i % len(src)] + "\n").encode()) for i in range(lines))


class Peak(threading.Thread):
    """The highest RSS (MB) of a process, sampled every quarter second."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True, name="rss-peak")
        self.pid, self.mb, self.done = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.mb = max(self.mb, rss_kb(self.pid) / 1024)
            self.done.wait(0.25)

    def stop(self) -> float:
        self.done.set()
        self.join()
        return round(self.mb, 1)


def start_cluster(slots: int) -> Any:
    """A head with no ``pa_agent`` slots and NODES worker nodes of 1 CPU and ``slots``
    slots each, no dashboard (as tests/ray/conftest.py)."""
    from ray import cluster_utils

    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # single-machine multi-node
    c = cluster_utils.Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
    )
    for _ in range(NODES):
        c.add_node(num_cpus=1, resources={"pa_agent": slots})
    c.wait_for_nodes()
    return c


def _db(home: Home) -> sqlite3.Connection:
    con = sqlite3.connect(f"file:{home.home / 'pa.db'}?mode=ro", uri=True, timeout=30)
    con.execute("PRAGMA busy_timeout = 30000")
    return con


def _first_output(home: Home, sids: list[str]) -> dict[str, float]:
    """When each session's first agent line was stored as an event (its ts)."""
    con = _db(home)
    try:
        rows = con.execute(
            "SELECT session_id, MIN(ts) FROM events WHERE raw IS NOT NULL OR kind = 'output'"
            " GROUP BY session_id"
        ).fetchall()
    finally:
        con.close()
    want = set(sids)
    return {sid: ts for sid, ts in rows if sid in want}


def _offsets(home: Home) -> dict[str, int]:
    con = _db(home)
    try:
        rows = con.execute("SELECT session_id, read_offset FROM turns WHERE n = 1").fetchall()
    finally:
        con.close()
    return dict(rows)


def _events(home: Home) -> int:
    con = _db(home)
    try:
        return int(con.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    finally:
        con.close()


def create(client: Any, n: int, runtime: str, cmd: list[str], fails: list[str]) -> dict[str, float]:
    """``n`` sessions through POST /api/v1/sessions, BATCH a request, two requests at a
    time; each new session's id -> when its request was sent."""
    sizes = [min(BATCH, n - i) for i in range(0, n, BATCH)]

    def one(count: int) -> dict[str, float]:
        t = time.time()
        try:
            made = client.new_sessions(
                "bench work", repo="bench", cmd=cmd, count=count, runtime=runtime
            )
        except Exception as e:  # a failed request is a result: every session of it failed
            fails.extend([f"create: {str(e).splitlines()[0][:200]}"] * count)
            return {}
        return {str(s["id"]): t for s in made}

    # The first request alone: it connects the server to Ray, and two first requests at
    # once would both call ray.init (ray_runtime.connect has no lock: "Perhaps you called
    # ray.init twice by accident?", a 500 for every session of the second request).
    out = one(sizes[0])
    with ThreadPoolExecutor(2) as ex:
        for made in ex.map(one, sizes[1:]):
            out.update(made)
    return out


def _timed_ls(home: Home, reps: int) -> list[float]:
    out = []
    home.pa("ls", "--json", timeout=300)  # one warm-up (page cache, .pyc)
    for _ in range(reps):
        t = time.perf_counter()
        home.pa("ls", "--json", timeout=300)
        out.append(time.perf_counter() - t)
    return out


def run_one(root: Path, repo: Path, runtime: str, a: argparse.Namespace) -> dict[str, Any]:
    """One runtime's round: make, measure, end. Never raises for a session that fails."""
    from bench.spawn import Server
    from parallel_agents.client import Client
    from parallel_agents.runtime import local

    home = Home(root / runtime)
    go, end = root / f"{runtime}.go", root / f"{runtime}.end"
    cmd = [sys.executable, "-S", str(FAKE_AGENT), "--lines", str(a.lines), "--gate", str(go),
           "--until", str(end), "--hold", "3600"]  # fmt: skip
    want = expected_bytes(a.lines)
    res: dict[str, Any] = {"runtime": runtime, "sessions": a.sessions, "lines": a.lines}
    fails: list[str] = []
    sids: list[str] = []
    home.write_settings("[limits]\nmax_running = 0\n\n[pool]\ndisk_budget = 0\n")
    home.pa("repo", "add", str(repo), "--name", "bench")
    srv = Server(home)
    pid = int(srv.info["pid"])
    client = Client(str(srv.info["url"]), srv.token, timeout=3600)
    try:
        peak = Peak(pid)
        peak.start()
        res["rss_empty_mb"] = round(rss_kb(pid) / 1024, 1)
        mem0, cpu0 = mem_available_mb(), cpu_s(pid)
        t0 = time.time()
        log(f"{runtime}: creating {a.sessions} sessions")
        asked = create(client, a.sessions, runtime, cmd, fails)
        sids = list(asked)
        res["create_s"] = round(time.time() - t0, 2)
        log(f"{runtime}: {len(sids)} made in {res['create_s']} s; waiting for each first line")
        first: dict[str, float] = {}

        def all_started() -> bool:
            first.update(_first_output(home, sids))
            return len(first) >= len(sids)

        try:
            wait_for(all_started, a.timeout, "every session's first line")
        except TimeoutError:
            fails += [f"{sid}: no output" for sid in sids if sid not in first]
        lat = [first[s] - asked[s] for s in sids if s in first]
        res["spawn_s"] = stats(lat)
        res["makespan_s"] = round(max(first.values()) - t0, 3) if first else None
        res["spawn_per_session_s"] = (
            round(res["makespan_s"] / len(first), 4) if res["makespan_s"] else None
        )
        res["spawn_cpu_s"] = round(cpu_s(pid) - cpu0, 2)
        res["mem_per_session_mb"] = round((mem0 - mem_available_mb()) / max(1, len(sids)), 1)
        log(f"{runtime}: all running after {res['makespan_s']} s; status latency")
        c1 = cpu_s(pid)
        w0 = time.perf_counter()
        res["pa_ls_s"] = stats(_timed_ls(home, a.reps))
        api = []
        for _ in range(a.reps):
            t = time.perf_counter()
            listed = client.sessions()
            api.append(time.perf_counter() - t)
        res["api_list_s"] = stats(api)
        res["listed"] = len(listed)
        # The orchestrator's CPU while every session runs and writes nothing (its polls).
        time.sleep(a.idle)
        res["idle_cpu_pct"] = round(100 * (cpu_s(pid) - c1) / (time.perf_counter() - w0), 1)
        ev0, c2 = _events(home), cpu_s(pid)
        log(f"{runtime}: go: {a.sessions} x {a.lines - 1} lines at once")
        tg = time.perf_counter()
        go.touch()
        done: dict[str, int] = {}

        def all_read() -> bool:
            done.update(_offsets(home))
            return all(done.get(s, 0) >= want for s in first)

        try:
            wait_for(all_read, a.timeout, "every session's output ingested")
        except TimeoutError:
            fails += [f"{s}: ingested {done.get(s, 0)} of {want} bytes" for s in first
                      if done.get(s, 0) < want]  # fmt: skip
        dt = time.perf_counter() - tg
        res["ingest_s"] = round(dt, 3)
        res["ingest_events"] = _events(home) - ev0
        res["ingest_events_per_s"] = round(res["ingest_events"] / dt, 1)
        # The command agent's plain lines coalesce into one event per read (up to 64 KiB):
        # the rate that compares is the agent lines (and bytes) brought in and stored.
        n_read = sum(1 for s in first if done.get(s, 0) >= want)
        res["ingest_lines_per_s"] = round(n_read * (a.lines - 1) / dt, 1)
        res["ingest_mb_per_s"] = round(n_read * want / dt / 1e6, 2)
        res["ingest_cpu_s"] = round(cpu_s(pid) - c2, 2)
        res["cpu_s"] = round(cpu_s(pid) - cpu0, 2)
        bad = [s for s in client.sessions(all=True) if s["id"] in asked
               and s["status"] in ("failed", "interrupted")]  # fmt: skip
        fails += [f"{s['id']}: {s['status']} {s.get('error') or ''}".strip() for s in bad]
        res["rss_mb"] = peak.stop()
        if runtime == "ray":
            res["nodes"] = _nodes(home, sids)
    finally:
        end.touch()
        home.stop_server()
        for sid in sids:  # the agents on every node (same machine) and here
            local.end_tagged(sid, grace=0.5)
        home.kill_agents()
    res["failures"] = len(fails)  # one a session (a failed request: one per session in it)
    res["failure_messages"] = sorted(set(fails))[:5]
    return res


def _nodes(home: Home, sids: list[str]) -> dict[str, int]:
    """Sessions per node id (turn 1's ray.json, the runtime's own note)."""
    import json

    count: Counter[str] = Counter()
    for sid in sids:
        try:
            count[json.loads(home.turn_file(sid, "ray.json").read_text())["node"]] += 1
        except (OSError, ValueError, KeyError):
            count["(none)"] += 1
    return dict(count)


def measure(a: argparse.Namespace) -> dict[str, Any]:
    root = common.tempdir("pa-bench-ray-")
    saved = {k: os.environ.get(k) for k in ("PA_RAY_ADDRESS", "PA_RAY_NODE_DIR",
                                            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")}  # fmt: skip
    res: dict[str, Any] = {"sessions": a.sessions, "nodes": NODES, "load_start": common.load()}
    cluster = None
    try:
        repo = synth.make_repo(root / "repo", a.files)
        res["local"] = run_one(root, repo, "local", a)
        common.remove_tree(root / "local")
        # The nodes' worktrees and turn folders under our temporary folder (they inherit
        # this environment), so the end removes them with the rest.
        os.environ["PA_RAY_NODE_DIR"] = str(root / "nodes")
        # Exactly enough slots: Ray's default (hybrid) scheduling packs a node until it is
        # half used, so with room for every session on one node it would take them all.
        slots = -(-a.sessions // NODES)
        log(f"starting a Ray cluster: a head and {NODES} worker nodes of {slots} slots")
        cluster = start_cluster(slots)
        res["worker_nodes"] = [n.node_id for n in cluster.worker_nodes]
        os.environ["PA_RAY_ADDRESS"] = cluster.address
        res["ray"] = run_one(root, repo, "ray", a)
        res["ray"]["worker_rss_mb"] = _actor_rss()
    finally:
        if cluster is not None:
            cluster.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        res["load_end"] = common.load()
        if not a.keep:
            common.remove_tree(root)
    res["ratios"] = ratios(res)
    return res


def _actor_rss() -> dict[str, Any]:
    """RSS of this cluster's session actors (Ray worker processes of this process tree,
    titled ``ray::SessionNode``), read before the cluster ends."""
    mine = {os.getpid()}
    procs: list[tuple[int, int, str]] = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            ppid = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
            title = (p / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        procs.append((int(p.name), ppid, title))
    changed = True
    while changed:  # the descendants of this process: our cluster's, not another's
        changed = False
        for pid, ppid, _ in procs:
            if ppid in mine and pid not in mine:
                mine.add(pid)
                changed = True
    ours = [pid for pid, _, t in procs if pid in mine and "SessionNode" in t]
    rss = [rss_kb(pid) / 1024 for pid in ours]
    return {**stats(rss), "total": round(sum(rss), 1), "pss": stats([_pss_mb(p) for p in ours])}


def _pss_mb(pid: int) -> float:
    """Proportional set size: shared pages (Ray's libraries) divided among their users."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def ratios(res: dict[str, Any]) -> dict[str, float | None]:
    lo, ra = res.get("local") or {}, res.get("ray") or {}

    def r(get: Any) -> float | None:
        try:
            x, y = get(ra), get(lo)
        except (KeyError, TypeError):
            return None
        return round(x / y, 2) if x is not None and y else None

    return {
        "spawn_median": r(lambda d: d["spawn_s"]["median"]),
        "spawn_per_session": r(lambda d: d["spawn_per_session_s"]),
        "ingest_lines_per_s": r(lambda d: d["ingest_lines_per_s"]),
        "pa_ls": r(lambda d: d["pa_ls_s"]["median"]),
        "api_list": r(lambda d: d["api_list_s"]["median"]),
        "cpu_s": r(lambda d: d["cpu_s"]),
        "idle_cpu_pct": r(lambda d: d["idle_cpu_pct"]),
        "rss_mb": r(lambda d: d["rss_mb"]),
        "mem_per_session_mb": r(lambda d: d["mem_per_session_mb"]),
    }


Show = Callable[[dict[str, Any]], str]
ROWS: tuple[tuple[str, str, Show], ...] = (
    # (label, key in ratios, how to show one runtime's figure)
    ("spawn: request -> first line ingested, median (p95)", "spawn_median",
     lambda d: f"{common.ms(d['spawn_s'].get('median'))} ({common.ms(d['spawn_s'].get('p95'))})"),
    ("spawn: makespan / sessions", "spawn_per_session",
     lambda d: common.ms(d["spawn_per_session_s"])),
    ("ingest rate, every agent writing at once", "ingest_lines_per_s",
     lambda d: f"{d['ingest_lines_per_s']:,.0f} lines/s ({d['ingest_mb_per_s']:.1f} MB/s)"),
    ("status: `pa ls --json` via the server, median", "pa_ls",
     lambda d: common.ms(d["pa_ls_s"].get("median"))),
    ("status: GET /api/v1/sessions, median", "api_list",
     lambda d: common.ms(d["api_list_s"].get("median"))),
    ("orchestrator CPU (`pa server`), whole round", "cpu_s", lambda d: f"{d['cpu_s']:.1f} s"),
    ("orchestrator CPU, all running, no output", "idle_cpu_pct",
     lambda d: f"{d['idle_cpu_pct']:.0f} %"),
    ("orchestrator peak RSS", "rss_mb", lambda d: f"{d['rss_mb']:.0f} MB"),
    ("machine memory per session", "mem_per_session_mb",
     lambda d: f"{d['mem_per_session_mb']:.0f} MB"),
)  # fmt: skip


def table(res: dict[str, Any]) -> str:
    lo, ra, rt = res.get("local") or {}, res.get("ray") or {}, res.get("ratios") or {}
    n = res["sessions"]
    lines = [f"| {n} sessions | local | ray ({NODES} nodes) | ray / local |", "|---|---|---|---|"]
    for label, key, show in ROWS:
        cells = []
        for d in (lo, ra):
            try:
                cells.append(show(d))
            except (KeyError, TypeError):
                cells.append("-")
        r = rt.get(key)
        lines.append(f"| {label} | {cells[0]} | {cells[1]} | {'-' if r is None else f'{r:.2f}×'} |")
    lines.append(f"| failures | {lo.get('failures', '-')} | {ra.get('failures', '-')} | - |")
    per_node = ra.get("nodes") or {}
    workers = res.get("worker_nodes") or []
    counts = [per_node.get(w, 0) for w in workers]
    other = sum(v for k, v in per_node.items() if k not in workers)
    shown = " / ".join(str(c) for c in counts) + (f" (+{other} elsewhere)" if other else "")
    lines.append(f"| sessions per node | - | {shown or '-'} | - |")
    w = ra.get("worker_rss_mb") or {}
    if w.get("n"):
        pss = (w.get("pss") or {}).get("median", 0)
        lines.append(f"| session actor (Ray worker) RSS, median (all {w['n']}); PSS | - |"
                     f" {w['median']:.0f} MB ({w['total'] / 1024:.1f} GB); {pss:.0f} MB | - |")  # fmt: skip
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--lines", type=int, default=101, help="lines each fake agent writes")
    ap.add_argument("--files", type=int, default=20, help="files in the synthetic repo")
    ap.add_argument("--reps", type=int, default=5, help="status calls per runtime")
    ap.add_argument("--idle", type=float, default=5.0, help="seconds of idle CPU measured")
    ap.add_argument("--timeout", type=float, default=1800.0, help="per phase, seconds")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--out", default=str(common.RESULTS / "ray.json"))
    return ap


def run(tmp: Path, repo: Path, full: bool, sessions: int | None = None) -> dict[str, Any]:
    """For ``python -m bench --only ray``: the figures under ``res["ray"]``."""
    a = _parser().parse_args([] if sessions is None else ["--sessions", str(sessions)])
    res = measure(a)
    print(table(res))
    return res


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    res = measure(a)
    res["machine"] = common.machine()
    print(table(res))
    print(f"\nload {res['load_start']} -> {res['load_end']}")
    common.write_json(Path(a.out), res)
    print(f"wrote {a.out}")
    return 1 if (res["local"]["failures"] or res["ray"]["failures"]) else 0


if __name__ == "__main__":
    raise SystemExit(main())
