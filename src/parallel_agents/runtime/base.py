"""What a runtime offers the engines (issue 19): start a turn, read its output by offset,
its exit record, whether it may still run, stop it.

A turn always has its ``TurnFiles`` folder on this machine: the local runtime's wrapper
writes there itself; a runtime elsewhere mirrors the turn's output and exit record into
it as it reads them back, so ingestion (offsets, exactly-once) is the same for every
runtime.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from parallel_agents.runtime.wrapper import CUT, LAUNCH

# The runtimes a session may ask for (``options.runtime``, setting ``runtime.kind``).
KINDS = ("local", "ray")


def _read_int(p: Path) -> int | None:
    try:
        return int(p.read_text().strip())
    except (OSError, ValueError):
        return None


class NoRoom(Exception):
    """The runtime has no room for a new turn now (every Ray node's ``pa_agent`` slots are
    taken): the session waits ``queued`` and the scheduler tries again on a later pass."""


@dataclass
class TurnFiles:
    dir: Path

    @property
    def stdout(self) -> Path:
        return self.dir / "stdout"

    @property
    def stderr(self) -> Path:
        return self.dir / "stderr"

    @property
    def exit(self) -> Path:
        return self.dir / "exit"

    @property
    def setup_log(self) -> Path:
        return self.dir / "setup.log"

    def pid(self) -> int | None:
        return _read_int(self.dir / "pid")

    def wrapper_pid(self) -> int | None:
        return _read_int(self.dir / "wrapper_pid")

    def launch(self) -> Path | None:
        """The turn's launch spec when a wrapper was started for it (or was about to be);
        ``launch.json`` is what earlier builds wrote (JSON, read by a slower wrapper)."""
        for name in (LAUNCH, "launch.json"):
            if (self.dir / name).exists():
                return self.dir / name
        return None

    def cut_info(self) -> tuple[int, int] | None:
        """Where the output cap cut stdout and how many bytes it dropped there, once the
        wrapper has kept the tail (``wrapper.CUT``: "offset bytes")."""
        try:
            at, size = (self.dir / CUT).read_text().split()
            return int(at), int(size)
        except (OSError, ValueError):
            return None

    def read_stdout(self, offset: int, size: int) -> tuple[bytes, int]:
        """At most ``size`` bytes of stdout from ``offset``, and stdout's whole size."""
        total = self.stdout.stat().st_size
        with open(self.stdout, "rb") as f:
            f.seek(offset)
            return f.read(size), total

    def exit_info(self) -> dict[str, object] | None:
        try:
            data = json.loads(self.exit.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None


@dataclass
class LaunchSpec:
    """One turn to run: the agent's argv in ``cwd`` with ``env`` (secrets included: a
    runtime keeps them out of anything but the agent's process), its stdin, the repo's
    setup command (first turn only) and the output cap (``output.max_bytes``)."""

    session_id: str
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    stdin: bytes | None = None
    setup: list[str] | None = None
    max_bytes: int = 0
    # What a runtime away from this machine needs to rebuild the worktree there.
    repo_path: Path | None = None
    base_commit: str | None = None
    branch: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


class Runtime(Protocol):
    """The process mechanics the engines (``sessions/headless.py``) use for a turn."""

    kind: str
    # Seconds a stopped turn's end may take to be read home once ``stop`` returned (its
    # agent is gone by then): `pa stop` waits that long to show how the turn ended.
    end_wait: float

    def start(self, files: TurnFiles, spec: LaunchSpec) -> int | None:
        """Start the turn detached; its handle (the local wrapper's pid), if it has one."""
        ...

    def read(self, files: TurnFiles, offset: int, size: int) -> tuple[bytes, int]:
        """At most ``size`` bytes of the turn's stdout from ``offset``, and how long the
        output is so far."""
        ...

    def exit_info(self, files: TurnFiles) -> dict[str, object] | None:
        """The turn's exit record (``{"code": ...}``) once it ended; its output is then
        complete."""
        ...

    def alive(self, files: TurnFiles) -> bool:
        """Whether the turn may still run (False: gone without an exit record)."""
        ...

    def stop(self, files: TurnFiles, grace: float) -> None:
        """Interrupt, then terminate, then kill the turn's agent."""
        ...
