"""Interactive sessions' TUIs: start one, type into it, stop it, and follow its pane.

The tmux mechanics are runtime.tmux; the meaning of a signal is sessions.interactive.
Everything here works through a ``Turns`` (the store, the settings, a turn's context and
its end), which the headless supervisor is.

Entry points (called by the orchestrator's ``App`` and the supervisor):

* :func:`start_interactive` / :func:`start` — launch the TUI of a queued session (turn 1).
* :func:`send_text` / :func:`send` — type a follow-up or an answer into the pane; restarts
  the TUI (resuming the agent's own conversation) when it is not running.
* :func:`stop_interactive` / :func:`stop` — end the TUI and the tmux session.
* :func:`poll` — the pane fallback: exits, and status from the pane's text for what the
  hooks do not tell. Called from ``Supervisor.tick``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from parallel_agents.agents import get_agent
from parallel_agents.agents.tui import STRUCTURED, build_launch, classify_pane, patterns_for
from parallel_agents.config import load_repo_config
from parallel_agents.errors import Conflict, PAError
from parallel_agents.models import SIGNAL_STATUS, Signal, Status
from parallel_agents.runtime import tmux
from parallel_agents.runtime.wrapper import TAG
from parallel_agents.sessions import interactive
from parallel_agents.sessions.turns import Turns

if TYPE_CHECKING:
    from parallel_agents.models import Session, Turn
    from parallel_agents.store import Store

POLL_INTERVAL = 0.5  # seconds between pane looks per PA_HOME
FALLBACK_GRACE = 3.0  # seconds a pane must disagree with a hooked agent before it counts
START_GRACE = 30.0  # a `starting` session this young may not have its tmux session yet


class Host(Protocol):
    """What the ``*_interactive``/``send_text`` entry points need of the orchestrator's
    App: its supervisor, as a ``Turns`` (typed here so this module does not import it)."""

    @property
    def sup(self) -> Turns: ...


# -- starting ----------------------------------------------------------------------------
def start_interactive(app: Host, sid: str) -> None:
    start(app.sup, sid)


def start(turns: Turns, sid: str) -> None:
    """Start the TUI of queued session ``sid`` in a new tmux session (turn 1)."""
    store = turns.store
    try:
        store.set_status(sid, Status.STARTING, expect=[Status.QUEUED])
    except PAError:
        return  # someone else started (or stopped) it
    s = store.session(sid)
    turn = store.last_turn(sid)
    if turn is None:
        store.set_status(sid, Status.FAILED, error="no turn to run")
        return
    _start(turns, s, turn)


def _start(turns: Turns, s: Session, turn: Turn) -> None:
    store = turns.store
    try:
        launch_tui(turns, s, turn)
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


def launch_tui(turns: Turns, s: Session, turn: Turn) -> None:
    """Create (or respawn) the tmux session of ``s`` running its agent's TUI for ``turn``."""
    store = turns.store
    home = store.home
    tmux.tmux_binary()
    agent = get_agent(s.agent)
    ctx = turns.context(s, turn.n, turn.prompt)
    if s.agent != "command":
        binary = agent.resolve_binary(ctx.settings)
        agent.check_version(binary)
    launch = build_launch(agent, ctx)
    rcfg = load_repo_config(Path(store.repo(s.repo_id).path))
    cwd = Path(launch.cwd or s.worktree)
    if not cwd.is_dir():
        raise Conflict(f"the worktree of session {s.id} is gone ({cwd})")
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
    env.update(ctx.env)  # the repo's env, then `pa new --env`
    env.update(launch.env)
    env.update({"PA_SESSION_ID": s.id, "PA_HOME": str(home), "PA_WORKTREE": s.worktree})
    env[TAG] = s.id  # what the TUI starts is found (and ended) by stop and discard
    setup = ["sh", "-c", rcfg.setup] if (rcfg.setup and turn.n == 1) else None
    cols, rows = tmux.pane_size(turns.settings)
    tmux.launch(
        home,
        s.id,
        argv=launch.argv,
        cwd=cwd,
        env=env,
        setup=setup,
        turn=turn.n,
        cols=cols,
        rows=rows,
    )


# -- typing ------------------------------------------------------------------------------
def send_text(app: Host, session: Session, text: str) -> None:
    send(app.sup, session, text)


def send(turns: Turns, session: Session, text: str) -> None:
    """Type ``text`` into the session's TUI, then Enter.

    A follow-up typed while the session is idle starts a new turn. When the TUI is not
    running (it exited, was stopped, or the machine restarted) it is started again with the
    text as its prompt, resuming the agent's own conversation where the adapter can.
    """
    store = turns.store
    home = store.home
    s = store.session(session.id)
    if s.status == Status.DISCARDED:
        raise Conflict(f"session {s.id} was discarded", hint=f"bring it back: pa restore {s.id}")
    if s.status == Status.QUEUED:
        raise Conflict(f"session {s.id} is still starting", hint=f"try again: pa send {s.id} …")
    info = tmux.pane(home, s.id)
    if info is None or info.dead:
        if s.status in (Status.STARTING, Status.RUNNING, Status.NEEDS_INPUT):
            poll(turns, force=True)  # settle how it ended first
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
        _start(turns, store.session(s.id), turn)
        return
    if s.status == Status.IDLE:
        interactive.apply(store, s.id, Signal.RUNNING, source="send", prompt=text)
    tmux.type_text(home, s.id, text)


