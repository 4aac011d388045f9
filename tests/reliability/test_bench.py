"""The benchmark runner: its README block rewrite, and a tiny end-to-end run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bench import run as bench_run
from bench import synth, targets
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
    # issue 14 §7: the summary names every target; what this run skipped is "not measured"
    summary = p.stdout[p.stdout.index("### Targets") :]
    for t in targets.TARGETS:
        assert f"| {t.key}. {t.name} |" in summary, t.key
    assert "Verdict: " in summary
    got = {r["target"]: r["status"] for r in json.loads(out.read_text())["targets"]}
    assert got.keys() == {t.key for t in targets.TARGETS}
    for key in ("3", "5a", "5b", "6a", "6b", "6c", "6d"):  # not run with this --only
        assert got[key] == targets.MISSING, key
    assert got["1"] != targets.MISSING and got["4"] != targets.MISSING
    res = json.loads(out.read_text())
    assert all(r["failures"] == 0 for r in res["spawn"]["rows"] + res["pool"]["rows"])
    assert res["pool"]["rows"][-1]["worktrees_from_pool"] == 3
    single = res["pool"]["single_inprocess"]
    assert single["failures"] == 0 and single["ratio"] is not None
    assert "Warm-pool acceptance" in p.stdout


def _all_met() -> dict[str, Any]:
    """Results of a full run in which every target of issue 14 is met."""
    return {
        "full": True,
        "when": "2026-12-03 14:00",
        "spawn": {
            "by_size": [
                {"files": f, "pa_s": 0.11 * f / 2000, "git_s": 0.1 * f / 2000, "reps": 5}
                for f in (2_000, 5_000, 20_000)
            ]
        },
        "pool": {"default": {"enabled": True, "held": 2, "bytes": 8e7, "budget_bytes": 1e9}},
        "server": {"latency": [{"sessions": 1, "p95_ms": 40.0}, {"sessions": 100, "p95_ms": 200.0}]},
        "diff": {"files": 20_000, "files_changed": 10, "pa_diff_s": {"median": 0.06},
                 "git_diff_s": {"median": 0.045}},
        "storage": {
            "output_bytes": 2e8,
            "stored_bytes": 2.1e8,
            "cap": {"limit_bytes": 5e7, "written_bytes": 2e8, "stored_bytes": 5.1e7,
                    "cut_reported": True},
        },
        "scale": {
            "sessions": 1000,
            "running": 100,
            "server_rss_mb": 250,
            "pa_ls_s": {"median": 0.2},
            "dashboard": {"sessions": 1000, "first_render_ms": {"median": 800},
                          "event_to_shown_ms": {"median": 150, "p95": 250}},
        },
    }


def test_targets_pass_fail_and_not_measured() -> None:
    """issue 14 §7: each target reads its figure from the results and is judged against the
    issue's limit; a missing figure is "not measured", never a pass."""
    res = _all_met()
    rows = targets.evaluate(res)
    assert {r["status"] for r in rows} == {targets.PASS}, rows
    assert len([r for r in rows if r["target"] == "1"]) == 3  # one row per repo size
    assert targets.verdict(rows, full=True) == "Verdict: all targets met."

    res["diff"]["pa_diff_s"]["median"] = 0.0693  # 1.54×: a rounded ratio of 1.5 would pass
    res["diff"]["ratio"] = 1.5
    res["spawn"]["by_size"].pop(1)  # 5,000 files not run
    del res["storage"]  # bench/storage.py absent, or skipped with --only
    del res["scale"]["dashboard"]  # the dashboard bench's own run, at 100 sessions
    res["dashboard"] = {"sessions": 100, "first_render_ms": {"median": 300},
                        "event_to_shown_ms": {"median": 100, "p95": 200}}
    rows = targets.evaluate(res)
    status = {(r["target"], r["where"].split(",")[0]): r["status"] for r in rows}
    assert status[("4", "10 files changed of 20")] == targets.FAIL
    assert status[("1", "5")] == targets.MISSING
    assert status[("5a", "agent output")] == targets.MISSING
    assert status[("6c", "100 sessions")] == targets.MISSING  # a full run needs 1,000
    line = targets.verdict(rows, full=True)
    assert "not met: 4 `pa diff` vs `git diff` 1.54×" in line
    assert "not measured: 1, 5a, 5b, 6c, 6d" in line

    res["full"] = False  # a small run is judged at the sizes it ran
    rows = targets.evaluate(res)
    assert not [r for r in rows if r["target"] == "1" and r["status"] != targets.PASS]
    assert {r["status"] for r in rows if r["target"] == "6c"} == {targets.PASS}
    res["server"]["latency"][-1].update(observed=97)  # 3 statuses never arrived
    rows = targets.evaluate(res)
    (status_row,) = [r for r in rows if r["target"] == "3"]
    assert status_row["status"] == targets.FAIL and "97 of 100" in status_row["figure"]
    table = targets.summary_table(rows)
    assert table.count("\n") == len(rows) + 1 and "not measured" in table


