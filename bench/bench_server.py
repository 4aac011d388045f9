"""Server overhead: ingestion rate, CPU and memory under load, status latency.

Starts a real `pa` server (port 0, temp PA_HOME) and drives it with `command` agents
running a replay script that writes recorded agent output (the JSONL captures in
tests/fixtures/captures, recorded by scripts/record-captures), each line
wrapped with the time it was written.

Phases:
  load     N sessions x R events/s for D seconds: server CPU %, RSS, ingest lag
  ingest   sessions dump K lines each at once: events/s the server ingests at most,
           against baselines measured in the same run (raw file append of the same
           lines; raw SQLite inserts of the same rows)
  latency  1/10/N sessions write their last line and exit together: time until the
           status change arrives through the API (SSE), median and p95, and where it
           goes: last line -> the wrapper's exit record (agent exit, leftover sweep),
           exit record -> status committed (the server noticing and ingesting the end),
           committed -> seen on the SSE stream

    python bench/bench_server.py          # 100 sessions x 10 ev/s for 8 s, about 90 s
    python bench/bench_server.py --full   # the same for 30 s, and 10 times the lines
    python bench/bench_server.py --only latency --reps 3   # status latency alone

Prints a markdown table and writes bench/results/server.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

CAPTURES = ROOT / "tests" / "fixtures" / "captures"  # scripts/record-captures
RESULTS = ROOT / "bench" / "results" / "server.json"
PY = sys.executable
TERMINAL = ("idle", "failed", "stopped", "interrupted")
PHASES = ("load", "ingest", "latency")

REPLAY = r"""
import json, pathlib, sys, time
src, rate, count, gate, mode = sys.argv[1:6]
rate, count = float(rate), int(count)
lines = [json.loads(x) for x in open(src, encoding="utf-8") if x.strip()]
g = pathlib.Path(gate)
print(json.dumps({"type": "ready", "t": time.time()}), flush=True)
# The gate is a FIFO: opening it blocks until the bench opens it for writing. Polling a
# file every 5 ms took more than a core with 100 agents waiting, CPU that the measured
# end then lacked (a real agent waiting for its model does not spin either).
with open(g, "rb"):
    pass
out = sys.stdout
if mode == "blast":
    t = time.time()
    out.write("".join(json.dumps({"t": t, "i": i, "event": lines[i % len(lines)]}) + "\n"
                      for i in range(count)))
    out.flush()
else:
    start = time.time()
    for i in range(count):
        wait = start + i / rate - time.time()
        if wait > 0:
            time.sleep(wait)
        out.write(json.dumps({"t": time.time(), "i": i, "event": lines[i % len(lines)]}) + "\n")
        out.flush()
