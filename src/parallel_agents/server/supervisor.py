"""The supervisor as the server's loop runs it: deferred checkpoints, timeouts on a
background thread, quiet sessions skipped, and the end of a turn first.

``ServerState`` (server/loop.py) owns the loop thread and hands each thread its own
``ServerSupervisor``; this module sees it only as a ``LoopHost``, the few things a
supervisor asks of the loop it runs in.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Protocol

from parallel_agents.config import Settings
from parallel_agents.errors import PAError
from parallel_agents.models import Session, Status
from parallel_agents.runtime import local
from parallel_agents.runtime.exits import ExitWatch
from parallel_agents.sessions.headless import Supervisor, TickReport
from parallel_agents.store import Store

log = logging.getLogger("parallel_agents.server")

MAX_INGEST_FAILURES = 3
AFTER_TURN_BUDGET = 0.25  # seconds of checkpoints per pass before ingesting again
# Bytes of one session's output one regular pass reads: a chatty session cannot hold the
# pass (and every other session's end) for long; the loop comes back at once for the rest.
PASS_CHUNK = 512 * 1024
ENDING_BUDGET = 0.2  # seconds one ended session's remaining output may take per look
# Ray turns starting at once on the server's start threads (``_hand_off``).
RAY_STARTS = 8
# Seconds a stop waits for a start under way (a Ray actor waiting for its slot: up to a
# minute); past it the stop goes on as before.
START_WAIT = 180.0
END_BATCH = 128  # ended sessions finished in one transaction at most
PASS_BATCH = 0.05  # seconds of a pass's ingestion committed in one transaction
# While turns keep ending (one less than BURST_GAP s after another), checkpoints wait, up
# to BURST_HOLD s: their git processes would take the CPU the ending agents, their
# wrappers and the ingestion of their ends need (2 cores, 100 sessions ending together).
BURST_GAP = 0.1
BURST_HOLD = 1.0


class LoopHost(Protocol):
    """What a ``ServerSupervisor`` asks of the loop it runs in (``ServerState``)."""

    exits: ExitWatch

    def on_loop_thread(self) -> bool: ...
    def is_loop_thread(self) -> bool: ...
    def wake(self) -> None: ...
    def schedule_soon(self) -> None: ...
    def launch_soon(self, sid: str) -> None: ...
    def start_later(self, sid: str) -> bool: ...
    def starts_in_flight(self) -> frozenset[str]: ...
    def cancel_start(self, sid: str) -> bool | None: ...
    def take_launches(self) -> list[str]: ...
    def stop_later(self, sid: str, reason: str) -> None: ...
    def publish_from(self, store: Store) -> None: ...


class ServerSupervisor(Supervisor):
    """The supervisor as the server runs it.

    * ``schedule`` only runs on the loop thread; elsewhere it wakes the loop instead.
    * End-of-turn work (checkpoints) on the loop thread runs after the whole pass, right
      after scheduling: statuses of sessions that end together show up together, and
      a new session does not wait for other sessions' checkpoints.
    * Timeouts stop agents on a background thread, so a stubborn agent (which takes
      ``stop_grace`` × 2 to kill) does not stall ingestion of every other session.
    * One session whose output cannot be read does not wedge the others: after a few
      failed passes it is marked failed with the error.
    * A session whose output file did not grow is not re-read on every pass (see
      ``_quiet``): 100 quiet sessions cost a stat each, not a write transaction each.
    * The end of a turn comes first: each running turn's wrapper is watched (a pidfd,
      ``ServerState.exits``); a wrapper that exited is noticed between any two steps of
      a pass (sessions' ingestion, checkpoints) and its session is ingested at once
      (``service_exits``), not after the other sessions' output or checkpoints.
    * Sessions are ingested in shared transactions: the turns that ended together in one
      (with the streams woken once, after its commit), a pass in a few (``PASS_BATCH``);
      each session's part is a savepoint, so one that fails undoes only itself.
    """

    chunk = PASS_CHUNK

    def __init__(self, store: Store, settings: Settings, server: LoopHost) -> None:
        super().__init__(store, settings)
        self.server = server
        self._failures: dict[str, int] = {}
        self._deferred: list[str] = []
        self._seen: dict[str, tuple[tuple[str, int], float]] = {}
        self._watched: dict[str, str] = {}  # session id -> turn folder its pidfd watches
        self._ending: list[str] = []  # sessions whose wrapper exited, to ingest first
        self._unfinished: list[str] = []  # ended, more output than one look takes
        self._in_exits = False
        self._burst: tuple[float, float] | None = None  # (first, last) end of a burst
        # The turn each deferred checkpoint is for (a follow-up may add the next one first).
        self._deferred_turn: dict[str, int | None] = {}
        self._no_hold_until = 0.0  # after a hold, checkpoints get as long without one
        self._in_batch = False  # inside ``_batching``: publish after its commit, not before
        # Health figures (issue 14 §3): turns the loop ended, and the transactions that
        # ended them (turns ending together share one).
        self.turn_ends = 0
        self.end_batches = 0

    def schedule(self) -> int:
        if not self.server.on_loop_thread():
            self.server.schedule_soon()
            return 0
        for sid in self.server.take_launches():  # claimed by `new`/`send`: they go first
            self.start(sid, claimed=True)
        # Queued sessions first: a new session depends on no one's checkpoint (a session's
        # own deferred checkpoint runs in ``start``), and checkpoints of a large repo
        # take a while.
        started = super().schedule()
        self.flush_after_turns(budget=AFTER_TURN_BUDGET)
        return started

    def start(self, sid: str, claimed: bool = False) -> bool:
        if claimed and not self.server.on_loop_thread():
            # Launched by the loop, which holds the end-of-turn work (checkpoints) that
            # must come first; the session shows `starting` meanwhile, not `queued`.
            self.server.launch_soon(sid)
            return True
        if sid in self._deferred:  # its last turn's checkpoint comes before its next turn
            self._deferred.remove(sid)
            self._after_turn_now(sid)
        if self.server.is_loop_thread() and self._starts_elsewhere(sid):
            return self._hand_off(sid, claimed)
        return self.start_here(sid, claimed)

    def _starts_elsewhere(self, sid: str) -> bool:
        """A Ray turn starts on a start thread: it waits seconds for its actor to come up,
        and the loop would ingest nothing meanwhile (200 sessions: minutes of silence)."""
        try:
            return self.runtime_kind(self.store.session(sid)) == "ray"
        except PAError:
            return False

    def _hand_off(self, sid: str, claimed: bool) -> bool:
        """Claim ``sid`` here (the loop's pass counts it against the limits at once) and
        start it on a start thread. A queued session waits in the queue, unclaimed, while
        every start thread is busy."""
        held = self.server.starts_in_flight()
        if sid in held:
            return False  # a start thread has it already
        if not claimed:
            if len(held) >= RAY_STARTS:
                return False
            try:
                self.store.set_status(sid, Status.STARTING, expect=[Status.QUEUED])
            except PAError:
                return False
        return self.server.start_later(sid)

    def stop(self, sid: str, reason: str = "stop") -> None:
        """As ``Supervisor.stop``, with the start threads in mind: a start not begun yet
        is taken back (the session never runs that turn); one under way is waited for, so
        the turn it launches is stopped, not left running under a `stopped` session."""
        taken = self.server.cancel_start(sid)
        if taken:
            with contextlib.suppress(PAError):
                self.store.set_status(sid, Status.STOPPED, expect=[Status.STARTING],
                                      error="stopped before it started")  # fmt: skip
            return
        if taken is False:
            deadline = time.monotonic() + START_WAIT
            while sid in self.server.starts_in_flight() and time.monotonic() < deadline:
                time.sleep(0.05)  # the pace of the look; the start ends on its own
        super().stop(sid, reason)

    def start_here(self, sid: str, claimed: bool = False) -> bool:
        """Start ``sid``'s turn on this thread (``Supervisor.start``), never raising."""
        try:
            return super().start(sid, claimed)
        except Exception as e:  # never let one bad session stop scheduling
            log.exception("could not start session %s", sid)
            msg = e.message if isinstance(e, PAError) else f"could not start: {e!r}"
            with contextlib.suppress(Exception):
                self.store.set_status(sid, Status.FAILED, error=msg)
            return False

    def _enforce_timeout(self, s: Session) -> None:
        limit = self._timeout(s)
        if not limit:
            return
        turn = self.store.last_turn(s.id)
        if turn and turn.started_at and time.time() - turn.started_at > limit:
            self.server.stop_later(s.id, "timeout")

    def after_turn(self, sid: str, n: int | None = None) -> None:
        # The turn's end (status, attention) is committed by now: wake the streams at once.
        # On the loop thread the slower end-of-turn work (a checkpoint) waits until every
        # session of this pass was ingested, so one session's end does not delay another's.
        # In a batch (``_batching``) the end is not committed yet: it publishes after.
        if not self._in_batch:
            self.server.publish_from(self.store)
        if self.server.is_loop_thread():
            self.turn_ends += 1
            if n is None:
                turn = self.store.last_turn(sid)
                n = turn.n if turn else None
            self._deferred_turn[sid] = n
            self._deferred.append(sid)
            return
        super().after_turn(sid, n)

    @property
    def has_deferred(self) -> bool:
        return bool(self._deferred)

    def hold(self) -> float:
        """Seconds the deferred end-of-turn work waits still (0: it may run now)."""
        if self._burst is None:
            return 0.0
        first, last = self._burst
        now = time.monotonic()
        left = min(last + BURST_GAP, first + BURST_HOLD) - now
        if left <= 0:
            self._burst = None
            if now >= first + BURST_HOLD:  # cut short: never held back for good
                self._no_hold_until = now + BURST_HOLD
            return 0.0
        return left

    def flush_after_turns(self, budget: float | None = None) -> None:
        """Run deferred end-of-turn work, oldest first; with a ``budget`` (seconds), stop
        once it is spent (the loop comes back at once for the rest, after ingesting)."""
        deadline = None if budget is None else time.monotonic() + budget
        while self._deferred:
            if deadline is not None and self.hold():
                break  # turns are ending: their statuses first
            self._after_turn_now(self._deferred.pop(0))
            self.service_exits()  # a turn that ended meanwhile shows before more checkpoints
            if deadline is not None and time.monotonic() > deadline:
                break

    def _after_turn_now(self, sid: str) -> None:
        try:
            super().after_turn(sid, self._deferred_turn.pop(sid, None))
        except Exception:
            log.exception("end-of-turn work failed for session %s", sid)

    def _quiet(self, sid: str) -> tuple[bool, tuple[str, int] | None]:
        """(nothing new since the last pass, the (turn dir, stdout size) seen now).

        A read-only look: no new bytes, no exit record, checked less than a second ago.
        Saves the write transaction an idle session would otherwise cost every pass;
        the liveness check (interrupted agents) still runs every second.
        """
        turn = self.store.last_turn(sid)
        if turn is None or turn.status != "running":
            return False, None
        files = self.turn_files(sid, turn.n)
        try:
            size = files.stdout.stat().st_size
        except OSError:
            return False, None
        if files.exit.exists():
            return False, None
        if not self._watch(sid, files):
            return False, None  # its wrapper is gone already: look now
        key = (str(files.dir), size)
        seen = self._seen.get(sid)
        # The look every second is for a wrapper that died unseen; one the loop watches
        # (a pidfd) says so itself, so its session is read only when its output grew.
        watched = self.server.is_loop_thread() and self.server.exits.watching(sid)
        quiet = (
            seen is not None and seen[0] == key and (watched or time.monotonic() - seen[1] < 1.0)
        )
        return quiet, key

    def _watch(self, sid: str, files: local.TurnFiles) -> bool:
        """Have the loop woken when this running turn's wrapper exits. False when the
        wrapper is gone already; True when watched, or when only polling is possible
        (not the loop thread, no pidfds, the wrapper has not written its pid yet)."""
        exits = self.server.exits
        if not self.server.is_loop_thread() or not exits.supported():
            return True
        turn_dir = str(files.dir)
        if self._watched.get(sid) == turn_dir:
            return True  # watched (or known to be unwatchable: polled)
        pid = local.wrapper_pid(files)
        if pid is None:
            return True  # just spawned by another process: the next pass looks again
        watched = exits.watch(sid, pid)
        if watched is False:
            return False
        self._watched[sid] = turn_dir
        return True

    def note_ended(self, sids: set[str]) -> None:
        """Sessions whose wrapper exited: ingested first (``service_exits``)."""
        now = time.monotonic()
        if sids and now >= self._no_hold_until:
            burst = self._burst
            if burst is None or now - burst[1] > BURST_GAP:
                self._burst = (now, now)
            else:
                self._burst = (burst[0], now)
        for sid in sorted(sids):
            self._watched.pop(sid, None)
            if sid not in self._ending:
                self._ending.append(sid)

    def begin_pass(self) -> int:
        """At the start of a loop pass: the ended sessions first (``service_exits``),
        with the ones the last pass could not finish at the head of the line."""
        self._ending[:0] = [x for x in self._unfinished if x not in self._ending]
        self._unfinished = []
        return self.service_exits(look=False)

    def service_exits(self, look: bool = True) -> int:
        """Ingest the sessions whose turn just ended, ahead of everything else; returns
        how many ended. ``look``: first collect wrappers that exited since the last look
        (a non-blocking ``select``).

        Every session that ended by now is finished in ONE transaction (``END_BATCH`` at
        most), then the streams are woken once: 100 turns ending together cost one
        commit and one wake, not 100 of each one after another (issue 14 §3). A session
        with more output left than one look takes gets ``ENDING_BUDGET`` seconds of it
        afterwards; one that needs more waits for the next pass (``begin_pass``), so it
        cannot stall every step of this one."""
        if self._in_exits or self._in_batch or not self.server.is_loop_thread():
            return 0  # (in a pass's batch: it comes right after that batch's commit)
        if look:
            self._look_exits()
        finished = 0
        self._in_exits = True
        try:
            while self._ending:
                batch, self._ending = self._ending[:END_BATCH], self._ending[END_BATCH:]
                rest: list[str] = []
                with self._batching():
                    for sid in batch:
                        self._seen.pop(sid, None)
                        rep = self.ingest(sid)
                        finished += rep.finished
                        if not rep.finished and rep.pending:
                            rest.append(sid)
                for sid in rest:  # much output left: committed step by step, in budget
                    deadline = time.monotonic() + ENDING_BUDGET
                    while True:
                        rep = self.ingest(sid)
                        if rep.finished or not rep.pending:
                            break
                        if time.monotonic() > deadline:
                            self._unfinished.append(sid)
                            break
                    finished += rep.finished
        finally:
            self._in_exits = False
        return finished

    def _look_exits(self) -> None:
        ended, woken = self.server.exits.wait(0)
        if woken:
            self.server.wake()  # the wake was for the loop: keep it for its next wait
        self.note_ended(ended)

    @contextlib.contextmanager
    def _batching(self) -> Iterator[None]:
        """One write transaction around several sessions' ingestion (each one a savepoint
        in it, so one that fails undoes only itself); the streams are woken once, after
        the commit."""
        ends = self.turn_ends
        self._in_batch = True
        try:
            with self.store.tx():
                yield
        finally:
            self._in_batch = False
        if self.turn_ends > ends:
            self.end_batches += 1
        self.server.publish_from(self.store)

    def _ingest_pass(self, sessions: list[Session]) -> TickReport:
        """The pass's sessions in a few transactions (``PASS_BATCH`` seconds of work
        each, then the commit and one wake of the streams), not one each: 100 running
        sessions cost a few commits a pass. The ended ones go first, between batches."""
        if not self.server.is_loop_thread():
            return super()._ingest_pass(sessions)
        rep = TickReport()
        i = 0
        while i < len(sessions):
            self.service_exits()
            deadline = time.monotonic() + PASS_BATCH
            with self._batching():
                while i < len(sessions) and time.monotonic() < deadline:
                    r = super()._ingest_pass(sessions[i : i + 1])
                    i += 1
                    rep.ingested += r.ingested
                    rep.finished += r.finished
                    rep.pending = rep.pending or r.pending
        return rep

    def _alive_or_watched(self, sid: str, files: local.TurnFiles) -> bool:
        # A wrapper whose exit the loop watches (a pidfd) is alive until that fires: no
        # pid file, kill(0) and /proc read on every look (issue 14 §6).
        if (
            self.server.is_loop_thread()
            and self._watched.get(sid) == str(files.dir)
            and self.server.exits.watching(sid)
        ):
            return True
        return super()._alive_or_watched(sid, files)

    def ingest(self, sid: str) -> TickReport:
        self.service_exits()
        quiet, key = self._quiet(sid)
        if quiet:
            return TickReport()
        try:
            rep = super().ingest(sid)
            if rep.finished:
                self._forget_watch(sid)
            if key is not None and not rep.pending and not rep.finished:
                self._seen[sid] = (key, time.monotonic())
            else:
                self._seen.pop(sid, None)
        except Exception as e:
            self._seen.pop(sid, None)
            self._forget_watch(sid)
            n = self._failures[sid] = self._failures.get(sid, 0) + 1
            log.exception("could not ingest session %s (attempt %d)", sid, n)
            if n >= MAX_INGEST_FAILURES:
                self._failures.pop(sid, None)
                msg = f"pa could not read this session's output: {e}"
                with contextlib.suppress(Exception):
                    self.store.set_status(sid, Status.FAILED, error=msg)
                return TickReport(finished=1)
            return TickReport()
        self._failures.pop(sid, None)
        return rep

    def _forget_watch(self, sid: str) -> None:
        if self._watched.pop(sid, None) is not None and self.server.is_loop_thread():
            self.server.exits.forget(sid)
