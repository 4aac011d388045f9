"""How a headless turn ends, through the real `pa` command and real processes
(issue 11 F.1 and F.2).

F.1: agents read their input from a pipe, and a turn whose CLI exits 0 without the
protocol's result record fails with the CLI's stderr and a hint. The CLIs here are small
stand-in programs (the real ones run in tests/e2e, oldest and newest supported release).

F.2: what an agent starts in the background ends with its turn, with `pa stop` and with
`pa discard`; `pa doctor` reports (and with --repair ends) what survived a crash.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import pa

# Every flag any adapter checks for in `--help` (check_version), so one stand-in passes.
HELP = (
    "--output-format --input-format --verbose --resume --permission-mode --allowedTools "
    "--settings --json --skip-git-repo-check --sandbox --approval-mode --skip-trust "
    "--format --session --model --execute --stream-json"
)

# Claude Code 2.1.197's behaviour: with --input-format stream-json it reads nothing from a
# regular file and exits 0 at once; from a pipe it answers the user line with a result.
CLAUDE_197 = f"""#!{sys.executable}
import json, os, stat, sys
if "--help" in sys.argv:
    print({HELP!r})
    sys.exit(0)
if not stat.S_ISFIFO(os.fstat(0).st_mode):
    sys.exit(0)
msg = json.loads(sys.stdin.readline())
text = "read: " + msg["message"]["content"]
for line in (
    {{"type": "system", "subtype": "init", "session_id": "s-197", "model": "m"}},
    {{"type": "result", "subtype": "success", "is_error": False, "result": text,
      "session_id": "s-197", "usage": {{"input_tokens": 3, "output_tokens": 2}}}},
):
    print(json.dumps(line), flush=True)
"""

# A CLI that fails but still exits 0, saying why on stderr only.
SILENT_FAILURE = f"""#!{sys.executable}
import sys
if "--help" in sys.argv:
    print({HELP!r})
    sys.exit(0)
sys.stdin.read()
print("fatal: config.json is not valid JSON", file=sys.stderr)
"""

ADAPTERS_WITH_RESULT_RECORD = ("claude", "codex", "gemini", "opencode", "cursor", "amp")


def fake_cli(tmp_path: Path, name: str, body: str) -> dict[str, str]:
    """``body`` installed as the ``name`` CLI; the environment that makes `pa` use it."""
    exe = tmp_path / "bin" / name
    exe.parent.mkdir(parents=True, exist_ok=True)
    exe.write_text(body)
    exe.chmod(0o755)
    config = tmp_path / f"pa-{name}.toml"
    config.write_text(f'[agents.{name}]\nbinary = "{exe}"\n')
    return {"PA_CONFIG": str(config)}


def new(*args: str, repo: Path, env: dict[str, str] | None = None) -> str:
    p = pa("new", "--json", *args, cwd=repo, env=env)
    assert p.returncode == 0, p.stderr
    return str(json.loads(p.stdout)["id"])


def show(sid: str, env: dict[str, str] | None = None) -> dict[str, object]:
    data = json.loads(pa("show", sid, "--json", env=env).stdout)
    assert isinstance(data, dict)
    return data


def gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def wait_gone(pid: int, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gone(pid):
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} (pid {pid}) still runs after {timeout:g} s")


def wait_file(path: Path, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


@pytest.fixture
def strays() -> list[int]:
    """Pids a test expects to end; killed afterwards should the test fail."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if not gone(pid):
            os.kill(pid, signal.SIGKILL)


# -- F.1 --------------------------------------------------------------------------------


def test_claude_gets_its_prompt_through_a_pipe(repo: Path, tmp_path: Path) -> None:
    """issue 11 F.1: stdin is a pipe, not the prompt file itself, so a Claude Code release
    that ignores a regular file (2.1.197) still gets the prompt and ends with its result."""
    env = fake_cli(tmp_path, "claude", CLAUDE_197)
    sid = new("say hi", "--agent", "claude", repo=repo, env=env)
    assert pa("wait", "--timeout", "60", sid, env=env).returncode == 0
    shown = show(sid, env)
    assert shown["status"] == "idle", shown
    events = [json.loads(x) for x in pa("logs", sid, "--json", env=env).stdout.splitlines()]
    assert [e["payload"]["text"] for e in events if e["kind"] == "result"] == ["read: say hi"]


