"""pa's own tmux server: one tmux session per interactive pa session, and its pane.

Every command goes to ``tmux -L pa-<hash of PA_HOME>`` (never the user's default server)
with pa's own config file, so the user's ``~/.tmux.conf`` cannot change the prefix key or
the behaviour tests rely on. One tmux session per pa session, named ``pa-<id>``; its single
pane runs ``tui_wrapper.py``, which starts the agent's TUI with the environment recorded
in ``$PA_HOME/sessions/<id>/tui/launch.json`` and records its exit code.

Process mechanics only: it knows no store and no agent. What a session's TUI means for
its status (start, send, stop, poll) is sessions.tui.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import TYPE_CHECKING

from parallel_agents.errors import NotFound, PAError

if TYPE_CHECKING:
    from parallel_agents.config import Settings
    from parallel_agents.models import Session

DEFAULT_COLS = 200
DEFAULT_ROWS = 50
SEND_CHUNK = 512  # characters per send-keys call
SAVED_HISTORY = 200  # scrollback lines kept with the last screen of a TUI that ended

# Our server's own configuration (the user's ~/.tmux.conf is never read).
TMUX_CONF = """\
# Written by pa: the configuration of pa's own tmux server (tmux -L pa-...).
set -g prefix C-b
bind-key d detach-client
set -g remain-on-exit on
set -g history-limit 10000
set -g escape-time 10
# Keys arriving together (a pty, a websocket frame) are still keys: Ctrl-b d must detach.
set -g assume-paste-time 0
set -g default-terminal "tmux-256color"
set -g window-size latest
set -g status on
set -g status-interval 0
set -g status-style "bg=colour236,fg=colour250"
set -g status-left-length 40
set -g status-left " pa #{s/^pa-//:session_name} "
set -g status-right " Ctrl-b d: detach "
set -g window-status-format ""
set -g window-status-current-format ""
"""


# -- plumbing ----------------------------------------------------------------------------
def socket_name(home: Path) -> str:
    """The tmux socket (``-L``) for ``home``: one server per PA_HOME."""
    digest = sha256(str(Path(home).expanduser().resolve()).encode()).hexdigest()
    return f"pa-{digest[:12]}"


def session_name(sid: str) -> str:
    return f"pa-{sid}"


def _session_target(sid: str) -> str:
    return f"={session_name(sid)}"


def _pane_target(sid: str) -> str:
    return f"={session_name(sid)}:"


def tmux_binary() -> str:
    found = shutil.which("tmux")
    if not found:
        raise PAError(
            "interactive sessions need tmux, which is not on PATH",
            hint="install it (apt install tmux / brew install tmux)",
        )
    return found


def config_file(home: Path) -> Path:
    path = home / "tmux.conf"
    try:
        if path.read_text(encoding="utf-8") == TMUX_CONF:
            return path
    except OSError:
        pass
    home.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmux.conf.{os.getpid()}")
    tmp.write_text(TMUX_CONF, encoding="utf-8")
    os.replace(tmp, path)
    return path


def tmux_argv(home: Path, *args: str) -> list[str]:
    """``tmux -L <our socket> -f <our config> ARGS``."""
    return [tmux_binary(), "-L", socket_name(home), "-f", str(config_file(home)), *args]


def run(
    home: Path,
    *args: str,
    input: str | None = None,
    check: bool = True,
    timeout: float = 15,
) -> subprocess.CompletedProcess[str]:
    argv = tmux_argv(home, *args)
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
    for attempt in range(3):
        try:
            proc = subprocess.run(
                argv,
                input=input,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
                stdin=None if input is not None else subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise PAError(f"tmux did not answer within {timeout:g} s: {' '.join(args)}") from e
        # A server that is shutting down as we connect: connect again to a fresh one.
        if proc.returncode != 0 and "server exited unexpectedly" in proc.stderr and attempt < 2:
            time.sleep(0.1 * (attempt + 1))
            continue
        break
    if check and proc.returncode != 0:
        raise PAError(f"tmux {args[0]} failed: {proc.stderr.strip() or proc.returncode}")
    return proc


@dataclass(frozen=True)
class PaneInfo:
    dead: bool
    exit_status: int | None
    pid: int | None


def panes(home: Path) -> dict[str, PaneInfo]:
    """Every pa session's pane on our server: name -> state (empty if no server runs)."""
    return list_panes(home) or {}


