"""The tiny process that owns one agent turn after `pa` has gone away.

Started detached (own session) by runtime.local. It runs the optional setup command,
then the agent with stdout/stderr going to files, and records the exit code
atomically. Standard library only: it must start fast and not import the package.
Run as: python -m parallel_agents.runtime.wrapper TURN_DIR
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _run_setup(turn_dir: Path, spec: dict[str, object], env: dict[str, str]) -> int:
    setup = spec.get("setup")
    if not setup:
        return 0
    with open(turn_dir / "setup.log", "wb") as log:
        proc = subprocess.Popen(
            list(setup),  # type: ignore[call-overload]
            cwd=str(spec["cwd"]),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
        _write_atomic(turn_dir / "pid", str(proc.pid))
        rc = proc.wait()
    _write_atomic(turn_dir / "setup_exit", str(rc))
    return rc


def _ignore(signum: int, frame: object) -> None:
    return None


def main(turn_dir_arg: str) -> int:
    turn_dir = Path(turn_dir_arg)
    spec = json.loads((turn_dir / "launch.json").read_text(encoding="utf-8"))
    env = dict(os.environ)
    orig = env.pop("PA_ORIG_PYTHONPATH", "__pa_unset__")
    if orig == "__pa_unset__":
        env.pop("PYTHONPATH", None)
    else:
        env["PYTHONPATH"] = orig
    env.update(spec.get("env") or {})
    # The agent gets its own process group so `pa stop` can signal it (and its
    # children) while this wrapper survives to record how it ended.
    # A handler (not SIG_IGN) so the agent, after exec, gets default dispositions back.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _ignore)
    _write_atomic(turn_dir / "wrapper_pid", str(os.getpid()))
    rc = _run_setup(turn_dir, spec, env)
    if rc != 0:
        _write_atomic(turn_dir / "exit", json.dumps({"code": rc, "setup_failed": True}))
        return 0
    stdin_path = turn_dir / "stdin"
    started = time.time()
    try:
        with (
            open(turn_dir / "stdout", "ab") as out,
            open(turn_dir / "stderr", "ab") as err,
            open(stdin_path if stdin_path.exists() else os.devnull, "rb") as inp,
        ):
            proc = subprocess.Popen(
                spec["argv"],
                cwd=str(spec["cwd"]),
                env=env,
                stdin=inp,
                stdout=out,
                stderr=err,
                process_group=0,
                restore_signals=True,
            )
            _write_atomic(turn_dir / "pid", str(proc.pid))
            rc = proc.wait()
    except OSError as e:
        with open(turn_dir / "stderr", "ab") as err:
            err.write(f"pa: could not start {spec['argv'][0]}: {e}\n".encode())
        rc = 127
    _write_atomic(
        turn_dir / "exit",
        json.dumps({"code": rc, "started": started, "ended": time.time()}),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
