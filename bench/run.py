"""Run pa's benchmarks: one command, a markdown table, JSON in bench/results/.

    python -m bench            # small sizes (about twelve minutes on 2 cores)
    python -m bench --full     # the issue's sizes: 20,000 files, up to 100 sessions
    python bench/run.py --only spawn,pool --no-readme

Every benchmark makes its own data (a synthetic repository written with git
fast-import, fake agents replaying captured agent output) in a temporary folder, and
compares with a baseline measured in the same run. The other engineers' benchmarks
(bench_conflicts.py, bench_server.py, bench_dashboard.py) run afterwards when present.
The README's block between ``<!-- bench:start -->`` and ``<!-- bench:end -->`` is
rewritten with the table and the machine it ran on (nothing else in README.md is
touched; with no markers, the README is left alone).

Issue 14's targets (bench/targets.py) are judged from the same results: a summary table
(figure, baseline from this run, target, pass / FAIL / not measured) and a one-line verdict
end the output, open the README block and land in the JSON under ``targets``. The
sections ``storage`` and ``scale`` call ``bench/<section>.py``'s ``run(tmp, repo, full)``
when that module exists (targets.py lists the keys they return); ``server``,
``dashboard`` and ``conflicts`` run one of the other scripts, ``others`` all of them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common, spawn, synth, targets
from bench.common import Home, ms

README = common.ROOT / "README.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"
OTHERS = ("bench_conflicts.py", "bench_server.py", "bench_dashboard.py")
# "others" runs every script of OTHERS; "server", "dashboard", "conflicts" run one of them.
SECTIONS = (
    "spawn", "pool", "diff", "memory", "storage", "scale",
    "others", "server", "dashboard", "conflicts", "ray",
)
# Run only when named (`--only ray`): it needs the ray extra and starts a Ray cluster.
OPT_IN = ("ray",)


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--full", action="store_true", help="the issue's sizes (slow)")
    ap.add_argument("--files", type=int, help="files in the spawn repo (2,000; full 20,000)")
    ap.add_argument(
        "--big-files",
        type=int,
        default=20_000,
        help="files in the repo of the warm-pool and diff runs (20,000)",
    )
    ap.add_argument(
        "--spawn-sizes",
        help="repo sizes of the one-session spawn against git, with its per-phase table"
        " (2,000,5,000,20,000; with --files: that size)",
    )
    ap.add_argument("--counts", help="sessions started at once (1,10,30,100)")
    ap.add_argument("--pool-counts", help="same with the warm pool (1,10; full 1,10,30,100)")
    ap.add_argument("--reps", type=int, default=5, help="repetitions of single starts")
    ap.add_argument("--memory-sessions", type=int, help="running sessions (10; full 100)")
    ap.add_argument(
        "--mode",
        choices=("server", "local", "both"),
        help="`pa new` through its auto-started server (default), without a server, or both"
        " (the default with --full)",
    )
    ap.add_argument(
        "--api",
        action="store_true",
        help="also N POST /api/v1/sessions at once, without the CLI (on with --full)",
    )
    ap.add_argument(
        "--ray-sessions",
        type=int,
        default=200,
        help="sessions per runtime of the ray section (200; issue 19)",
    )
    ap.add_argument(
        "--only",
        help=f"comma-separated subset of: {', '.join(SECTIONS)} (ray: only when named)",
    )
    ap.add_argument("--no-readme", action="store_true", help="do not touch README.md")
    ap.add_argument("--out", type=Path, default=common.RESULTS / "pa.json")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    a = ap.parse_args(argv)
    # As --spawn-sizes' help says: every size of the issue unless --files names one.
    explicit = a.spawn_sizes or (str(a.files) if a.files else "2000,5000,20000")
    a.files = a.files or (20_000 if a.full else 2_000)
    a.spawn_sizes = _ints(explicit)
    a.counts = _ints(a.counts) if a.counts else [1, 10, 30, 100]
    a.pool_counts = (
        _ints(a.pool_counts) if a.pool_counts else ([1, 10, 30, 100] if a.full else [1, 10])
    )
    a.memory_sessions = a.memory_sessions or (100 if a.full else 10)
    a.mode = a.mode or ("both" if a.full else "server")
    a.api = a.api or a.full
    a.only = set(a.only.split(",")) if a.only else set(SECTIONS) - set(OPT_IN)
    unknown = a.only - set(SECTIONS)
    if unknown:
        ap.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    return a


_load_max = [0.0]  # highest 1-minute load average seen while running


def log(msg: str) -> None:
    _load_max[0] = max(_load_max[0], common.load())
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _drop(path: Path, repo: Path) -> None:
    """Delete a finished round's worktrees now (a full run would fill the disk otherwise)."""
    common.remove_tree(path)
    subprocess.run(["git", "worktree", "prune"], cwd=repo, capture_output=True, check=False)


