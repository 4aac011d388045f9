"""Owns running sessions: starts turns, ingests their output, moves statuses, stops them.

Ingestion is idempotent and transactional: the read offset into a turn's stdout file
and the parser state are stored in the same transaction as the events they produced.
Any process (the server, or a CLI command when no server runs) may call ``tick``; a
crash at any point resumes exactly where the last commit left off.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parallel_agents.agents import get_agent
from parallel_agents.agents.base import MAX_RAW, TAIL, NormEvent
from parallel_agents.config import load_repo_config
from parallel_agents.errors import PAError
from parallel_agents.models import EventKind, Session, Status
from parallel_agents.runtime import local, make_runtime
from parallel_agents.runtime.base import LaunchSpec, NoRoom, Runtime
from parallel_agents.sessions import runtime_choice, tui
from parallel_agents.sessions.turns import Turns
from parallel_agents.store import Payload, PlainRun, Raw

# How much of a stdout file one ingest pass reads: bounds memory for chatty agents.
CHUNK = 4 * 1024 * 1024
# The lines ``bytes.splitlines`` yields (split at \n, \r\n or \r), with their offsets.
_LINE = re.compile(rb"([^\r\n]*)(?:\r\n|\r|\n|$)")
ACTIVE = (Status.STARTING, Status.RUNNING, Status.NEEDS_INPUT)
# In an agent's environment (`pa demo` puts it there) when the model answering it is pa's
# scripted model server. The CLIs price the scripted tokens as if the model they were
# told (e.g. gpt-4o) had answered; that cost was never spent, so pa records none for such
# a turn (its tokens are kept).
SCRIPTED_MODEL_ENV = "PA_SCRIPTED_MODEL"


def _unpriced(payload: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    if not state.get("scripted_model") or "cost_usd" not in payload:
        return payload
    return {k: v for k, v in payload.items() if k != "cost_usd"}


@dataclass
class TickReport:
    ingested: int = 0  # events written
    started: int = 0
    finished: int = 0
    pending: bool = False  # more output is waiting (call again soon)


class Supervisor(Turns):
    """Runs headless turns: a ``Turns`` (the context and end every turn shares) that
    schedules, spawns, ingests and stops them; its ``tick`` also polls the TUIs."""

    chunk = CHUNK  # bytes of one session's output one ingest pass reads at most

    # -- paths ----------------------------------------------------------------------
    def turn_files(self, sid: str, n: int) -> local.TurnFiles:
        return local.TurnFiles(self.session_dir(sid) / "turns" / str(n))

    def _fail_turn(self, sid: str, n: int, e: PAError) -> None:
        """Turn ``n`` could not start (its argv, or its runtime, refused): the turn and the
        session are failed with pa's message and hint."""
        msg = e.message + (f" ({e.hint})" if e.hint else "")
        with self.store.tx() as db:
            self.store.update_turn(db, sid, n, status="failed", error=msg, ended_at=time.time())
            self.store.set_status(sid, Status.FAILED, db=db, error=msg)

    # -- runtimes (issue 19) ----------------------------------------------------------
    def runtime_kind(self, s: Session) -> str:
        """Where ``s`` runs its turns: its ``options.runtime``, fixed when it was made (none
        stored: local). Never today's ``runtime.kind``: a session made on this machine must
        not move to a cluster because a server was started with ``--runtime ray``."""
        return str(s.options.get("runtime") or "local")

    def runtime(self, s: Session) -> Runtime:
        """The runtime ``s`` runs on, made once per kind (Ray's connects on first use)."""
        return self._runtime_of(self.runtime_kind(s))

    def _runtime_of(self, kind: str) -> Runtime:
        cache: dict[str, Runtime] = self.__dict__.setdefault("_runtimes", {})
        rt = cache.get(kind)
        if rt is None:
            rt = cache[kind] = make_runtime(
                kind, home=self.store.home, ray_address=self.settings.ray_address(),
                ray_repo_url=self.settings.ray_repo_url(),
            )
        return rt

    def release(self, s: Session) -> None:
        """Give back what ``s`` holds on its runtime (a Ray actor and its slot) once its
        work is home for good (archived or merged); best effort: never fails the caller."""
        if self.runtime_kind(s) != "ray":
            return
        # The cluster may be gone, and its actors with it.
        with contextlib.suppress(Exception):
            release = getattr(self.runtime(s), "release", None)
            if release is not None:
                release(s.id)

    # -- scheduling -----------------------------------------------------------------
    def schedule(self) -> int:
        """Start queued sessions, oldest first, within the configured limits."""
        limits = self.settings.limits()
        max_running = int(limits.get("max_running") or 0)
        per_repo = int(limits.get("per_repo") or 0)
        per_agent: dict[str, int] = {
            str(k): int(v) for k, v in (limits.get("per_agent") or {}).items()
        }
        queued = self.store.sessions(statuses=[Status.QUEUED])
        if not queued:
            return 0
        queued.sort(key=lambda s: (s.updated_at, s.id))
        running = self.store.sessions(statuses=list(ACTIVE))
        n_all = len(running)
        by_repo: dict[int, int] = {}
        by_agent: dict[str, int] = {}
        for r in running:
            by_repo[r.repo_id] = by_repo.get(r.repo_id, 0) + 1
            by_agent[r.agent] = by_agent.get(r.agent, 0) + 1
        started = 0
        room: dict[str, bool] = {}  # per runtime, asked once a pass (a Ray cluster's slots)
        for s in queued:
            if max_running and n_all >= max_running:
                break
            if not self._has_room(s, room):
                continue  # stays queued (not claimed, so not shown `starting` meanwhile)
            if per_repo and by_repo.get(s.repo_id, 0) >= per_repo:
                continue
            cap = per_agent.get(s.agent, 0)
            if cap and by_agent.get(s.agent, 0) >= cap:
                continue
            if self.start(s.id):
                started += 1
                n_all += 1
                by_repo[s.repo_id] = by_repo.get(s.repo_id, 0) + 1
                by_agent[s.agent] = by_agent.get(s.agent, 0) + 1
        return started

    def _has_room(self, s: Session, room: dict[str, bool]) -> bool:
        """Whether ``s`` could start on its runtime now: the runtime has room (asked once
        a pass), or ``s`` already holds its place there (a follow-up: its Ray actor
        keeps its slot between turns)."""
        kind = self.runtime_kind(s)
        if kind == "local":
            return True
        rt = self.runtime(s)
        has_room = getattr(rt, "has_room", None)
        holds_slot = getattr(rt, "holds_slot", None)
        if has_room is None or holds_slot is None:
            return True
        if kind not in room:
            room[kind] = bool(has_room())
        return room[kind] or bool(holds_slot(s.id))

    def fits_now(self, db: Any, sid: str) -> bool:
        """Can ``sid`` start at once: within the limits, with no queued session ahead of it
        that waits for the same room? Asked in the caller's write transaction ``db`` (so
        two new sessions cannot both take the last place): a session that can start goes
        straight from ``starting`` to ``running``, never through ``queued`` when nothing
        waits."""
        assert db is self.store.db  # the reads below must see (and hold) the transaction
        limits = self.settings.limits()
        max_running = int(limits.get("max_running") or 0)
        per_repo = int(limits.get("per_repo") or 0)
        per_agent = {str(k): int(v) for k, v in (limits.get("per_agent") or {}).items()}
        me = self.store.session(sid)
        n_all = 0
        by_repo: dict[int, int] = {}
        by_agent: dict[str, int] = {}
        for x in self.store.sessions(statuses=list(ACTIVE)):
            if x.id != sid:
                n_all += 1
                by_repo[x.repo_id] = by_repo.get(x.repo_id, 0) + 1
                by_agent[x.agent] = by_agent.get(x.agent, 0) + 1
        # The scheduler starts queued sessions oldest first: the ones it would start take
        # their places before this one (one it skips for its repo's or agent's limit not).
        queued = [q for q in self.store.sessions(statuses=[Status.QUEUED]) if q.id != sid]
        queued.sort(key=lambda q: (q.updated_at, q.id))
        for q in [*queued, me]:
            if max_running and n_all >= max_running:
                return False
            if per_repo and by_repo.get(q.repo_id, 0) >= per_repo:
                if q is me:
                    return False
                continue
            cap = per_agent.get(q.agent, 0)
            if cap and by_agent.get(q.agent, 0) >= cap:
                if q is me:
                    return False
                continue
            n_all += 1
            by_repo[q.repo_id] = by_repo.get(q.repo_id, 0) + 1
            by_agent[q.agent] = by_agent.get(q.agent, 0) + 1
        return True

    def start(self, sid: str, claimed: bool = False) -> bool:
        """Claim a queued session and launch its pending turn. False if someone else did.

        ``claimed``: the caller already moved it to ``starting`` (see ``fits_now``)."""
        if claimed:
            if self.store.session(sid).status != Status.STARTING:
                return False  # stopped (or failed) before it could start
        else:
            try:
                self.store.set_status(sid, Status.STARTING, expect=[Status.QUEUED])
            except PAError:
                return False
        s = self.store.session(sid)
        turn = self.store.last_turn(sid)
        if turn is None:
            self.store.set_status(sid, Status.FAILED, error="no prompt to run")
            return False
        ctx = self.context(s, turn.n, turn.prompt)
        agent = get_agent(s.agent)
        try:
            if s.agent != "command":
                binary = agent.resolve_binary(ctx.settings)
                agent.check_version(binary)
            launch = agent.build(ctx)
        except PAError as e:
            self._fail_turn(sid, turn.n, e)
            return False
        repo = self.store.repo(s.repo_id)
        rcfg = load_repo_config(Path(repo.path))
        setup = ["sh", "-c", rcfg.setup] if (rcfg.setup and turn.n == 1) else None
        env = {
            **ctx.env,
            **launch.env,
            "PA_SESSION_ID": s.id,
            "PA_HOME": str(self.store.home),
            "PA_WORKTREE": s.worktree,
            local.TAG: s.id,
        }
        files = self.turn_files(sid, turn.n)
        state: dict[str, Any] = {}
        if ctx.env.get(SCRIPTED_MODEL_ENV) == "1":
            state["scripted_model"] = True
        prev = self.store.turn(sid, turn.n - 1) if turn.n > 1 else None
        if prev is not None:
            with self.store.tx() as db:
                _, prev_state = self.store.turn_progress(db, sid, prev.n)
            if prev_state.get("usage_total"):
                state["usage_base"] = prev_state["usage_total"]
        spec = LaunchSpec(
            session_id=s.id,
            argv=launch.argv,
            cwd=launch.cwd or Path(s.worktree),
            env=env,
            stdin=launch.stdin,
            setup=setup,
            max_bytes=self.settings.output_max_bytes(),
            repo_path=Path(repo.path),
            base_commit=s.base_commit,
            branch=s.branch,
        )
        if self.runtime_kind(s) == "ray":
            spec.extra.update(runtime_choice.launch_extra(self.settings, s.agent))
        try:
            state["wrapper_pid"] = self.runtime(s).start(files, spec)
        except NoRoom:
            # Every slot is taken: back in the queue, the scheduler tries again next pass.
            with contextlib.suppress(PAError):
                self.store.set_status(sid, Status.QUEUED, expect=[Status.STARTING])
            return False
        except PAError as e:
            self._fail_turn(sid, turn.n, e)
            return False
        except OSError as e:
            with self.store.tx() as db:
                self.store.set_status(sid, Status.FAILED, db=db, error=f"could not start: {e}")
            return False
        with self.store.tx() as db:
            self.store.update_turn(
                db,
                sid,
                turn.n,
                status="running",
                started_at=time.time(),
                state=state,
                read_offset=0,
            )
            self.store.set_status(sid, Status.RUNNING, db=db, error=None)
        return True

    # -- ingestion ------------------------------------------------------------------
    def tick(self) -> TickReport:
        """One pass: ingest every active session, enforce timeouts, start queued ones."""
        # Interactive sessions' status comes from hooks and the pane (sessions.tui).
        rep = self._ingest_pass(
            [s for s in self.store.sessions(statuses=list(ACTIVE)) if not s.interactive]
        )
        rep.finished += tui.poll(self)
        rep.started = self.schedule()
        local.reap()
        return rep

    def _ingest_pass(self, sessions: list[Session]) -> TickReport:
        """Ingest each of ``sessions`` and enforce its timeout (the server batches them)."""
        rep = TickReport()
        for s in sessions:
            r = self.ingest(s.id)
            rep.ingested += r.ingested
            rep.finished += r.finished
            rep.pending = rep.pending or r.pending
            if not r.finished:
                self._enforce_timeout(s)
        return rep

    def ingest(self, sid: str) -> TickReport:
        if self.store.session(sid).interactive:
            return TickReport()  # interactive status comes from hooks and the pane
        rep = self._ingest(sid)
        if rep.finished:
            self.after_turn(sid)
        return rep

    def _ingest(self, sid: str) -> TickReport:
        rep = TickReport()
        with self.store.tx() as db:
            srow = self.store.session_state(db, sid)
            if srow is None or srow.status not in ACTIVE:
                return rep
            turn = self.store.last_turn(sid, db)
            if turn is None or turn.status != "running":
                return rep
            files = self.turn_files(sid, turn.n)
            # The row read above says the runtime: no second read per pass (issue 14 §3).
            text = srow.options_text or ""
            kind = srow.options().get("runtime") if '"runtime"' in text else None
            rt = self._runtime_of(str(kind or "local"))
            offset, state = self.store.turn_progress(db, sid, turn.n)
            # Read the exit record first: if present, the output files are complete.
            exit_info = rt.exit_info(files)
            data = b""
            size = 0
            try:
                data, size = rt.read(files, offset, self.chunk)
            except FileNotFoundError:
                if not self.session_dir(sid).exists():
                    self._vanished(db, sid, turn.n)
                    rep.finished = 1
                    return rep
            at_eof = offset + len(data) >= size
            if len(data) == self.chunk < CHUNK and b"\n" not in data:
                # A line longer than a pass's chunk: read on to its end (as far as CHUNK).
                data, size = rt.read(files, offset, CHUNK)
                at_eof = offset + len(data) >= size
            if exit_info is None or not at_eof:
                cut = data.rfind(b"\n")
                data = data[: cut + 1] if cut >= 0 else b""
                if not data and not at_eof and offset + CHUNK <= size:
                    # A single line longer than CHUNK: take it in pieces rather than stall.
                    data, size = rt.read(files, offset, CHUNK)
            agent = get_agent(srow.agent)
            items: list[tuple[str, Payload, Raw]] = []
            new_offset = offset + len(data)
            cut_at = files.cut_info() if data and "output_cut" not in state else None
            run = PlainRun(items)
            for m in _LINE.finditer(data):
                raw_line = m.group(1)
                if cut_at is not None and offset + m.start() >= cut_at[0]:
                    run.close()
                    items.append(_cut_event(cut_at, state))
                    cut_at = None
                line = raw_line.decode("utf-8", "replace").rstrip("\r")
                if not line.strip():
                    continue
                # The line stays in the output file only (issue 14 §5): its events point
                # at it, and a payload that would only repeat it is read from there too.
                whole = len(raw_line) <= MAX_RAW
                span = (offset + m.start(), len(raw_line) if whole else MAX_RAW)
                evs = _safe_parse(agent, line, state)
                one = evs[0] if whole and len(evs) == 1 else None
                if one is not None and run.take(one.kind.value, one.payload, line, span):
                    continue
                run.close()
                for ev in evs:
                    payload: Payload = _unpriced(ev.payload, state)
                    if whole and payload == {"text": line}:
                        payload = None
                    items.append((ev.kind.value, payload, span))
            run.close()
            if cut_at is None and "output_cut" not in state and exit_info is not None:
                cut_at = files.cut_info()  # the head ended the file: the tail was all cut
            if cut_at is not None and new_offset >= cut_at[0]:
                items.append(_cut_event(cut_at, state))
            if items:
                self.store.append_events(db, sid, turn.n, items)
            self.store.update_turn(db, sid, turn.n, read_offset=new_offset, state=state)
            rep.ingested = len(items)
            rep.pending = new_offset < size
            if exit_info is not None and new_offset >= size:
                self._finish(db, sid, turn.n, exit_info, state, files)
                rep.finished = 1
            elif exit_info is None and not self._alive_or_watched(sid, files):
                self._interrupted(db, sid, turn.n)
                rep.finished = 1
        return rep

    def _alive_or_watched(self, sid: str, files: local.TurnFiles) -> bool:
        """Whether the turn's wrapper may still run (the server knows without looking
        when it watches the wrapper's exit)."""
        return self.runtime(self.store.session(sid)).alive(files)

    def _finish(
        self,
        db: Any,
        sid: str,
        n: int,
        exit_info: dict[str, Any],
        state: dict[str, Any],
        files: local.TurnFiles,
    ) -> None:
        s = self.store.session(sid)
        agent = get_agent(s.agent)
        code = exit_info.get("code")
        exit_code = int(code) if isinstance(code, int) else None
        stderr_tail = _tail(files.stderr)
        items: list[tuple[str, dict[str, Any], str | None]] = []
        opts = dict(s.options)
        stop_reason = opts.pop("stop_reason", None)
        if exit_info.get("disk_full"):
            # The wrapper stopped the agent when its output could no longer be written, and
            # recorded it once there was room again (issue 14 §5): never a stuck `running`.
            msg = "disk full: the agent's output could not be written, so its turn was stopped"
            items.append((EventKind.ERROR.value, {"message": msg, "reason": "disk_full"}, None))
            self.store.append_events(db, sid, n, items)
            self.store.update_turn(
                db, sid, n, status="failed", ended_at=time.time(), exit_code=exit_code, error=msg
            )
            self.store.set_status(sid, Status.FAILED, db=db, error=msg, options=opts)
            return
        if exit_info.get("setup_failed"):
            out = _tail(files.setup_log)
            tail = f": {out}" if out else ""
            if stop_reason == "timeout":
                # Stopped by the turn's --timeout: the setup hung, it did not fail by itself.
                msg = f"setup command timed out after {self._timeout(s):g} s and was stopped{tail}"
            elif stop_reason == "stop":
                msg = f"stopped during the setup command{tail}"
            else:
                msg = f"setup command failed (exit code {exit_code}): {out}".strip()
            items.append((EventKind.ERROR.value, {"message": msg, "setup_output": out}, None))
            self.store.append_events(db, sid, n, items)
            self.store.update_turn(
                db, sid, n, status="failed", ended_at=time.time(), exit_code=exit_code, error=msg
            )
            self.store.set_status(sid, Status.FAILED, db=db, error=msg, options=opts)
            return
        ctx = self.context(s, n, "")
        try:
            for ev in agent.after_exit(ctx, state):
                items.append((ev.kind.value, _unpriced(ev.payload, state), None))
            end = agent.finish(exit_code, stderr_tail, state)
        except Exception as e:  # an adapter bug must not wedge the session
            end_ok, end_err = False, f"pa could not read the agent's output: {e!r}"
            items.append((EventKind.ERROR.value, {"message": end_err}, None))
            from parallel_agents.agents.base import TurnEnd

            end = TurnEnd(ok=end_ok, error=end_err)
        usage = state.get("usage") or {}
        agent_sid = agent.agent_session_id(state) or s.agent_session_id
        if stop_reason == "timeout":
            end.ok, end.error = False, f"timed out after {self._timeout(s):g} s and was stopped"
        elif stop_reason == "stop":
            end.ok = False
            if end.reason == "no_result":  # no record because we stopped it: not a fault
                end.error, end.reason = None, None
            end.error = end.error or "stopped by the user"
        if not end.ok and end.error:
            items.append(
                (EventKind.ERROR.value, {"message": end.error, "reason": end.reason}, None)
            )
        if end.result is not None:
            items.append((EventKind.RESULT.value, {"text": end.result, "ok": end.ok}, None))
        if items:
            self.store.append_events(db, sid, n, items)
        self.store.update_turn(
            db,
            sid,
            n,
            status="done" if end.ok else ("stopped" if stop_reason == "stop" else "failed"),
            ended_at=time.time(),
            exit_code=exit_code,
            error=end.error if not end.ok else None,
            input_tokens=int(usage.get("input_tokens") or 0),
            output_tokens=int(usage.get("output_tokens") or 0),
            cached_tokens=int(usage.get("cached_tokens") or 0),
            cost_usd=None if state.get("scripted_model") else usage.get("cost_usd"),
            state=state,
        )
        new = (
            Status.STOPPED if stop_reason == "stop" else (Status.IDLE if end.ok else Status.FAILED)
        )
        self.store.set_status(
            sid,
            new,
            db=db,
            error=None if end.ok else end.error,
            agent_session_id=agent_sid,
            options=opts,
        )

    def _interrupted(self, db: Any, sid: str, n: int) -> None:
        msg = "the agent process is gone without an exit code (machine restarted?)"
        self.store.update_turn(db, sid, n, status="interrupted", ended_at=time.time(), error=msg)
        self.store.set_status(sid, Status.INTERRUPTED, db=db, error=msg)

    def _vanished(self, db: Any, sid: str, n: int) -> None:
        msg = f"the session folder {self.session_dir(sid)} was deleted while the agent ran"
        _, state = self.store.turn_progress(db, sid, n)
        # Its pid file went with the folder: find the agent through the wrapper's session.
        local.kill_session(state.get("wrapper_pid"))
        local.end_tagged(sid)  # and what the agent started outside that session
        self.store.update_turn(db, sid, n, status="failed", ended_at=time.time(), error=msg)
        self.store.set_status(sid, Status.FAILED, db=db, error=msg)

    # -- stopping -------------------------------------------------------------------
    def _timeout(self, s: Session) -> float:
        return float(s.options.get("timeout") or self.settings.data.get("timeout") or 0)

    def _enforce_timeout(self, s: Session) -> None:
        limit = self._timeout(s)
        if not limit:
            return
        turn = self.store.last_turn(s.id)
        if turn and turn.started_at and time.time() - turn.started_at > limit:
            self.stop(s.id, reason="timeout")

    def stop(self, sid: str, reason: str = "stop") -> None:
        s = self.store.session(sid)
        if s.interactive:
            tui.stop(self, s)
            return
        if s.status == Status.QUEUED:
            self.store.set_status(sid, Status.STOPPED, error="stopped before it started")
            return
        if s.status not in ACTIVE:
            return
        opts = dict(s.options)
        opts["stop_reason"] = reason
        self.store.update_session(sid, options=opts)
        turn = self.store.last_turn(sid)
        if turn is not None:
            files = self.turn_files(sid, turn.n)
            rt = self.runtime(s)
            rt.stop(files, float(self.settings.data.get("stop_grace") or 5.0))
            deadline = time.monotonic() + rt.end_wait
            while time.monotonic() < deadline:
                if self.ingest(sid).finished or self.store.session(sid).status not in ACTIVE:
                    return
                time.sleep(0.05)
        with contextlib.suppress(PAError):
            self.store.set_status(sid, Status.STOPPED, error="stopped by the user")


def _cut_event(cut: tuple[int, int], state: dict[str, Any]) -> tuple[str, dict[str, Any], Raw]:
    """The event saying what the output cap (``output.max_bytes``) cut from this turn."""
    state["output_cut"] = cut[1]
    mb = cut[1] / 1e6
    text = (
        f"[pa: {cut[1]:,} bytes ({mb:.1f} MB) of output cut here: the turn wrote more than"
        " output.max_bytes; its head and tail are kept]"
    )
    return (EventKind.RAW.value, {"text": text, "output_cut": cut[1]}, None)


def _safe_parse(agent: Any, line: str, state: dict[str, Any]) -> list[NormEvent]:
    try:
        evs = agent.parse_line(line, state)
        return list(evs) if evs else []
    except Exception as e:  # the rule: a line no adapter understands is kept as raw
        return [NormEvent(EventKind.RAW, {"text": line[:MAX_RAW], "parse_error": repr(e)})]


def _tail(path: Path, size: int = TAIL) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            end = f.tell()
            f.seek(max(0, end - size))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""
