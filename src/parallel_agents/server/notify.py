"""Desktop notifications through ``notify-send``, when it is on PATH and ``notify`` is on.

The server calls ``notify_attention`` when a session moves to needs_input, idle,
failed or interrupted (a routine run's message names its routine and the inbox, issue
17). Sending never blocks the caller and never fails it: a desktop
without a notification daemon just gets nothing.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from parallel_agents.config import Settings
    from parallel_agents.models import Session

APP_NAME = "Parallel Agents"

_HEADLINE = {
    "needs_input": ("needs your input", "critical"),
    "idle": ("finished its turn", "normal"),
    "failed": ("failed", "critical"),
    "interrupted": ("was interrupted", "normal"),
}


def notify_send() -> str | None:
    """Path of ``notify-send``, or None."""
    return shutil.which("notify-send")


def enabled(settings: Settings) -> bool:
    return bool(settings.get("notify")) and notify_send() is not None


def attention_message(s: Session, status: str) -> tuple[str, str, str]:
    """(summary, body, urgency) for a session that now needs the person."""
    what, urgency = _HEADLINE.get(status, (f"is {status}", "normal"))
    summary = f"pa: {s.title[:60]} {what}"
    body = f"session {s.id} · {s.repo_name} · {s.agent}"
    run = s.options.get("routine")
    if isinstance(run, dict) and run.get("name"):
        # issue 17: a routine run ended its turn with nobody at the keyboard; say where
        # the result waits.
        summary = f"pa routine {str(run['name'])[:40]} #{run.get('run')} {what}"
        body = f"in your inbox (pa inbox) · session {s.id} · {s.repo_name} · {s.agent}"
    if status in ("failed", "interrupted") and s.error:
        body += "\n" + s.error.strip().splitlines()[0][:200]
    return summary, body, urgency


def notify(summary: str, body: str = "", *, urgency: str = "normal") -> bool:
    """Show a desktop notification in the background. False when notify-send is missing."""
    exe = notify_send()
    if exe is None:
        return False
    # `--` ends the options: a title starting with '-' stays a title.
    argv = [exe, f"--app-name={APP_NAME}", f"--urgency={urgency}", "--", summary, body]
    threading.Thread(target=_run, args=(argv,), name="pa-notify", daemon=True).start()
    return True


def notify_attention(s: Session, status: str) -> bool:
    summary, body, urgency = attention_message(s, status)
    return notify(summary, body, urgency=urgency)


def _run(argv: list[str]) -> None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=10,
            check=False,
        )
