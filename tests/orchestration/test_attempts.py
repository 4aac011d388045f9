"""Issue 15 §2: best-of-N attempts. `pa new PROMPT --attempts N` starts N sessions on one
base as one group, `pa compare` lays them side by side, `pa pick` merges the winner and
discards (archives) the rest.

Real git, the real `pa` CLI (in-process transport) and `command` agents.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from parallel_agents.store import Store
from tests.conftest import git, make_repo, pa

PY = sys.executable
# Each attempt writes its own answer (its worktree's name, the session id) to one file:
# attempts at one task collide with each other, as real ones do.
AGENT = (
    "import os, pathlib\n"
    "pathlib.Path('solution.txt').write_text(os.path.basename(os.getcwd()) + '\\n')\n"
    "print('solved')\n"
)


def ok(*args: str, cwd: Path | None = None) -> Any:
    p = pa(*args, cwd=cwd)
    assert p.returncode == 0, f"pa {' '.join(args)}: {p.stdout}\n{p.stderr}"
    assert "Traceback" not in p.stderr
    return json.loads(p.stdout) if "--json" in args else p.stdout


def refused(*args: str, cwd: Path | None = None, code: int = 2) -> str:
    p = pa(*args, cwd=cwd)
    assert "Traceback" not in p.stderr, p.stderr
    assert p.returncode == code, f"pa {' '.join(args)}: {p.returncode}\n{p.stdout}\n{p.stderr}"
    assert "error:" in p.stderr and "hint:" in p.stderr, p.stderr
    return p.stderr


def agent(tmp_path: Path, body: str = AGENT, name: str = "agent.py") -> str:
    p = tmp_path / name
    p.write_text(body)
    return f"{PY} {p}"


def start(repo: Path, tmp_path: Path, n: int = 3, *extra: str) -> dict[str, Any]:
    d = ok("new", "solve it", "--attempts", str(n), "--cmd", agent(tmp_path), "--json", *extra,
           cwd=repo)  # fmt: skip
    assert isinstance(d, dict)
    return d


def settle(d: dict[str, Any]) -> list[str]:
    ids = [s["id"] for s in d["sessions"]]
    p = pa("wait", "--timeout", "60", *ids)
    assert p.returncode == 0, p.stdout + p.stderr
    return ids


def write_config(text: str) -> None:
    cfg = Path(os.environ["XDG_CONFIG_HOME"]) / "parallel-agents" / "config.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(text)


def test_new_attempts_starts_one_group_on_one_base(tmp_path: Path) -> None:
    """issue 15 §2: `pa new --attempts 3` starts 3 sessions on one base commit as one
    group of kind attempts, keys 1..3, each session carrying its group and key."""
    repo = make_repo(tmp_path / "proj")
    d = start(repo, tmp_path)
    g = d["group"]
    assert g["kind"] == "attempts" and g["spec"]["n"] == 3
    assert [t["key"] for t in g["tasks"]] == ["1", "2", "3"]
    sessions = d["sessions"]
    assert len({s["id"] for s in sessions}) == 3
    head = git(repo, "rev-parse", "HEAD").strip()
    assert {s["base_commit"] for s in sessions} == {head} == {g["spec"]["base_commit"]}
    for t, s in zip(g["tasks"], sessions, strict=True):
        assert t["session"] == s["id"]
        # kind and name too: the dashboard's sidebar lists it under the group's heading
        want = {"id": g["id"], "key": t["key"], "kind": "attempts", "name": g["name"]}
        assert s["options"]["group"] == want
        assert s["agent"] == "command"
    ids = settle(d)
    for sid in ids:
        wt = Path(json.loads(pa("show", sid, "--json").stdout)["worktree"])
        assert (wt / "solution.txt").read_text() == f"{sid}\n"
    listed = ok("groups", "--json")
    assert [x["id"] for x in listed] == [g["id"]] and listed[0]["tasks"] == {"done": 3}
    text = ok("groups")
    assert g["name"] in text and "attempts" in text


def test_bad_counts_and_agents_create_nothing(tmp_path: Path) -> None:
    """issue 15 §2, bad input: N < 1, N over limits.max_attempts (named), an unknown agent
    in the list, a list without --attempts: clear errors, no group, no session."""
    repo = make_repo(tmp_path / "proj")
    cmd = agent(tmp_path)
    assert "at least 1" in refused("new", "x", "--attempts", "0", "--cmd", cmd, cwd=repo)
    err = refused("new", "x", "--attempts", "11", "--cmd", cmd, cwd=repo)
    assert "limits.max_attempts" in err and "(10)" in err
    write_config("[limits]\nmax_attempts = 2\n")
    err = refused("new", "x", "--attempts", "3", "--cmd", cmd, cwd=repo)
    assert "limits.max_attempts" in err and "(2)" in err
    err = refused("new", "x", "--attempts", "2", "--agent", "command,nosuch", "--cmd", cmd, cwd=repo)
    assert "unknown agent 'nosuch'" in err
    err = refused("new", "x", "--agent", "command,command", "--cmd", cmd, cwd=repo)
    assert "--attempts" in err
    err = refused("new", "x", "--attempts", "2", "--base", "nope", "--cmd", cmd, cwd=repo)
    assert "unknown base 'nope'" in err
    write_config("[limits]\nmax_attempts = 0\n")
    assert "limits.max_attempts" in refused("new", "x", "--attempts", "1", "--cmd", cmd, cwd=repo)
    write_config("")
    assert ok("groups", "--json") == []
    assert ok("ls", "--all", "--json") == []
    assert "pa/" not in git(repo, "branch", "--list")


def test_agents_round_robin(tmp_path: Path) -> None:
    """issue 15 §2: --agent a,b deals the attempts out round-robin."""
    from parallel_agents.sessions.attempts import agents_for

    assert agents_for(5, ["claude", "codex"]) == ["claude", "codex", "claude", "codex", "claude"]
    repo = make_repo(tmp_path / "proj")
    d = start(repo, tmp_path, 3, "--agent", "command, command")
    assert [t["spec"]["agent"] for t in d["group"]["tasks"]] == ["command"] * 3
    assert d["group"]["spec"]["agents"] == ["command", "command"]
    settle(d)
    text = ok("new", "again", "--attempts", "1", "--group", "mine", "--cmd", agent(tmp_path), cwd=repo)
    assert text.startswith("group mine: 1 of 1 attempts started") and "pa compare mine" in text
    assert pa("wait", "--timeout", "60", ok("compare", "mine", "--json")["attempts"][0]["session"]).returncode == 0


def test_attempts_wait_their_turn_under_max_running(tmp_path: Path) -> None:
    """issue 15 §2: attempts respect limits.max_running: the rest are queued and start as
    places free up."""
    write_config("[limits]\nmax_running = 1\n")
    repo = make_repo(tmp_path / "proj")
    gate = tmp_path / "gate"
    body = (
        "import pathlib, time\n"
        f"gate = pathlib.Path({str(gate)!r})\n"
        "deadline = time.monotonic() + 60\n"
        "while not gate.exists() and time.monotonic() < deadline:\n"
        "    time.sleep(0.02)\n"
        "pathlib.Path('done.txt').write_text('ok')\n"
    )
    d = ok("new", "wait", "--attempts", "3", "--cmd", agent(tmp_path, body), "--json", cwd=repo)
    statuses = sorted(s["status"] for s in d["sessions"])
    assert statuses.count("queued") == 2, statuses
    gate.write_text("go")
    settle(d)
    shown = ok("compare", d["group"]["name"], "--json")
    assert [a["status"] for a in shown["attempts"]] == ["idle"] * 3


def test_compare_lays_the_attempts_side_by_side(tmp_path: Path) -> None:
    """issue 15 §2: `pa compare` has one row per attempt: status, check, files and lines,
    duration, tokens and cost, and the conflicts forecast with live work outside."""
    repo = make_repo(tmp_path / "proj")
    d = start(repo, tmp_path, 2)
    ids = settle(d)
    other = ok("new", "other work", "--cmd", agent(tmp_path), "--json", cwd=repo)
    assert pa("wait", "--timeout", "60", other["id"]).returncode == 0
    assert pa("check", ids[0], "--check", "test -f solution.txt").returncode == 0
    name = d["group"]["name"]
    c = ok("compare", name, "--json")
    rows = c["attempts"]
    assert [r["attempt"] for r in rows] == ["1", "2"]
    assert [r["session"] for r in rows] == ids
    assert rows[0]["check"]["ok"] is True and rows[1]["check"] is None
    for r in rows:
        assert r["status"] == "idle" and r["task"] == "done"
        assert (r["files"], r["additions"], r["deletions"]) == (1, 1, 0)
        assert r["duration_s"] is not None and r["duration_s"] >= 0
        assert r["input_tokens"] == 0 and r["cost_usd"] is None  # the command agent spends none
        # The other attempt is no news; the session outside the group is.
        assert r["conflicts"]["with"] == [other["id"]]
        assert r["conflicts"]["clean_with_base"] is True
        assert r["score"] is None
    text = ok("compare", name)
    assert "CONFLICTS" in text and other["id"] in text and "pass" in text


def test_pick_merges_the_winner_and_discards_the_rest(tmp_path: Path) -> None:
    """issue 15 §2: `pa pick GROUP 2` merges attempt 2 through the merge code and discards
    1 and 3 (archived: `pa restore` brings one back); picking twice, an unknown attempt and
    a group of another kind are clear errors that change nothing."""
    repo = make_repo(tmp_path / "proj")
    d = start(repo, tmp_path)
    ids = settle(d)
    name = d["group"]["name"]
    err = refused("pick", name, "7")
    assert "no attempt '7'" in err and "1, 2, 3" in err
    out = ok("pick", name, "2", "--json")
    assert out["picked"] == {"attempt": "2", "session": ids[1], "merged": True}
    assert out["merge"]["merged"] == [ids[1]]
    assert (repo / "solution.txt").read_text() == f"{ids[1]}\n"  # main's checkout moved too
    assert git(repo, "show", "main:solution.txt") == f"{ids[1]}\n"
    assert [x["session"] for x in out["discarded"]] == [ids[0], ids[2]]
    st = Store(Path(os.environ["PA_HOME"]))
    gid = d["group"]["id"]
    assert [t.state for t in st.group_tasks(gid)] == ["discarded", "picked", "discarded"]
    assert st.group(gid).state == "picked"
    statuses = {s["id"]: s["status"] for s in ok("ls", "--all", "--json")}
    assert statuses == {ids[0]: "discarded", ids[1]: "merged", ids[2]: "discarded"}
    err = refused("pick", name, "1", code=1)
    assert "picked already: attempt 2" in err
    # A discarded attempt comes back whole.
    back = ok("restore", ids[0], "--json")
    assert (Path(back["worktree"]) / "solution.txt").read_text() == f"{ids[0]}\n"
    assert [t.state for t in st.group_tasks(gid)] == ["discarded", "picked", "discarded"]
    plan = st.create_group("plan", "p1", None, {}, [("a", {})])
    st.close()
    assert "not attempts" in refused("pick", plan.name, "a")
    assert "not attempts" in refused("compare", plan.name)
    assert "no group 'nosuch'" in refused("compare", "nosuch")


def test_pick_no_merge_marks_only(tmp_path: Path) -> None:
    """issue 15 §2: `pa pick --no-merge` marks the winner and leaves the target alone."""
    repo = make_repo(tmp_path / "proj")
    d = start(repo, tmp_path, 2)
    ids = settle(d)
    head = git(repo, "rev-parse", "main")
    text = ok("pick", d["group"]["name"], "1", "--no-merge")
    assert "not merged" in text and f"pa restore {ids[1]}" in text
    assert git(repo, "rev-parse", "main") == head
    statuses = {s["id"]: s["status"] for s in ok("ls", "--all", "--json")}
    assert statuses == {ids[0]: "idle", ids[1]: "discarded"}
    rows = ok("compare", d["group"]["name"], "--json")["attempts"]
    assert [r["task"] for r in rows] == ["picked", "discarded"]


def test_a_pick_that_does_not_merge_discards_nothing(tmp_path: Path) -> None:
    """issue 15 §2, nothing lost: when the winner conflicts with its target, the pick is
    refused and every attempt stays as it was."""
    repo = make_repo(tmp_path / "proj")
    d = start(repo, tmp_path, 2)
    ids = settle(d)
    (repo / "solution.txt").write_text("main's own\n")
    git(repo, "add", "solution.txt")
    git(repo, "commit", "-q", "-m", "main moves")
    err = refused("pick", d["group"]["name"], "1", code=1)
    assert "did not merge" in err and "nothing was discarded" in err
    statuses = {s["id"]: s["status"] for s in ok("ls", "--all", "--json")}
    assert statuses == {ids[0]: "idle", ids[1]: "idle"}
    st = Store(Path(os.environ["PA_HOME"]))
    assert st.group(d["group"]["id"]).state == "running"
    assert [t.state for t in st.group_tasks(d["group"]["id"])] == ["done", "done"]
    st.close()
    # The person resolves it another way: a pick without merging still works.
    assert "not merged" in ok("pick", d["group"]["name"], "1", "--no-merge")
