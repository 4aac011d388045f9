"""Benchmark: the conflict forecast against the naive cost of pairwise merge-tree.

Builds a repository with 10,000+ files in one ``git fast-import`` run (no checkout), then
N sessions, each one commit off the base that changes a few files. Some sessions overlap:

- every 10th session and the next one edit the same line of one file (a real conflict);
- every 10th + 5 session and the next one edit the same file far apart (overlapping paths
  that merge cleanly: the prefilter lets them through, merge-tree clears them);
- the base moves after the sessions forked, touching a file one session also edits;
- then s000 is merged into the base (a merge commit) and leaves the forecast, and two
  sessions fork from the merged base: one that changed nothing, one with files of its
  own. Neither may be reported conflicting with s001, whose edit clashes with s000's
  (that is s001's conflict with the base): the correctness check wants exactly the
  planted pairs (issue 11 F.6).

For each N it times ``review.forecast`` (cold caches, batched through
``merge-tree --stdin`` when git has it and through the thread-pool fallback), a warm rerun
and a rerun after one session moved, and compares with the naive cost: the time of one
``git merge-tree --write-tree`` call times the number of pairs (measured in the same run;
for the smallest N the naive loop is also run for real).

    python bench/bench_conflicts.py            # 10,000 files; 10, 50, 100 sessions (seconds)
    python bench/bench_conflicts.py --full     # 50,000 files; 10, 50, 100, 200 sessions

Prints a markdown table and writes bench/results/conflicts.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

import parallel_agents.git.forecast as forecast  # noqa: E402
import parallel_agents.git.merge_tree as merge_tree  # noqa: E402

LINES = 12


def _content(i: int, changes: dict[int, str] | None = None) -> bytes:
    lines = [f"# file {i} line {n}: value = {i * 31 + n}" for n in range(LINES)]
    for n, text in (changes or {}).items():
        lines[n] = text
    return ("\n".join(lines) + "\n").encode()


def _path(i: int) -> str:
    return f"src/pkg{i // 500:02d}/mod{(i // 50) % 10}/file_{i:05d}.py"


def _data(payload: bytes) -> bytes:
    return b"data %d\n" % len(payload) + payload + b"\n"


def build_repo(root: Path, n_files: int, n_sessions: int, seed: int = 7) -> dict[str, Any]:
    """A repo with ``n_files`` files and ``n_sessions`` session branches, via fast-import."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    for k, v in (("user.name", "bench"), ("user.email", "bench@example.com")):
        subprocess.run(["git", "config", k, v], cwd=root, check=True)
    rng = random.Random(seed)
    ident = b"bench <bench@example.com> 1700000000 +0000"
    out: list[bytes] = []
    out.append(b"commit refs/heads/main\nmark :1\ncommitter " + ident + b"\n")
    out.append(_data(b"base with many files"))
    for i in range(n_files):
        out.append(b"M 100644 inline " + _path(i).encode() + b"\n" + _data(_content(i)))
    out.append(b"\n")
    # Files reserved for overlaps, then every session gets unique files of its own.
    hot = list(range(0, n_files, max(1, n_files // 200)))
    free = [i for i in range(n_files) if i not in set(hot)]
    rng.shuffle(free)
    expected_pairs: set[frozenset[str]] = set()
    session_edits: dict[str, dict[int, dict[int, str]]] = {}
    for s in range(n_sessions):
        sid = f"s{s:03d}"
        edits: dict[int, dict[int, str]] = {}
        for _ in range(3):
            edits[free.pop()] = {rng.randrange(LINES): f"# {sid} was here"}
        if s % 10 == 0 and s + 1 < n_sessions:  # conflicts with the next session
            edits[hot[s // 10 * 2 % len(hot)]] = {3: f"# {sid} conflicting edit"}
            expected_pairs.add(frozenset({sid, f"s{s + 1:03d}"}))
        if s % 10 == 1:
            edits[hot[(s - 1) // 10 * 2 % len(hot)]] = {3: f"# {sid} the other edit"}
        if s % 10 == 5 and s + 1 < n_sessions:  # same file, far apart: merges cleanly
            edits[hot[(s // 10 * 2 + 1) % len(hot)]] = {0: f"# {sid} top"}
        if s % 10 == 6:
            edits[hot[((s - 1) // 10 * 2 + 1) % len(hot)]] = {LINES - 1: f"# {sid} bottom"}
        session_edits[sid] = edits
        out.append(f"commit refs/heads/pa/{sid}\nmark :{1000 + s}\ncommitter ".encode() + ident)
        out.append(b"\n" + _data(f"session {sid}".encode()))
        out.append(b"from :1\n")
        for i, ch in edits.items():
            out.append(b"M 100644 inline " + _path(i).encode() + b"\n" + _data(_content(i, ch)))
        out.append(b"\n")
    # The base moves on after the sessions forked: one of its edits clashes with s002.
    clash = next(iter(_session_files(out, "s002")), None)
    out.append(b"commit refs/heads/main\nmark :2\ncommitter " + ident + b"\n")
    out.append(_data(b"main moves on"))
    out.append(b"from :1\n")
    for i in free[:5]:
        out.append(b"M 100644 inline " + _path(i).encode() + b"\n" + _data(_content(i, {1: "x"})))
    if clash is not None:
        out.append(clash)
    out.append(b"\n")
    # s000 is merged into the base (a merge commit carrying its edits), then two sessions
    # fork from there: one changed nothing, one changed files nobody else touches.
    merged = "s000" if n_sessions >= 2 else None
    late: list[str] = []
    if merged is not None:
        out.append(b"commit refs/heads/main\nmark :3\ncommitter " + ident + b"\n")
        out.append(_data(b"merge session s000"))
        out.append(b"from :2\nmerge :1000\n")
        for i, ch in session_edits[merged].items():
            out.append(b"M 100644 inline " + _path(i).encode() + b"\n" + _data(_content(i, ch)))
        out.append(b"\n")
        late = ["t000", "t001"]
        out.append(b"commit refs/heads/pa/t000\ncommitter " + ident + b"\n")
        out.append(_data(b"a turn that changed nothing") + b"from :3\n\n")
        out.append(b"commit refs/heads/pa/t001\ncommitter " + ident + b"\n")
        out.append(_data(b"files of its own") + b"from :3\n")
        for i in free[5:8]:
            out.append(
                b"M 100644 inline " + _path(i).encode() + b"\n" + _data(_content(i, {2: "t"}))
            )
        out.append(b"\n")
        expected_pairs = {p for p in expected_pairs if merged not in p}
    subprocess.run(["git", "fast-import", "--quiet"], cwd=root, input=b"".join(out), check=True)
    heads = {}
    for line in subprocess.run(
        ["git", "for-each-ref", "--format=%(refname:strip=3) %(objectname)", "refs/heads/pa/"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines():
        sid, oid = line.split()
        if sid != merged:  # merged sessions leave the forecast, as in `pa conflicts`
            heads[sid] = oid
    base = _git(root, "rev-parse", "main")
    return {"heads": heads, "base": base, "expected_pairs": expected_pairs, "late": late}


def _session_files(stream: list[bytes], sid: str) -> list[bytes]:
    """The base edit that clashes with ``sid``: its first file with a different line 0."""
    marker = f"commit refs/heads/pa/{sid}\n".encode()
    for k, chunk in enumerate(stream):
        if chunk.startswith(marker):
            for later in stream[k + 1 :]:
                if later.startswith(b"M 100644 inline "):
                    path = later.split(b"\n", 1)[0][len(b"M 100644 inline ") :]
                    i = int(path.rsplit(b"_", 1)[1].split(b".")[0])
                    return [
                        b"M 100644 inline "
                        + path
                        + b"\n"
                        + _data(_content(i, {n: "# main edit" for n in range(LINES)}))
                    ]
    return []


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


def _merge_tree_once(repo: Path, a: str, b: str, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        ["git", "merge-tree", "--write-tree", "--name-only", a, b],
        cwd=repo,
        capture_output=True,
        check=False,
        env=env,
    )
    return time.perf_counter() - t0


def _clear_process_caches() -> None:
    forecast._MB_CACHE.clear()
    forecast._DIFF_CACHE.clear()


def bench_one(root: Path, n_files: int, n_sessions: int, measure_naive: bool) -> dict[str, Any]:
    repo = root / f"repo-{n_sessions}"
    t0 = time.perf_counter()
    info = build_repo(repo, n_files, n_sessions)
    build_s = time.perf_counter() - t0
    heads: dict[str, str] = info["heads"]
    base: str = info["base"]
    # The sessions fork from main's first commit; the base has moved one commit since.
    row: dict[str, Any] = {"files": n_files, "sessions": n_sessions, "build_s": build_s}
    n_pairs = n_sessions * (n_sessions - 1) // 2
    row["pairs"] = n_pairs

    def run(use_stdin: bool, cache: dict[tuple[str, str], list[str]]) -> forecast.Forecast:
        return forecast.ConflictForecast(repo, cache, use_stdin=use_stdin).forecast(base, heads)

    modes = [False] + ([True] if merge_tree.merge_tree_supports_stdin() else [])
    results: dict[bool, forecast.Forecast] = {}
    run(modes[-1], {})  # warm the page cache so the first timed mode is not penalised
    for use_stdin in modes:
        _clear_process_caches()
        t = time.perf_counter()
        results[use_stdin] = run(use_stdin, {})
        row["cold_stdin_s" if use_stdin else "cold_pool_s"] = time.perf_counter() - t
    best = results[modes[-1]]
    assert all(r.pairs() == best.pairs() for r in results.values()), "modes disagree"
    row["candidate_pairs"] = best.stats.candidate_pairs
    row["base_checks"] = best.stats.base_checks
    row["merges_run"] = best.stats.merges_run
    row["conflicting_pairs"] = len(best.conflicts)
    row["base_conflicts"] = sum(not s.clean_with_base for s in best.sessions.values())
    row["expected_pairs_found"] = info["expected_pairs"] <= best.pairs()
    # Correctness: exactly the planted pairs; none blames the sessions forked after the
    # merge for the merged session's changes (issue 11 F.6).
    row["false_pairs"] = len(best.pairs() - info["expected_pairs"])
    assert best.pairs() == info["expected_pairs"], (
        f"forecast pairs {sorted(map(sorted, best.pairs()))} != planted "
        f"{sorted(map(sorted, info['expected_pairs']))}"
    )
    assert not any(c.a in info["late"] or c.b in info["late"] for c in best.conflicts)
    row["batched"] = best.stats.batched

    # Warm: same commits, persisted cache; then one session moves to a new checkpoint.
    cache: dict[tuple[str, str], list[str]] = {}
    run(modes[-1], cache)
    t = time.perf_counter()
    run(modes[-1], cache)
    row["warm_s"] = time.perf_counter() - t
    # A fresh `pa conflicts` process: the pair cache was persisted, process caches are empty.
    _clear_process_caches()
    t = time.perf_counter()
    run(modes[-1], cache)
    row["warm_new_process_s"] = time.perf_counter() - t
    moved = dict(heads)
    sid = sorted(moved)[0]
    tree = _git(repo, "rev-parse", f"{moved[sid]}^{{tree}}")
    moved[sid] = _git(repo, "commit-tree", tree, "-p", moved[sid], "-m", "next turn")
    t = time.perf_counter()
    forecast.ConflictForecast(repo, cache, use_stdin=modes[-1]).forecast(base, moved)
    row["one_moved_s"] = time.perf_counter() - t

    # Naive: one merge-tree per pair. Time a sample of single calls (objects written to a
    # throw-away directory, as the forecast does), and for small N run them all.
    ids = sorted(heads)
    rng = random.Random(1)
    sample = [tuple(rng.sample(ids, 2)) for _ in range(min(15, max(1, n_pairs)))]
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "GIT_OBJECT_DIRECTORY": tmp,
            "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(repo / ".git" / "objects"),
        }
        _merge_tree_once(repo, heads[ids[0]], heads[ids[1]], env)  # warm the page cache
        times = [_merge_tree_once(repo, heads[a], heads[b], env) for a, b in sample]
        row["one_merge_tree_ms"] = statistics.median(times) * 1000
        row["naive_estimate_s"] = statistics.median(times) * n_pairs
        if measure_naive:
            t = time.perf_counter()
            for i, a in enumerate(ids):
                for b in ids[i + 1 :]:
                    _merge_tree_once(repo, heads[a], heads[b], env)
            row["naive_measured_s"] = time.perf_counter() - t
    cold = row.get("cold_stdin_s", row["cold_pool_s"])
    row["speedup_cold"] = row["naive_estimate_s"] / cold
    row["speedup_warm"] = row["naive_estimate_s"] / row["warm_s"]
    shutil.rmtree(repo, ignore_errors=True)
    return row


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| sessions | files | pairs | candidates | merges | conflicts | forecast cold "
        "stdin (s) | cold pool (s) | warm (s) | warm, new process (s) | one moved (s) | "
        "1 merge-tree (ms) | naive (s) | naive / cold | naive / warm |"
    )
    sep = "|" + "---|" * 15
    lines = [head, sep]
    for r in rows:
        naive = f"{r['naive_estimate_s']:.2f}"
        if "naive_measured_s" in r:
            naive += f" (ran: {r['naive_measured_s']:.2f})"
        stdin = f"{r['cold_stdin_s']:.3f}" if "cold_stdin_s" in r else "n/a"
        lines.append(
            f"| {r['sessions']} | {r['files']} | {r['pairs']} | {r['candidate_pairs']} | "
            f"{r['merges_run']} | {r['conflicting_pairs']} | {stdin} | {r['cold_pool_s']:.3f} | "
            f"{r['warm_s']:.3f} | {r['warm_new_process_s']:.3f} | {r['one_moved_s']:.3f} | "
            f"{r['one_merge_tree_ms']:.1f} | "
            f"{naive} | {r['speedup_cold']:.0f}x | {r['speedup_warm']:.0f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--full", action="store_true", help="50,000 files; up to 200 sessions")
    ap.add_argument("--files", type=int, help="files in the repository (default 10,000)")
    ap.add_argument("--sessions", help="comma-separated session counts (overrides --full)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "conflicts.json")
    args = ap.parse_args(argv)
    sizes = (
        [int(x) for x in args.sessions.split(",")]
        if args.sessions
        else [10, 50, 100, 200]
        if args.full
        else [10, 50, 100]
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="pa-bench-") as tmp:
        for n in sizes:
            files = args.files or (50_000 if args.full else 10_000)
            rows.append(bench_one(Path(tmp), files, n, measure_naive=n <= 10))
            print(f"  {n} sessions done", file=sys.stderr)
    print(table(rows))
    result = {
        "benchmark": "conflict forecast vs naive pairwise merge-tree",
        "git": _git(Path.cwd(), "--version"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "merge_tree_stdin": merge_tree.merge_tree_supports_stdin(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
