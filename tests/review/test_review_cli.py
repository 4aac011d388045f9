"""Checkpoints per turn, rollback, checks and the conflict forecast through `pa`."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import git, make_repo, pa
from tests.foundation.test_cli_sessions import new_json, script, wait_ok


def files_of(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): p.read_text()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


def turn_agent(tmp_path: Path) -> str:
    # Each turn rewrites a.txt, adds t<N>.txt, and deletes t<N-2>.txt: rollback must undo all.
    return script(
        tmp_path,
        "import os, pathlib\n"
        "n = int(os.environ['PA_TURN'])\n"
        "pathlib.Path('a.txt').write_text(f'version {n}\\n')\n"
        "pathlib.Path(f't{n}.txt').write_text(str(n))\n"
        "old = pathlib.Path(f't{n-2}.txt')\n"
        "if old.exists():\n"
        "    old.unlink()\n",
    )


def test_rollback_to_turn_one_and_forward_again(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "base\n"})
    s = new_json("turns", "--cmd", turn_agent(tmp_path), cwd=repo)
    sid = str(s["id"])
    wt = Path(str(s["worktree"]))
    snapshots = {}
    assert wait_ok(sid).returncode == 0
    snapshots[1] = files_of(wt)
    for n in (2, 3):
        assert pa("send", sid, f"turn {n}").returncode == 0
        assert wait_ok(sid).returncode == 0
        snapshots[n] = files_of(wt)
    assert snapshots[3] != snapshots[1]
    refs = git(repo, "for-each-ref", "--format=%(refname)", f"refs/pa/sessions/{sid}/turns/")
    assert refs.split() == [f"refs/pa/sessions/{sid}/turns/{n}" for n in (1, 2, 3)]

    r = pa("rollback", sid, "--turn", "1", "--json")
    assert r.returncode == 0, r.stderr
    assert files_of(wt) == snapshots[1]
    r = pa("rollback", sid, "--turn", "3")
    assert r.returncode == 0, r.stderr
    assert files_of(wt) == snapshots[3]
    bad = pa("rollback", sid, "--turn", "7")
    assert bad.returncode == 2 and "no checkpoint for turn 7" in bad.stderr
    # Per-turn diff: turn 2 changed a.txt and added t2.txt only.
    d = json.loads(pa("diff", sid, "--turn", "2", "--json").stdout)
    assert {f["path"] for f in d["files"]} == {"a.txt", "t2.txt"}


def test_check_pass_fail_timeout_missing(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "base\n"})
    (repo / ".parallel-agents.toml").write_text('check = "grep -q good a.txt"\n')
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "check")
    good = new_json(
        "g", "--cmd", script(tmp_path, "open('a.txt','w').write('good')\n", "g.py"), cwd=repo
    )
    bad = new_json(
        "b", "--cmd", script(tmp_path, "open('a.txt','w').write('bad')\n", "b.py"), cwd=repo
    )
    assert wait_ok(str(good["id"]), str(bad["id"])).returncode == 0
    ok = pa("check", str(good["id"]), "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)[0]["ok"] is True
    both = pa("check", str(good["id"]), str(bad["id"]), "--json")
    assert both.returncode == 1
    assert [r["ok"] for r in json.loads(both.stdout)] == [True, False]
    shown = json.loads(pa("show", str(bad["id"]), "--json").stdout)
    assert shown["check"]["ok"] is False and shown["check"]["command"] == "grep -q good a.txt"
    hang = pa("check", str(good["id"]), "--check", "sleep 30", "--timeout", "0.5", "--json")
    assert hang.returncode == 1 and json.loads(hang.stdout)[0]["timed_out"] is True
    missing = pa("check", str(good["id"]), "--check", "no-such-checker-xyz", "--json")
    assert missing.returncode == 1
    assert "no-such-checker-xyz" in json.loads(missing.stdout)[0]["output_tail"]


def test_check_without_command_is_clear(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    s = new_json("x", "--cmd", "true", cwd=repo)
    assert wait_ok(str(s["id"])).returncode == 0
    p = pa("check", str(s["id"]))
    assert p.returncode == 2 and "no check command" in p.stderr and "--check" in p.stderr


def five_sessions(tmp_path: Path) -> tuple[Path, list[str]]:
    lines = "".join(f"line {i}\n" for i in range(20))
    repo = make_repo(
        tmp_path / "repo",
        {"shared.txt": lines, "one.txt": "1\n", "two.txt": "2\n", "three.txt": "3\n"},
    )
    (repo / ".parallel-agents.toml").write_text('check = "test -f one.txt"\n')
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "config")
    bodies = [
        "open('one.txt','a').write('one more\\n')\n",
        "open('two.txt','a').write('two more\\n')\n",
        "open('three.txt','a').write('three more\\n')\n",
        "t=open('shared.txt').read().replace('line 5','line five (A)')\nopen('shared.txt','w').write(t)\n",
        "t=open('shared.txt').read().replace('line 5','line 5 by B')\nopen('shared.txt','w').write(t)\n",
    ]
    ids = []
    for i, body in enumerate(bodies):
        ids.append(
            str(new_json(f"s{i}", "--cmd", script(tmp_path, body, f"a{i}.py"), cwd=repo)["id"])
        )
    assert wait_ok(*ids).returncode == 0
    return repo, ids


def test_conflict_forecast_reports_exactly_the_pair(tmp_path: Path) -> None:
    _, ids = five_sessions(tmp_path)
    p = pa("conflicts", "--json")
    assert p.returncode == 0, p.stderr
    fc = json.loads(p.stdout)
    assert set(fc["sessions"]) == set(ids)
    assert all(v["clean_with_base"] for v in fc["sessions"].values())
    assert [(sorted([x["a"], x["b"]]), x["paths"]) for x in fc["pairs"]] == [
        (sorted([ids[3], ids[4]]), ["shared.txt"])
    ]
    human = pa("conflicts").stdout
    assert "shared.txt" in human
    # A new conflict is announced once as an event on both sessions.
    ev = [json.loads(x) for x in pa("logs", ids[3], "--json").stdout.splitlines()]
    assert [e["payload"]["with"] for e in ev if e["kind"] == "conflict"] == [ids[4]]
    pa("conflicts", check=True)
    ev = [json.loads(x) for x in pa("logs", ids[3], "--json").stdout.splitlines()]
    assert len([e for e in ev if e["kind"] == "conflict"]) == 1


def test_check_after_every_turn_setting_and_ls_column(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "base\n"})
    (repo / ".parallel-agents.toml").write_text('check = "grep -q good a.txt"\n')
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "check")
    cfg = tmp_path / "config.toml"
    cfg.write_text("[check]\nafter_turn = true\n")
    env = {"PA_CONFIG": str(cfg)}
    agent = script(tmp_path, "import os\nopen('a.txt','w').write(os.environ['PA_PROMPT'])\n")
    p = pa("new", "--json", "good", "--cmd", agent, cwd=repo, env=env)
    good = json.loads(p.stdout)
    p = pa("new", "--json", "bad", "--cmd", agent, cwd=repo, env=env)
    bad = json.loads(p.stdout)
    assert pa("wait", str(good["id"]), str(bad["id"]), env=env).returncode == 0
    shown = {s["id"]: s for s in json.loads(pa("ls", "--json", env=env).stdout)}
    assert shown[good["id"]]["check"]["ok"] is True
    assert shown[bad["id"]]["check"]["ok"] is False
    table = pa("ls", env=env).stdout
    assert "CHECK" in table and "pass" in table and "fail" in table
    detail = json.loads(pa("show", str(bad["id"]), "--json", env=env).stdout)
    assert detail["check"]["command"] == "grep -q good a.txt" and detail["check"]["turn"] == 1
