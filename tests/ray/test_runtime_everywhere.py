"""Issue 19: every way of making a session takes the runtime: `pa new --from-branch`,
`pa new --attempts` and MCP's `new_session` tool, each with `--runtime ray` / `runtime`,
run their sessions on a worker node of the package's cluster."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git, make_repo, pa
from tests.ray._leave import discard_all
from tests.ray.test_ray_cluster import _turn_state

WRITE = "sh -c 'echo from-ray > ray.txt'"


@pytest.fixture(autouse=True)
def _leave(cluster: Any, tmp_path: Path) -> Iterator[None]:
    """Each test's sessions give their slots back (tests/ray/_leave.py)."""
    yield
    if (tmp_path / "repo").exists():
        discard_all(tmp_path / "repo", {"PA_RAY_ADDRESS": cluster[0].address})


def _done_on_a_worker(sid: str, repo: Path, env: dict[str, str], workers: set[str]) -> None:
    pa("wait", sid, "--timeout", "120", cwd=repo, env=env, check=True, timeout=180)
    shown = json.loads(pa("show", sid, "--json", cwd=repo, env=env, check=True).stdout)
    assert shown["status"] == "idle", shown
    assert shown["options"]["runtime"] == "ray", shown["options"]
    assert _turn_state(sid)["node"] in workers
    assert (Path(shown["worktree"]) / "ray.txt").read_text() == "from-ray\n"


def test_from_branch_with_runtime_ray_runs_on_a_worker(cluster: Any, tmp_path: Path) -> None:
    """issue 19: `pa new --from-branch B --runtime ray` works on B on a worker node; the
    branch's own commit is there and the node's change comes home."""
    c, workers = cluster
    repo = make_repo(tmp_path / "repo", {"a.txt": "one\n"})
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "f.txt").write_text("feature\n")
    git(repo, "add", "f.txt")
    git(repo, "commit", "-qm", "feature")
    git(repo, "checkout", "-q", "main")
    env = {"PA_RAY_ADDRESS": c.address}
    s = json.loads(pa(
        "new", "go on", "--from-branch", "feature", "--runtime", "ray", "--json",
        "--cmd", "sh -c 'cat f.txt > seen.txt; echo from-ray > ray.txt'",
        cwd=repo, env=env, check=True, timeout=180,
    ).stdout)  # fmt: skip
    assert s["branch"] == "feature"
    _done_on_a_worker(s["id"], repo, env, workers)
    wt = Path(json.loads(pa("show", s["id"], "--json", cwd=repo, env=env).stdout)["worktree"])
    assert (wt / "seen.txt").read_text() == "feature\n"


def test_attempts_with_runtime_ray_run_on_workers(cluster: Any, tmp_path: Path) -> None:
    """issue 19: `pa new --attempts 2 --runtime ray`: both attempts run on worker nodes."""
    c, workers = cluster
    repo = make_repo(tmp_path / "repo", {"a.txt": "one\n"})
    env = {"PA_RAY_ADDRESS": c.address}
    d = json.loads(pa(
        "new", "try", "--attempts", "2", "--runtime", "ray", "--json", "--cmd", WRITE,
        cwd=repo, env=env, check=True, timeout=240,
    ).stdout)  # fmt: skip
    assert len(d["sessions"]) == 2
    for s in d["sessions"]:
        _done_on_a_worker(s["id"], repo, env, workers)


def test_mcp_new_session_takes_a_runtime(cluster: Any, tmp_path: Path) -> None:
    """issue 19: MCP's `new_session` has a `runtime` input; `runtime: "ray"` runs the
    session on a worker node."""
    pytest.importorskip("mcp")
    from tests.mcp._client import ok, run, stdio

    c, workers = cluster
    repo = make_repo(tmp_path / "repo", {"a.txt": "one\n"})
    env = {"PA_RAY_ADDRESS": c.address}
    home = Path(os.environ["PA_HOME"])

    async def go() -> str:
        async with stdio(home, repo, env) as s:
            listed = {t.name: t for t in (await s.list_tools()).tools}
            prop = listed["new_session"].inputSchema["properties"]["runtime"]
            assert "ray" in json.dumps(prop)
            out = await ok(s, "new_session", {
                "prompt": "on ray", "agent": "command", "runtime": "ray",
                "cmd": ["sh", "-c", "echo from-ray > ray.txt"],
            })  # fmt: skip
            return str(out["sessions"][0]["id"])

    sid = run(go)
    _done_on_a_worker(sid, repo, env, workers)


def test_a_plan_task_with_runtime_ray_runs_on_a_worker(cluster: Any, tmp_path: Path) -> None:
    """issue 19: a plan's `runtime = "ray"` (here in its defaults) runs its tasks on a
    worker node; an unknown runtime is refused with the plan's other problems."""
    c, workers = cluster
    repo = make_repo(tmp_path / "repo", {"a.txt": "one\n"})
    env = {"PA_RAY_ADDRESS": c.address}
    bad = tmp_path / "bad.toml"
    bad.write_text('[[tasks]]\nid = "a"\nprompt = "x"\ncmd = "true"\nruntime = "moon"\n')
    p = pa("plan", "run", str(bad), cwd=repo, env=env)
    assert p.returncode != 0 and "runtime must be" in p.stderr, p.stderr
    f = tmp_path / "plan.toml"
    f.write_text(
        'name = "onray"\n[defaults]\nruntime = "ray"\n'
        f'[[tasks]]\nid = "a"\nprompt = "write it"\ncmd = {json.dumps(WRITE)}\n'
    )
    pa("plan", "run", str(f), cwd=repo, env=env, check=True, timeout=180)
    [task] = json.loads(pa("plan", "show", "onray", "--json", cwd=repo, env=env,
                           check=True).stdout)["tasks"]  # fmt: skip
    _done_on_a_worker(task["session"], repo, env, workers)
