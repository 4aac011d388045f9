"""The session lifecycle through the real `pa` command, with the `command` agent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import git, make_repo, pa

PY = sys.executable


def new_json(*args: str, cwd: Path | None = None, input: str | None = None) -> dict[str, object]:
    p = pa("new", "--json", *args, cwd=cwd, input=input)
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert isinstance(data, dict)
    return data


def wait_ok(*ids: str) -> subprocess.CompletedProcess[str]:
    return pa("wait", "--timeout", "60", *ids)


def script(tmp_path: Path, body: str, name: str = "agent.py") -> str:
    p = tmp_path / name
    p.write_text(body)
    return f"{PY} {p}"


def no_traceback(p: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in p.stderr, p.stderr


def test_repo_add_ls_rm(repo: Path) -> None:
    p = pa("repo", "add", str(repo), "--name", "demo", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["name"] == "demo"
    listed = json.loads(pa("repo", "ls", "--json").stdout)
    assert [r["name"] for r in listed] == ["demo"]
    assert listed[0]["path"] == str(repo.resolve())
    dup = pa("repo", "add", str(repo))
    assert dup.returncode == 2 and "already registered" in dup.stderr
    assert pa("repo", "rm", "demo").returncode == 0
    assert json.loads(pa("repo", "ls", "--json").stdout) == []
    gone = pa("repo", "rm", "demo")
    assert gone.returncode == 2 and "no registered repo named 'demo'" in gone.stderr


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("missing", "does not exist"),
        ("file", "is a file, not a directory"),
        ("plain", "is not a git repository"),
        ("bare", "is a bare repository"),
        ("empty", "has no commits yet"),
    ],
)
def test_repo_add_bad_paths(tmp_path: Path, kind: str, message: str) -> None:
    target = tmp_path / kind
    if kind == "file":
        target.write_text("x")
    elif kind == "plain":
        target.mkdir()
    elif kind == "bare":
        subprocess.run(["git", "init", "-q", "--bare", str(target)], check=True)
    elif kind == "empty":
        subprocess.run(["git", "init", "-q", str(target)], check=True)
    p = pa("repo", "add", str(target))
    assert p.returncode == 2, p.stdout + p.stderr
    assert message in p.stderr
    no_traceback(p)
    assert json.loads(pa("repo", "ls", "--json").stdout) == []
    # The same checks guard `pa new --repo PATH`.
    p = pa("new", "x", "--repo", str(target), "--cmd", "true")
    assert p.returncode != 0 and (message in p.stderr or "no registered repo" in p.stderr)
    no_traceback(p)


def test_unknown_base_and_missing_program(repo: Path) -> None:
    p = pa("new", "x", "--base", "no-such-branch", "--cmd", "true", cwd=repo)
    assert p.returncode == 2 and "unknown base 'no-such-branch'" in p.stderr
    p = pa("new", "x", "--cmd", "definitely-not-a-program-xyz --flag", cwd=repo)
    assert p.returncode != 0 and "definitely-not-a-program-xyz" in p.stderr
    no_traceback(p)
    # Nothing was created for the refused sessions.
    assert json.loads(pa("ls", "--all", "--json").stdout) == []
    assert "pa/" not in git(repo, "branch", "--list")
    assert git(repo, "worktree", "list").count("\n") == 1


def test_new_registers_repo_and_runs_detached(repo: Path, tmp_path: Path) -> None:
    agent = script(
        tmp_path,
        "import pathlib\n"
        "print('working', flush=True)\n"
        "pathlib.Path('hello.txt').write_text('hi\\n')\n"
        "print('done')\n",
    )
    s = new_json("say hi", "--cmd", agent, cwd=repo)
    assert s["status"] in ("running", "starting", "idle")
    wt = Path(str(s["worktree"]))
    assert wt.parent.parent == Path(os.environ["PA_HOME"]) / "worktrees"
    assert str(s["branch"]).startswith("pa/say-hi-") and str(s["branch"]).endswith(str(s["id"]))
    assert json.loads(pa("repo", "ls", "--json").stdout)[0]["name"] == "repo"
    w = wait_ok(str(s["id"]))
    assert w.returncode == 0, w.stdout + w.stderr
    assert (wt / "hello.txt").read_text() == "hi\n"
    assert not (repo / "hello.txt").exists(), "the agent must never write in the main checkout"
    logs = pa("logs", str(s["id"])).stdout
    assert "working" in logs and "done" in logs
    shown = json.loads(pa("show", str(s["id"]), "--json").stdout)
    assert shown["status"] == "idle"
    assert shown["turns"][0]["exit_code"] == 0
    assert shown["base_commit"] == git(repo, "rev-parse", "HEAD").strip()


def test_prompt_arrives_byte_for_byte(repo: Path, tmp_path: Path) -> None:
    agent = script(
        tmp_path,
        "import os, sys, pathlib\n"
        "pathlib.Path('stdin.bin').write_bytes(sys.stdin.buffer.read())\n"
        "pathlib.Path('env.bin').write_bytes(os.environb[b'PA_PROMPT'])\n",
    )
    tricky = 'it\'s "quoted" $(rm -rf /) `id` $HOME ; | & \n second line 🎉 ünïcödé\n'
    s = new_json(tricky, "--cmd", agent, cwd=repo)
    big = ("🐍 payload line with 'quotes' and $(x)\n" * 2700)[: 100 * 1024]
    s2 = new_json("-", "--cmd", agent, cwd=repo, input=big)
    assert wait_ok(str(s["id"]), str(s2["id"])).returncode == 0
    for sess, text in ((s, tricky), (s2, big)):
        wt = Path(str(sess["worktree"]))
        assert (wt / "stdin.bin").read_bytes() == text.encode()
        assert (wt / "env.bin").read_bytes() == text.encode()
    assert len(big.encode()) >= 100 * 1024


def test_failed_turn_reports_stderr_and_wait_exit_code(repo: Path, tmp_path: Path) -> None:
    agent = script(
        tmp_path, "import sys\nprint('oops: the model is down', file=sys.stderr)\nsys.exit(3)\n"
    )
    s = new_json("fail please", "--cmd", agent, cwd=repo)
    w = wait_ok(str(s["id"]))
    assert w.returncode == 1
    shown = json.loads(pa("show", str(s["id"]), "--json").stdout)
    assert shown["status"] == "failed"
    assert "exit code 3" in shown["error"] and "the model is down" in shown["error"]


def test_send_refused_while_running_then_next_turn(repo: Path, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    agent = script(
        tmp_path,
        "import os, sys, time, pathlib\n"
        f"gate = pathlib.Path({str(gate)!r})\n"
        "turn = os.environ['PA_TURN']\n"
        "while turn == '1' and not gate.exists():\n"
        "    time.sleep(0.02)\n"
        "pathlib.Path(f'turn{turn}.txt').write_text(sys.stdin.read())\n",
    )
    s = new_json("first", "--cmd", agent, cwd=repo)
    sid = str(s["id"])
    p = pa("send", sid, "second")
    assert p.returncode == 1
    assert "still running" in p.stderr and "pa wait" in p.stderr
    gate.write_text("go")
    assert wait_ok(sid).returncode == 0
    assert pa("send", sid, "second").returncode == 0
    assert wait_ok(sid).returncode == 0
    wt = Path(str(s["worktree"]))
    assert (wt / "turn1.txt").read_text() == "first"
    assert (wt / "turn2.txt").read_text() == "second"
    assert len(json.loads(pa("show", sid, "--json").stdout)["turns"]) == 2


def test_stop_a_running_session(repo: Path, tmp_path: Path) -> None:
    agent = script(tmp_path, "import time\nprint('start', flush=True)\ntime.sleep(600)\n")
    s = new_json("sleep", "--cmd", agent, cwd=repo)
    sid = str(s["id"])
    p = pa("stop", sid, "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["status"] == "stopped"
    assert json.loads(pa("show", sid, "--json").stdout)["status"] == "stopped"


def test_ids_prefixes_unknown_and_ambiguous(repo: Path, tmp_path: Path) -> None:
    ids: list[str] = []
    for i in range(12):
        ids.append(str(new_json(f"s{i}", "--cmd", "true", cwd=repo)["id"]))
    assert pa("show", ids[0][:5]).returncode == 0
    p = pa("show", "zzzzzzzz")
    assert p.returncode == 2 and "no session matches 'zzzzzzzz'" in p.stderr
    # With 12 random hex ids, some single-hex-digit prefix is shared by two of them.
    firsts = [i[0] for i in ids]
    shared = next(c for c in firsts if firsts.count(c) > 1)
    p = pa("show", shared)
    assert p.returncode == 2 and "ambiguous" in p.stderr
    for sid in ids:
        if sid.startswith(shared):
            assert sid in p.stderr
    no_traceback(p)


def test_worktree_deleted_by_hand(repo: Path, tmp_path: Path) -> None:
    agent = script(tmp_path, "open('x.txt','w').write('x')\n")
    s = new_json("w", "--cmd", agent, cwd=repo)
    sid = str(s["id"])
    assert wait_ok(sid).returncode == 0
    subprocess.run(["rm", "-rf", str(s["worktree"])], check=True)
    shown = pa("show", sid)
    assert "MISSING" in shown.stdout
    assert json.loads(pa("show", sid, "--json").stdout)["worktree_exists"] is False
    d = pa("discard", sid)
    assert d.returncode == 0, d.stderr
    assert str(s["branch"]) not in git(repo, "branch", "--list")
    assert "prunable" not in git(repo, "worktree", "list", "--porcelain")


def test_setup_copy_and_failed_setup(repo: Path, tmp_path: Path) -> None:
    (repo / ".env").write_text("SECRET=1\n")
    (repo / ".parallel-agents.toml").write_text(
        'setup = "echo setting up; cat .env > setup-saw.txt"\n'
        'copy = [".env"]\n'
        'env = { GREETING = "hola" }\n'
    )
    git(repo, "add", ".parallel-agents.toml")
    git(repo, "commit", "-qm", "pa config")
    agent = script(tmp_path, "import os\nopen('greet.txt','w').write(os.environ['GREETING'])\n")
    s = new_json("x", "--cmd", agent, cwd=repo)
    assert wait_ok(str(s["id"])).returncode == 0
    wt = Path(str(s["worktree"]))
    assert (wt / ".env").read_text() == "SECRET=1\n"
    assert (wt / "setup-saw.txt").read_text() == "SECRET=1\n"
    assert (wt / "greet.txt").read_text() == "hola"

    (repo / ".parallel-agents.toml").write_text('setup = "echo broken dependency >&2; exit 7"\n')
    git(repo, "commit", "-qam", "broken setup")
    s = new_json("y", "--cmd", agent, cwd=repo)
    assert wait_ok(str(s["id"])).returncode == 1
    shown = json.loads(pa("show", str(s["id"]), "--json").stdout)
    assert shown["status"] == "failed"
    assert "setup command failed" in shown["error"] and "broken dependency" in shown["error"]
    assert Path(str(s["worktree"])).is_dir(), "the worktree is kept for inspection"
    assert not (Path(str(s["worktree"])) / "greet.txt").exists(), "the agent did not run"


def test_bad_repo_config_is_a_clear_error(repo: Path) -> None:
    (repo / ".parallel-agents.toml").write_text("setup = [1, 2\n")
    p = pa("new", "x", "--cmd", "true", cwd=repo)
    assert p.returncode == 2 and ".parallel-agents.toml" in p.stderr
    no_traceback(p)


def test_logs_follow_until_done(repo: Path, tmp_path: Path) -> None:
    agent = script(
        tmp_path,
        "import time\nfor i in range(5):\n    print(f'line {i}', flush=True)\n    time.sleep(0.05)\n",
    )
    s = new_json("count", "--cmd", agent, cwd=repo)
    out = pa("logs", "-f", str(s["id"]), timeout=60).stdout
    assert [ln for ln in out.splitlines() if ln.startswith("line ")] == [
        f"line {i}" for i in range(5)
    ]


def test_concurrent_new_processes(repo: Path) -> None:
    n = 60 if os.environ.get("PA_FULL") else 30
    pa("repo", "add", str(repo), check=True)

    def start(i: int) -> subprocess.CompletedProcess[str]:
        return pa("new", f"task {i}", "--cmd", "true", "--json", cwd=repo)

    with ThreadPoolExecutor(max_workers=n) as ex:
        results = list(ex.map(start, range(n)))
    failures = [r.stderr for r in results if r.returncode != 0]
    assert failures == []
    sessions = [json.loads(r.stdout) for r in results]
    assert len({s["id"] for s in sessions}) == n
    assert len({s["branch"] for s in sessions}) == n
    listed = git(repo, "worktree", "list", "--porcelain")
    for s in sessions:
        assert f"worktree {s['worktree']}" in listed
        assert f"branch refs/heads/{s['branch']}" in listed
        assert Path(s["worktree"], "README.md").exists()
    assert listed.count("worktree ") == n + 1
    assert "prunable" not in listed
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        st = json.loads(pa("ls", "--json").stdout)
        if all(x["status"] == "idle" for x in st):
            break
    assert len(st) == n and all(x["status"] == "idle" for x in st)


def test_no_repo_here(tmp_path: Path) -> None:
    p = pa("new", "x", "--cmd", "true", cwd=tmp_path)
    assert p.returncode == 2 and "is not a git repository" in p.stderr


def test_discard_refuses_twice_and_restore_requires_discarded(repo: Path) -> None:
    s = new_json("x", "--cmd", "true", cwd=repo)
    sid = str(s["id"])
    assert wait_ok(sid).returncode == 0
    p = pa("restore", sid)
    assert p.returncode == 1 and "not discarded" in p.stderr
    assert pa("discard", sid).returncode == 0
    p = pa("discard", sid)
    assert p.returncode == 1 and "already discarded" in p.stderr


def test_make_repo_helper_sanity(tmp_path: Path) -> None:
    r = make_repo(tmp_path / "r2", {"a.txt": "a"})
    assert git(r, "log", "--oneline").count("\n") == 1


def test_env_reaches_agent_but_not_events_or_json(repo: Path, tmp_path: Path) -> None:
    agent = script(tmp_path, "import os\nopen('k.txt','w').write(os.environ['MY_API_KEY'])\n")
    s = new_json("x", "--cmd", agent, "--env", "MY_API_KEY=sk-secret-123", cwd=repo)
    assert wait_ok(str(s["id"])).returncode == 0
    assert (Path(str(s["worktree"])) / "k.txt").read_text() == "sk-secret-123"
    for args in (("show", "--json"), ("logs", "--json"), ("ls", "--json")):
        out = pa(args[0], *((str(s["id"]),) if args[0] != "ls" else ()), *args[1:]).stdout
        assert "sk-secret-123" not in out
    env_file = Path(os.environ["PA_HOME"]) / "sessions" / str(s["id"]) / "env.json"
    assert env_file.stat().st_mode & 0o777 == 0o600
    bad = pa("new", "x", "--cmd", "true", "--env", "NOEQUALS", cwd=repo)
    assert bad.returncode == 2 and "KEY=VALUE" in bad.stderr
