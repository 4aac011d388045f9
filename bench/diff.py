"""`pa diff` of a session that changed 10 files, against plain `git diff` of the same change."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.common import Home, agent_cmd, stats, wait_for


def run(home: Home, repo: Path, reps: int = 5, files: int = 10) -> dict[str, Any]:
    home.write_settings("[limits]\nmax_running = 0\n")
    if not (home.home / "pa.db").exists():
        home.pa("repo", "add", str(repo), "--name", "bench")
    p = home.pa(
        "new",
        "change files",
        "--repo",
        "bench",
        "--json",
        "--cmd",
        agent_cmd("--touch", str(files), "--lines", "5"),
    )
    s = json.loads(p.stdout)
    home.pa("wait", "--timeout", "300", s["id"])
    wt = Path(s["worktree"])
    base = s["base_commit"]
    names = home.pa("diff", s["id"], "--name-only").stdout.split()
    if len(names) != files:
        raise RuntimeError(f"expected {files} changed files, pa diff lists {len(names)}")

    def timed(argv: list[str], cwd: Path | None = None) -> list[float]:
        out = []
        for _ in range(reps):
            t0 = time.perf_counter()
            r = subprocess.run(argv, cwd=cwd, capture_output=True, env=home.env())
            out.append(time.perf_counter() - t0)
            if r.returncode != 0:
                raise RuntimeError(r.stderr.decode(errors="replace"))
        return out

    ours = timed(home.pa_argv("diff", s["id"]))
    ours_stat = timed(home.pa_argv("diff", s["id"], "--stat"))
    raw = timed(["git", "diff", base], cwd=wt)
    return {
        "files_changed": files,
        "pa_diff_s": stats(ours),
        "pa_diff_stat_s": stats(ours_stat),
        "git_diff_s": stats(raw),
        "ratio": round(stats(ours)["median"] / stats(raw)["median"], 1),
    }


def wait_exit(home: Home, sid: str) -> None:
    f = home.turn_file(sid, "exit")
    wait_for(f.exists, 120, "the agent to exit")
