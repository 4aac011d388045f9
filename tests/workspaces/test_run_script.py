"""Issue 16 §1: `pa run` starts the repo's run script detached in its own process group,
`pa show` lists it with its URLs, `pa run --stop` ends it, agents' turns never do; the
archive script runs before a discard removes the worktree and never blocks it."""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import git, make_repo, pa

# Serves the worktree on the session's first port (sh stays the group's leader).
SERVE = f"{sys.executable} -m http.server $PA_PORT --bind 127.0.0.1"


def repo_with(tmp_path: Path, toml: str, files: dict[str, str] | None = None) -> Path:
    repo = make_repo(tmp_path / "repo", files)
    (repo / ".parallel-agents.toml").write_text(toml)
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "pa config")
    return repo


def until(pred: Callable[[], Any], what: str, limit: float = 30.0) -> Any:
    deadline = time.monotonic() + limit
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return str(r.read().decode())
    except OSError:
        return None


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def new_session(repo: Path, cmd: str = "true") -> str:
    out = pa("new", "work", "--cmd", cmd, "--json", cwd=repo, check=True)
    sid = str(json.loads(out.stdout)["id"])
    pa("wait", sid, check=True)
    return sid


def show(sid: str) -> dict[str, Any]:
    return dict(json.loads(pa("show", sid, "--json", check=True).stdout))


def test_run_serves_on_its_port_and_stop_ends_the_group(tmp_path: Path) -> None:
    """issue 16 §1: `pa run` starts the script detached with PA_PORT; `pa show` lists it
    running with its URL once it answers; `pa run --stop` ends the whole group."""
    repo = repo_with(tmp_path, f'run = "{SERVE}"\nports = 2\n', {"hello.txt": "hi\n"})
    sid = new_session(repo)
    out = pa("run", sid, "--json", check=True)
    r = json.loads(out.stdout)
    assert r["running"] and r["pid"] and Path(r["log"]).parent.name == "run"
    port = r["ports"][0]["port"]
    assert until(lambda: get(f"http://127.0.0.1:{port}/hello.txt"), "the server") == "hi\n"
    s = show(sid)
    assert s["run"]["urls"] == [f"http://127.0.0.1:{port}"]
    text = pa("show", sid, check=True).stdout
    assert f"url: http://127.0.0.1:{port}" in text and f"pid {r['pid']}" in text
    # Its children (python under sh) are in its group: --stop ends them all.
    kids = Path(f"/proc/{r['pid']}/task/{r['pid']}/children").read_text().split()
    assert kids
    again = pa("run", sid)
    assert again.returncode != 0 and "already running" in again.stderr
    pa("run", sid, "--stop", check=True)
    assert not alive(r["pid"]) and not any(alive(int(k)) for k in kids)
    assert get(f"http://127.0.0.1:{port}/hello.txt") is None
    assert show(sid)["run"]["running"] is False


def test_turns_and_stop_never_end_the_run_script(tmp_path: Path) -> None:
    """issue 16 §1: a turn ending (the wrapper's sweep) and `pa stop` leave the run script
    running; it does not carry the turn's PA_OWNER_SESSION tag even when the `pa run`
    that started it did (an agent typed it)."""
    repo = repo_with(tmp_path, f'run = "{SERVE}"\n')
    sid = new_session(repo)
    r = json.loads(pa("run", sid, "--json", env={"PA_OWNER_SESSION": sid}, check=True).stdout)
    environ = Path(f"/proc/{r['pid']}/environ").read_bytes().split(b"\0")
    assert not any(e.startswith(b"PA_OWNER_SESSION=") for e in environ)
    assert f"PA_PORT={r['ports'][0]['port']}".encode() in environ
    pa("send", sid, "next", check=True)
    pa("wait", sid, check=True)
    assert show(sid)["turns"][-1]["status"] == "done"
    pa("stop", sid, check=True)
    assert alive(r["pid"])
    url = r["ports"][0]["url"]
    assert until(lambda: get(url + "/") is not None, "the server")
    pa("run", sid, "--stop", check=True)


def test_a_run_script_that_exits_at_once_is_reported_with_its_log(tmp_path: Path) -> None:
    """issue 16 §1: `pa run` of a script that ends at once says so, with the log's tail."""
    repo = repo_with(tmp_path, 'run = "echo cannot find package.json >&2; exit 3"\n')
    sid = new_session(repo)
    out = pa("run", sid)
    assert out.returncode != 0
    assert "exited at once (exit 3)" in out.stderr and "cannot find package.json" in out.stderr
    assert "hint:" in out.stderr and "Traceback" not in out.stderr
    assert show(sid)["run"]["running"] is False


def test_a_run_script_that_never_binds_its_port_is_not_answering(tmp_path: Path) -> None:
    """issue 16 §1: a running script that listens on none of its ports: `pa show` says
    "not answering"; no URL is offered."""
    repo = repo_with(tmp_path, f'run = "exec {sys.executable} -c \'import time; time.sleep(600)\'"\n')
    sid = new_session(repo)
    r = json.loads(pa("run", sid, "--json", check=True).stdout)
    assert r["running"] and r["urls"] == []
    assert "not answering" in pa("show", sid, check=True).stdout
    pa("run", sid, "--stop", check=True)


def test_no_run_script_is_a_clear_error(tmp_path: Path) -> None:
    """issue 16 §1: a repo without `run` in .parallel-agents.toml: error and hint."""
    repo = repo_with(tmp_path, "ports = 1\n")
    sid = new_session(repo)
    out = pa("run", sid)
    assert out.returncode != 0 and "has no run script" in out.stderr and "hint:" in out.stderr


def test_archive_runs_before_the_worktree_is_removed(tmp_path: Path, pa_home: Path) -> None:
    """issue 16 §1: the archive script runs in the worktree before a discard (its output
    logged); the run script is ended by the discard."""
    repo = repo_with(
        tmp_path, f'run = "{SERVE}"\narchive = "ls; echo archived $PA_SESSION_ID"\n'
    )
    sid = new_session(repo, "sh -c 'echo work > made.txt'")
    r = json.loads(pa("run", sid, "--json", check=True).stdout)
    pa("discard", sid, check=True)
    assert not alive(r["pid"])
    log = (pa_home / "sessions" / sid / "run" / "archive.log").read_text()
    assert "made.txt" in log and f"archived {sid}" in log
    assert show(sid)["status"] == "discarded"


def test_a_failing_archive_script_warns_and_the_discard_goes_on(
    tmp_path: Path, pa_home: Path
) -> None:
    """issue 16 §1: a failing archive script never blocks a discard: the worktree is
    archived and removed, a warning names the failure."""
    repo = repo_with(tmp_path, 'archive = "echo no docker here; exit 7"\n')
    sid = new_session(repo, "sh -c 'echo keep me > work.txt'")
    wt = Path(show(sid)["worktree"])
    pa("discard", sid, check=True)
    assert not wt.exists()
    s = show(sid)
    assert s["status"] == "discarded" and s["options"]["archive"]["ref"]
    ref = s["options"]["archive"]["ref"]
    assert git(repo, "show", f"{ref}:work.txt") == "keep me\n"
    logs = pa("logs", sid, "--json", check=True).stdout
    assert "archive script exited with 7" in logs and "no docker here" in logs
    assert os.path.exists(pa_home / "sessions" / sid / "run" / "archive.log")
