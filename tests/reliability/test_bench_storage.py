"""The storage benchmark runs at a tiny size (its figures are bytes, not times)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_storage_bench_runs_tiny(tmp_path: Path) -> None:
    """issue 14 §5: bench/storage.py reports bytes kept per byte of agent output."""
    out = tmp_path / "storage.json"
    p = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "storage.py"), "--mb", "0.4", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert p.returncode == 0, p.stderr
    assert "| storage |" in p.stdout
    res = json.loads(out.read_text())
    assert [r["case"] for r in res["rows"]] == ["under-cap", "over-cap"]
    for r in res["rows"]:
        assert r["status"] == "idle" and r["output_bytes"] > 0
        assert {"db_ratio", "folder_ratio", "total_ratio"} <= set(r)
