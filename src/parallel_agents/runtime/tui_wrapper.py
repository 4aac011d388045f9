"""The tiny process a tmux pane runs for an interactive session.

It reads ``launch.json`` from its folder (argv, cwd, the full environment, the optional
setup command), starts the agent's TUI on the pane's terminal, waits, and records the exit
code atomically in ``exit``; then it exits with the same code (tmux keeps the dead pane:
remain-on-exit).
The environment comes from the file, not from the tmux server (which may have been
started long ago by another `pa` process with another environment), and secrets never
travel through tmux's argv. Standard library only; run as a script by its path:

    python -S .../tui_wrapper.py DIR
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

# Variables that belong to the pane (tmux sets them), not to the environment pa recorded.
PANE_VARS = ("TERM", "TMUX", "TMUX_PANE", "COLORTERM", "LINES", "COLUMNS")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _ignore(signum: int, frame: object) -> None:
    return None


def main(dir_arg: str) -> int:
    run_dir = Path(dir_arg)
    spec = json.loads((run_dir / "launch.json").read_text(encoding="utf-8"))
    env = {str(k): str(v) for k, v in (spec.get("env") or {}).items()}
    for k in PANE_VARS:
        if k in os.environ:
            env[k] = os.environ[k]
        else:
            env.pop(k, None)
    # The TUI shares our process group, which is the pane's foreground group, so Ctrl-C and
    # window-size changes reach it. We only wait: a handler (not SIG_IGN) so the agent,
    # after exec, gets the default dispositions back.
    # SIGHUP/SIGTERM too, so a killed TUI still gets its exit code recorded.
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, _ignore)
    _write_atomic(run_dir / "wrapper_pid", str(os.getpid()))
    started = time.time()
    setup = spec.get("setup")
    if setup:
        # The repo's setup command, on the first turn, in view of whoever attaches.
        sys.stdout.write("pa: running the repo's setup command…\r\n")
        sys.stdout.flush()
        try:
            rc = subprocess.call(list(setup), cwd=str(spec["cwd"]), env=env)
        except OSError as e:
            sys.stderr.write(f"pa: could not run the setup command: {e}\r\n")
            rc = 127
        if rc != 0:
            sys.stderr.write(f"pa: the setup command failed (exit code {rc})\r\n")
            _write_atomic(
                run_dir / "exit",
                json.dumps({"code": rc, "setup_failed": True, "started": started}),
            )
            return rc if rc >= 0 else 128 - rc
    try:
        proc = subprocess.Popen(spec["argv"], cwd=str(spec["cwd"]), env=env, restore_signals=True)
    except OSError as e:
        sys.stderr.write(f"pa: could not start {spec['argv'][0]}: {e}\n")
        rc = 127
    else:
        _write_atomic(run_dir / "pid", str(proc.pid))
        while True:
            try:
                rc = proc.wait()
                break
            except KeyboardInterrupt:  # pragma: no cover - the handler above prevents it
                continue
    _write_atomic(
        run_dir / "exit", json.dumps({"code": rc, "started": started, "ended": time.time()})
    )
    return rc if rc >= 0 else 128 - rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
