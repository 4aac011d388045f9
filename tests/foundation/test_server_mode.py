"""The CLI as a thin client: commands start the background server and go through its API."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import git, make_repo, pa
from tests.foundation.test_cli_sessions import new_json, script, wait_ok


@pytest.mark.usefixtures("server_mode")
def test_commands_autostart_the_server_and_use_it(pa_home: Path, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "one\n", "shared.txt": "x\n"})
    (repo / ".parallel-agents.toml").write_text('check = "test -f b.txt"\n')
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "cfg")
    assert pa("server", "status").returncode == 1, "no server before the first command"
    agent = script(
        tmp_path,
        "import os\nn = os.environ['PA_TURN']\nopen(f'b{n}.txt' if n != '1' else 'b.txt', 'w')"
        ".write(os.environ['PA_PROMPT'])\nprint('turn', n, flush=True)\n",
    )
    s = new_json("first", "--cmd", agent, cwd=repo)
    sid = str(s["id"])
    st = json.loads(pa("server", "status", "--json").stdout)
    info = json.loads((pa_home / "server.json").read_text())
    assert st["pid"] == info["pid"]
    # The server supervises on its own: no CLI command needs to poll for the turn to end.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        shown = json.loads(pa("show", sid, "--json").stdout)
        if shown["status"] == "idle":
            break
        time.sleep(0.1)
    assert shown["status"] == "idle" and shown["worktree_exists"] is True
    assert "turn 1" in pa("logs", sid).stdout
    assert "+++ b/b.txt" in pa("diff", sid).stdout
    assert {f["path"] for f in json.loads(pa("diff", sid, "--json").stdout)["files"]} == {"b.txt"}

    assert pa("send", sid, "second").returncode == 0
    assert wait_ok(sid).returncode == 0
    assert len(json.loads(pa("show", sid, "--json").stdout)["turns"]) == 2
    assert pa("rollback", sid, "--turn", "1").returncode == 0
    assert not (Path(str(s["worktree"])) / "b2.txt").exists()
    chk = pa("check", sid, "--json")
    assert chk.returncode == 0, chk.stderr
    assert json.loads(chk.stdout)[0]["ok"] is True
    assert json.loads(pa("conflicts", "--json").stdout)["pairs"] == []

    # Errors come back through the API with the same messages and exit codes.
    p = pa("show", "zzzzzzzz")
    assert p.returncode == 2 and "no session matches 'zzzzzzzz'" in p.stderr
    p = pa("new", "x", "--cmd", "no-such-program-xyz", cwd=repo)
    assert p.returncode != 0 and "no-such-program-xyz" in p.stderr
    assert "Traceback" not in p.stderr

    m = pa("merge", sid, "--json")
    assert m.returncode == 0, m.stderr
    assert git(repo, "show", "main:b.txt") == "first"
    assert json.loads(pa("ls", "--all", "--json").stdout)[0]["status"] == "merged"
    assert pa("server", "status").returncode == 0


@pytest.mark.usefixtures("server_mode")
def test_discard_restore_through_the_server(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    agent = script(tmp_path, "open('u.txt','w').write('uncommitted')\n")
    s = new_json("x", "--cmd", agent, cwd=repo)
    sid = str(s["id"])
    assert wait_ok(sid).returncode == 0
    d = pa("discard", sid, "--json")
    assert d.returncode == 0, d.stderr
    assert json.loads(d.stdout)["archive"]["ref"] == f"refs/pa/archive/{sid}"
    assert not Path(str(s["worktree"])).exists()
    assert pa("restore", sid).returncode == 0
    assert (Path(str(s["worktree"])) / "u.txt").read_text() == "uncommitted"
