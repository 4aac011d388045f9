"""Issue 15 §1: plans run by the server's driver on command agents and real git: tasks
start when their dependencies are merged (or done), on a base that holds them; a person's
`pa merge` is noticed; auto_merge merges through the merge queue only when the check
passes and the merge is clean, else the task waits and says why; a failed task skips what
depends on it; stop and resume."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import git
from tests.server.conftest import Srv, kill_agents, repo_path, start_server, wait_for

__all__ = ["repo_path", "start_server"]  # fixtures, used by name

PY = sys.executable

# The command agent of these plans: checks that the files of its dependencies are in its
# worktree (so its base holds their work), optionally waits at a gate (a FIFO the test
# opens), then writes its own file. Turn 2 (a follow-up after a stop) skips the gate.
AGENT = """\
import os, sys
me, needs, gate = sys.argv[1], sys.argv[2], sys.argv[3]
missing = [n for n in needs.split(",") if n and not os.path.exists(n)]
if missing:
    print("missing from my base:", missing, flush=True)
    sys.exit(3)
if gate != "-" and os.environ.get("PA_TURN") == "1":
    print("at the gate", flush=True)
    with open(gate) as f:
        f.read()
if me.startswith("fail"):
    sys.exit(4)
with open(me, "w") as f:
    f.write(me + " was written by " + os.environ.get("PA_PROMPT", "?") + "\\n")
print("wrote", me, flush=True)
"""


def task(
    tid: str,
    tmp: Path,
    *,
    writes: str | None = None,
    needs: tuple[str, ...] = (),
    gate: Path | None = None,
    **extra: Any,
) -> str:
    """One [[tasks]] table whose agent writes ``writes`` (default ``<id>.txt``)."""
    script = tmp / "agent.py"
    if not script.exists():
        script.write_text(AGENT)
    cmd = [PY, str(script), writes or f"{tid}.txt", ",".join(needs), str(gate) if gate else "-"]
    lines = ["[[tasks]]", f'id = "{tid}"', f'prompt = "task {tid}"', f"cmd = {_toml(cmd)}"]
    lines += [f"{k} = {_toml(v)}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return str(v)


def plan_toml(name: str, *tasks: str, **defaults: Any) -> str:
    head = f'name = "{name}"\n'
    if defaults:
        head += "[defaults]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in defaults.items())
    return head + "\n".join(tasks)


def gate(tmp: Path, name: str) -> Path:
    p = tmp / f"gate-{name}"
    os.mkfifo(p)
    return p


def open_gate(p: Path) -> None:
    """Let the agent waiting at ``p`` go on (it blocks opening the FIFO until now)."""
    fd = os.open(p, os.O_WRONLY)
    os.close(fd)


def wait_plan(
    srv: Srv, name: str, pred: Callable[[dict[str, Any]], bool], what: str, timeout: float = 90
) -> dict[str, Any]:
    def look() -> dict[str, Any] | None:
        out = srv.client.plan(name)
        return out if pred(out) else None

    def diagnose() -> str:
        out = srv.client.plan(name)
        rows = [f"{t['key']} {t['state']} {t['session']} {t['outcome']}" for t in out["tasks"]]
        return "\n".join([f"plan {out['plan']['state']}", *rows, srv.diagnose()])

    result: dict[str, Any] = wait_for(look, timeout, what, diagnose=diagnose)
    return result


def states(out: dict[str, Any]) -> dict[str, str]:
    return {t["key"]: t["state"] for t in out["tasks"]}


def by_key(out: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["key"]: t for t in out["tasks"]}


def sessions_of(srv: Srv, gid: str) -> dict[str, list[str]]:
    """Every session made for each task of plan ``gid``, from the sessions' own options."""
    out: dict[str, list[str]] = {}
    for s in srv.client.list_sessions(all=True):
        g = (s.get("options") or {}).get("group") or {}
        if g.get("id") == gid:
            out.setdefault(g["key"], []).append(s["id"])
    return out


