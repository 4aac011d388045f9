"""issue 14 §6: bench/scale.py runs end to end at a tiny size (real pa sessions through
the API, fake agents) and reports every figure with its same-run baseline. No timing is
asserted: the figures are the bench's business."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_scale_bench_runs_tiny(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    p = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "scale.py"),
            "--sessions",
            "5",
            "--running",
            "2",
            "--files",
            "30",
            "--reps",
            "1",
            "--renders",
            "1",
            "--samples",
            "2",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["sessions"] == 5 and res["running"] == 2
    for key in ("rss_mb", "rss_empty_mb", "pa_db_mb", "ls_server", "ls_in_process", "query_plans"):
        assert key in res, key
    for ls in (res["ls_server"], res["ls_in_process"]):
        assert {"pa ls", "git branch --list", "raw select", "pa --version"} <= set(ls)
    assert res["verdicts"]["no_full_scans"] is True, res["query_plans"]
    assert "| server RSS" in p.stdout and "`pa ls` via the server" in p.stdout