# -- sections ---------------------------------------------------------------------------------
def run_spawn(tmp: Path, repo: Path, a: argparse.Namespace, res: dict[str, Any]) -> None:
    """`pa new` N at once: through the CLI's auto-started server (pa's default) and/or
    with no server (PA_SERVER_AUTOSTART=0, every `pa new` does the work itself)."""
    rows: list[dict[str, Any]] = []
    api_rows: list[dict[str, Any]] = []
    modes = ["server", "local"] if a.mode == "both" else [a.mode]
    for n in a.counts:
        log(f"spawn: {n} raw `git worktree add` in a row")
        raw = spawn.raw_adds(repo, n, tmp / f"raw-spawn-{n}")
        base = raw[0] if n == 1 else sum(raw)
        for mode in modes:
            home = Home(tmp / f"spawn-{mode}-{n}", autostart=mode == "server")
            spawn.setup_home(home, repo)
            log(f"spawn: {n} `pa new` at once ({mode})")
            ours = spawn.concurrent(home, n)
            ours["mode"] = mode
            ours["raw_sequential_s"] = round(sum(raw), 4)
            ours["raw_each_s"] = common.stats(raw)
            top = ours["latency_s"].get("median") if n == 1 else ours["makespan_s"]
            ours["ratio"] = round(top / base, 3) if top else None
            rows.append(ours)
            spawn.wait_idle(home)
            if mode == "server" and a.api:
                log(f"spawn: {n} POST /api/v1/sessions at once (no CLI)")
                sv = spawn.concurrent_server(home, n)
                if sv is not None:
                    top = sv["latency_s"].get("median") if n == 1 else sv["makespan_s"]
                    sv["raw_sequential_s"] = ours["raw_sequential_s"]
                    sv["ratio"] = round(top / base, 3) if top else None
                    api_rows.append(sv)
                spawn.wait_idle(home)
            home.kill_agents()
            _drop(home.root, repo)
        _drop(tmp / f"raw-spawn-{n}", repo)
    res["spawn"] = {"files": a.files, "rows": rows, "server_rows": api_rows}
    # Issue 14 §1: one `pa new` against one raw add, alternating, per repo size.
    single: list[dict[str, Any]] = []
    for files in a.spawn_sizes:
        src = repo if files == a.files else tmp / f"spawn-repo-{files}"
        if src != repo:
            log(f"building a synthetic repo of {files:,} files")
            synth.make_repo(src, files)
        home = Home(tmp / f"spawn-single-{files}", autostart=True)
        spawn.setup_home(home, src)
        log(f"spawn: {a.reps} x (raw add, `pa new`, POST) alternating on {files:,} files")
        r = spawn.alternating(home, src, a.reps, tmp / f"raw-single-{files}")
        r["files"] = files
        r["acceptance"] = "<= 1.2x raw git worktree add"
        r["ok"] = bool(r["ratio"] is not None and r["ratio"] <= 1.2 and r["failures"] == 0)
        single.append(r)
        spawn.wait_idle(home)
        home.kill_agents()
        _drop(home.root, src)
        _drop(tmp / f"raw-single-{files}", src)
        if src != repo:
            common.remove_tree(src)
    res["spawn"]["single"] = single
    res["spawn"]["phase_table"] = spawn.phase_table(single)
    print(res["spawn"]["phase_table"], file=sys.stderr, flush=True)