def list_panes(home: Path) -> dict[str, PaneInfo] | None:
    """Like :func:`panes`, but None when tmux could not say (an error, not "no server")."""
    try:
        proc = run(
            home,
            "list-panes",
            "-a",
            "-F",
            "#{session_name}\t#{pane_dead}\t#{pane_dead_status}\t#{pane_pid}",
            check=False,
        )
    except PAError:
        return None
    if proc.returncode != 0:
        err = proc.stderr
        gone = ("no server running", "error connecting to", "server exited", "lost server")
        if any(g in err for g in gone):
            return {}  # no server (or it just exited with its last session): no panes
        return None
    out: dict[str, PaneInfo] = {}
    for line in proc.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) != 4 or parts[0] in out:
            continue
        out[parts[0]] = PaneInfo(
            dead=parts[1] == "1",
            exit_status=int(parts[2]) if parts[2].lstrip("-").isdigit() else None,
            pid=int(parts[3]) if parts[3].isdigit() else None,
        )
    return out


def pane(home: Path, sid: str) -> PaneInfo | None:
    """The session's pane, None when it has none; raises when tmux cannot tell."""
    found = list_panes(home)
    if found is None:
        raise PAError("tmux did not answer (list-panes failed); try again")
    return found.get(session_name(sid))


def capture(home: Path, sid: str, *, escapes: bool = False, history: int = 0) -> str:
    """The visible screen of the session's pane, plus ``history`` lines of scrollback
    ("" if there is no pane)."""
    args = ["capture-pane", "-p", "-J", "-t", _pane_target(sid)]
    if escapes:
        args.insert(1, "-e")
    if history:
        args += ["-S", str(-history)]
    proc = run(home, *args, check=False)
    return proc.stdout if proc.returncode == 0 else ""


def display(home: Path, sid: str, fmt: str) -> str:
    return run(home, "display-message", "-p", "-t", _pane_target(sid), fmt).stdout.strip()


def pane_size(settings: Settings) -> tuple[int, int]:
    """Columns and rows of a new pane: settings ``interactive.cols`` / ``interactive.rows``."""

    def num(key: str, default: int, lo: int, hi: int) -> int:
        v = settings.get(f"interactive.{key}")
        try:
            n = int(v) if v is not None else default
        except (TypeError, ValueError):
            n = default
        return max(lo, min(hi, n))

    return num("cols", DEFAULT_COLS, 20, 1000), num("rows", DEFAULT_ROWS, 5, 500)


def run_dir(home: Path, sid: str) -> Path:
    return home / "sessions" / sid / "tui"