def test_a_long_prompt_an_agent_never_reads_does_not_hang_the_turn(
    repo: Path, tmp_path: Path
) -> None:
    """issue 11 F.1: the prompt pipe is fed without blocking the turn's wrapper — an
    agent that exits without reading a prompt longer than the pipe buffer still ends."""
    agent = tmp_path / "ignore.py"
    agent.write_text("print('not reading')\n")
    prompt = "x" * (100 * 1024)  # > the 64 KiB pipe buffer; PA_PROMPT caps it at 128 KiB
    p = pa("new", "--json", "-", "--cmd", f"{sys.executable} {agent}", cwd=repo, input=prompt)
    assert p.returncode == 0, p.stderr
    sid = json.loads(p.stdout)["id"]
    assert pa("wait", "--timeout", "60", sid).returncode == 0
    assert show(sid)["status"] == "idle"


@pytest.mark.parametrize("name", ADAPTERS_WITH_RESULT_RECORD)
def test_exit_0_without_the_result_record_fails_with_stderr_and_a_hint(
    repo: Path, tmp_path: Path, name: str
) -> None:
    """issue 11 F.1: a turn that exits 0 without the agent's result record is a failure
    (not `done`), whose error carries the CLI's stderr and a hint."""
    env = fake_cli(tmp_path, name, SILENT_FAILURE)
    sid = new("do it", "--agent", name, repo=repo, env=env)
    assert pa("wait", "--timeout", "60", sid, env=env).returncode == 1
    shown = show(sid, env)
    assert shown["status"] == "failed", shown
    turns = shown["turns"]
    assert isinstance(turns, list) and turns[0]["status"] == "failed"
    assert turns[0]["exit_code"] == 0
    error = str(shown["error"])
    assert "without its final" in error and "config.json is not valid JSON" in error, error
    assert "hint:" in error and "--version" in error, error


# -- F.2 --------------------------------------------------------------------------------

# Starts a loop in its own process group's background and a daemon that left it (setsid
# after a double fork), writes their pids, then waits (turn 1: returns at once).
SPAWNER = """
import os, subprocess, sys, time
open("bg.pid", "w").write(str(subprocess.Popen(
    ["sh", "-c", "while true; do sleep 0.2; done"]).pid))
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        open("daemon.pid.tmp", "w").write(str(os.getpid()))
        os.rename("daemon.pid.tmp", "daemon.pid")
        while True:
            time.sleep(0.2)
    os._exit(0)
os.wait()
while not os.path.exists("daemon.pid"):
    time.sleep(0.01)
print("started", flush=True)
if sys.argv[1] == "stay":
    time.sleep(600)
if sys.argv[1] == "crash":  # the wrapper dies with a SIGKILL: nobody cleans up
    os.kill(os.getppid(), signal.SIGKILL)
"""


def spawner(tmp_path: Path, mode: str) -> str:
    p = tmp_path / "spawner.py"
    p.write_text("import signal\n" + SPAWNER)
    return f"{sys.executable} {p} {mode}"


def pids_in(wt: Path) -> tuple[int, int]:
    return int(wait_file(wt / "bg.pid")), int(wait_file(wt / "daemon.pid"))


def test_background_processes_end_with_the_turn(
    repo: Path, tmp_path: Path, strays: list[int]
) -> None:
    """issue 11 F.2: at the end of a turn nothing the agent started keeps running — not a
    `&` loop in its process group, not a daemon that called setsid."""
    p = pa("new", "--json", "start things", "--cmd", spawner(tmp_path, "exit"), cwd=repo)
    s = json.loads(p.stdout)
    assert pa("wait", "--timeout", "60", s["id"]).returncode == 0
    strays.extend(pids_in(Path(s["worktree"])))
    for pid in strays:
        wait_gone(pid, "a process started by the finished turn")
    assert show(s["id"])["status"] == "idle"