def test_readme_block_has_date_load_summary_and_verdict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """issue 14 §7: the README block says when, on what machine at what load, and the verdict."""
    res = _all_met()
    res.update(
        machine={"load": 1.5, "cores": 2, "ram_gb": 4.0, "cpu": "cpu", "os": "Linux",
                 "python": "3.11", "git": "2.39"},
        load_max=3.9,
        agent_source="synthetic",
    )
    readme = tmp_path / "README.md"
    readme.write_text("a\n<!-- bench:start -->\nold\n<!-- bench:end -->\nb\n")
    monkeypatch.setattr(bench_run, "README", readme)
    bench_run.update_readme(bench_run.markdown(res))
    text = readme.read_text()
    assert "2026-12-03 14:00" in text and "load average 1.5 at the start, up to 3.9" in text
    assert "Verdict: all targets met." in text and "old" not in text
    assert text.index("### Targets") < text.index("### Every figure")


def test_other_benches_results_are_read_only_from_this_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """issue 14 §7: bench_server's and bench_dashboard's JSON reach the targets, and a file
    left by an earlier run is never read as this run's figure."""
    here, results = tmp_path / "bench", tmp_path / "results"
    here.mkdir()
    results.mkdir()
    (here / "bench_good.py").write_text(
        "import json, sys\n"
        "out = sys.argv[sys.argv.index('--out') + 1]\n"
        "open(out, 'w').write(json.dumps({'latency': [{'sessions': 100, 'p95_ms': 9.0}]}))\n"
        "print('| measure | value |')\n"
    )
    (here / "bench_broken.py").write_text("raise SystemExit(3)\n")
    (results / "broken.json").write_text('{"stale": true}')
    monkeypatch.setattr(bench_run, "OTHERS", ("bench_good.py", "bench_broken.py"))
    monkeypatch.setattr(bench_run.common, "HERE", here)
    monkeypatch.setattr(bench_run.common, "RESULTS", results)
    res: dict[str, Any] = {}
    bench_run.run_others(bench_run.parse(["--only", "others"]), res)
    assert res["good"] == {"latency": [{"sessions": 100, "p95_ms": 9.0}]}
    good, broken = res["others"]["bench_good.py"], res["others"]["bench_broken.py"]
    assert good["ok"] and good["table"] == ["| measure | value |"]
    assert "broken" not in res and not broken["ok"]
    assert not (results / "broken.json").exists()


def test_a_bench_module_not_written_yet_is_skipped(tmp_path: Path) -> None:
    """issue 14 §7: `--only storage,scale` before bench/storage.py exists runs, and leaves
    the section out of the results (its targets read "not measured")."""
    res: dict[str, Any] = {}
    a = bench_run.parse(["--only", "storage"])
    bench_run.run_module("not_written_yet", tmp_path, tmp_path, a, res)
    assert res == {}