def files_on(repo: Path, branch: str = "main") -> set[str]:
    return set(git(repo, "ls-tree", "--name-only", branch).split())


def test_merged_dependencies_a_persons_merge_and_the_base(
    start_server: Callable[..., Srv], repo_path: Path, tmp_path: Path
) -> None:
    """issue 15 §1: without auto_merge a done task runs its check and waits for a person;
    `pa merge` of its session is noticed, and only then its dependent starts, on a base
    holding its work."""
    srv = start_server()
    text = plan_toml(
        "manual",
        task("a", tmp_path, check="test -f a.txt"),
        task("b", tmp_path, needs=("a.txt",), depends_on=["a"]),
        repo=str(repo_path),
    )
    out = srv.client.plan_run(text)
    gid = out["plan"]["id"]
    out = wait_plan(srv, "manual", lambda o: states(o)["a"] == "done", "a to be done")
    assert states(out)["b"] == "waiting"
    out = wait_plan(srv, "manual", lambda o: "waiting" in by_key(o)["a"]["outcome"], "a's note")
    a = by_key(out)["a"]
    assert a["merged"] is False and a["session_status"] == "idle"
    assert a["check"]["ok"] is True  # its check runs when its turn ends, auto_merge or not
    assert a["outcome"]["waiting"] == f"waits for your review: pa diff {a['session']}, then pa merge {a['session']}"
    srv.client.merge([a["session"]])  # what `pa merge` does
    out = wait_plan(srv, "manual", lambda o: states(o)["b"] == "done", "b to be done")
    t = by_key(out)
    assert t["a"]["state"] == "merged" and t["a"]["merged_at"] <= t["b"]["started_at"]
    assert files_on(repo_path) == {"README.md", "src", "a.txt"}
    assert out["plan"]["state"] == "running"  # b waits for a person too
    srv.client.merge([t["b"]["session"]])
    out = wait_plan(srv, "manual", lambda o: o["plan"]["state"] == "finished", "the plan to finish")
    assert states(out) == {"a": "merged", "b": "merged"}
    assert {k: len(v) for k, v in sessions_of(srv, gid).items()} == {"a": 1, "b": 1}
    # Cleaning up a merged session does not undo the task's merge.
    srv.client.discard(by_key(out)["a"]["session"])
    srv.client.plan_resume("manual")
    out = wait_plan(srv, "manual", lambda o: o["plan"]["state"] == "finished", "the plan to end")
    assert states(out) == {"a": "merged", "b": "merged"}


def test_after_done_stacks_on_the_unmerged_work(
    start_server: Callable[..., Srv], repo_path: Path, tmp_path: Path
) -> None:
    """issue 15 §1: after = "done" starts a task on its dependencies' own work (two of
    them merged into one base) without waiting for a review; nothing is merged."""
    srv = start_server()
    text = plan_toml(
        "stack",
        task("a", tmp_path),
        task("b", tmp_path),
        task("c", tmp_path, needs=("a.txt", "b.txt"), depends_on=["a", "b"], after="done"),
        repo=str(repo_path),
    )
    srv.client.plan_run(text)
    out = wait_plan(srv, "stack", lambda o: states(o)["c"] in ("done", "failed"), "c to end")
    assert states(out) == {"a": "done", "b": "done", "c": "done"}, out
    assert files_on(repo_path) == {"README.md", "src"}  # nothing merged by itself
    t = by_key(out)
    assert max(t["a"]["ended_at"], t["b"]["ended_at"]) <= t["c"]["started_at"]
    # Merging the stacked task brings its base along; its dependencies then find their
    # work merged already.
    srv.client.merge([t["c"]["session"]], into="main")
    srv.client.merge([t["a"]["session"], t["b"]["session"]])
    out = wait_plan(srv, "stack", lambda o: o["plan"]["state"] == "finished", "the plan to finish")
    assert files_on(repo_path) == {"README.md", "src", "a.txt", "b.txt", "c.txt"}