# A daemon that left the agent's process group and session and dropped pa's tag from its
# environment (it re-executed itself with a clean one): only its ancestry tells it apart.
SCRUBBED = """
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        env = {k: v for k, v in os.environ.items() if k != "PA_OWNER_SESSION"}
        open("daemon.pid.tmp", "w").write(str(os.getpid()))
        os.execve(sys.executable, [sys.executable, "-c",
                  "import os, time\\nos.rename('daemon.pid.tmp', 'daemon.pid')\\n"
                  "while True: time.sleep(0.2)"], env)
    os._exit(0)
os.wait()
while not os.path.exists("daemon.pid"):
    time.sleep(0.01)
print("started", flush=True)
"""


def test_an_untagged_orphan_of_the_agent_ends_with_the_turn(
    repo: Path, tmp_path: Path, strays: list[int]
) -> None:
    """issue 14 §3: the wrapper is the subreaper of the turn, so a daemon the agent left
    behind is its descendant and ends with the turn even without pa's tag in its
    environment (the old sweep read every process's environment, and missed this one)."""
    script = tmp_path / "scrubbed.py"
    script.write_text(SCRUBBED)
    p = pa("new", "--json", "start a daemon", "--cmd", f"{sys.executable} {script}", cwd=repo)
    s = json.loads(p.stdout)
    assert pa("wait", "--timeout", "60", s["id"]).returncode == 0
    daemon = int(wait_file(Path(s["worktree"]) / "daemon.pid"))
    strays.append(daemon)
    env = Path(f"/proc/{daemon}/environ").read_bytes() if not gone(daemon) else b""
    assert b"PA_OWNER_SESSION" not in env  # what the test is about: no tag to find it by
    wait_gone(daemon, "an untagged daemon the finished turn left")
    assert show(s["id"])["status"] == "idle"


@pytest.mark.parametrize("command", ["stop", "discard"])
def test_stop_and_discard_end_background_processes(
    repo: Path, tmp_path: Path, strays: list[int], command: str
) -> None:
    """issue 11 F.2: `pa stop` and `pa discard` end what the agent started, setsid
    daemons included, so nothing runs on in a stopped session or a deleted worktree."""
    p = pa("new", "--json", "start things", "--cmd", spawner(tmp_path, "stay"), cwd=repo)
    s = json.loads(p.stdout)
    strays.extend(pids_in(Path(s["worktree"])))
    done = pa(command, s["id"], "--json") if command == "stop" else pa(command, s["id"])
    assert done.returncode == 0, done.stderr
    for pid in strays:
        wait_gone(pid, f"a process of the session after pa {command}")


def test_doctor_reports_and_ends_processes_of_a_session_that_is_not_running(
    repo: Path, tmp_path: Path, strays: list[int]
) -> None:
    """issue 11 F.2: after a crash (the turn's wrapper killed, so nobody cleaned up)
    `pa doctor` reports the processes the session left and `--repair` ends them; a
    process pa did not start that merely works in the worktree is only mentioned."""
    p = pa("new", "--json", "start things", "--cmd", spawner(tmp_path, "crash"), cwd=repo)
    s = json.loads(p.stdout)
    wt = Path(s["worktree"])
    bg, daemon = pids_in(wt)
    strays.extend((bg, daemon))
    pa("wait", "--timeout", "60", s["id"])
    assert show(s["id"])["status"] not in ("running", "starting")
    visitor = subprocess.Popen(["sleep", "600"], cwd=wt, env=dict(os.environ))
    try:
        doc = pa("doctor", "--json")
        found = {f["subject"]: f for f in json.loads(doc.stdout)["findings"]}
        assert doc.returncode == 1
        for pid in (bg, daemon):
            f = found[f"pid {pid}"]
            assert f["kind"] == "stray_process" and f["problem"] and s["id"] in f["detail"]
        seen = found[f"pid {visitor.pid}"]
        assert seen["kind"] == "stray_process" and not seen["problem"], seen
        fixed = pa("doctor", "--repair", "--json")
        for pid in (bg, daemon):
            wait_gone(pid, "a stray process after pa doctor --repair")
        assert visitor.poll() is None, "a process pa did not start must be left alone"
        repaired = {f["subject"]: f for f in json.loads(fixed.stdout)["findings"]}
        assert repaired[f"pid {daemon}"]["repaired"], repaired
        again = json.loads(pa("doctor", "--json").stdout)["findings"]
        assert not [f for f in again if f["kind"] == "stray_process" and f["problem"]], again
    finally:
        visitor.kill()
        visitor.wait()
