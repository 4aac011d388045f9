"""issue 17: `pa routine` through the real CLI (in-process transport)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import pa


def test_routine_commands(repo: Path) -> None:
    """issue 17: add (bad input refused with error + hint, nothing stored), ls, show,
    pause, resume, run now, history, rm, all with --json."""
    bad = [
        ["--cron", "61 * * * *"],
        ["--cron", "0 7 * * *", "--tz", "Nowhere/City"],
        ["--every", "5s"],
        ["--every", "1h", "--agent", "no-such-agent"],
        ["--every", "1h", "--repo", "nope"],
    ]
    for args in bad:
        p = pa("routine", "add", "n", "--prompt", "x", "--cmd", "true", *args, cwd=repo)
        assert p.returncode != 0 and "error:" in p.stderr and "hint:" in p.stderr, p.stderr
    p = pa("routine", "add", "n", "--prompt", "x {nope}", "--cmd", "true", "--every", "1h",
           cwd=repo)
    assert p.returncode != 0 and "placeholder" in p.stderr
    assert json.loads(pa("routine", "ls", "--json", check=True).stdout) == []
    out = json.loads(pa("routine", "add", "n", "--prompt", "on {branch}", "--cmd", "true",
                        "--every", "1h", "--json", cwd=repo, check=True).stdout)
    assert out["triggers"] == ["every 1h"] and out["next_due"]
    p = pa("routine", "add", "n", "--prompt", "x", "--cmd", "true", "--every", "1h", cwd=repo)
    assert p.returncode != 0 and "exists already" in p.stderr
    assert json.loads(pa("routine", "pause", "n", "--json", check=True).stdout)["paused"]
    assert not json.loads(pa("routine", "resume", "n", "--json", check=True).stdout)["paused"]
    run = json.loads(pa("routine", "run", "n", "--json", check=True).stdout)
    assert run["state"] == "started" and run["run"] == 1
    shown = json.loads(pa("show", run["session"], "--json", check=True).stdout)
    assert shown["options"]["routine"] == {"name": "n", "run": 1}
    hist = json.loads(pa("routine", "history", "n", "--json", check=True).stdout)
    assert [h["run"] for h in hist] == [1]
    assert "every 1h" in pa("routine", "ls", check=True).stdout
    pa("routine", "rm", "n", check=True)
    assert json.loads(pa("routine", "ls", "--json", check=True).stdout) == []
