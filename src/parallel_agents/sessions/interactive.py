"""Interactive sessions' statuses: what a TUI's signals mean, and the one place they apply.

Status of an interactive session comes from structured signals first (Claude Code hooks,
Codex ``notify``; see ``hook_signal``), and from the text of its tmux pane only as a
fallback (``agents.tui.classify_pane``, read by sessions.tui). Both end up in
:func:`apply`, the one place that moves an interactive session's status (through
``Store.set_status``) and keeps its turns. ``pa hook`` runs this module for every hook
call, so it imports little.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parallel_agents.models import SIGNAL_STATUS, EventKind, Signal, Status

if TYPE_CHECKING:
    from parallel_agents.models import Session, Turn
    from parallel_agents.store import Connection, Store


# Statuses in which an interactive session's TUI may be alive and signalling.
LIVE = (Status.STARTING, Status.RUNNING, Status.NEEDS_INPUT, Status.IDLE)
HOOK_LOG = "hooks.jsonl"
TYPED_IN_TERMINAL = "(typed in the terminal)"
# Codex runs a side turn to title the conversation; its notify must not end the real turn.
CODEX_TITLE_PROMPT = "Generate a concise, single-line task title"


# -- hooks -------------------------------------------------------------------------------
@dataclass
class HookOutcome:
    signal: Signal | None
    prompt: str | None = None
    message: str | None = None  # the agent's last message (end of a turn)
    waiting: dict[str, Any] | None = None  # what a needs_input waits for
    agent_session_id: str | None = None
    permission_request: bool = False  # a PermissionRequest (instant, unlike Notification)
    late_permission_notice: bool = False  # Notification(permission_prompt): ~6 s late


def hook_signal(event: str, payload: Mapping[str, Any]) -> HookOutcome:
    """Map one hook/notify call to a signal (None: nothing changes).

    Claude Code (hooks, payload on stdin), as captured with 2.1.332 in a TUI:
      PermissionRequest fires as the permission dialog opens (~0.1 s before it shows);
      Notification{permission_prompt} fires about 6 s later; Stop ends the turn;
      UserPromptSubmit / PreToolUse / PostToolUse mean it works (no hook fires when a
      permission is granted: the tool's PostToolUse is the first sign).
    Codex (``notify``, payload as the last argv element): agent-turn-complete ends a turn.
    """
    name = str(payload.get("hook_event_name") or event or "")
    sid = payload.get("session_id")
    agent_sid = sid if isinstance(sid, str) and sid else None
    if payload.get("type") == "agent-turn-complete" or event in ("notify", "codex-notify"):
        thread = payload.get("thread-id")
        msgs = payload.get("input-messages")
        first = msgs[0] if isinstance(msgs, list) and msgs else ""
        if payload.get("type") != "agent-turn-complete" or (
            isinstance(first, str) and first.startswith(CODEX_TITLE_PROMPT)
        ):
            return HookOutcome(None)
        last = payload.get("last-assistant-message")
        return HookOutcome(
            Signal.IDLE,
            message=last if isinstance(last, str) else None,
            agent_session_id=thread if isinstance(thread, str) and thread else None,
        )
    if name == "PermissionRequest":
        waiting = {"tool": payload.get("tool_name"), "input": _short(payload.get("tool_input"))}
        return HookOutcome(
            Signal.NEEDS_INPUT,
            waiting=waiting,
            agent_session_id=agent_sid,
            permission_request=True,
        )
    if name == "Notification":
        kind = payload.get("notification_type")
        msg = str(payload.get("message") or "")
        if kind in ("permission_prompt", "elicitation_dialog") or (
            kind is None and "permission" in msg.lower()
        ):
            return HookOutcome(
                Signal.NEEDS_INPUT,
                waiting={"notification": kind, "message": msg},
                agent_session_id=agent_sid,
                late_permission_notice=kind == "permission_prompt",
            )
        if kind == "idle_prompt":
            return HookOutcome(Signal.IDLE, agent_session_id=agent_sid)
        return HookOutcome(None, agent_session_id=agent_sid)
    if name == "Stop":
        last = payload.get("last_assistant_message")
        return HookOutcome(
            Signal.IDLE,
            message=last if isinstance(last, str) else None,
            agent_session_id=agent_sid,
        )
    if name == "UserPromptSubmit":
        prompt = payload.get("prompt")
        return HookOutcome(
            Signal.RUNNING,
            prompt=prompt if isinstance(prompt, str) else None,
            agent_session_id=agent_sid,
        )
    if name in ("PreToolUse", "PostToolUse", "PostToolUseFailure", "PreCompact"):
        return HookOutcome(Signal.RUNNING, agent_session_id=agent_sid)
    # SessionStart, SessionEnd, SubagentStop, …: recorded, no status change (the pane's
    # process tells when the TUI exits).
    return HookOutcome(None, agent_session_id=agent_sid)


def _trim(v: Any, depth: int = 0) -> Any:
    """A copy of a hook payload for the log: long strings (file contents…) cut."""
    if isinstance(v, str):
        return v if len(v) <= 2000 else v[:2000] + f"… [{len(v) - 2000} more characters]"
    if depth > 8:
        return "…"
    if isinstance(v, Mapping):
        return {str(k): _trim(x, depth + 1) for k, x in list(v.items())[:200]}
    if isinstance(v, list):
        return [_trim(x, depth + 1) for x in v[:200]]
    return v


def _short(v: Any) -> Any:
    text = json.dumps(v, ensure_ascii=False, default=str)
    return v if len(text) <= 2000 else text[:2000] + "…"


def handle_hook(store: Store, session_dir: Path, sid: str, event: str, payload: Any) -> bool:
    """Record one hook call and move the status. True if the status changed."""
    now = time.time()
    record = {"ts": now, "event": event, "payload": _trim(payload)}
    session_dir.mkdir(parents=True, exist_ok=True)
    with open(session_dir / HOOK_LOG, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
    if not isinstance(payload, Mapping):
        payload = {}
    out = hook_signal(event, payload)
    return apply(store, sid, out.signal, source="hook", outcome=out, event=event)


# -- the one place an interactive status moves ---------------------------------------------
def apply(
    store: Store,
    sid: str,
    signal: Signal | None,
    *,
    source: str,
    outcome: HookOutcome | None = None,
    event: str | None = None,
    prompt: str | None = None,
) -> bool:
    """Move session ``sid`` to what ``signal`` says, keeping turns in step.

    ``source`` is "hook", "pane" or "send". Signals for a session that is no longer live
    (stopped, failed, discarded…) are ignored. Returns True when the status changed.
    """
    out = outcome or HookOutcome(signal)
    prompt = prompt if prompt is not None else out.prompt
    with store.tx() as db:
        row = store.session_state(db, sid)
        if row is None:
            return False
        cur = row.status
        opts = row.options()
        info: dict[str, Any] = dict(opts.get("interactive") or {})
        fields: dict[str, Any] = {}
        if out.agent_session_id and row.agent_session_id != out.agent_session_id:
            fields["agent_session_id"] = out.agent_session_id
        now = time.time()
        if source == "hook":
            info["last_hook"] = event
            info["last_hook_at"] = now
        if cur not in LIVE:
            if fields:
                store.set_status(sid, cur, db=db, **fields)  # same status: fields only
            return False
        if out.permission_request:
            info["saw_permission_request"] = True
            info["pending_permission"] = True
        if (
            out.late_permission_notice
            and info.get("saw_permission_request")
            and not info.get("pending_permission")
        ):
            signal = None  # the dialog this notice is about was answered already
        if source == "hook" and signal in (Signal.RUNNING, Signal.IDLE):
            info["pending_permission"] = False
        if signal is None:
            opts["interactive"] = info
            store.set_status(sid, cur, db=db, options=opts, **fields)  # fields only
            return False
        target = SIGNAL_STATUS[signal]
        turn = store.last_turn(sid, db)
        if signal == Signal.RUNNING:
            _turn_running(store, db, sid, turn, prompt, now)
        elif signal == Signal.IDLE:
            _turn_done(store, db, sid, turn, out.message, now)
        if signal == Signal.NEEDS_INPUT:
            info["waiting"] = out.waiting or {"source": source}
        else:
            info.pop("waiting", None)
        info["signal"] = {"status": target.value, "source": source, "at": now}
        opts["interactive"] = info
        if cur == Status.STARTING and target == Status.NEEDS_INPUT:
            store.set_status(sid, Status.RUNNING, db=db)
        store.set_status(sid, target, db=db, options=opts, **fields)
        return cur != target


def _turn_running(
    store: Store,
    db: Connection,
    sid: str,
    turn: Turn | None,
    prompt: str | None,
    now: float,
) -> None:
    if turn is None or turn.status in ("done", "stopped", "failed", "interrupted"):
        n = store.add_turn(db, sid, prompt or TYPED_IN_TERMINAL, {})
        store.update_turn(db, sid, n, status="running", started_at=now)
    elif turn.status == "pending":
        fields: dict[str, Any] = {"status": "running", "started_at": now}
        if prompt and not turn.prompt.strip():
            fields["prompt"] = prompt
        store.update_turn(db, sid, turn.n, **fields)


def _turn_done(
    store: Store,
    db: Connection,
    sid: str,
    turn: Turn | None,
    message: str | None,
    now: float,
) -> None:
    if turn is None or turn.status not in ("running", "pending"):
        return
    if turn.status == "pending" and not turn.prompt.strip():
        # A TUI started without a prompt sits at its prompt box: nothing ran yet.
        store.update_turn(db, sid, turn.n, status="done", started_at=now, ended_at=now)
        return
    store.update_turn(db, sid, turn.n, status="done", ended_at=now)
    if message:
        text = message[:65536]
        store.append_events(
            db,
            sid,
            turn.n,
            [(EventKind.MESSAGE.value, {"role": "assistant", "text": text}, None)],
        )


def exited(
    store: Store,
    sid: str,
    code: int | None,
    *,
    screen: str = "",
    gone: bool = False,
) -> bool:
    """The TUI's process ended (``code``), or its whole tmux session vanished (``gone``)."""
    with store.tx() as db:
        row = store.session_state(db, sid)
        if row is None:
            return False
        cur = row.status
        if cur not in (Status.STARTING, Status.RUNNING, Status.NEEDS_INPUT):
            return False
        opts = row.options()
        reason = opts.pop("stop_reason", None)
        info: dict[str, Any] = dict(opts.get("interactive") or {})
        info.pop("waiting", None)
        info["exit_code"] = code
        opts["interactive"] = info
        turn = store.last_turn(sid, db)
        now = time.time()
        lines = [ln.rstrip() for ln in screen.splitlines() if ln.strip()]
        lines = [ln for ln in lines if not ln.startswith("Pane is dead")]  # tmux's own line
        tail = "\n".join(lines[-12:])[-1200:]
        if reason:
            new, tstatus, err = Status.STOPPED, "stopped", "stopped by the user"
            if reason == "timeout":
                err = "timed out and was stopped"
        elif gone:
            # pa's tmux keeps a pane whose TUI exited (remain-on-exit): a session that is
            # gone was killed from outside, or the machine restarted.
            new, tstatus = Status.INTERRUPTED, "interrupted"
            err = "the agent's tmux session is gone" + (
                " without an exit code (machine restarted?)"
                if code is None
                else f" (the TUI ended with {_code_text(code)})"
            )
        elif code == 0:
            new, tstatus, err = Status.IDLE, "done", None
        else:
            new, tstatus = Status.FAILED, "failed"
            err = f"the agent's TUI exited with {_code_text(code)}"
            if tail:
                err += ":\n" + tail
        if turn is not None and turn.status in ("running", "pending"):
            store.update_turn(
                db, sid, turn.n, status=tstatus, ended_at=now, exit_code=code, error=err
            )
        store.set_status(sid, new, db=db, error=err, options=opts)
        return True


def _code_text(code: int | None) -> str:
    import signal

    if code is None:
        return "no exit code"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    if code > 128:
        try:
            return f"exit code {code} ({signal.Signals(code - 128).name})"
        except ValueError:
            pass
    return f"exit code {code}"


# Every way a turn ends gets its checkpoint, like a headless turn's (issue 20 §4a).
ENDED_TURNS = ("done", "stopped", "failed", "interrupted")


def checkpoint_due(s: Session, turn: Turn | None) -> bool:
    """An ended turn (done, stopped, failed or interrupted) that has no checkpoint yet."""
    if turn is None or turn.status not in ENDED_TURNS or s.status == Status.DISCARDED:
        return False
    info = s.options.get("interactive") or {}
    return int(info.get("checkpointed") or 0) < turn.n


def note_pane(store: Store, sid: str, signal: str | None, since: float) -> None:
    """Remember what the pane shows (a signal value or None) and since when."""
    _update_info(store, sid, {"pane": {"signal": signal, "since": since}})


def _update_info(store: Store, sid: str, values: Mapping[str, Any]) -> None:
    with store.tx() as db:
        row = store.session_state(db, sid)
        if row is None:
            return
        opts = row.options()
        info: dict[str, Any] = dict(opts.get("interactive") or {})
        info.update(values)
        opts["interactive"] = info
        store.set_status(sid, row.status, db=db, options=opts)  # same status: fields only


def mark_checkpointed(store: Store, sid: str, n: int) -> None:
    _update_info(store, sid, {"checkpointed": n})
