"""Issue 19: README "More than one machine", tried word for word against the package's
local multi-node cluster. Its shell block's `pa` lines run verbatim through bash, with
HEAD the test cluster's address and the block's own `export` lines before them; the
`ray start` lines are what the cluster fixture does (never run here: `ray stop` would end
every Ray process on the machine) and `pip install` is not run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from parallel_agents.server import daemon
from tests.conftest import make_repo, pa
from tests.ray._leave import discard_all
from tests.ray.test_ray_cluster import _turn_state

README = Path(__file__).resolve().parents[2] / "README.md"


def _block() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## More than one machine\n", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"```sh\n(.*?)```", section, flags=re.S)
    assert found, "no sh block in README's More than one machine"
    return [line for line in found.group(1).splitlines() if line.strip()]


def test_the_readme_block_says_what_the_cluster_fixture_does() -> None:
    """issue 19: the block's `ray start` lines are a head without slots and workers that
    declare `pa_agent` slots at $HEAD, as tests/ray/conftest.py's cluster is."""
    lines = _block()
    ray_lines = [line for line in lines if line.startswith("ray start")]
    head = [line for line in ray_lines if "--head" in line]
    workers = [line for line in ray_lines if "--head" not in line]
    assert len(head) == 1 and '{"pa_agent": 0}' in head[0]
    assert len(workers) == 1 and "--address $HEAD" in workers[0]
    assert re.search(r'\{"pa_agent": [1-9]\d*\}', workers[0])
    assert any(line.startswith("export HEAD=") for line in lines)
    assert any(line.startswith("pip install 'parallel-agents[ray]'") for line in lines)


def test_the_readme_pa_lines_run_word_for_word(
    cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """issue 19: every `pa` line of the block runs as written: each `pa new` makes a
    session that ends idle on a worker node with its file home; `pa server start
    --runtime ray --ray-address $HEAD` starts a server whose sessions (made with no
    --runtime) run on Ray."""
    c, workers = cluster
    lines = _block()
    exports = [line.split("#", 1)[0].strip() for line in lines
               if line.startswith("export ") and not line.startswith("export HEAD=")]  # fmt: skip
    pa_lines = [line for line in lines if line.startswith("pa ")]
    assert any(line.startswith("pa new") for line in pa_lines)
    assert any(line.startswith("pa server start") for line in pa_lines)
    repo = make_repo(tmp_path / "repo", {"a.txt": "one\n"})
    env = dict(os.environ, HEAD=c.address)
    env.pop("PA_RAY_ADDRESS", None)
    # `pa` in the block is this checkout's pa, first on PATH.
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "pa").write_text(f'#!/bin/sh\nexec {sys.executable} -m parallel_agents "$@"\n')
    (shim / "pa").chmod(0o755)
    env["PATH"] = f"{shim}:{env['PATH']}"
    home = Path(os.environ["PA_HOME"])
    try:
        for line in pa_lines:
            before = _ids(repo)
            script = "\n".join([*exports, line])
            p = subprocess.run(["bash", "-c", script], cwd=repo, env=env, text=True,
                               capture_output=True, timeout=240)  # fmt: skip
            assert p.returncode == 0, (line, p.stdout, p.stderr)
            if line.startswith("pa server start"):
                info = daemon.read_info(home)
                assert info is not None, line
            if line.startswith("pa new"):
                [sid] = _ids(repo) - before
                pa("wait", sid, "--timeout", "150", cwd=repo, check=True, timeout=200)
                shown = json.loads(pa("show", sid, "--json", cwd=repo, check=True).stdout)
                assert shown["status"] == "idle", (line, shown)
                assert shown["options"]["runtime"] == "ray", (line, shown["options"])
                assert _turn_state(sid)["node"] in workers, line
                assert (Path(shown["worktree"]) / "where.txt").read_text().strip(), line
    finally:
        discard_all(repo)
        pa("server", "stop", timeout=60)


def _ids(repo: Path) -> set[str]:
    out = pa("ls", "--all", "--json", cwd=repo, check=True).stdout
    return {s["id"] for s in json.loads(out)}
