"""Issue 19's benchmark at a tiny size: `python -m bench --only ray` makes its sessions
through the real pa path once local and once on a 3-node Ray cluster of its own (loopback),
and reports every figure with 0 failures and sessions on all 3 worker nodes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench import bench_ray
from bench import run as bench_run

ROOT = Path(__file__).resolve().parents[2]


def test_ray_section_runs_only_when_named() -> None:
    """issue 19: `python -m bench` (no --only) does not start a Ray cluster; `--only ray`
    runs the ray section alone, at 200 sessions unless --ray-sessions says otherwise."""
    assert "ray" not in bench_run.parse([]).only
    a = bench_run.parse(["--only", "ray"])
    assert a.only == {"ray"} and a.ray_sessions == 200
    assert bench_run.parse(["--only", "ray", "--ray-sessions", "6"]).ray_sessions == 6


def test_bench_only_ray_reports_every_row_with_no_failure_on_all_nodes(
    tmp_path: Path,
) -> None:
    """issue 19: `python -m bench --only ray --ray-sessions 6`: the table has a row for
    spawn, ingest, status, orchestrator CPU and RSS, memory, failures and sessions per
    node, with local, ray and ray/local columns; 0 failures on both runtimes; the Ray
    sessions are spread over the 3 worker nodes; nothing of the run is left behind, and the
    README's figures (the targets of the last full run) are left as they were."""
    out = tmp_path / "pa.json"
    readme = (ROOT / "README.md").read_bytes()
    env = {**os.environ, "PA_BENCH_TMP": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()
    p = subprocess.run(
        [sys.executable, "-m", "bench", "--only", "ray", "--ray-sessions", "6",
         "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    assert (ROOT / "README.md").read_bytes() == readme
    assert "README.md figures block left as it was" in p.stdout
    res = json.loads(out.read_text())["ray"]
    assert res["local"]["failures"] == 0, res["local"]["failure_messages"]
    assert res["ray"]["failures"] == 0, res["ray"]["failure_messages"]
    assert res["local"]["sessions"] == res["ray"]["sessions"] == 6
    workers = res["worker_nodes"]
    assert len(workers) == 3
    per_node = res["ray"]["nodes"]
    assert set(per_node) == set(workers), per_node  # every session on a worker, all 3 used
    assert sum(per_node.values()) == 6
    for key in ("spawn_median", "ingest_lines_per_s", "pa_ls", "cpu_s", "rss_mb"):
        assert res["ratios"][key] is not None, key
    lines = p.stdout.splitlines()
    start = lines.index("| 6 sessions | local | ray (3 nodes) | ray / local |")
    table = []
    for ln in lines[start:]:
        if not ln.startswith("|"):
            break
        table.append(ln)
    labels = [ln.split(" | ")[0].removeprefix("| ") for ln in table[2:]]
    for label, _, _ in bench_ray.ROWS:
        assert label in labels, label
    assert "| failures | 0 | 0 | - |" in table
    node_row = next(ln for ln in table if ln.startswith("| sessions per node"))
    assert node_row.split(" | ")[2] == " / ".join(str(per_node[w]) for w in workers)
    # Its temporary folder (homes, worktrees, the nodes' folders) is gone.
    assert list((tmp_path / "tmp").iterdir()) == []

