"""The benchmark runner: its README block rewrite, and a tiny end-to-end run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from bench import run as bench_run
from bench import synth
from bench.fake_agent import source_lines

from tests.reliability.helpers import git

ROOT = Path(__file__).resolve().parents[2]


def test_readme_block_is_the_only_thing_rewritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = tmp_path / "README.md"
    monkeypatch.setattr(bench_run, "README", readme)
    assert "not found" in bench_run.update_readme("x")
    readme.write_text("# Title\n\nno block here\n")
    assert "no <!-- bench:start -->" in bench_run.update_readme("| a |")
    assert readme.read_text() == "# Title\n\nno block here\n"
    readme.write_text(
        "# T\n\nintro\n<!-- bench:start -->\nold\nfigures\n<!-- bench:end -->\ntail\n"
    )
    assert "updated" in bench_run.update_readme("| new | table |")
    assert readme.read_text() == (
        "# T\n\nintro\n<!-- bench:start -->\n| new | table |\n<!-- bench:end -->\ntail\n"
    )
    bench_run.update_readme("second")  # idempotent: the block is replaced, not appended
    assert readme.read_text().count("<!-- bench:start -->") == 1
    assert "second" in readme.read_text() and "new | table" not in readme.read_text()


def test_synthetic_repo_is_nested_and_realistic(tmp_path: Path) -> None:
    repo = synth.make_repo(tmp_path / "r", 600)
    files = git(repo, "ls-files").split()
    assert len(files) == 600
    assert max(f.count("/") for f in files) >= 2
    sizes = [(repo / f).stat().st_size for f in files]
    assert min(sizes) >= 40 and max(sizes) > 4_000
    assert git(repo, "status", "--porcelain") == ""
    again = synth.make_repo(tmp_path / "r2", 600)
    assert git(again, "rev-parse", "HEAD:") == git(repo, "rev-parse", "HEAD:")  # deterministic


def test_fake_agent_replays_captures_or_synthetic_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines, where = source_lines()
    assert lines and all(json.loads(ln) is not None for ln in lines[:20]), where
    p = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fake_agent.py"), "--lines", "7"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PA_CAPTURES": str(tmp_path / "none")},
    )
    assert len(p.stdout.splitlines()) == 7
    assert all(json.loads(ln)["type"] for ln in p.stdout.splitlines())


def test_bench_runs_end_to_end(tmp_path: Path) -> None:
    """The bench command on this clone, at a tiny size (about 20 s): it prints the table
    and nothing fails."""
    out = tmp_path / "pa.json"
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--files",
            "300",
            "--big-files",
            "400",
            "--counts",
            "1,3",
            "--pool-counts",
            "1,3",
            "--reps",
            "2",
            "--memory-sessions",
            "2",
            "--only",
            "spawn,pool,diff,memory",
            "--no-readme",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert "| benchmark | repo | pa |" in p.stdout
    res = json.loads(out.read_text())
    assert all(r["failures"] == 0 for r in res["spawn"]["rows"] + res["pool"]["rows"])
    assert res["pool"]["rows"][-1]["worktrees_from_pool"] == 3
    single = res["pool"]["single_inprocess"]
    assert single["failures"] == 0 and single["ratio"] is not None
    assert "Warm-pool acceptance" in p.stdout
