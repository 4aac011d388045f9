"""Issue 15 §1: tasks the conflict forecast predicts will collide are flagged before they
start, and before the merge queue refuses them: two tasks of a plan that edit the same
file without conflicts_with between them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from parallel_agents.sessions.plan_forecast import prompt_paths
from tests.conftest import pa
from tests.orchestration.test_plan_server import gate, open_gate, plan_toml, task


def _show(name: str) -> dict[str, Any]:
    p = pa("plan", "show", name, "--json")
    assert p.returncode == 0, p.stderr
    out: dict[str, Any] = json.loads(p.stdout)
    return out


def _wait(name: str, pred: Callable[[dict[str, str]], bool], what: str) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while True:
        out = _show(name)
        if pred({t["key"]: t["state"] for t in out["tasks"]}):
            return out
        assert time.monotonic() < deadline, f"waited for {what}: {out}"


def test_two_tasks_editing_one_file_are_flagged(repo: Path, tmp_path: Path) -> None:
    """issue 15 §1: a writes shared.txt; b (after c, which waits at a gate) names
    shared.txt in its prompt and writes it too, with no conflicts_with between them. When
    b starts it is flagged (a changed a path its prompt names); when its turn ends the
    forecast flags the pair a/b on both, in `pa plan show` and --json; c, which touches
    nothing of theirs, is not flagged. Then the merge queue refuses b after a, as
    forecast."""
    gc = gate(tmp_path, "c")
    b = task("b", tmp_path, writes="shared.txt", depends_on=["c"], after="done").replace(
        'prompt = "task b"', 'prompt = "put your line in shared.txt, please"'
    )
    f = tmp_path / "p.toml"
    f.write_text(
        plan_toml(
            "fc",
            task("a", tmp_path, writes="shared.txt"),
            task("c", tmp_path, gate=gc),
            b,
            repo=str(repo),
        )
    )
    p = pa("plan", "run", str(f))
    assert p.returncode == 0, p.stderr
    _wait("fc", lambda s: s["a"] == "done" and s["c"] == "running", "a done, c at its gate")
    open_gate(gc)
    out = _wait("fc", lambda s: s["b"] == "done", "b done")
    t = {x["key"]: x for x in out["tasks"]}
    start = t["b"]["outcome"]["forecast_start"]
    assert start["tasks"] == [{"with": "a", "session": t["a"]["session"], "paths": ["shared.txt"]}]
    for me, other in (("a", "b"), ("b", "a")):
        [flag] = t[me]["outcome"]["forecast"]["flags"]
        assert (flag["task"], flag["session"], flag["paths"]) == (
            other, t[other]["session"], ["shared.txt"]
        ), t[me]
        assert f"collides with task {other} in shared.txt" in t[me]["forecast"]
    assert "forecast" not in t["c"]["outcome"] and t["c"]["forecast"] is None
    assert t["b"]["forecast"].startswith("flagged before it started: started while a (done, ")

    p = pa("plan", "show", "fc")
    assert p.returncode == 0, p.stderr
    assert "forecast: collides with task b in shared.txt" in " ".join(p.stdout.split())

    assert pa("merge", t["a"]["session"]).returncode == 0
    p = pa("merge", t["b"]["session"], "--into", "main")
    assert p.returncode != 0 and "shared.txt" in p.stdout + p.stderr, p


def test_with_auto_merge_the_second_is_flagged_before_it_is_refused(
    repo: Path, tmp_path: Path
) -> None:
    """issue 15 §1: with auto_merge, a (which writes shared.txt) is merged while b (which
    writes it too) waits at a gate; when b's turn ends the forecast flags it (it no longer
    merges cleanly into main, where task a merged shared.txt) in the same pass that then
    gives it to the merge queue, which refuses it: both said in pa plan show."""
    gb = gate(tmp_path, "b")
    f = tmp_path / "p.toml"
    f.write_text(
        plan_toml(
            "auto",
            task("a", tmp_path, writes="shared.txt"),
            task("b", tmp_path, writes="shared.txt", gate=gb),
            repo=str(repo),
            auto_merge=True,
        )
    )
    assert pa("plan", "run", str(f)).returncode == 0
    _wait("auto", lambda s: s["a"] == "merged" and s["b"] == "running", "a merged, b at work")
    open_gate(gb)
    out = _wait("auto", lambda s: s["b"] == "done", "b's turn ended")
    b = {x["key"]: x for x in out["tasks"]}["b"]
    [flag] = b["outcome"]["forecast"]["flags"]
    assert flag == {"with": "main", "base": True, "paths": ["shared.txt"], "tasks": ["a"]}
    assert b["forecast"] == (
        "forecast: no longer merges cleanly into main in shared.txt (merged there by task a)"
    )
    assert b["outcome"]["waiting"].startswith("not merged: it conflicts with main in shared.txt")


def test_a_conflicts_with_pair_is_not_flagged(repo: Path, tmp_path: Path) -> None:
    """issue 15 §1: a pair the plan already keeps apart (conflicts_with) is not flagged:
    the person said so already."""
    f = tmp_path / "p.toml"
    f.write_text(
        plan_toml(
            "apart",
            task("a", tmp_path, writes="shared.txt", conflicts_with=["b"]),
            task("b", tmp_path, writes="shared.txt"),
            repo=str(repo),
        )
    )
    assert pa("plan", "run", str(f)).returncode == 0
    out = _wait("apart", lambda s: s["a"] == s["b"] == "done", "both done")
    assert [t["forecast"] for t in out["tasks"]] == [None, None], out


def test_paths_a_prompt_names() -> None:
    """issue 15 §1: the words of a prompt taken for paths."""
    assert {"src/app.py", "shared.txt", "docs/"} <= prompt_paths(
        "Fix src/app.py and shared.txt. See docs/, then ./x.md"
    )
    assert "x.md" in prompt_paths("then ./x.md")
    assert prompt_paths("no paths here, v2") == set()
