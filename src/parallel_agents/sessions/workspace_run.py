"""Issue 16 §1: a session's run script (`pa run`) and archive script (before a discard).

The run script (``run`` in ``.parallel-agents.toml``) is started by pa itself (the server
or the CLI), never by an agent's turn: detached in its own session and process group,
without the turn's ``PA_OWNER_SESSION`` tag, so neither the wrapper's end-of-turn sweep
nor `pa stop` ends it; `pa run --stop` and a discard do. Its output goes to
``<home>/sessions/<id>/run/run.log``; ``run.json`` beside it records its pid (and the
pid's start time, so a reused pid is never signalled).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from parallel_agents.config import load_repo_config
from parallel_agents.errors import Conflict, PAError, UsageError
from parallel_agents.models import Session
from parallel_agents.runtime import local
from parallel_agents.sessions import ports
from parallel_agents.store import Store

# How long a just-started run script is watched: one that ends within it "exits at once".
EARLY_EXIT_S = 1.0
ARCHIVE_TIMEOUT_S = 300.0
TAIL_BYTES = 4000


def run_dir(store: Store, sid: str) -> Path:
    return store.home / "sessions" / sid / "run"


def log_tail(path: Path, limit: int = TAIL_BYTES) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - limit))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _started_at(pid: int) -> str | None:
    """The process's start time in clock ticks (None: no such process, or a zombie)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else fields[19]