# -- stopping ----------------------------------------------------------------------------
def stop_interactive(app: Host, session: Session) -> None:
    stop(app.sup, session)


def stop(turns: Turns, session: Session) -> None:
    """End the TUI (terminate, then kill its process group) and its tmux session.

    An active session becomes ``stopped``; an idle one stays idle (its TUI is closed; a
    follow-up starts it again). Safe to call twice.
    """
    store = turns.store
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
    grace = float(turns.settings.data.get("stop_grace") or 5.0)
    tmux.kill(home, s.id, grace=grace)
    if active:
        rd = tmux.run_dir(home, s.id)
        interactive.exited(store, s.id, tmux.exit_code(rd), screen=tmux.saved_screen(rd))
        with contextlib.suppress(PAError):
            if store.session(s.id).status in (Status.STARTING, Status.RUNNING, Status.NEEDS_INPUT):
                store.set_status(s.id, Status.STOPPED, error="stopped by the user")
    # The stopped turn (or one that ended since the last poll) is checkpointed now: once
    # the session is no longer live, no poll comes back to it.
    s = store.session(s.id)
    turn = store.last_turn(s.id)
    if interactive.checkpoint_due(s, turn):
        assert turn is not None
        run_after_turn(turns, s, turn)


def run_after_turn(turns: Turns, s: Session, turn: Turn) -> None:
    """Checkpoint a finished interactive turn (the same end as a headless turn's)."""
    interactive.mark_checkpointed(turns.store, s.id, turn.n)
    turns.after_turn(s.id)


# -- the pane fallback -------------------------------------------------------------------
_last_poll: dict[str, float] = {}


def poll(turns: Turns, *, force: bool = False) -> int:
    """Bring interactive sessions' statuses up to date from tmux; returns how many changed.

    Cheap when there is nothing to do (one query); looks at panes at most every
    ``POLL_INTERVAL`` seconds unless ``force``. Handles: the TUI exited (idle, failed or
    stopped, with its exit code), its tmux session vanished (interrupted), and the pane
    fallback for status; checkpoints turns that finished.
    """
    store = turns.store
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
    pane_map = tmux.list_panes(home)
    if pane_map is None:
        return 0  # tmux did not answer: never take that for "every TUI is gone"
    changed = 0
    for sid in rows:
        try:
            changed += _poll_one(turns, sid, pane_map)
        except PAError:
            continue  # moved by someone else meanwhile; next pass sees it
    return changed


def _poll_one(turns: Turns, sid: str, pane_map: dict[str, tmux.PaneInfo]) -> int:
    store = turns.store
    home = store.home
    s = store.session(sid)
    info = pane_map.get(tmux.session_name(sid))
    rd = tmux.run_dir(home, sid)
    changed = 0
    if s.status == Status.STARTING:
        if info is None and time.time() - s.updated_at > START_GRACE:
            changed += interactive.exited(store, sid, tmux.exit_code(rd), gone=True)
        return changed
    if info is None or info.dead:
        if s.status in (Status.RUNNING, Status.NEEDS_INPUT):
            turn = store.last_turn(sid)
            exit_info = tmux.fresh_exit(rd, turn.started_at if turn is not None else None)
            code = exit_info.get("code") if exit_info else None
            if not isinstance(code, int):
                code = info.exit_status if info is not None else None
            screen = tmux.save_screen(home, sid) if info is not None else tmux.saved_screen(rd)
            if info is None:
                tmux.end_orphan(rd)
            changed += interactive.exited(store, sid, code, screen=screen, gone=info is None)
    else:
        text = tmux.capture(home, sid)
        try:
            agent = get_agent(s.agent)
        except PAError:
            agent = None
        sig = classify_pane(text, patterns_for(agent))
        changed += _pane_fallback(store, s, sig)
    s = store.session(sid)
    turn = store.last_turn(sid)
    if interactive.checkpoint_due(s, turn):
        assert turn is not None
        run_after_turn(turns, s, turn)
    return changed


def _pane_fallback(store: Store, s: Session, sig: Signal | None) -> int:
    """Apply what the pane shows, unless the agent's own signals say otherwise.

    For signals an agent delivers itself (``agents.tui.STRUCTURED``), the pane must show
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
    target = SIGNAL_STATUS[sig]
    if s.status == target:
        return 0
    if sig in STRUCTURED.get(s.agent, frozenset()):
        last_hook = float(info.get("last_hook_at") or 0.0)
        if now - since < FALLBACK_GRACE or last_hook >= since:
            return 0
    return int(interactive.apply(store, s.id, sig, source="pane"))