def _read_exit(rd: Path) -> dict[str, object] | None:
    try:
        data = json.loads((rd / "exit").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def fresh_exit(rd: Path, since: float | None) -> dict[str, object] | None:
    """The exit record, unless it is older than ``since`` (a previous TUI's)."""
    info = _read_exit(rd)
    if info is None or not since:
        return info
    ended = info.get("ended")
    if isinstance(ended, int | float) and ended < since - 1:
        return None
    return info


def exit_code(rd: Path) -> int | None:
    info = _read_exit(rd)
    code = info.get("code") if info else None
    return code if isinstance(code, int) else None


# -- starting ----------------------------------------------------------------------------
def launch(
    home: Path,
    sid: str,
    *,
    argv: list[str],
    cwd: Path,
    env: dict[str, str],
    setup: list[str] | None,
    turn: int,
    cols: int,
    rows: int,
) -> None:
    """Create (or respawn) session ``sid``'s tmux session, its pane running ``argv`` in
    ``cwd`` through tui_wrapper.py (``setup`` first, when given)."""
    rd = run_dir(home, sid)
    rd.mkdir(parents=True, exist_ok=True)
    for name in ("exit", "pid", "wrapper_pid", "screen.txt"):
        with contextlib.suppress(FileNotFoundError):
            (rd / name).unlink()
    spec = {"argv": argv, "cwd": str(cwd), "env": env, "setup": setup, "turn": turn}
    write_private(rd / "launch.json", json.dumps(spec))
    wrapper = [sys.executable, "-S", str(Path(__file__).with_name("tui_wrapper.py")), str(rd)]
    _check_argv([*wrapper, str(cwd)])
    name = session_name(sid)
    if name in panes(home):
        run(home, "respawn-pane", "-k", "-t", _pane_target(sid), "-c", str(cwd), *wrapper)
    else:
        run(
            home,
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            str(cols),
            "-y",
            str(rows),
            "-c",
            str(cwd),
            *wrapper,
        )


def write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by the owner only (it may hold API keys)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _check_argv(args: Sequence[str]) -> None:
    # tmux reads an argument ending in ';' as a command separator.
    bad = [a for a in args if a.endswith(";")]
    if bad:
        raise PAError(f"cannot pass {bad[0]!r} to tmux (it ends with ';'): rename the path")


# -- typing ------------------------------------------------------------------------------
def type_text(home: Path, sid: str, text: str) -> None:
    """Type ``text`` literally (never through a shell, never parsed by tmux), then Enter.

    One line goes as keystrokes (``send-keys -l``), so a single "1" answers a menu; several
    lines go as one bracketed paste (``paste-buffer -p``) so the TUI does not submit each.
    """
    target = _pane_target(sid)
    body = text.rstrip("\r\n")
    # A pane scrolled back by someone attached is in copy mode, which would eat the keys.
    in_mode = run(home, "display-message", "-p", "-t", target, "#{pane_in_mode}", check=False)
    if in_mode.stdout.strip() == "1":
        run(home, "send-keys", "-t", target, "-X", "cancel", check=False)
    if "\n" in body:
        buf = f"pa-send-{sid}"
        run(home, "load-buffer", "-b", buf, "-", input=body)
        run(home, "paste-buffer", "-p", "-d", "-b", buf, "-t", target)
    else:
        for i in range(0, len(body), SEND_CHUNK):
            send_literal(home, target, body[i : i + SEND_CHUNK])
    run(home, "send-keys", "-t", target, "Enter")


def send_literal(home: Path, target: str, chunk: str) -> None:
    """``send-keys -l`` for ``chunk``; trailing ';' go as hex (tmux would eat them)."""
    head = chunk.rstrip(";")
    if head:
        run(home, "send-keys", "-t", target, "-l", "--", head)
    semis = len(chunk) - len(head)
    if semis:
        run(home, "send-keys", "-t", target, "-H", *(["3b"] * semis))


def send_bytes(home: Path, sid: str, data: bytes) -> None:
    """Raw bytes into the pane (as if typed on a terminal), e.g. escape sequences."""
    target = _pane_target(sid)
    for i in range(0, len(data), SEND_CHUNK):
        run(home, "send-keys", "-t", target, "-H", *(f"{b:02x}" for b in data[i : i + SEND_CHUNK]))


# -- stopping ----------------------------------------------------------------------------
def kill(home: Path, sid: str, *, grace: float = 5.0) -> None:
    """Terminate the TUI's process group, wait, kill; keep its last screen; drop the session."""
    info = pane(home, sid)
    if info is None:
        return
    if not info.dead and info.pid:
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(info.pid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                now = pane(home, sid)
                if now is None or now.dead:
                    break
                time.sleep(0.05)
            else:
                continue
            break
    save_screen(home, sid)
    run(home, "kill-session", "-t", _session_target(sid), check=False)


def save_screen(home: Path, sid: str) -> str:
    # With scrollback: tmux's "Pane is dead" line pushes a dead pane's screen up into it.
    text = capture(home, sid, history=SAVED_HISTORY).strip("\n") + "\n"
    if text.strip():
        rd = run_dir(home, sid)
        rd.mkdir(parents=True, exist_ok=True)
        (rd / "screen.txt").write_text(text, encoding="utf-8")
    return text


def saved_screen(rd: Path) -> str:
    try:
        return (rd / "screen.txt").read_text(encoding="utf-8")
    except OSError:
        return ""


# -- orphans -----------------------------------------------------------------------------
def end_orphan(rd: Path, grace: float = 2.0) -> None:
    """A TUI whose tmux session was killed from outside may live on (codex ignores the
    hang-up): end its process group, if the recorded wrapper is still ours."""
    try:
        pid = int((rd / "wrapper_pid").read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return  # gone (or no /proc to be sure it is ours: leave it)
    if str(rd).encode() not in cmdline or not any(b"tui_wrapper" in a for a in cmdline):
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not Path(f"/proc/{pid}").exists() or _zombie(pid):
                return
            time.sleep(0.05)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


# -- attaching ---------------------------------------------------------------------------
def attach_argv(session: Session, home: Path | None = None) -> list[str]:
    """``tmux -L <sock> attach-session -t =pa-<id>``: detach again with Ctrl-b d."""
    from parallel_agents.config import pa_home

    h = home or pa_home()
    return tmux_argv(h, "attach-session", "-t", _session_target(session.id))


def prepare_attach(home: Path, session: Session) -> None:
    """Check the session's TUI is there to attach to; let the window follow the terminal."""
    info = pane(home, session.id)
    if info is None:
        raise NotFound(
            f"session {session.id} has no running TUI",
            hint=f"send a follow-up to start it again: pa send {session.id} PROMPT",
        )
    run(
        home,
        "set-option",
        "-w",
        "-t",
        _pane_target(session.id),
        "window-size",
        "latest",
        check=False,
    )
