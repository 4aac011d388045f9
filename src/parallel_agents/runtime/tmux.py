"""Interactive sessions in tmux, on the project's own tmux server.

Every command goes to ``tmux -L pa-<hash of PA_HOME>`` (never the user's default server)
with pa's own config file, so the user's ``~/.tmux.conf`` cannot change the prefix key or
the behaviour tests rely on. One tmux session per pa session, named ``pa-<id>``; its single
pane runs ``tui_wrapper.py``, which starts the agent's TUI with the environment recorded
in ``$PA_HOME/sessions/<id>/tui/launch.json`` and records its exit code.

Entry points (called by ``service.App`` and the supervisor):

* :func:`start_interactive` — launch the TUI of a queued session (turn 1).
* :func:`send_text` — type a follow-up or an answer into the pane; restarts the TUI
  (resuming the agent's own conversation) when it is not running.
* :func:`stop_interactive` — end the TUI and the tmux session.
* :func:`poll` — the pane fallback: exits, and status from the pane's text for what the
  hooks do not tell. Called from ``Supervisor.tick``.
* :func:`attach_argv` — the command line that attaches a terminal.
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

from parallel_agents.errors import Conflict, NotFound, PAError
from parallel_agents.models import Status
from parallel_agents.runtime.wrapper import TAG
from parallel_agents.sessions import interactive
from parallel_agents.sessions.interactive import Signal

if TYPE_CHECKING:
    from parallel_agents.config import Settings
    from parallel_agents.models import Session, Turn
    from parallel_agents.sessions.headless import Supervisor
    from parallel_agents.sessions.orchestrator import App
    from parallel_agents.store import Store

DEFAULT_COLS = 200
DEFAULT_ROWS = 50
POLL_INTERVAL = 0.5  # seconds between pane looks per PA_HOME
FALLBACK_GRACE = 3.0  # seconds a pane must disagree with a hooked agent before it counts
START_GRACE = 30.0  # a `starting` session this young may not have its tmux session yet
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


def _fresh_exit(rd: Path, turn: Turn | None) -> dict[str, object] | None:
    """The exit record, unless it is older than the current turn (a previous TUI's)."""
    info = _read_exit(rd)
    if info is None or turn is None or not turn.started_at:
        return info
    ended = info.get("ended")
    if isinstance(ended, int | float) and ended < turn.started_at - 1:
        return None
    return info


def _exit_code(rd: Path) -> int | None:
    info = _read_exit(rd)
    code = info.get("code") if info else None
    return code if isinstance(code, int) else None


# -- starting ----------------------------------------------------------------------------
def start_interactive(app: App, sid: str) -> None:
    """Start the TUI of queued session ``sid`` in a new tmux session (turn 1)."""
    store = app.store
    try:
        store.set_status(sid, Status.STARTING, expect=[Status.QUEUED])
    except PAError:
        return  # someone else started (or stopped) it
    s = store.session(sid)
    turn = store.last_turn(sid)
    if turn is None:
        store.set_status(sid, Status.FAILED, error="no turn to run")
        return
    _start(app.sup, s, turn)


def _start(sup: Supervisor, s: Session, turn: Turn) -> None:
    store = sup.store
    try:
        launch_tui(sup, s, turn)
    except (PAError, OSError) as e:
        msg = e.message if isinstance(e, PAError) else f"could not start the TUI: {e}"
        if isinstance(e, PAError) and e.hint:
            msg += f" ({e.hint})"
        with store.tx() as db:
            store.update_turn(db, s.id, turn.n, status="failed", error=msg, ended_at=time.time())
            store.set_status(s.id, Status.FAILED, db=db, error=msg)
        raise PAError(msg) from e
    with store.tx() as db:
        row = store.session_state(db, s.id)
        if row is None or row.status != Status.STARTING:
            return  # a hook was faster (or it was stopped): it knows better
        now = time.time()
        if turn.prompt.strip():
            store.update_turn(db, s.id, turn.n, status="running", started_at=now)
            store.set_status(s.id, Status.RUNNING, db=db, error=None)
        else:
            # No prompt: the TUI waits at its prompt box; the turn starts when one is typed.
            store.set_status(s.id, Status.IDLE, db=db, error=None)


def launch_tui(sup: Supervisor, s: Session, turn: Turn) -> None:
    """Create (or respawn) the tmux session of ``s`` running its agent's TUI for ``turn``."""
    from parallel_agents.agents import get_agent
    from parallel_agents.config import load_repo_config

    store = sup.store
    home = store.home
    tmux_binary()
    agent = get_agent(s.agent)
    ctx = sup.context(s, turn.n, turn.prompt)
    if s.agent != "command":
        binary = agent.resolve_binary(ctx.settings)
        agent.check_version(binary)
    launch = interactive.build_launch(agent, ctx)
    rcfg = load_repo_config(Path(store.repo(s.repo_id).path))
    cwd = Path(launch.cwd or s.worktree)
    if not cwd.is_dir():
        raise Conflict(f"the worktree of session {s.id} is gone ({cwd})")
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
    env.update(ctx.env)  # the repo's env, then `pa new --env`
    env.update(launch.env)
    env.update({"PA_SESSION_ID": s.id, "PA_HOME": str(home), "PA_WORKTREE": s.worktree})
    env[TAG] = s.id  # what the TUI starts is found (and ended) by stop and discard
    rd = run_dir(home, s.id)
    rd.mkdir(parents=True, exist_ok=True)
    for name in ("exit", "pid", "wrapper_pid", "screen.txt"):
        with contextlib.suppress(FileNotFoundError):
            (rd / name).unlink()
    setup = ["sh", "-c", rcfg.setup] if (rcfg.setup and turn.n == 1) else None
    spec = {"argv": launch.argv, "cwd": str(cwd), "env": env, "setup": setup, "turn": turn.n}
    interactive.write_private(rd / "launch.json", json.dumps(spec))
    wrapper = [sys.executable, "-S", str(Path(__file__).with_name("tui_wrapper.py")), str(rd)]
    _check_argv([*wrapper, str(cwd)])
    cols, rows = pane_size(sup.settings)
    name = session_name(s.id)
    if name in panes(home):
        run(home, "respawn-pane", "-k", "-t", _pane_target(s.id), "-c", str(cwd), *wrapper)
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


def _check_argv(args: Sequence[str]) -> None:
    # tmux reads an argument ending in ';' as a command separator.
    bad = [a for a in args if a.endswith(";")]
    if bad:
        raise PAError(f"cannot pass {bad[0]!r} to tmux (it ends with ';'): rename the path")


# -- typing ------------------------------------------------------------------------------
def send_text(app: App, session: Session, text: str) -> None:
    """Type ``text`` into the session's TUI, then Enter.

    A follow-up typed while the session is idle starts a new turn. When the TUI is not
    running (it exited, was stopped, or the machine restarted) it is started again with the
    text as its prompt, resuming the agent's own conversation where the adapter can.
    """
    store = app.store
    home = store.home
    s = store.session(session.id)
    if s.status == Status.DISCARDED:
        raise Conflict(f"session {s.id} was discarded", hint=f"bring it back: pa restore {s.id}")
    if s.status == Status.QUEUED:
        raise Conflict(f"session {s.id} is still starting", hint=f"try again: pa send {s.id} …")
    info = pane(home, s.id)
    if info is None or info.dead:
        if s.status in (Status.STARTING, Status.RUNNING, Status.NEEDS_INPUT):
            poll(app.sup, force=True)  # settle how it ended first
            s = store.session(s.id)
        if s.status in (Status.STARTING, Status.RUNNING, Status.NEEDS_INPUT):
            raise Conflict(f"session {s.id} is {s.status.value} but its TUI is not running")
        if not Path(s.worktree).is_dir():
            raise Conflict(
                f"the worktree of session {s.id} is gone ({s.worktree})",
                hint=f"pa discard {s.id} to clean up",
            )
        with store.tx() as db:
            n = store.add_turn(db, s.id, text, {})
            store.set_status(s.id, Status.STARTING, db=db, error=None)
        turn = store.turn(s.id, n)
        assert turn is not None
        _start(app.sup, store.session(s.id), turn)
        return
    if s.status == Status.IDLE:
        interactive.apply(store, s.id, Signal.RUNNING, source="send", prompt=text)
    type_text(home, s.id, text)


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
def stop_interactive(app: App, session: Session) -> None:
    """End the TUI (terminate, then kill its process group) and its tmux session.

    An active session becomes ``stopped``; an idle one stays idle (its TUI is closed; a
    follow-up starts it again). Safe to call twice.
    """
    store = app.store
    home = store.home
    s = store.session(session.id)
    if s.status == Status.QUEUED:
        store.set_status(s.id, Status.STOPPED, error="stopped before it started")
        return
    active = s.status in (Status.STARTING, Status.RUNNING, Status.NEEDS_INPUT)
    if active:
        with store.tx() as db:
            row = store.session_state(db, s.id)
            opts = row.options() if row else {}
            opts["stop_reason"] = opts.get("stop_reason") or "stop"
            store.set_status(s.id, s.status, db=db, options=opts)  # same status: fields only
    grace = float(app.settings.data.get("stop_grace") or 5.0)
    kill(home, s.id, grace=grace)
    if active:
        rd = run_dir(home, s.id)
        interactive.exited(store, s.id, _exit_code(rd), screen=_saved_screen(rd))
        with contextlib.suppress(PAError):
            if store.session(s.id).status in (Status.STARTING, Status.RUNNING, Status.NEEDS_INPUT):
                store.set_status(s.id, Status.STOPPED, error="stopped by the user")
    # The stopped turn (or one that ended since the last poll) is checkpointed now: once
    # the session is no longer live, no poll comes back to it.
    s = store.session(s.id)
    turn = store.last_turn(s.id)
    if interactive.checkpoint_due(s, turn):
        assert turn is not None
        interactive.run_after_turn(app.sup, s, turn)


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
    _save_screen(home, sid)
    run(home, "kill-session", "-t", _session_target(sid), check=False)


def _save_screen(home: Path, sid: str) -> str:
    # With scrollback: tmux's "Pane is dead" line pushes a dead pane's screen up into it.
    text = capture(home, sid, history=SAVED_HISTORY).strip("\n") + "\n"
    if text.strip():
        rd = run_dir(home, sid)
        rd.mkdir(parents=True, exist_ok=True)
        (rd / "screen.txt").write_text(text, encoding="utf-8")
    return text


def _saved_screen(rd: Path) -> str:
    try:
        return (rd / "screen.txt").read_text(encoding="utf-8")
    except OSError:
        return ""


# -- the pane fallback -------------------------------------------------------------------
_last_poll: dict[str, float] = {}


def poll(sup: Supervisor, *, force: bool = False) -> int:
    """Bring interactive sessions' statuses up to date from tmux; returns how many changed.

    Cheap when there is nothing to do (one query); looks at panes at most every
    ``POLL_INTERVAL`` seconds unless ``force``. Handles: the TUI exited (idle, failed or
    stopped, with its exit code), its tmux session vanished (interrupted), and the pane
    fallback for status; checkpoints turns that finished.
    """
    store = sup.store
    home = store.home
    rows = store.interactive_session_ids(interactive.LIVE)
    if not rows:
        return 0
    key = str(home)
    now = time.monotonic()
    if not force and now - _last_poll.get(key, 0.0) < POLL_INTERVAL:
        return 0
    _last_poll[key] = now
    if shutil.which("tmux") is None:
        return 0
    pane_map = list_panes(home)
    if pane_map is None:
        return 0  # tmux did not answer: never take that for "every TUI is gone"
    changed = 0
    for sid in rows:
        try:
            changed += _poll_one(sup, store, home, sid, pane_map)
        except PAError:
            continue  # moved by someone else meanwhile; next pass sees it
    return changed


def _poll_one(
    sup: Supervisor, store: Store, home: Path, sid: str, pane_map: dict[str, PaneInfo]
) -> int:
    from parallel_agents.agents import get_agent

    s = store.session(sid)
    info = pane_map.get(session_name(sid))
    rd = run_dir(home, sid)
    changed = 0
    if s.status == Status.STARTING:
        if info is None and time.time() - s.updated_at > START_GRACE:
            changed += interactive.exited(store, sid, _exit_code(rd), gone=True)
        return changed
    if info is None or info.dead:
        if s.status in (Status.RUNNING, Status.NEEDS_INPUT):
            exit_info = _fresh_exit(rd, store.last_turn(sid))
            code = exit_info.get("code") if exit_info else None
            if not isinstance(code, int):
                code = info.exit_status if info is not None else None
            screen = _save_screen(home, sid) if info is not None else _saved_screen(rd)
            if info is None:
                _end_orphan(rd)
            changed += interactive.exited(store, sid, code, screen=screen, gone=info is None)
    else:
        text = capture(home, sid)
        try:
            agent = get_agent(s.agent)
        except PAError:
            agent = None
        sig = interactive.classify_pane(text, interactive.patterns_for(agent))
        changed += _pane_fallback(store, s, sig)
    s = store.session(sid)
    turn = store.last_turn(sid)
    if interactive.checkpoint_due(s, turn):
        assert turn is not None
        interactive.run_after_turn(sup, s, turn)
    return changed


def _end_orphan(rd: Path, grace: float = 2.0) -> None:
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


def _pane_fallback(store: Store, s: Session, sig: Signal | None) -> int:
    """Apply what the pane shows, unless the agent's own signals say otherwise.

    For signals an agent delivers itself (``interactive.STRUCTURED``), the pane must show
    the other state for ``FALLBACK_GRACE`` seconds with no hook arriving meanwhile (a hook
    that never came, e.g. no Stop after a refused permission). The pane state and since
    when it shows are kept with the session, so short-lived CLI processes agree with the
    server.
    """
    info = s.options.get("interactive") or {}
    seen = info.get("pane") if isinstance(info.get("pane"), dict) else {}
    now = time.time()
    value = sig.value if sig is not None else None
    since = seen.get("since") if isinstance(seen, dict) else None
    if not isinstance(seen, dict) or seen.get("signal") != value or not isinstance(since, float):
        since = now
        interactive.note_pane(store, s.id, value, now)
    if sig is None:
        if s.status != Status.NEEDS_INPUT:
            return 0
        sig = Signal.RUNNING  # the dialog went away and nothing else shows yet
    target = interactive.SIGNAL_STATUS[sig]
    if s.status == target:
        return 0
    if sig in interactive.STRUCTURED.get(s.agent, frozenset()):
        last_hook = float(info.get("last_hook_at") or 0.0)
        if now - since < FALLBACK_GRACE or last_hook >= since:
            return 0
    return int(interactive.apply(store, s.id, sig, source="pane"))


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