out.write(json.dumps({"type": "end", "t": time.time()}) + "\n")
out.flush()
# Gone at once, as a process with nothing left to clean up: the interpreter's teardown
# (~6 ms of CPU each, 100 at once) is this stand-in's cost, not pa's.
import os
os._exit(0)
"""


# -- helpers ---------------------------------------------------------------------------
def source_lines(dst: Path) -> tuple[Path, str]:
    """A JSONL file of realistic agent output lines (captures, or synthetic)."""
    out: list[str] = []
    if CAPTURES.is_dir():
        for p in sorted(CAPTURES.rglob("*.jsonl")):
            for line in p.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    json.loads(line)
                except ValueError:
                    continue
                out.append(line)
    # Relative to the clone: results name the same source on every machine.
    origin = f"{CAPTURES.relative_to(ROOT)} ({len(out)} lines)"
    if not out:
        origin = "synthetic"
        for i in range(200):
            out.append(
                json.dumps(
                    {
                        "type": "assistant",
                        "message": {"content": [{"type": "text", "text": f"step {i} " * 20}]},
                    }
                )
            )
    dst.write_text("\n".join(out) + "\n", encoding="utf-8")
    return dst, origin


def proc_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


class StatusWatcher(threading.Thread):
    """Follows status events over SSE; records when each session reached an end state."""

    def __init__(self, home: Path) -> None:
        super().__init__(daemon=True)
        from parallel_agents.client import Client

        self.client = Client.from_home(home)
        self.seen: dict[str, float] = {}
        self.connected = threading.Event()
        self.stop = False

    def run(self) -> None:
        for ev in self.client.stream(kinds=["status"], on_connect=self.connected.set):
            if ev["payload"].get("to") in TERMINAL:
                self.seen.setdefault(ev["session_id"], time.time())
            if self.stop:
                return


class Bench:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.home = tmp / "home"
        os.environ["PA_HOME"] = str(self.home)
        os.environ["XDG_CONFIG_HOME"] = str(tmp / "config")
        os.environ.pop("PA_CONFIG", None)
        cfg = tmp / "config" / "parallel-agents" / "config.toml"
        cfg.parent.mkdir(parents=True)
        cfg.write_text("notify = false\n[limits]\nmax_running = 1000\n")
        self.repo = tmp / "repo"
        self.repo.mkdir()
        git(self.repo, "init", "-q", "-b", "main")
        (self.repo / "README.md").write_text("bench\n")
        git(self.repo, "add", "-A")
        git(
            self.repo,
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@example.com",
            "commit",
            "-qm",
            "init",
        )
        self.script = tmp / "replay.py"
        self.script.write_text(REPLAY)
        self.source, self.origin = source_lines(tmp / "source.jsonl")
        self.gates = tmp / "gates"
        self.gates.mkdir()
        self._gate_fds: list[int] = []

        from parallel_agents.client import Client, start_background

        info, _ = start_background(self.home, port=0)
        self.pid = info.pid
        self.client = Client.from_home(self.home)

    def close(self) -> None:
        from parallel_agents.server import daemon

        for fd in self._gate_fds:
            os.close(fd)

        self.client.close()
        daemon.stop(self.home)
        for pidfile in self.home.glob("sessions/*/turns/*/pid"):
            with contextlib.suppress(OSError, ValueError):
                os.killpg(int(pidfile.read_text()), signal.SIGKILL)

    # -- building blocks -------------------------------------------------------------------
    def gate(self, name: str) -> Path:
        """A FIFO the agents block on until ``open_gate`` (no polling)."""
        path = self.gates / name
        os.mkfifo(path)
        return path

    def open_gate(self, path: Path) -> None:
        # Kept open for writing until close(): an agent that reaches its open() only
        # after this still passes at once (a FIFO's open for reading needs a writer).
        self._gate_fds.append(os.open(path, os.O_WRONLY))

    def sessions(self, n: int, rate: float, count: int, mode: str, gate: str) -> list[str]:
        cmd = [PY, str(self.script), str(self.source), str(rate), str(count), str(gate), mode]
        made = self.client.new_sessions("bench", repo=str(self.repo), cmd=cmd, count=n)
        return [s["id"] for s in made]

    def wait_ready(self, ids: list[str], timeout: float = 300) -> None:
        """Until every agent printed its ready line (so they all run)."""
        deadline = time.monotonic() + timeout
        pending = set(ids)
        while pending and time.monotonic() < deadline:
            for sid in list(pending):
                evs = self.client.events(sid, kinds=["output"], limit=1)
                if evs:
                    pending.discard(sid)
            if pending:
                time.sleep(0.1)
        if pending:
            raise SystemExit(f"{len(pending)} sessions never started")

    def wait_done(self, ids: list[str], timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        want = set(ids)
        while time.monotonic() < deadline:
            by = {s["id"]: s["status"] for s in self.client.list_sessions(all=True)}
            if all(by.get(i) in TERMINAL for i in want):
                bad = [i for i in want if by[i] != "idle"]
                if bad:
                    raise SystemExit(f"sessions did not end idle: {bad[:5]}")
                return
            time.sleep(0.05)
        raise SystemExit("sessions did not finish in time")

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.home / 'pa.db'}?mode=ro", uri=True)

    # -- phases ------------------------------------------------------------------------------
    def load(self, n: int, rate: float, seconds: float) -> dict[str, Any]:
        rss_before = proc_kb(self.pid, "VmRSS")
        gate = self.gate("load")
        ids = self.sessions(n, rate, int(rate * seconds), "rate", str(gate))
        self.wait_ready(ids)
        cpu0, t0 = cpu_seconds(self.pid), time.monotonic()
        self.open_gate(gate)
        self.wait_done(ids, timeout=seconds * 4 + 120)
        cpu1, t1 = cpu_seconds(self.pid), time.monotonic()
        lags: list[float] = []
        from parallel_agents.store import Store

        # Through the store: a plain output line's text lives in the output file, not the row;
        # one event holds a run of lines (issue 14 §5): count lines, not rows.
        store = Store(self.home)
        rows = [
            (text, e.ts)
            for sid in ids
            for e in store.events(sid, kinds=["output"])
            for text in str(e.payload["text"]).split("\n")
        ]
        store.close()
        stored = 0
        for text, ts in rows:
            line = json.loads(text)
            if "i" in line:
                stored += 1
                lags.append(ts - line["t"])
        expected = n * int(rate * seconds)
        return {
            "sessions": n,
            "events_per_s_each": rate,
            "seconds": round(t1 - t0, 2),
            "events_expected": expected,
            "events_stored": stored,
            "server_cpu_pct": round(100 * (cpu1 - cpu0) / (t1 - t0), 1),
            "rss_before_mb": round(rss_before / 1024, 1),
            "rss_peak_mb": round(proc_kb(self.pid, "VmHWM") / 1024, 1),
            "ingest_lag_ms_median": round(1000 * pct(lags, 0.5), 1),
            "ingest_lag_ms_p95": round(1000 * pct(lags, 0.95), 1),
        }

    def ingest(self, n: int, lines_each: int) -> dict[str, Any]:
        gate = self.gate("ingest")
        ids = self.sessions(n, 0, lines_each, "blast", str(gate))
        self.wait_ready(ids)
        t0 = time.monotonic()
        self.open_gate(gate)
        self.wait_done(ids, timeout=600)
        elapsed = time.monotonic() - t0
        total = n * lines_each
        base_append = self._baseline_append(lines_each * n)
        base_sqlite = self._baseline_sqlite(lines_each * n)
        rate = total / elapsed
        return {
            "sessions": n,
            "lines_each": lines_each,
            "seconds": round(elapsed, 2),
            "events_per_s": round(rate),
            "baseline_append_lines_per_s": round(base_append),
            "baseline_sqlite_rows_per_s": round(base_sqlite),
            "ratio_vs_append": round(rate / base_append, 3),
            "ratio_vs_sqlite": round(rate / base_sqlite, 3),
        }

    def _lines(self, count: int) -> list[str]:
        src = [json.loads(x) for x in self.source.read_text().splitlines() if x.strip()]
        t = time.time()
        return [json.dumps({"t": t, "i": i, "event": src[i % len(src)]}) for i in range(count)]

    def _baseline_append(self, count: int) -> float:
        """The same lines appended to a file, one flushed write each (what agents do)."""
        lines = self._lines(count)
        path = self.tmp / "append.out"
        t0 = time.perf_counter()
        with open(path, "w", encoding="utf-8") as f:
            for line in lines:
                f.write(line + "\n")
                f.flush()
        dt = time.perf_counter() - t0
        path.unlink()
        return count / dt

    def _baseline_sqlite(self, count: int) -> float:
        """The same rows inserted straight into a fresh store, 4,000 per transaction."""
        from parallel_agents.store import Store

        lines = self._lines(count)
        scratch = Store(self.tmp / "scratch-home")
        t0 = time.perf_counter()
        for start in range(0, count, 4000):
            with scratch.tx() as db:
                scratch.append_events(
                    db,
                    "scratch",
                    1,
                    [("output", {"text": x}, x) for x in lines[start : start + 4000]],
                )
        dt = time.perf_counter() - t0
        scratch.close()
        return count / dt

    def latency(self, n: int) -> dict[str, Any]:
        gate = self.gate(f"latency-{n}-{len(self._gate_fds)}")
        ids = self.sessions(n, 1000, 5, "rate", str(gate))
        self.wait_ready(ids)
        before = self.client.health().get("supervisor") or {}
        watcher = StatusWatcher(self.home)
        watcher.start()
        watcher.connected.wait(30)
        self.open_gate(gate)
        # Wait on the stream, not by polling the API: a list of every session 20 times a
        # second would take the server's CPU from what is measured (then check once).
        deadline = time.monotonic() + 300
        while not all(i in watcher.seen for i in ids) and time.monotonic() < deadline:
            time.sleep(0.02)
        self.wait_done(ids, timeout=300)
        watcher.stop = True
        after = self.client.health().get("supervisor") or {}
        lat: list[float] = []
        # Where the time goes, per session: last line written -> the wrapper's exit record
        # ("ended": the agent is gone and its leftovers ended) -> the status committed
        # (its event's ts) -> the status seen on the SSE stream.
        parts: dict[str, list[float]] = {"exit": [], "commit": [], "sse": []}
        from parallel_agents.store import Store

        # Through the store: a plain output line's text lives in the output file, not the row.
        store = Store(self.home)
        last_output = {sid: store.events(sid, kinds=["output"])[-1] for sid in ids}
        store.close()
        with self.db() as db:
            for sid in ids:
                end = json.loads(str(last_output[sid].payload["text"]).rsplit("\n", 1)[-1])
                assert end.get("type") == "end", end
                if sid not in watcher.seen:
                    continue
                lat.append(watcher.seen[sid] - end["t"])
                st = db.execute(
                    "SELECT ts FROM events WHERE session_id = ? AND kind = 'status'"
                    " ORDER BY seq DESC LIMIT 1",
                    (sid,),
                ).fetchone()
                ended = _exit_ended(self.home, sid)
                if st is None or ended is None:
                    continue
                parts["exit"].append(ended - end["t"])
                parts["commit"].append(st[0] - ended)
                parts["sse"].append(watcher.seen[sid] - st[0])
        out: dict[str, Any] = {
            "sessions": n,
            "observed": len(lat),
            "median_ms": round(1000 * statistics.median(lat), 1) if lat else None,
            "p95_ms": round(1000 * pct(lat, 0.95), 1) if lat else None,
            "max_ms": round(1000 * max(lat), 1) if lat else None,
        }
        for k, v in parts.items():
            out[f"{k}_ms_median"] = round(1000 * statistics.median(v), 1) if v else None
            out[f"{k}_ms_p95"] = round(1000 * pct(v, 0.95), 1) if v else None
        # How the server ended them: turns ended, and the transactions those ends took
        # (many share one: issue 14 §3).
        for k in ("turn_ends", "end_batches"):
            if k in after:
                out[k] = int(after[k]) - int(before.get(k) or 0)
        return out


def _exit_ended(home: Path, sid: str) -> float | None:
    """When the wrapper of session ``sid``'s last turn says the agent ended."""
    turns = sorted((home / "sessions" / sid / "turns").glob("*/exit"))
    try:
        ended = json.loads(turns[-1].read_text())["ended"]
    except (IndexError, OSError, ValueError, KeyError):
        return None
    return float(ended)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--full", action="store_true", help="the issue's sizes (slow)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument(
        "--only", choices=PHASES, action="append", help="run only this phase (repeatable)"
    )
    ap.add_argument(
        "--reps", type=int, default=1, help="latency rounds per size (figures pooled)"
    )
    ap.add_argument("--sizes", help="latency sizes, comma-separated (1,10,100)")
    args = ap.parse_args()
    only = set(args.only or PHASES)
    # The 100 concurrent agents in both; --full runs longer and writes more.
    load_size: tuple[int, float, float] = (100, 10.0, 30.0) if args.full else (100, 10.0, 8.0)
    ingest_size: tuple[int, int] = (100, 5_000) if args.full else (100, 500)
    latency_sizes = [int(x) for x in args.sizes.split(",")] if args.sizes else [1, 10, 100]

    tmp = Path(tempfile.mkdtemp(prefix="pa-bench-server-"))
    started = time.time()
    bench = Bench(tmp)
    try:
        load = bench.load(*load_size) if "load" in only else None
        ingest = bench.ingest(*ingest_size) if "ingest" in only else None
        latency = []
        if "latency" in only:
            latency = [pool([bench.latency(k) for _ in range(args.reps)]) for k in latency_sizes]
    finally:
        bench.close()
        shutil.rmtree(tmp, ignore_errors=True)

    result = {
        "bench": "server",
        "full": args.full,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "source": bench.origin,
        "load": load,
        "ingest": ingest,
        "latency": latency,
        "wall_seconds": round(time.time() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    print(f"## pa server ({'full' if args.full else 'small'} run, {os.cpu_count()} CPUs)\n")
    print(f"agent output: {bench.origin}\n")
    print("| measure | value |")
    print("|---|---|")
    if load is not None:
        print_load(load)
    if ingest is not None:
        print_ingest(ingest)
    for la in latency:
        print(
            f"| status latency, {la['sessions']} sessions ending together |"
            f" median {la['median_ms']} ms, p95 {la['p95_ms']} ms, max {la['max_ms']} ms"
            f" ({la['observed']} seen) |"
        )
        print(
            f"| latency breakdown, {la['sessions']} sessions (median / p95) |"
            f" line -> exit record {la['exit_ms_median']} / {la['exit_ms_p95']} ms,"
            f" exit record -> status committed {la['commit_ms_median']} /"
            f" {la['commit_ms_p95']} ms, committed -> SSE {la['sse_ms_median']} /"
            f" {la['sse_ms_p95']} ms |"
        )
        if la.get("turn_ends") is not None:
            print(
                f"| turn ends, {la['sessions']} sessions | {la['turn_ends']:g} turns ended"
                f" in {la['end_batches']:g} transactions |"
            )
    print(f"\nwall time {result['wall_seconds']} s; results in {args.out}")


def print_load(lo: dict[str, Any]) -> None:
    print(
        f"| load: {lo['sessions']} sessions x {lo['events_per_s_each']:g} ev/s"
        f" for {lo['seconds']:g} s | server CPU {lo['server_cpu_pct']} %,"
        f" RSS {lo['rss_before_mb']} MB before, peak {lo['rss_peak_mb']} MB |"
    )
    print(f"| load: events stored / written | {lo['events_stored']} / {lo['events_expected']} |")
    print(
        f"| load: ingest lag (line written -> stored) | median {lo['ingest_lag_ms_median']} ms,"
        f" p95 {lo['ingest_lag_ms_p95']} ms |"
    )


def print_ingest(ig: dict[str, Any]) -> None:
    print(
        f"| max ingest ({ig['sessions']} x {ig['lines_each']} lines at once) |"
        f" {ig['events_per_s']} events/s |"
    )
    print(
        f"| baseline: raw file append, same lines | {ig['baseline_append_lines_per_s']} lines/s"
        f" (ingest ratio {ig['ratio_vs_append']}) |"
    )
    print(
        f"| baseline: raw SQLite insert, same rows | {ig['baseline_sqlite_rows_per_s']} rows/s"
        f" (ingest ratio {ig['ratio_vs_sqlite']}) |"
    )


def pool(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Latency rounds of one size as one row: each figure the median over the rounds."""
    if len(rounds) == 1:
        return rounds[0]
    out: dict[str, Any] = {"sessions": rounds[0]["sessions"], "rounds": len(rounds)}
    for k in rounds[0]:
        if k == "sessions":
            continue
        vals = [r[k] for r in rounds if r.get(k) is not None]
        if not vals:
            out[k] = None
        elif k == "observed":
            out[k] = sum(vals)
        else:
            out[k] = round(statistics.median(vals), 1)
    return out


if __name__ == "__main__":
    main()
