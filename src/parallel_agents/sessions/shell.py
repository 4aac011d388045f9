"""A terminal for every session (issue 16 §2): a shell in the session's worktree.

One tmux session per pa session, named ``shell-<id>`` on pa's own tmux server (the one
interactive TUIs use, ``runtime.tmux``), independent of the agent: it works for headless
sessions too, and stopping or following up the agent leaves it alone. Started on demand
with the user's ``$SHELL`` (``/bin/sh`` when unset) in the worktree, with the session's
environment (the repo's ``.pa.toml`` env, ``pa new --env``, ``PA_SESSION_ID`` …). That
environment goes through a 0600 file read by a tiny trampoline, never through argv, as
it may hold keys. Discarding the session ends its shell.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

from parallel_agents.config import load_repo_config
from parallel_agents.errors import NotFound, PAError, UsageError
from parallel_agents.models import Session, Status
from parallel_agents.runtime import tmux
from parallel_agents.store import Store

PREFIX = "shell-"

# Reads the spec, removes it (it may hold keys), and becomes the shell. Never carries an
# agent's tag (runtime.wrapper.TAG): `pa stop` must not end what the user runs here.
_TRAMPOLINE = (
    "import json,os,sys\n"
    "p=sys.argv[1]\n"
    "s=json.load(open(p))\n"
    "os.unlink(p)\n"
    "env=dict(os.environ)\n"
    "env.pop('PA_OWNER_SESSION',None)\n"
    "env.update(s['env'])\n"
    "os.chdir(s['cwd'])\n"
    "os.execvpe(s['shell'],[s['shell']],env)\n"
)


def name(sid: str) -> str:
    return f"{PREFIX}{sid}"


def _target(sid: str) -> str:
    return f"={name(sid)}"


def user_shell() -> str:
    sh = os.environ.get("SHELL", "")
    return sh if sh and os.access(sh, os.X_OK) else "/bin/sh"


def is_running(home: Path, sid: str) -> bool:
    info = tmux.panes(home).get(name(sid))
    return info is not None and not info.dead


def _env(store: Store, s: Session) -> dict[str, str]:
    env: dict[str, str] = {}
    with contextlib.suppress(PAError, OSError):
        env.update(load_repo_config(Path(store.repo(s.repo_id).path)).env)
    p = store.home / "sessions" / s.id / "env.json"
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(p.read_text(encoding="utf-8"))
        if isinstance(data, dict):
            env.update({str(k): str(v) for k, v in data.items()})
    extra = s.options.get("env")
    if isinstance(extra, dict):  # e.g. PA_PORT given to the session by pa itself
        env.update({str(k): str(v) for k, v in extra.items()})
    env.update({"PA_SESSION_ID": s.id, "PA_HOME": str(store.home), "PA_WORKTREE": s.worktree})
    return env


def check_worktree(s: Session) -> Path:
    """The session's worktree, or a clear error when it is gone."""
    if s.status == Status.DISCARDED:
        raise NotFound(
            f"session {s.id} is discarded: it has no worktree for a shell",
            hint=f"bring it back first: pa restore {s.id}",
        )
    wt = Path(s.worktree)
    if not wt.is_dir():
        raise NotFound(
            f"the worktree of session {s.id} is gone ({wt})",
            hint="run `pa doctor` to see what happened to it",
        )
    return wt


def ensure(store: Store, s: Session, cols: int = 120, rows: int = 40) -> str:
    """Start the session's shell unless it runs; the tmux session's name."""
    home = store.home
    wt = check_worktree(s)
    info = tmux.panes(home).get(name(s.id))
    if info is not None and not info.dead:
        return name(s.id)
    if info is not None:  # the shell exited but its pane stayed: start afresh
        tmux.run(home, "kill-session", "-t", _target(s.id), check=False)
    d = store.home / "sessions" / s.id
    d.mkdir(parents=True, exist_ok=True)
    spec = d / f"shell-{os.getpid()}-{os.urandom(4).hex()}.json"
    tmux.write_private(
        spec, json.dumps({"shell": user_shell(), "cwd": str(wt), "env": _env(store, s)})
    )
    argv = [sys.executable, "-S", "-c", _TRAMPOLINE, str(spec)]
    if str(spec).endswith(";") or str(wt).endswith(";"):
        raise UsageError(f"cannot pass {wt} to tmux (it ends with ';'): rename the path")
    try:
        tmux.run(
            home, "new-session", "-d", "-s", name(s.id), "-x", str(cols), "-y", str(rows),
            "-c", str(wt), *argv,
        )  # fmt: skip
    except PAError:
        with contextlib.suppress(FileNotFoundError):
            spec.unlink()
        raise
    # `exit` in the shell ends it (pa's server keeps dead TUI panes for their last screen).
    tmux.run(home, "set-option", "-w", "-t", f"{_target(s.id)}:", "remain-on-exit", "off",
             check=False)  # fmt: skip
    return name(s.id)


def attach_argv(home: Path, sid: str) -> list[str]:
    return tmux.tmux_argv(home, "attach-session", "-t", _target(sid))


def end(home: Path, sid: str) -> bool:
    """End the session's shell (and what runs in it); True when there was one."""
    if name(sid) not in tmux.panes(home):
        return False
    tmux.run(home, "kill-session", "-t", _target(sid), check=False)
    return True


def capture(home: Path, sid: str) -> str:
    proc = tmux.run(home, "capture-pane", "-p", "-J", "-t", f"{_target(sid)}:", check=False)
    return proc.stdout if proc.returncode == 0 else ""
