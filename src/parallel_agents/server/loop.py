"""The supervisor loop that runs inside the server, and the state its threads share.

Threads: FastAPI runs the (sync) API handlers in a thread pool and the SQLite store is
not thread-safe, so every thread gets its own ``App`` (store + supervisor) from
``ServerState.app()``. One background thread, the *supervisor loop*, calls
``Supervisor.tick()`` every ~150 ms (at once again while output is pending): it ingests
output, enforces timeouts and is the only thread that starts queued sessions, so the
concurrency limits cannot be overrun by two threads scheduling at once. After each tick
it wakes the SSE streams and sends desktop notifications for attention events.
Between ticks it sleeps in ``ExitWatch.wait`` (runtime/exits.py), which returns the
moment a watched turn's wrapper exits: a turn's end is an event, not the next poll, and
the session that ended is ingested before anything else (``service_exits``).
``ServerSupervisor`` (server/supervisor.py) is the supervisor each thread gets.
Every ``pool.refill_every`` seconds a background thread looks at the warm worktree
pools and starts a detached filler for one that is short or stale (``pool_fill.refill``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Sequence, Set
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from parallel_agents import __version__
from parallel_agents.config import Settings
from parallel_agents.errors import PAError
from parallel_agents.git import pool
from parallel_agents.models import Status
from parallel_agents.runtime.exits import ExitWatch
from parallel_agents.server import notify
from parallel_agents.server.auth import Guard, load_or_create_token
from parallel_agents.server.sse import Notifier
from parallel_agents.server.supervisor import RAY_STARTS, ServerSupervisor
from parallel_agents.sessions import pairing, plan_runner, pool_fill, routine_runner
from parallel_agents.sessions.orchestrator import App
from parallel_agents.store import Store

log = logging.getLogger("parallel_agents.server")

TICK_INTERVAL = 0.15  # seconds between supervisor passes when nothing is pending
RECOVER_EVERY = 5.0  # seconds between looks for sessions stuck in `starting`
STUCK_AFTER = 10.0  # a `starting` session this old with a pending turn was orphaned
PLANS_EVERY = 0.5  # seconds between plan passes while a plan is live (issue 15 §1)
ROUTINES_EVERY = 1.0  # seconds between looks for due routines (issue 17)


def recover_stuck(app: App, min_age: float = STUCK_AFTER, busy: Set[str] = frozenset()) -> int:
    """Sessions left in ``starting`` by a process that died mid-start, put right.

    ``Supervisor.start`` claims a session (``starting``), spawns the wrapper, then marks
    the turn running; a crash between those steps leaves the session ``starting`` for
    ever. If the wrapper was spawned, adopt it (ingestion then reads its output or sees
    it gone); otherwise queue the session again. ``busy``: sessions a thread of this
    process is starting right now (a Ray start), never orphans.
    """
    store = app.store
    fixed = 0
    now = time.time()
    for s in store.sessions(statuses=[Status.STARTING]):
        if s.interactive or now - s.updated_at < min_age or s.id in busy:
            continue
        turn = store.last_turn(s.id)
        if turn is None:
            if now - s.updated_at > 300:
                msg = "pa stopped while creating this session's worktree"
                with contextlib.suppress(PAError):
                    store.set_status(s.id, Status.FAILED, expect=[Status.STARTING], error=msg)
                    fixed += 1
            continue
        if turn.status != "pending":
            continue
        launch = app.sup.turn_files(s.id, turn.n).launch()
        try:
            with store.tx() as db:
                if launch is not None:
                    state: dict[str, Any] = {}
                    if turn.n > 1:
                        _, prev = store.turn_progress(db, s.id, turn.n - 1)
                        if prev.get("usage_total"):
                            state["usage_base"] = prev["usage_total"]
                    store.update_turn(
                        db,
                        s.id,
                        turn.n,
                        status="running",
                        started_at=launch.stat().st_mtime,
                        state=state,
                        read_offset=0,
                    )
                    store.set_status(s.id, Status.RUNNING, db=db, expect=[Status.STARTING])
                else:
                    store.set_status(s.id, Status.QUEUED, db=db, expect=[Status.STARTING])
            fixed += 1
        except PAError:
            continue  # someone else moved it meanwhile
    return fixed


class ServerState:
    """Everything the running server shares between threads."""

    def __init__(self, home: Path, settings: Settings) -> None:
        self.home = home
        self.settings = settings
        self.token = load_or_create_token(home)
        self.guard = Guard(self.token)
        self.version = __version__
        self.pid = os.getpid()
        self.started_at = time.time()
        self.host = "127.0.0.1"
        self.port: int | None = None
        self.url: str | None = None
        self.notifier = Notifier()
        self.heartbeat = float(os.environ.get("PA_SERVER_HEARTBEAT") or 15.0)
        self.tick_interval = TICK_INTERVAL
        self._local = threading.local()
        self._wake = threading.Event()
        self.exits = ExitWatch()  # the loop sleeps here: wrappers' exits and wake() end it
        self.exit_wakes = 0  # loop sleeps a wrapper's exit ended (a health figure)
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self._bg = ThreadPoolExecutor(max_workers=4, thread_name_prefix="pa-bg")
        self._stopping: set[str] = set()
        self._stopping_lock = threading.Lock()
        self._schedule_asked = threading.Event()
        self._launches: list[str] = []  # claimed sessions for the loop to launch
        self._launch_lock = threading.Lock()
        self._starts = ThreadPoolExecutor(max_workers=RAY_STARTS, thread_name_prefix="pa-start")
        self._starting: set[str] = set()  # sessions a start thread holds (see start_later)
        self._begun: set[str] = set()  # of those, the ones whose start is under way
        self._starting_lock = threading.Lock()
        self._refilling = False  # a warm-pool check is queued or running
        self._refill_lock = threading.Lock()
        self.last_event_id = 0
        self._publish_lock = threading.Lock()
        self._attention_cursor = 0
        self.ticks = 0
        self.last_tick: float | None = None
        self._loop_sup: ServerSupervisor | None = None  # the loop thread's (health figures)
        self._plans_asked = threading.Event()  # plans: a pass at once (issue 15 §1)
        self._plans_next = 0.0
        self._planning = False  # a plan pass is queued or running
        self._plans_lock = threading.Lock()
        self._routines_next = 0.0  # routines (issue 17)
        self._routining = False
        self._pair_next = 0.0  # pairing mode (issue 16 §5)
        self._pairing = False

    # -- per-thread orchestrator ------------------------------------------------------
    def app(self) -> App:
        app: App | None = getattr(self._local, "app", None)
        if app is None:
            store = Store(self.home)
            app = App(self.settings, store, ServerSupervisor(store, self.settings, self))
            self._local.app = app
        return app

    def bind(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.url = url_for(host, port)
        self.guard.bind(host, port)

    # -- queries used by the API --------------------------------------------------------
    def app_latest_id(self) -> int:
        """The newest committed event id (from this thread's store)."""
        return _max_event_id(self.app().store)

    def query_events(
        self, sid: str | None, after_id: int, limit: int, kinds: Sequence[str] | None
    ) -> list[dict[str, Any]]:
        evs = self.app().store.events(
            sid, after_id=after_id, kinds=kinds, limit=limit, with_raw=False
        )
        out = []
        for e in evs:
            d = e.to_json()
            d.pop("raw", None)
            out.append(d)
        return out

    # -- the supervisor loop --------------------------------------------------------------
    def on_loop_thread(self) -> bool:
        """True on the supervisor loop's thread, or anywhere when no loop runs."""
        t = self._thread
        return t is None or threading.current_thread() is t

    def is_loop_thread(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def wake(self) -> None:
        self._wake.set()
        self.exits.wake()

    def launch_soon(self, sid: str) -> None:
        """Have the loop launch a session `new`/`send` claimed (moved to `starting`)."""
        with self._launch_lock:
            self._launches.append(sid)
        self.schedule_soon()

    def take_launches(self) -> list[str]:
        with self._launch_lock:
            out, self._launches = self._launches, []
        return out

    def start_later(self, sid: str) -> bool:
        """Start a claimed (``starting``) session's turn on a start thread, so the loop
        goes on ingesting while it comes up (a Ray actor takes seconds). False when the
        server is shutting down: the session stays ``starting`` for ``recover_stuck``."""
        with self._starting_lock:
            if sid in self._starting:
                return True
            self._starting.add(sid)

        def run() -> None:
            with self._starting_lock:
                if sid not in self._starting:
                    return  # a stop took it back before it began (cancel_start)
                self._begun.add(sid)
            try:
                sup = self.app().sup
                assert isinstance(sup, ServerSupervisor)
                sup.start_here(sid, claimed=True)
            finally:
                with self._starting_lock:
                    self._starting.discard(sid)
                    self._begun.discard(sid)
                self.wake()  # its output, or its place back in the queue, at once

        try:
            self._starts.submit(run)
        except RuntimeError:  # shutting down
            with self._starting_lock:
                self._starting.discard(sid)
            return False
        return True

    def cancel_start(self, sid: str) -> bool | None:
        """Take back ``sid``'s start if no thread has begun it (True: it never will);
        False when its start is under way; None when no start thread holds it."""
        with self._starting_lock:
            if sid not in self._starting:
                return None
            if sid in self._begun:
                return False
            self._starting.discard(sid)
            return True

    def starts_in_flight(self) -> frozenset[str]:
        """The sessions start threads hold now (started, or waiting for a thread)."""
        with self._starting_lock:
            return frozenset(self._starting)

    def schedule_soon(self) -> None:
        """Have the loop start queued sessions at once, before its next ingestion pass
        (which may take a while with many running sessions)."""
        self._schedule_asked.set()
        self.wake()

    def loop_health(self) -> dict[str, Any]:
        t = self._thread
        sup = self._loop_sup
        return {
            "alive": t is not None and t.is_alive(),
            "ticks": self.ticks,
            "exit_events": self.exits.fired,
            "exit_wakes": self.exit_wakes,
            # Turns the loop ended, and the transactions that ended them: many ending
            # together share one (issue 14 §3).
            "turn_ends": sup.turn_ends if sup else 0,
            "end_batches": sup.end_batches if sup else 0,
            "last_tick_age": None
            if self.last_tick is None
            else round(max(0.0, time.time() - self.last_tick), 3),
        }

    def start_loop(self) -> None:
        if self._thread is not None:
            return
        self._halt.clear()
        self.exits.open()
        self._thread = threading.Thread(target=self._run, name="pa-supervisor", daemon=True)
        self._thread.start()

    def stop_loop(self) -> None:
        self._halt.set()
        self.wake()
        t = self._thread
        if t is not None:
            t.join(timeout=30)
        self._bg.shutdown(wait=False, cancel_futures=True)
        self._starts.shutdown(wait=False, cancel_futures=True)

    def stop_later(self, sid: str, reason: str) -> None:
        """Stop a session on a background thread (once at a time per session)."""
        with self._stopping_lock:
            if sid in self._stopping:
                return
            self._stopping.add(sid)

        def run() -> None:
            try:
                self.app().sup.stop(sid, reason=reason)
            except Exception:
                log.exception("could not stop session %s", sid)
            finally:
                with self._stopping_lock:
                    self._stopping.discard(sid)
                self.wake()

        try:
            self._bg.submit(run)
        except RuntimeError:  # shutting down
            with self._stopping_lock:
                self._stopping.discard(sid)

    def _run(self) -> None:
        app = self.app()
        sup = app.sup
        assert isinstance(sup, ServerSupervisor)
        self._loop_sup = sup
        try:
            recover_stuck(app, busy=self.starts_in_flight())
        except Exception:
            log.exception("could not recover sessions stuck while starting")
        latest = _max_event_id(app.store)
        self._attention_cursor = latest
        self._publish(latest)
        next_recover = time.monotonic() + RECOVER_EVERY
        refill_every = pool.refill_every(self.settings)
        next_refill = time.monotonic() + refill_every
        while not self._halt.is_set():
            self._wake.clear()
            pending = False
            try:
                sup.begin_pass()  # turns that ended while the loop slept come first
                if self._schedule_asked.is_set():
                    self._schedule_asked.clear()
                    app.sup.schedule()
                rep = app.sup.tick()
                self.ticks += 1
                self.last_tick = time.time()
                pending = rep.pending or (sup.has_deferred and not sup.hold())
                self._run_checks(app)
                self._after_tick(app)
                self._drive_plans(app)
                self._drive_routines()
                self._sync_pairings()
                if time.monotonic() >= next_recover:
                    next_recover = time.monotonic() + RECOVER_EVERY
                    recover_stuck(app, busy=self.starts_in_flight())
                if refill_every and time.monotonic() >= next_refill:
                    next_refill = time.monotonic() + refill_every
                    self._refill_later()
            except Exception:
                log.exception("supervisor pass failed")
                self._halt.wait(1.0)
                continue
            nap = self.tick_interval
            if sup.has_deferred:
                nap = min(nap, sup.hold())
            self._sleep(sup, 0 if pending or self._wake.is_set() else nap)
        try:
            sup.flush_after_turns()  # shutting down: finish the end-of-turn work
        except Exception:
            log.exception("end-of-turn work failed at shutdown")
        self.exits.close()

    def _sleep(self, sup: ServerSupervisor, timeout: float) -> None:
        """Until the next pass: ``timeout`` seconds, or less when a watched wrapper exits
        (its session is then first in the pass) or someone calls ``wake``."""
        ended, _ = self.exits.wait(timeout)
        if ended:
            if timeout:
                self.exit_wakes += 1
            sup.note_ended(ended)

    def _refill_later(self) -> None:
        """Look at the warm pools on a background thread, one look at a time: a pool that
        is short or stale gets a detached filler (``pool_fill.refill``)."""
        with self._refill_lock:
            if self._refilling:
                return
            self._refilling = True

        def run() -> None:
            try:
                kicked = pool_fill.refill(self.settings, self.app().store)
                if kicked:
                    log.info("refilling the warm pool of %s", ", ".join(kicked))
            except Exception:
                log.exception("warm pool refill failed")
            finally:
                with self._refill_lock:
                    self._refilling = False

        try:
            self._bg.submit(run)
        except RuntimeError:  # shutting down
            with self._refill_lock:
                self._refilling = False

    # -- plans (issue 15 §1) ---------------------------------------------------------------
    def plans_soon(self) -> bool:
        """Have the loop drive the plans at its next pass; False when no loop runs (the
        in-process transport): the caller drives them itself."""
        if self._thread is None:
            return False
        self._plans_asked.set()
        self.wake()
        return True

    def _drive_plans(self, app: App) -> None:
        """While a plan is live, a plan pass (``plan_runner.drive``) every PLANS_EVERY
        seconds, or at once when asked, on a background thread, one at a time: a pass
        starts sessions, runs checks and merges, none of which may hold up ingestion."""
        now = time.monotonic()
        if not self._plans_asked.is_set() and now < self._plans_next:
            return
        self._plans_next = now + PLANS_EVERY
        with self._plans_lock:
            if self._planning:
                return  # asked again: the flag stays set for the pass after this one
            self._plans_asked.clear()
            if not plan_runner.live_plans(app):
                return
            self._planning = True

        def run() -> None:
            try:
                plan_runner.drive(self.app())
            except Exception:
                log.exception("plan pass failed")
            finally:
                with self._plans_lock:
                    self._planning = False

        try:
            self._bg.submit(run)
        except RuntimeError:  # shutting down
            with self._plans_lock:
                self._planning = False

    # -- routines (issue 17) -----------------------------------------------------------
    def _drive_routines(self) -> None:
        """Every ROUTINES_EVERY seconds a routine pass (``routine_runner.drive``: it claims
        each due time once in the store) on a background thread, one at a time: making a
        session may take a worktree's time, which must not hold up ingestion."""
        now = time.monotonic()
        if now < self._routines_next or self._routining:
            return
        self._routines_next = now + ROUTINES_EVERY
        self._routining = True

        def run() -> None:
            try:
                routine_runner.drive(self.app())
            except Exception:
                log.exception("routine pass failed")
            finally:
                self._routining = False

        try:
            self._bg.submit(run)
        except RuntimeError:  # shutting down
            self._routining = False

    # -- pairing mode (issue 16 §5) -----------------------------------------------------
    def loop_running(self) -> bool:
        return self._thread is not None

    def _sync_pairings(self) -> None:
        """Every SYNC_EVERY seconds while a pairing exists (one directory listing), a
        sync pass on a background thread, one at a time: git work never holds up the
        loop."""
        now = time.monotonic()
        if now < self._pair_next or self._pairing:
            return
        self._pair_next = now + pairing.SYNC_EVERY
        if not pairing.records(self.home):
            return
        self._pairing = True

        def run() -> None:
            try:
                pairing.sync_all(self.app().store, self.home)
            except Exception:
                log.exception("pairing sync failed")
            finally:
                self._pairing = False

        try:
            self._bg.submit(run)
        except RuntimeError:  # shutting down
            self._pairing = False

    def _run_checks(self, app: App) -> None:
        # After-turn checks (review) may run for minutes: never on the loop thread. The
        # queue is handed over here, on the thread that fills it, to a background
        # thread's own supervisor (stores are per thread).
        todo = getattr(app.sup, "_checks", None)
        if not todo or not hasattr(app.sup, "run_pending_checks"):
            return
        app.sup._checks = []

        def run() -> None:
            sup = self.app().sup
            sup._checks = list(todo)
            try:
                sup.run_pending_checks()
            except Exception:
                log.exception("after-turn checks failed")

        with contextlib.suppress(RuntimeError):
            self._bg.submit(run)

    def _publish(self, latest: int) -> None:
        with self._publish_lock:
            if latest <= self.last_event_id:
                return
            self.last_event_id = latest
        self.notifier.publish(latest)

    def publish_from(self, store: Store) -> None:
        """Wake the SSE streams for everything committed so far (any thread)."""
        self._publish(_max_event_id(store))

    def _after_tick(self, app: App) -> None:
        latest = _max_event_id(app.store)
        self._publish(latest)
        if latest <= self._attention_cursor:
            return
        events = app.store.events(after_id=self._attention_cursor, kinds=["attention"])
        self._attention_cursor = max([latest, *(e.id for e in events)])
        if not events or not notify.enabled(self.settings):
            return
        for e in events:
            try:
                s = app.store.session(e.session_id)
            except PAError:
                continue
            status = str(e.payload.get("status") or s.status.value)
            notify.notify_attention(s, status)


def _max_event_id(store: Store) -> int:
    return store.max_event_id()


def url_for(host: str, port: int) -> str:
    h = host
    if h in ("0.0.0.0", "", "::"):
        h = "127.0.0.1"
    if ":" in h and not h.startswith("["):
        h = f"[{h}]"
    return f"http://{h}:{port}"
