"""What sits on the path of every session start stays light (the speed figures rely on it).

These check imports, not times: the per-turn wrapper loads nothing but built-in modules,
and `pa new` through a running server loads neither httpx nor the orchestrator's core.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from parallel_agents.runtime import local
from tests.conftest import make_repo, pa


def _imported(argv: list[str], *, cwd: Path | None = None) -> tuple[set[str], str]:
    """Modules a Python command imports (from -X importtime), and its stdout."""
    p = subprocess.run(
        [sys.executable, "-X", "importtime", *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=dict(os.environ),
        timeout=120,
    )
    mods = {
        line.rsplit("|", 1)[1].strip()
        for line in p.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    mods.discard("imported package")  # the header line
    return mods, p.stdout


HEAVY = ("json", "subprocess", "pathlib", "re", "typing", "parallel_agents")


def test_the_wrapper_imports_only_built_in_modules(tmp_path: Path) -> None:
    base, _ = _imported(["-I", "-S", "-c", "pass"])
    # A turn folder without a spec: the wrapper fails after its imports, before any work.
    mods, _ = _imported(["-I", "-S", local.WRAPPER, str(tmp_path)])
    extra = mods - base
    assert "signal" in extra | base, "the importtime output was not read"
    heavy = sorted(m for m in extra if m.split(".")[0] in HEAVY)
    assert heavy == [], f"the wrapper imports {heavy}: every session start pays for them"


@pytest.mark.usefixtures("server_mode")
def test_pa_new_through_the_server_stays_a_thin_client(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "one\n"})
    assert pa("repo", "add", str(repo), "--name", "light").returncode == 0  # starts the server
    mods, out = _imported(
        ["-m", "parallel_agents", "new", "hello", "--repo", "light", "--cmd", "true", "--json"],
        cwd=repo,
    )
    assert json.loads(out)["repo_name"] == "light"
    # issue 19: nor Ray (optional, loaded only by a session on the ray runtime)
    heavies = ("httpx", "parallel_agents.sessions.headless", "parallel_agents.store", "fastapi",
               "ray", "parallel_agents.runtime.ray_runtime")  # fmt: skip
    for heavy in heavies:
        assert heavy not in mods, f"`pa new` imported {heavy}"
