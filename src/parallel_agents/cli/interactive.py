"""CLI commands for interactive sessions: ``pa attach`` and ``pa hook``.

Imports stay lazy: ``pa hook`` runs for every hook an agent fires and must start fast.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import click

HOOK_STDIN_TIMEOUT = 5.0  # seconds to wait for a payload on stdin
MAX_PAYLOAD = 4 * 1024 * 1024
_SID = re.compile(r"[0-9a-z][0-9a-z_-]{0,63}")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("session_id")
def attach(session_id: str) -> None:
    """Attach this terminal to an interactive session's TUI (in pa's own tmux).

    Detach again with Ctrl-b d: the agent keeps running. Type into the TUI as usual; a
    permission prompt is answered with its number (or `pa send ID 1` from elsewhere).
    """
    from parallel_agents.errors import UsageError
    from parallel_agents.runtime import tmux
    from parallel_agents.sessions.orchestrator import App

    app = App.open()
    try:
        s = app.store.resolve_session(session_id)
        if not s.interactive:
            raise UsageError(
                f"session {s.id} is not interactive: there is no terminal to attach",
                hint=f"follow its output with `pa logs -f {s.id}`",
            )
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise UsageError("pa attach needs a terminal (stdin and stdout are not a tty)")
        home = app.store.home
        tmux.prepare_attach(home, s)
        argv = tmux.attach_argv(s, home)
        app.mark_read(s.id)
    finally:
        app.close()
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
    sys.stdout.flush()
    os.execvpe(argv[0], argv, env)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("session_id")
@click.argument("event")
@click.argument("payload", required=False)
def hook(session_id: str, event: str, payload: str | None) -> None:
    """Receive a status signal from an agent's TUI (used by pa itself).

    Claude Code hooks run `pa hook ID EVENT` with the hook's JSON on stdin; Codex's
    `notify` runs `pa hook ID notify JSON`. Prints nothing and always exits 0: a hook
    must never disturb the agent. Problems go to $PA_HOME/sessions/ID/hooks.err.
    """
    run_hook(session_id, event, payload)
    sys.exit(0)


def run_hook(session_id: str, event: str, payload_arg: str | None) -> None:
    """Record one hook call and move the session's status; never raises."""
    session_dir: Path | None = None
    try:
        from parallel_agents.config import pa_home

        home = pa_home()
        if not _SID.fullmatch(session_id):
            return
        session_dir = home / "sessions" / session_id
        data = payload_arg if payload_arg is not None else _read_stdin()
        payload: Any
        try:
            payload = json.loads(data) if data.strip() else {}
        except ValueError:
            payload = {"unparsed": data[:10000]}
        if not (home / "pa.db").exists():
            return  # no pa here: nothing to update (and nothing to create)
        from parallel_agents.sessions import interactive
        from parallel_agents.store import Store

        store = Store(home)
        try:
            if store.has_session(session_id):
                interactive.handle_hook(store, session_dir, session_id, event, payload)
        finally:
            store.close()
    except BaseException as e:  # a hook must never fail the agent
        _log_error(session_dir, event, e)


def _read_stdin() -> str:
    """Stdin's payload, or "" when stdin is a terminal, closed, or silent for too long."""
    import select

    try:
        fd = sys.stdin.fileno()
    except (AttributeError, ValueError, OSError):
        return ""
    if os.isatty(fd):
        return ""
    chunks: list[bytes] = []
    size = 0
    deadline = time.monotonic() + HOOK_STDIN_TIMEOUT
    while size < MAX_PAYLOAD:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            ready, _, _ = select.select([fd], [], [], left)
        except (OSError, ValueError):
            break
        if not ready:
            break
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def _log_error(session_dir: Path | None, event: str, e: BaseException) -> None:
    if session_dir is None or not session_dir.is_dir():
        return
    try:
        with open(session_dir / "hooks.err", "a", encoding="utf-8") as f:
            f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {event}: {e!r}\n")
            f.write("".join(traceback.format_exception(e))[-4000:] + "\n")
    except OSError:
        pass

