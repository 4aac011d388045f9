"""Issue 15 §1: `pa plan` without a server (the in-process transport): a bad plan is
refused whole with `error:` and `hint:` naming the task and nothing is recorded; a good
one runs to the end as `pa plan show` is asked (the routes drive it when no loop does)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git, pa
from tests.orchestration.test_plan_server import plan_toml, task


def _plans() -> list[dict[str, Any]]:
    p = pa("plan", "ls", "--json")
    assert p.returncode == 0, p.stderr
    out: list[dict[str, Any]] = json.loads(p.stdout)
    return out


def test_a_bad_plan_is_refused_whole(repo: Path, tmp_path: Path) -> None:
    """issue 15 §1: problems in the file, or in what its tasks need to start (a base that
    is no branch, a missing program), are all named with their task; nothing starts."""
    bad = tmp_path / "bad.toml"
    bad.write_text(
        plan_toml(
            "bad",
            task("a", tmp_path, depends_on=["b"]),
            task("b", tmp_path, depends_on=["a"], after="soon"),
            task("c", tmp_path, depends_on=["zz"]),
            repo=str(repo),
        )
    )
    p = pa("plan", "run", str(bad))
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.startswith(f"error: {bad} is not a valid plan (3 problems):")
    assert "task 'b': after must be \"merged\" or \"done\", not 'soon'" in p.stderr
    assert "task 'c': depends_on names 'zz', which is no task of this plan" in p.stderr
    assert "task 'a': its dependencies form a cycle: a -> b -> a" in p.stderr
    assert "hint: the plan format: docs/plan.schema.json" in p.stderr

    cant = tmp_path / "cant.toml"
    cant.write_text(
        plan_toml(
            "cant",
            task("ok", tmp_path),
            task("tag", tmp_path, base="v1"),
            '[[tasks]]\nid = "noprog"\nprompt = "x"\ncmd = ["no-such-program-pa"]\n',
            repo=str(repo),
        )
    )
    git(repo, "tag", "v1")
    p = pa("plan", "run", str(cant))
    assert p.returncode == 2, p.stderr
    assert "task 'tag': base 'v1' is not a branch of repo" in p.stderr
    assert "task 'noprog': the program 'no-such-program-pa' of its cmd was not found" in p.stderr
    assert "task 'ok'" not in p.stderr
    assert _plans() == []
    p = pa("ls", "--all", "--json")
    assert json.loads(p.stdout) == []

    p = pa("plan", "show", "nosuch")
    assert p.returncode == 2 and "error: no group 'nosuch'" in p.stderr
    p = pa("plan", "run", "-", "--name", "bad name", input='[[tasks]]\nid = "a"\nprompt = ""\n')
    assert p.returncode == 2
    assert "error: the plan on stdin is not a valid plan (2 problems):" in p.stderr
    p = pa("plan", "run", str(tmp_path / "missing.toml"))
    assert p.returncode == 2 and "cannot read the plan" in p.stderr


def test_a_plan_runs_in_process(repo: Path, tmp_path: Path) -> None:
    """issue 15 §1: with no server, `pa plan show` moves the plan on: b starts once a is
    merged, on a base holding a's file; the plan finishes with both merged."""
    f = tmp_path / "p.toml"
    f.write_text(
        plan_toml(
            "local",
            task("a", tmp_path),
            task("b", tmp_path, needs=("a.txt",), depends_on=["a"]),
            auto_merge=True,
        )
    )
    p = pa("plan", "run", str(f), cwd=repo)  # no repo in the file: the one around cwd
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("plan local (")
    assert "follow it: pa plan show local" in p.stdout
    deadline = time.monotonic() + 90
    while True:
        out = json.loads(pa("plan", "show", "local", "--json").stdout)
        if out["plan"]["state"] == "finished" or time.monotonic() > deadline:
            break
    assert {t["key"]: t["state"] for t in out["tasks"]} == {"a": "merged", "b": "merged"}, out
    a, b = out["tasks"]
    assert a["merged_at"] <= b["started_at"]
    for t in (a, b):  # the sidebar lists a plan's sessions under the plan's heading
        shown = json.loads(pa("show", t["session"], "--json").stdout)
        want = {"id": out["plan"]["id"], "key": t["key"], "kind": "plan", "name": "local"}
        assert shown["options"]["group"] == want
    assert set(git(repo, "ls-tree", "--name-only", "main").split()) == {
        "README.md", "src", "a.txt", "b.txt",
    }
    [row] = _plans()
    assert (row["name"], row["state"], row["tasks"], row["counts"]) == (
        "local", "finished", 2, {"merged": 2},
    )


def test_the_tables_draw_on_a_terminal(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """issue 15 §1: on a terminal `pa plan show` and `pa plan ls` draw coloured tables for
    every task state (an uncoloured state once broke rich's markup)."""
    from click.testing import CliRunner

    from parallel_agents.cli import _output, main

    f = tmp_path / "p.toml"
    f.write_text(plan_toml("tty", task("a", tmp_path), task("b", tmp_path, depends_on=["a"])))
    assert pa("plan", "run", str(f), cwd=repo).returncode == 0
    monkeypatch.setattr(_output, "tty", lambda: True)
    runner = CliRunner()
    for args in (["plan", "show", "tty"], ["plan", "ls"]):
        res = runner.invoke(main, args, prog_name="pa", terminal_width=120)
        assert res.exit_code == 0, (res.output, res.exception)
        assert "TASK" in res.output or "PLAN" in res.output
    assert "waiting" in runner.invoke(main, ["plan", "show", "tty"], prog_name="pa").output
