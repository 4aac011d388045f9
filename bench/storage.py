"""Storage per MB of agent output: bytes pa keeps (pa.db with its WAL, the session folder)
against the bytes the agent wrote (the baseline, measured in the same run), as a ratio.

    python bench/storage.py [--mb 20] [--full] [--out bench/results/storage.json]

Two runs, each a real `pa new --cmd` turn (no server: `pa wait` ingests in-process):

* under the cap: the agent writes ``--mb`` MB of 100-byte lines; issue 14 §5 wants one
  copy of each line (the output file), so pa.db should grow by far less than the output
  (a run of plain lines is one event pointing into that file, not a row per line) and
  everything kept stays ≤ 1.1× the output (target 5a);
* over the cap: ``output.max_bytes`` at a quarter of the output: what is kept on disk and
  in pa.db must stay ≤ 1.1× the cap, whatever the agent writes, and `pa logs` says what
  was cut (target 5b; ``--full``: 200 MB against the default 50 MB cap, the issue's
  scenario).

Result keys (``bench/results/storage.json``): ``rows[*]`` with ``case``, ``output_bytes``
(baseline), ``lines`` (written), ``event_rows`` (the session's rows in ``events``),
``db_bytes``, ``folder_bytes``, ``db_ratio``, ``folder_ratio``, ``total_ratio``,
``cap_bytes``, ``ok``; and top-level ``ok``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/storage.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common
from bench.common import Home

LINE_BYTES = 100
WRITER = r"""
import sys
n = int(sys.argv[1])
out = sys.stdout
for i in range(n):
    out.write(f"line {i:09d} " + "x" * 84 + "\n")
"""


def _db_size(home: Path) -> int:
    return sum(common.disk_bytes(home / n) for n in ("pa.db", "pa.db-wal") if (home / n).exists())


def one(tmp: Path, repo: Path, case: str, output_mb: float, cap: int | None) -> dict[str, Any]:
    home = Home(tmp / case, autostart=False)
    home.write_settings(f"[output]\nmax_bytes = {cap}\n" if cap else "")
    home.pa("repo", "add", str(repo), "--name", "bench")
    writer = tmp / "writer.py"
    writer.write_text(WRITER)
    lines = int(output_mb * 1_000_000 / LINE_BYTES)
    db_before = _db_size(home.home)
    t0 = time.monotonic()
    p = home.pa("new", "write", "--repo", "bench", "--json", "--cmd", f"{sys.executable} {writer} {lines}")
    sid = json.loads(p.stdout)["id"]
    home.pa("wait", "--timeout", "1800", sid, check=False)
    seconds = time.monotonic() - t0
    status = json.loads(home.pa("show", sid, "--json").stdout)["status"]
    out = lines * LINE_BYTES
    db = _db_size(home.home) - db_before
    folder = common.disk_bytes(home.home / "sessions" / sid)
    with contextlib.closing(sqlite3.connect(f"file:{home.home / 'pa.db'}?mode=ro", uri=True)) as c:
        rows = c.execute("SELECT COUNT(*) FROM events WHERE session_id = ?", (sid,)).fetchone()
    row: dict[str, Any] = {
        "case": case,
        "status": status,
        "output_bytes": out,
        "lines": lines,
        "event_rows": int(rows[0]),
        "db_bytes": db,
        "folder_bytes": folder,
        "db_ratio": round(db / out, 3),
        "folder_ratio": round(folder / out, 3),
        "total_ratio": round((db + folder) / out, 3),
        "cap_bytes": cap,
        "seconds": round(seconds, 1),
    }
    if cap:
        # Kept on disk and in pa.db: the head and tail (in the output file, their events
        # pointing there) and the note of the cut: about the cap.
        row["kept_vs_cap"] = round((db + folder) / cap, 3)
        row["cut_reported"] = "cut here" in home.pa("logs", sid, check=False).stdout
        row["ok"] = status == "idle" and row["kept_vs_cap"] <= 1.1 and row["cut_reported"]
    else:
        row["ok"] = status == "idle" and row["total_ratio"] <= 1.1
    home.kill_agents()
    common.remove_tree(home.root)
    return row


def _kept_vs_cap(r: dict[str, Any]) -> str:
    return f"{r['kept_vs_cap']:.2f}×" if r["cap_bytes"] else "–"


def table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| storage | agent output (baseline) | pa.db grew | session folder | kept ÷ output"
        " | kept ÷ cap | event rows / lines | ok |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        what = "under the cap" if not r["cap_bytes"] else f"cap {r['cap_bytes'] / 1e6:g} MB"
        out.append(
            f"| {what} | {r['output_bytes'] / 1e6:,.1f} MB | {r['db_bytes'] / 1e6:,.1f} MB"
            f" ({r['db_ratio']:.2f}×) | {r['folder_bytes'] / 1e6:,.1f} MB"
            f" ({r['folder_ratio']:.2f}×) | {r['total_ratio']:.2f}× |"
            f" {_kept_vs_cap(r)} |"
            f" {r['event_rows']:,} / {r['lines']:,} | {'✓' if r['ok'] else '✗'} |"
        )
    return "\n".join(out)


def run(tmp: Path, repo: Path, full: bool) -> dict[str, Any]:
    """For ``python -m bench``: the keys bench/targets.py reads (target 5)."""
    tmp.mkdir(parents=True, exist_ok=True)
    mb = 200.0 if full else 20.0
    under = one(tmp, repo, "under-cap", 20.0, None)
    cap = 50_000_000 if full else max(65_536, int(mb * 1_000_000 / 4))
    over = one(tmp, repo, "over-cap", mb, cap)
    print(table([under, over]))
    return {
        "output_bytes": under["output_bytes"],
        "stored_bytes": under["db_bytes"] + under["folder_bytes"],
        "cap": {
            "limit_bytes": cap,
            "written_bytes": over["output_bytes"],
            "stored_bytes": over["db_bytes"] + over["folder_bytes"],
            "cut_reported": bool(over.get("cut_reported")),
        },
        "rows": [under, over],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--full", action="store_true", help="200 MB against the default 50 MB cap")
    ap.add_argument("--mb", type=float, help="MB the agent writes (default 20; full 200)")
    ap.add_argument("--out", type=Path, default=common.RESULTS / "storage.json")
    a = ap.parse_args(argv)
    mb = a.mb or (200.0 if a.full else 20.0)
    tmp = common.tempdir("pa-bench-storage-")
    try:
        from bench import synth

        repo = synth.make_repo(tmp / "repo", 50)
        rows = [one(tmp, repo, "under-cap", mb if not a.full else 20.0, None)]
        cap = 50_000_000 if a.full else max(65_536, int(mb * 1_000_000 / 4))
        rows.append(one(tmp, repo, "over-cap", mb, cap))
    finally:
        common.remove_tree(tmp)
    print(table(rows))
    result = {
        "benchmark": "bytes kept per byte of agent output",
        "machine": common.machine(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "rows": rows,
        "ok": all(r["ok"] for r in rows),
    }
    common.write_json(a.out, result)
    print(f"\nwrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