def _record(store: Store, sid: str) -> dict[str, Any] | None:
    try:
        data = json.loads((run_dir(store, sid) / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _running_pid(rec: dict[str, Any] | None) -> int | None:
    """The recorded run script's pid while that very process still lives."""
    if not rec or not isinstance(rec.get("pid"), int):
        return None
    pid, born = int(rec["pid"]), rec.get("started_at")
    return pid if born is not None and _started_at(pid) == born else None


def answers(port: int, timeout: float = 0.3) -> bool:
    """Something accepts connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def script_env(store: Store, s: Session, repo_path: Path) -> dict[str, str]:
    """The environment of the run and archive scripts: pa's own without the turn's tag
    (a `pa run` typed by an agent must not hand its tag on), the repo's ``env``, the
    session's `pa new --env`, its ports."""
    env = {k: v for k, v in os.environ.items() if k != local.TAG}
    env.update(load_repo_config(repo_path).env)
    with contextlib.suppress(OSError, ValueError):
        given = json.loads((store.home / "sessions" / s.id / "env.json").read_text("utf-8"))
        env.update({str(k): str(v) for k, v in given.items()} if isinstance(given, dict) else {})
    env.update(ports.env_for(store, s.id))
    env.update({"PA_SESSION_ID": s.id, "PA_HOME": str(store.home), "PA_WORKTREE": s.worktree})
    return env


def _reap(proc: subprocess.Popen[bytes]) -> None:
    # The server lives on: wait for its child so it leaves no zombie behind.
    threading.Thread(target=proc.wait, daemon=True).start()


def start(store: Store, s: Session) -> dict[str, Any]:
    """Start session ``s``'s run script; its status (``status``). A script that ends
    within ``EARLY_EXIT_S`` is an error carrying the tail of its log."""
    repo_path = Path(store.repo(s.repo_id).path)
    rcfg = load_repo_config(repo_path)
    if not rcfg.run:
        raise UsageError(
            f"the repository {repo_path} has no run script",
            hint='add one to its .parallel-agents.toml, e.g. run = "npm run dev -- --port'
            ' $PA_PORT"',
        )
    wt = Path(s.worktree)
    if not wt.is_dir():
        raise Conflict(f"the worktree of session {s.id} is gone ({wt})")
    pid = _running_pid(_record(store, s.id))
    if pid is not None:
        raise Conflict(
            f"the run script of session {s.id} is already running (pid {pid})",
            hint=f"stop it first: pa run {s.id} --stop",
        )
    d = run_dir(store, s.id)
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    log = d / "run.log"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "wb") as out:
        proc = subprocess.Popen(
            ["sh", "-c", rcfg.run],
            cwd=wt,
            env=script_env(store, s, repo_path),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own session and process group
            close_fds=True,
        )
    rec = {
        "pid": proc.pid,
        "started_at": _started_at(proc.pid),
        "command": rcfg.run,
        "started": time.time(),
        "log": str(log),
    }
    (d / "run.json").write_text(json.dumps(rec), encoding="utf-8")
    deadline = time.monotonic() + EARLY_EXIT_S
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    if proc.poll() is not None:
        tail = log_tail(log).strip()
        raise PAError(
            f"the run script of session {s.id} exited at once (exit {proc.returncode}):"
            f" {rcfg.run}" + (f"\n{tail}" if tail else " (it printed nothing)"),
            hint=f"its log is {log}; fix the run script in .parallel-agents.toml",
        )
    _reap(proc)
    return status(store, s)


def stop(store: Store, s: Session, grace: float = 5.0) -> dict[str, Any]:
    """End the run script's whole process group: SIGTERM, then SIGKILL after ``grace``."""
    pid = _running_pid(_record(store, s.id))
    if pid is None:
        raise Conflict(f"the run script of session {s.id} is not running", hint=f"pa run {s.id}")
    _end_group(pid, grace)
    return status(store, s)


def _end_group(pid: int, grace: float) -> None:
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if _group_gone(pid):
                return
            time.sleep(0.05)


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    # Only zombies left (waited for by no one here)?
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[2] == str(pgid) and fields[0] != "Z":
            return False
    return True


def status(store: Store, s: Session) -> dict[str, Any]:
    """The run script: running?, pid, command, log (and its tail), and each of the
    session's ports with its URL and whether it answers (probed only while running)."""
    rec = _record(store, s.id) or {}
    pid = _running_pid(rec)
    log = Path(str(rec.get("log") or run_dir(store, s.id) / "run.log"))
    held = store.session_ports(s.id)
    port_rows = [
        {
            "port": p,
            "url": f"http://127.0.0.1:{p}",
            "answering": pid is not None and answers(p),
        }
        for p in held
    ]
    try:
        configured = load_repo_config(Path(store.repo(s.repo_id).path)).run
    except PAError:  # a broken file or a missing repo: no Run button, nothing fails
        configured = None
    return {
        "session": s.id,
        "configured": configured is not None,
        "running": pid is not None,
        "pid": pid,
        "command": rec.get("command"),
        "started": rec.get("started"),
        "log": str(log) if rec else None,
        "log_tail": log_tail(log, 2000) if rec else "",
        "ports": port_rows,
        "urls": [r["url"] for r in port_rows if r["answering"]],
    }


def before_remove(store: Store, s: Session, repo_path: Path) -> None:
    """Before a discard removes the worktree: end its run script, then run the repo's
    archive script (its output in ``run/archive.log``). Neither ever blocks the
    discard (the work was archived already): a failure is a warning event."""
    pid = _running_pid(_record(store, s.id))
    if pid is not None:
        _end_group(pid, 2.0)
    try:
        rcfg = load_repo_config(repo_path)
    except PAError:
        return
    wt = Path(s.worktree)
    if not rcfg.archive or not wt.is_dir():
        return
    d = run_dir(store, s.id)
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    log = d / "archive.log"
    problem = None
    try:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "wb") as out:
            rc = subprocess.run(
                ["sh", "-c", rcfg.archive],
                cwd=wt,
                env=script_env(store, s, repo_path),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=ARCHIVE_TIMEOUT_S,
                start_new_session=True,
                check=False,
            ).returncode
        if rc != 0:
            problem = f"exited with {rc}"
    except subprocess.TimeoutExpired:
        problem = f"did not end within {ARCHIVE_TIMEOUT_S:.0f}s"
    except OSError as e:
        problem = f"could not run: {e}"
    if problem:
        tail = log_tail(log, 1000).strip()
        store.add_event(
            s.id,
            "error",
            {
                "message": f"warning: the archive script {problem}; the discard went on"
                f" (the work was archived first). Log: {log}" + (f"\n{tail}" if tail else ""),
                "severity": "warning",
            },
        )