def run_pool(tmp: Path, repo: Path, big: Path, a: argparse.Namespace, res: dict[str, Any]) -> None:
    out: dict[str, Any] = {"big_files": a.big_files, "files": a.files}
    raw: list[float] = []

    def one_raw() -> None:
        raw.extend(spawn.raw_adds(big, 1, tmp / "raw-big", first=len(raw)))

    # The server's own work for one `pa new`, in a warm process (no server running here).
    home = Home(tmp / "pool-big", autostart=False)
    spawn.setup_home(home, big, pool_size=a.reps + 1)
    log("pool: filling the warm pool")
    t_fill = spawn.fill_pool(home, a.reps + 1)
    out["fill_s_per_worktree"] = round(t_fill / (a.reps + 1), 3)
    log(
        f"pool: single starts in a warm process (the server's path), each after one raw"
        f" `git worktree add` of {a.big_files:,} files"
    )
    single = spawn.single_inprocess(home, a.reps, between=one_raw)
    out["raw_add_s"] = common.stats(raw)
    raw_med = out["raw_add_s"]["median"]
    single["ratio"] = (
        round(single["latency_s"]["median"] / raw_med, 3) if single["latency_s"] else None
    )
    single["acceptance"] = "< 0.1 of raw git worktree add"
    single["ok"] = bool(
        single["ratio"] is not None and single["ratio"] < 0.1 and single["failures"] == 0
    )
    out["single_inprocess"] = single
    log("pool: the worktree alone, pool.take against worktrees.create")
    spawn.fill_pool(home, a.reps)
    tv = spawn.take_vs_create(home, a.reps)
    tv["ratio"] = round(tv["take_s"]["median"] / raw_med, 3) if tv["take_s"] else None
    tv["create_ratio"] = round(tv["create_s"]["median"] / raw_med, 3)
    out["take_vs_create"] = tv
    home.kill_agents()
    _drop(home.root, big)

    # What a user types: `pa new` (a new Python process) through the auto-started server,
    # and the same request sent to the server's API directly.
    nreps = max(3, a.reps // 2)
    cli = Home(tmp / "pool-big-cli", autostart=True)
    spawn.setup_home(cli, big, pool_size=2 * nreps + 1)
    spawn.fill_pool(cli, 2 * nreps + 1)
    log("pool: single `pa new` (CLI through its server)")
    c = spawn.single_cli(cli, nreps)
    c["ratio"] = round(c["latency_s"]["median"] / raw_med, 3) if c["latency_s"] else None
    out["single_cli"] = c
    if spawn.server_available():
        log("pool: single starts through `pa server` (POST /api/v1/sessions)")
        sv = spawn.via_server(cli, nreps)
        if sv and sv.get("latency_s"):
            sv["ratio"] = round(sv["latency_s"]["median"] / raw_med, 3)
        out["single_server"] = sv
    cli.kill_agents()
    _drop(cli.root, big)

    log("pool: the default pool (no pool settings), filled after a first session")
    out["default_on"] = _default_pool(tmp, big, a, one_raw, raw)

    plain = Home(tmp / "nopool-big", autostart=False)
    spawn.setup_home(plain, big)
    log("pool: the same single starts without the pool, for reference")
    nop = spawn.single_inprocess(plain, max(2, a.reps // 2))
    nop["ratio"] = round(nop["latency_s"]["median"] / raw_med, 3) if nop["latency_s"] else None
    out["single_inprocess_no_pool"] = nop
    plain.kill_agents()
    _drop(plain.root, big)
    _drop(tmp / "raw-big", big)

    rows = []
    spawn_raw = {r["sessions"]: r for r in (res.get("spawn") or {}).get("rows", [])}
    for n in a.pool_counts:
        h = Home(tmp / f"pool-{n}")
        spawn.setup_home(h, repo, pool_size=n)
        log(f"pool: {n} `pa new` at once with {n} warm worktrees")
        spawn.fill_pool(h, n)
        r = spawn.concurrent(h, n)
        if n in spawn_raw:
            base_seq = spawn_raw[n]["raw_sequential_s"]
            base_one = spawn_raw[n]["raw_each_s"]["median"]
        else:
            raws = spawn.raw_adds(repo, n, tmp / f"raw-pool-{n}")
            base_seq, base_one = sum(raws), common.stats(raws)["median"]
        r["raw_sequential_s"] = round(base_seq, 4)
        top = r["latency_s"].get("median") if n == 1 else r["makespan_s"]
        r["ratio"] = round(top / (base_one if n == 1 else base_seq), 3) if top else None
        rows.append(r)
        spawn.wait_idle(h)
        h.kill_agents()
        _drop(h.root, repo)
    out["rows"] = rows
    res["pool"] = out


def _default_pool(
    tmp: Path, big: Path, a: argparse.Namespace, one_raw: Any, raw: list[float]
) -> dict[str, Any]:
    """What a user gets with no pool settings (issue 14 §2): the first `pa new` in a repo
    marks it used and starts the background filler; how long until the pool is warm, what
    it costs on disk (the estimate against `du`), and `pa new` (CLI via its server) once
    it is warm, each after one raw `git worktree add` and with the pool refilled in between.
    Result keys: time_to_warm_s, want, limit, entry_bytes, du_bytes, estimate_ratio,
    estimate_s, held_bytes, budget_bytes, free_bytes, floor_bytes, latency_s, ratio,
    from_pool, failures."""
    import json
    import os

    from bench.common import started_at, stats, wait_for

    # The users' default, not the test suite's (it sets a budget of 0 in the environment).
    saved = os.environ.pop("PA_POOL_DISK_BUDGET", None)
    home = Home(tmp / "pool-default", autostart=True)  # pa's default: via its server
    home.write_settings("[limits]\nmax_running = 0\n")
    home.pa("repo", "add", str(big), "--name", "bench")
    res: dict[str, Any] = {"failures": 0}

    def status() -> dict[str, Any]:
        rows = json.loads(home.pa("pool", "status", "--repo", "bench", "--json").stdout)
        return dict(rows[0])

    def warm() -> dict[str, Any] | None:
        """The pool as full as its limits allow (none on a short disk), no filler busy."""
        st = status()
        ok = st["used"] and st["limit"] != "no estimate" and st["ready"] == st["want"]
        return st if ok and not st["filling"] and not st["unready"] else None

    try:
        t0 = time.perf_counter()
        home.pa("new", "first", "--repo", "bench", "--cmd", spawn.AGENT, "--json")
        st = wait_for(warm, 3600, "the default pool to fill")
        res["time_to_warm_s"] = round(time.perf_counter() - t0, 3)
        for k in ("want", "limit", "entry_bytes", "held_bytes", "budget_bytes"):
            res[k] = st[k]
        res["free_bytes"], res["floor_bytes"] = st["free_bytes"], st["floor_bytes"]
        if not st["want"]:
            res["skipped"] = f"the pool stays empty here ({st['limit']})"
            return res
        entry = st["entries"][0]["path"]
        du = subprocess.run(["du", "-sk", entry], capture_output=True, text=True, check=True)
        res["du_bytes"] = int(du.stdout.split()[0]) * 1024
        res["estimate_ratio"] = round(st["entry_bytes"] / res["du_bytes"], 3)
        with home.activated():
            from parallel_agents.git import pool_budget

            e0 = time.perf_counter()
            pool_budget.estimate(big, str(st["base"]), 4096)
            res["estimate_s"] = round(time.perf_counter() - e0, 4)
        lat: list[float] = []
        sids: list[str] = []
        first = len(raw)
        for i in range(max(2, a.reps // 2)):
            wait_for(warm, 3600, "the pool to be warm again")
            one_raw()
            t = time.time()
            p = home.pa("new", f"warm {i}", "--repo", "bench", "--cmd", spawn.AGENT, "--json",
                        check=False)  # fmt: skip
            sid = json.loads(p.stdout)["id"] if p.returncode == 0 else None
            t1 = started_at(home, sid) if sid else None
            if sid is None or t1 is None:
                res["failures"] += 1
                continue
            sids.append(sid)
            lat.append(t1 - t)
        res["latency_s"] = stats(lat)
        base = stats(raw[first:])
        res["raw_add_s"] = base
        res["ratio"] = round(res["latency_s"]["median"] / base["median"], 3) if lat else None
        res["from_pool"] = spawn._from_pool(home, sids)
        spawn.wait_idle(home)
        wait_for(warm, 3600, "the last refill to end")  # no filler left writing
    finally:
        if saved is not None:
            os.environ["PA_POOL_DISK_BUDGET"] = saved
        home.kill_agents()
        _drop(home.root, big)
    return res


def run_diff(tmp: Path, big: Path, a: argparse.Namespace, res: dict[str, Any]) -> None:
    import json

    from bench import diff

    log(f"diff: `pa diff` of a 10-file change on {a.big_files:,} files")
    home = Home(tmp / "diff")
    try:
        d = res["diff"] = {"files": a.big_files, **diff.run(home, big, reps=a.reps)}
        for form in ("", "_stat", "_name_only"):
            log(
                f"diff{form or ' (patch)'}: pa {ms(d[f'pa_diff{form}_s']['median'])}, git"
                f" {ms(d[f'git_diff{form}_s']['median'])}, {d[f'ratio{form}']}x,"
                f" same output: {d[f'same_output{form}']}"
            )
        log("diff breakdown (ms, medians): " + json.dumps(d["breakdown_ms"]))
    finally:
        home.kill_agents()


def run_memory(tmp: Path, repo: Path, a: argparse.Namespace, res: dict[str, Any]) -> None:
    from bench import memory

    use_server = spawn.server_available()
    log(
        f"memory: {a.memory_sessions} running sessions"
        f" ({'server' if use_server else 'supervisor loop'})"
    )
    res["memory"] = memory.run(tmp / "memory", repo, a.memory_sessions, use_server)


def run_module(
    section: str, tmp: Path, repo: Path, a: argparse.Namespace, res: dict[str, Any]
) -> None:
    """bench/<section>.py's ``run(tmp, repo, full) -> dict``, under ``res[section]``.

    Missing module: the section is skipped, so its targets read "not measured"."""
    import importlib

    try:
        mod = importlib.import_module(f"bench.{section}")
    except ModuleNotFoundError as e:
        if e.name != f"bench.{section}":
            raise
        log(f"{section}: bench/{section}.py not there: its targets are not measured")
        return
    log(f"{section}: bench/{section}.py")
    res[section] = mod.run(tmp / section, repo, a.full)


def run_others(a: argparse.Namespace, res: dict[str, Any]) -> None:
    """The other benchmark scripts, each in its own process; their JSON lands in
    ``res["server"]``, ``res["dashboard"]``, ``res["conflicts"]`` when written in this run."""
    out: dict[str, Any] = {}
    for name in OTHERS:
        script = common.HERE / name
        short = name.removeprefix("bench_").removesuffix(".py")
        if not script.exists() or not a.only & {"others", short}:
            continue
        result = common.RESULTS / f"{short}.json"
        result.unlink(missing_ok=True)  # a file from an earlier run is never read as this one's
        log(f"others: {name}")
        argv = [sys.executable, str(script), "--out", str(result)] + (["--full"] if a.full else [])
        t0 = time.monotonic()
        try:
            p = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=3600 if a.full else 600,
                cwd=common.ROOT,
            )
            ok, text, err = p.returncode == 0, p.stdout, p.stderr
        except subprocess.TimeoutExpired:
            ok, text, err = False, "", "timed out"
        table = [ln for ln in text.splitlines() if ln.startswith("|")]
        out[name] = {
            "ok": ok,
            "seconds": round(time.monotonic() - t0, 1),
            "table": table,
            "error": None if ok else (err.strip().splitlines() or ["failed"])[-1][:300],
            "results": f"bench/results/{short}.json",
        }
        data = common.read_json(result) if ok else None
        if data is not None:
            res[short] = data
    res["others"] = out


# -- output -----------------------------------------------------------------------------------
def _ratio(r: float | None, mark: bool = False) -> str:
    if r is None:
        return "-"
    s = f"{r:.2f}×" if r < 10 else f"{r:.0f}×"
    return s + (" ✓" if mark and r < 0.1 else " ✗" if mark else "")


def table(res: dict[str, Any]) -> str:
    rows: list[list[str]] = []
    head = ["benchmark", "repo", "pa", "baseline (same run)", "ratio", "failures"]
    sp = res.get("spawn")
    if sp:
        for r in sp.get("rows", []):
            n = r["sessions"]
            how = "via its server" if r.get("mode") == "server" else "no server"
            if n == 1:
                rows.append(
                    [
                        # One sample each, the server's first start included: the
                        # alternating row below (median of --reps) is target 1's figure.
                        f"spawn: `pa new` → agent running, 1 session ({how}; first"
                        " start, one sample)",
                        f"{sp['files']:,} files",
                        ms(r["latency_s"].get("median")),
                        f"{ms(r['raw_sequential_s'])} `git worktree add`",
                        _ratio(r["ratio"]),
                        str(r["failures"]),
                    ]
                )
            else:
                rows.append(
                    [
                        f"spawn: {n} `pa new` at once, all running ({how})",
                        f"{sp['files']:,} files",
                        f"{ms(r['makespan_s'])} (each: median {ms(r['latency_s'].get('median'))})",
                        f"{ms(r['raw_sequential_s'])} = {n} adds in a row",
                        _ratio(r["ratio"]),
                        str(r["failures"]),
                    ]
                )
        for r in sp.get("single", []):
            rows.append(
                [
                    "spawn, no pool: 1 `pa new` → agent running (server running), alternating",
                    f"{r['files']:,} files",
                    ms(r["cli_s"].get("median")),
                    f"{ms(r['raw_s'].get('median'))} `git worktree add`",
                    _ratio(r["ratio"]) + (" ✓" if r["ok"] else " ✗"),
                    str(r["failures"]),
                ]
            )
        for r in sp.get("server_rows", []):
            n = r["sessions"]
            what = "1 session" if n == 1 else f"{n} at once (all running)"
            shown = (
                ms(r["latency_s"].get("median"))
                if n == 1
                else (f"{ms(r['makespan_s'])} (each: median {ms(r['latency_s'].get('median'))})")
            )
            rows.append(
                [
                    f"spawn via `pa server` (HTTP POST): {what}",
                    f"{sp['files']:,} files",
                    shown,
                    f"{ms(r['raw_sequential_s'])}" + ("" if n == 1 else f" = {n} adds in a row"),
                    _ratio(r["ratio"]),
                    str(r["failures"]),
                ]
            )
    po = res.get("pool")
    if po and "raw_add_s" in po:  # not only `pool.default` (issue 14's pool on by default)
        big = f"{po['big_files']:,} files"
        raw = ms(po["raw_add_s"]["median"])
        tv = po.get("take_vs_create")
        if tv:
            rows.append(
                [
                    "warm pool: the worktree alone (`pool.take`)",
                    big,
                    ms(tv["take_s"].get("median")),
                    f"{raw} `git worktree add`",
                    _ratio(tv["ratio"]),
                    str(tv["misses"]),
                ]
            )
            rows.append(
                [
                    "no pool: the worktree alone (`worktrees.create`)",
                    big,
                    ms(tv["create_s"].get("median")),
                    raw,
                    _ratio(tv["create_ratio"]),
                    "-",
                ]
            )
        s = po["single_inprocess"]
        rows.append(
            [
                "warm pool: 1 session, server path (warm process)",
                big,
                ms(s["latency_s"].get("median")),
                f"{raw} `git worktree add`",
                _ratio(s["ratio"], mark=True),
                str(s["failures"]),
            ]
        )
        if po.get("single_server") and po["single_server"].get("latency_s"):
            v = po["single_server"]
            rows.append(
                [
                    "warm pool: 1 session via `pa server` (HTTP)",
                    big,
                    ms(v["latency_s"].get("median")),
                    raw,
                    _ratio(v.get("ratio")),
                    str(v["failures"]),
                ]
            )
        if po.get("single_cli"):
            c = po["single_cli"]
            rows.append(
                [
                    "warm pool: 1 session, `pa new` CLI (via its server)",
                    big,
                    ms(c["latency_s"].get("median")),
                    raw,
                    _ratio(c["ratio"]),
                    str(c["failures"]),
                ]
            )
        n = po["single_inprocess_no_pool"]
        rows.append(
            [
                "no pool: 1 session, server path",
                big,
                ms(n["latency_s"].get("median")),
                raw,
                _ratio(n["ratio"]),
                str(n["failures"]),
            ]
        )
        rows.append(
            ["warm pool: refill, per worktree", big, ms(po["fill_s_per_worktree"]), raw, "-", "-"]
        )
        for r in po["rows"]:
            k = r["sessions"]
            if k == 1:
                continue
            rows.append(
                [
                    f"warm pool: {k} `pa new` at once (via its server)",
                    f"{po['files']:,} files",
                    f"{ms(r['makespan_s'])} (each: median {ms(r['latency_s'].get('median'))})",
                    f"{ms(r['raw_sequential_s'])} = {k} adds in a row",
                    _ratio(r["ratio"]),
                    str(r["failures"]),
                ]
            )
    d = res.get("diff")
    if d:
        rows.append(
            [
                f"diff: `pa diff`, {d['files_changed']} files changed",
                f"{d['files']:,} files",
                ms(d["pa_diff_s"]["median"]),
                f"{ms(d['git_diff_s']['median'])} `git diff`",
                _ratio(d["pa_diff_s"]["median"] / d["git_diff_s"]["median"]),
                "-",
            ]
        )
    m = res.get("memory")
    if m:
        rows.append(
            [
                f"memory per running session ({m['sessions']} running)",
                "-",
                f"+{m['per_session_mb']:.2f} MB {m['supervisor']}; "
                f"wrapper {m['wrapper_rss_mb'].get('median', 0):.1f} MB",
                "-",
                "-",
                "-",
            ]
        )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def machine_line(res: dict[str, Any]) -> str:
    m = res["machine"]
    top = res.get("load_max", m["load"])
    busy = ""
    if top > (m["cores"] or 1) * 0.75:
        busy = "; the machine was busy with other work"
    return (
        f"{m['cores']} cores, {m['ram_gb']} GB RAM ({m['cpu']}), {m['os']}, "
        f"Python {m['python']}, git {m['git']}; load average {m['load']} at the start, "
        f"up to {top}{busy}"
    )


def summary(res: dict[str, Any]) -> str:
    """Issue 14's targets: the table and the one-line verdict."""
    rows = res.get("targets") or targets.evaluate(res)
    return "\n".join(
        [
            f"### Targets (issue 14), {res['when']}",
            "",
            targets.summary_table(rows),
            "",
            targets.verdict(rows, bool(res.get("full"))),
        ]
    )


def markdown(res: dict[str, Any], summary_first: bool = True) -> str:
    """The README block: what ran where, the targets, then every figure.
    ``summary_first=False`` puts the targets last (the end of the terminal output)."""
    size = "full run" if res["full"] else "small run"
    only = (res.get("params") or {}).get("only") or SECTIONS
    if not {"spawn", "pool", "diff", "memory", "storage", "scale", "others"} <= set(only):
        size += f" of {', '.join(only)} only"
    parts = [
        f"Measured by `python -m bench` ({size}, {res['when']}) on "
        f"{machine_line(res)}. Agent output: {res['agent_source']}.",
        "",
    ]
    if summary_first:
        parts += [summary(res), ""]
    parts += ["### Every figure", "", table(res)]
    if res.get("ray"):
        from bench import bench_ray

        parts += ["", "Issue 19, the Ray runtime against the local one:", "",
                  bench_ray.table(res["ray"])]  # fmt: skip
    if (res.get("spawn") or {}).get("phase_table"):
        parts += ["", res["spawn"]["phase_table"]]
    po = res.get("pool")
    if po and "single_inprocess" in po:
        s = po["single_inprocess"]
        tv = po.get("take_vs_create") or {}
        parts += [
            "",
            f"Warm-pool acceptance (one session on {po['big_files']:,} files under a "
            f"tenth of raw `git worktree add`): end to end, request to agent running, "
            f"{'met' if s['ok'] else 'NOT met'} ({_ratio(s['ratio'])}); the worktree alone "
            f"{_ratio(tv.get('ratio'))}. Every figure is a median of the run's repetitions.",
        ]
    for name, o in (res.get("others") or {}).items():
        parts += [
            "",
            f"**{name}** ({o['seconds']} s, {o['results']})"
            + ("" if o["ok"] else f": failed: {o['error']}"),
        ]
        if o["table"]:
            parts += [""] + o["table"]
    if not summary_first:
        parts += ["", summary(res)]
    return "\n".join(parts)


def update_readme(text: str) -> str:
    if not README.exists():
        return "README.md not found: figures not written"
    old = README.read_text(encoding="utf-8")
    if START not in old or END not in old or old.index(START) > old.index(END):
        return f"README.md has no {START} … {END} block: figures not written"
    before, rest = old.split(START, 1)
    _, after = rest.split(END, 1)
    README.write_text(f"{before}{START}\n{text}\n{END}{after}", encoding="utf-8")
    return "README.md figures block updated"


def main(argv: list[str] | None = None) -> int:
    a = parse(argv)
    # As installed from a wheel: byte-compiled. (With PYTHONDONTWRITEBYTECODE set, every
    # `pa` process would otherwise compile the package again, and that would be measured.)
    import compileall

    from bench.fake_agent import source_lines

    compileall.compile_dir(str(common.ROOT / "src"), quiet=1)

    t_start = time.monotonic()
    import threading

    def sample_load() -> None:
        while True:
            _load_max[0] = max(_load_max[0], common.load())
            time.sleep(2)

    threading.Thread(target=sample_load, daemon=True, name="load-sampler").start()
    res: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "full": a.full,
        "machine": common.machine(),
        "agent_source": source_lines()[1],
        "params": {
            k: (sorted(v) if isinstance(v, set) else v)
            for k, v in vars(a).items()
            if k not in ("out",)
        },
    }
    if res["machine"]["load"] > (res["machine"]["cores"] or 1) * 0.75:
        log(
            f"warning: load average {res['machine']['load']} on {res['machine']['cores']} cores:"
            " other work will skew the figures"
        )
    tmp = common.tempdir("pa-bench-")
    homes_dir = tmp
    try:
        need_small = a.only & {"spawn", "pool", "memory", "storage", "scale"}
        need_big = a.only & {"pool", "diff"}
        repo = big = tmp / "repo"
        if need_small:
            log(f"building a synthetic repo of {a.files:,} files")
            synth.make_repo(tmp / "repo", a.files)
        if need_big:
            if a.big_files == a.files and need_small:
                big = repo
            else:
                log(f"building a synthetic repo of {a.big_files:,} files")
                big = synth.make_repo(tmp / "big", a.big_files)
        if "spawn" in a.only:
            run_spawn(tmp, repo, a, res)
        if "pool" in a.only:
            run_pool(tmp, repo, big, a, res)
        if "diff" in a.only:
            run_diff(tmp, big, a, res)
        if "memory" in a.only:
            run_memory(tmp, repo, a, res)
        for section in ("storage", "scale"):
            if section in a.only:
                run_module(section, tmp, repo, a, res)
        if "ray" in a.only:
            from bench import bench_ray

            log(f"ray: {a.ray_sessions} sessions, local then on {bench_ray.NODES} Ray nodes")
            res["ray"] = bench_ray.run(tmp / "ray", repo, a.full, a.ray_sessions)
    finally:
        for h in homes_dir.glob("*/home"):
            Home(h.parent).kill_agents()
        if a.keep:
            log(f"kept {tmp}")
        else:
            common.remove_tree(tmp)
    if a.only & {"others", "server", "dashboard", "conflicts"}:
        run_others(a, res)
    res["wall_seconds"] = round(time.monotonic() - t_start, 1)
    res["load_max"] = max(res["machine"]["load"], common.load(), _load_max[0])
    res["targets"] = targets.evaluate(res)
    common.write_json(a.out, res)
    print(markdown(res, summary_first=False))
    print(f"\nwall time {res['wall_seconds']} s; results in {a.out}")
    if a.only <= set(OPT_IN):
        # An opt-in section alone (the Ray round) measures none of the targets: the
        # README's figures stay those of the last full run.
        print("README.md figures block left as it was (only opt-in sections ran)")
    elif not a.no_readme:
        print(update_readme(markdown(res)))
    sp = res.get("spawn") or {}
    failures = sum(
        r.get("failures", 0)
        for r in sp.get("rows", []) + sp.get("server_rows", []) + sp.get("single", [])
    )
    failures += sum(r.get("failures", 0) for r in (res.get("pool") or {}).get("rows", []))
    failures += sum((res.get("ray") or {}).get(k, {}).get("failures", 0) for k in ("local", "ray"))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