def test_auto_merge_gates_failures_and_skips(
    start_server: Callable[..., Srv], repo_path: Path, tmp_path: Path
) -> None:
    """issue 15 §1: auto_merge merges a task whose check passes and whose merge is clean;
    a failing check or a conflict with the target leaves it waiting with the reason; a
    failed task skips what depends on it."""
    srv = start_server()
    text = plan_toml(
        "gates",
        task("ok", tmp_path, check="test -f ok.txt"),
        task("badcheck", tmp_path, check="test -f nowhere.txt"),
        task("readme1", tmp_path, writes="README.md"),
        task("readme2", tmp_path, writes="README.md"),
        task("fail", tmp_path, writes="fail.txt"),
        task("after-fail", tmp_path, depends_on=["fail"]),
        repo=str(repo_path),
        auto_merge=True,
    )
    srv.client.plan_run(text)

    def settled(o: dict[str, Any]) -> bool:
        s = states(o)
        readmes = sorted([s["readme1"], s["readme2"]])
        return readmes == ["done", "merged"] and s["badcheck"] == "done" and s["after-fail"] == "skipped"

    out = wait_plan(srv, "gates", settled, "the plan to settle")
    t = by_key(out)
    assert t["ok"]["state"] == "merged" and t["ok"]["check"]["ok"] is True
    assert t["badcheck"]["state"] == "done" and t["badcheck"]["merged"] is False
    assert "its check failed (test -f nowhere.txt: exit 1)" in t["badcheck"]["outcome"]["waiting"]
    assert t["badcheck"]["check"]["ok"] is False
    # Both rewrote README.md, each its own way: the one merged second conflicts.
    [second] = [t[k] for k in ("readme1", "readme2") if t[k]["state"] == "done"]
    assert "it conflicts with main in README.md" in second["outcome"]["waiting"]
    assert second["merged"] is False
    assert t["fail"]["state"] == "failed"
    assert "fail failed" in t["after-fail"]["outcome"]["skipped"]
    assert t["after-fail"]["session"] is None
    assert files_on(repo_path) == {"README.md", "src", "ok.txt"}
    assert out["plan"]["state"] == "running"  # two tasks wait for a person


def test_stop_then_resume(
    start_server: Callable[..., Srv], repo_path: Path, tmp_path: Path
) -> None:
    """issue 15 §1: `pa plan stop` stops the task at work and starts nothing more; `pa
    plan resume` continues it in its own session (no second session) and the plan ends."""
    srv = start_server()
    g = gate(tmp_path, "a")
    text = plan_toml(
        "halt",
        task("a", tmp_path, gate=g),
        task("b", tmp_path, needs=("a.txt",), depends_on=["a"]),
        repo=str(repo_path),
        auto_merge=True,
    )
    gid = srv.client.plan_run(text)["plan"]["id"]
    out = wait_plan(srv, "halt", lambda o: states(o)["a"] == "running", "a to run")
    srv.wait_output(by_key(out)["a"]["session"], "at the gate")
    out = srv.client.plan_stop("halt")
    assert out["stopped"] == ["a"] and out["plan"]["state"] == "stopped"
    out = wait_plan(srv, "halt", lambda o: states(o)["a"] == "stopped", "a to be stopped")
    assert states(out)["b"] == "waiting"
    out = srv.client.plan_resume("halt")
    assert out["continued"] == ["a"] and out["plan"]["state"] == "running"
    out = wait_plan(srv, "halt", lambda o: o["plan"]["state"] == "finished", "the plan to finish")
    assert states(out) == {"a": "merged", "b": "merged"}
    assert {k: len(v) for k, v in sessions_of(srv, gid).items()} == {"a": 1, "b": 1}
    assert files_on(repo_path) == {"README.md", "src", "a.txt", "b.txt"}
    kill_agents(srv.home)
