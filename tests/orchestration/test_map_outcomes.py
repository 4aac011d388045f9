"""Issue 15 §4: a mapper's outcome record is collected into its task when its turn ends
(not only when someone reads the report), a follow-up turn reports anew, and a taken
group name is refused before anything starts."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from parallel_agents.store import Store
from tests.conftest import make_repo, pa

PY = sys.executable

AGENT = r"""
import json, os
turn = os.environ["PA_TURN"]
name = os.environ["PA_PROMPT"].split()[1]
open(name + ".txt", "a").write(turn)
if turn == "1":
    with open(os.environ["PA_OUTCOME"], "w") as f:
        json.dump({"status": "success", "summary": f"made {name}", "extra": 1}, f)
"""


def test_outcome_is_collected_when_the_turn_ends(tmp_path: Path, pa_home: Path) -> None:
    """issue 15 §4: once `pa wait` has seen the turns end, the store's tasks hold the
    mappers' records (taken from $PA_OUTCOME, outside the worktree); a follow-up turn
    that writes no record gets an outcome derived from its end, noted as such, not the
    first turn's record again."""
    repo = make_repo(tmp_path / "repo")
    agent = tmp_path / "agent.py"
    agent.write_text(AGENT)
    p = pa(
        "map", "--template", "make {item}", "--items", "-", "--name", "two", "--json",
        "--cmd", f"{PY} {agent}", cwd=repo, input="alpha\nbeta\n",
    )
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    ids = [i["session"] for i in rep["items"]]
    assert pa("wait", "--timeout", "60", *ids).returncode == 0

    st = Store(pa_home)  # the tasks as stored: no report was read, nothing synced them
    try:
        gid = rep["group"]["id"]
        tasks = st.group_tasks(gid)
        assert [t.state for t in tasks] == ["done", "done"]
        assert [t.outcome["summary"] for t in tasks] == ["made alpha", "made beta"]
        assert all(t.outcome["source"] == "record" and t.outcome["turn"] == 1 for t in tasks)
        assert "extra" not in tasks[0].outcome
        assert st.group(gid).state == "done"
        wt = Path(st.session(ids[0]).worktree)
    finally:
        st.close()
    assert not list(wt.glob("*.json")), "the record is written outside the worktree"

    assert pa("send", ids[0], "make alpha again").returncode == 0
    assert pa("wait", "--timeout", "60", ids[0]).returncode == 0
    st = Store(pa_home)
    try:
        t = st.group_task(gid, "1")
        assert (t.state, t.outcome["turn"], t.outcome["source"]) == ("done", 2, "derived")
        assert t.outcome["status"] == "success" and "no outcome record" in t.outcome["note"]
    finally:
        st.close()

    p = pa("map", "--template", "make {item}", "--items", "-", "--name", "two", "--cmd", "true", cwd=repo, input="x\n")
    assert p.returncode == 2 and "a group named 'two' exists already" in p.stderr
    assert len(json.loads(pa("ls", "--all", "--json").stdout)) == 2


def test_map_and_reduce_env_reach_the_agents_and_stay_private(tmp_path: Path) -> None:
    """issue 15 §4: `--env` gives every mapper (and the reducer) extra environment, as
    `pa new --env` does: kept out of the group's report; a bad name is refused first."""
    repo = make_repo(tmp_path / "repo")
    agent = tmp_path / "agent.py"
    agent.write_text("import os\nopen('env.txt', 'w').write(os.environ.get('SECRET_TOKEN', 'none'))\n")
    p = pa(
        "map", "--template", "do {item}", "--items", "-", "--env", "1BAD=x", "--cmd", f"{PY} {agent}",
        cwd=repo, input="a\n",
    )
    assert p.returncode == 2 and "environment variable name '1BAD' is not valid" in p.stderr
    p = pa(
        "map", "--template", "do {item}", "--items", "-", "--name", "envy", "--json",
        "--env", "SECRET_TOKEN=s3cr3t", "--cmd", f"{PY} {agent}", cwd=repo, input="a\nb\n",
    )
    assert p.returncode == 0, p.stderr
    assert "s3cr3t" not in p.stdout
    ids = [i["session"] for i in json.loads(p.stdout)["items"]]
    assert pa("wait", "--timeout", "60", *ids).returncode == 0
    for sid in ids:
        wt = Path(json.loads(pa("show", sid, "--json").stdout)["worktree"])
        assert (wt / "env.txt").read_text() == "s3cr3t"
    assert "s3cr3t" not in pa("map", "show", "envy", "--json").stdout
    p = pa("reduce", "envy", "--env", "SECRET_TOKEN=r3d", "--cmd", f"{PY} {agent}", "--json", cwd=repo)
    assert p.returncode == 0, p.stderr
    rid = json.loads(p.stdout)["session"]["id"]
    assert pa("wait", "--timeout", "60", rid).returncode == 0
    wt = Path(json.loads(pa("show", rid, "--json").stdout)["worktree"])
    assert (wt / "env.txt").read_text() == "r3d"
