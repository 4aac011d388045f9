"""`pa attach` driven through a real pseudo-terminal: attach, see the TUI, type, detach."""

from __future__ import annotations

import fcntl
import os
import select
import struct
import subprocess
import termios
import time
from pathlib import Path

from parallel_agents.models import Status
from parallel_agents.runtime import tmux
from parallel_agents.sessions.orchestrator import App

from .conftest import BANNER, PA, fake_session, pa_cli, wait_screen


class Pty:
    """A process on a pty whose output we collect."""

    def __init__(self, argv: list[str], cols: int = 120, rows: int = 40) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
        env["TERM"] = "xterm-256color"
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
        )
        os.close(slave)
        self.out = b""

    def read_until(self, needle: str, timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while needle.encode() not in self.out:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"{needle!r} never showed on the pty; got {self.out[-2000:]!r}"
                )
            ready, _, _ = select.select([self.master], [], [], min(left, 0.2))
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:  # EIO: the process closed the pty
                    chunk = b""
                if not chunk and self.proc.poll() is not None:
                    continue
                self.out += chunk
        return self.out.decode("utf-8", "replace")

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def wait(self, timeout: float = 15) -> int:
        """Wait for the process to end, collecting its output to the last byte."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            exited = self.proc.poll() is not None
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:  # EIO: nothing left, the other side is closed
                    chunk = b""
                self.out += chunk
                if chunk:
                    continue
            if exited:
                break
        return self.proc.wait(timeout=1)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


def test_attach_shows_the_tui_and_detaches_with_ctrl_b_d(
    app: App, repo: Path, pa_home: Path
) -> None:
    s = fake_session(app, repo, "echo")
    wait_screen(pa_home, s.id, BANNER)
    term = Pty([*PA, "attach", s.id])
    try:
        term.read_until(BANNER)
        term.read_until("Ctrl-b d: detach")  # the hint in pa's tmux status line
        term.write(b"typed through attach\r")
        term.read_until("got: typed through attach")
        term.write(b"\x02d")  # Ctrl-b d
        assert term.wait() == 0
        assert "[detached" in term.out.decode("utf-8", "replace")
    finally:
        term.close()
    # The agent keeps running after the terminal detached.
    info = tmux.pane(pa_home, s.id)
    assert info is not None and not info.dead
    assert app.store.session(s.id).status == Status.RUNNING
    wait_screen(pa_home, s.id, "got: typed through attach")


def test_attach_refuses_what_it_cannot_attach(app: App, repo: Path, pa_home: Path) -> None:
    import json
    import shlex
    import sys

    made = pa_cli(
        "new", "--cmd", shlex.join([sys.executable, "-c", "pass"]), "x", "--json", cwd=repo
    )
    assert made.returncode == 0, made.stderr
    p = pa_cli("attach", json.loads(made.stdout)["id"])
    assert p.returncode != 0 and "not interactive" in p.stderr

    s = fake_session(app, repo, "echo")
    wait_screen(pa_home, s.id, BANNER)
    p = pa_cli("attach", s.id)  # stdin/stdout are pipes here
    assert p.returncode != 0 and "needs a terminal" in p.stderr

    app.stop(s.id)
    term = Pty([*PA, "attach", s.id])
    try:
        assert term.wait() != 0
        assert "no running TUI" in term.out.decode("utf-8", "replace")
    finally:
        term.close()

    p = pa_cli("attach", "nosuchid")
    assert p.returncode != 0 and "no session" in p.stderr
    assert "Ctrl-b d" in pa_cli("attach", "--help").stdout
