"""The supervisor loop that runs inside the server, and the state its threads share.

Threads: FastAPI runs the (sync) API handlers in a thread pool and the SQLite store is
not thread-safe, so every thread gets its own ``App`` (store + supervisor) from
``ServerState.app()``. One background thread, the *supervisor loop*, calls
``Supervisor.tick()`` every ~150 ms (at once again while output is pending): it ingests
output, enforces timeouts and is the only thread that starts queued sessions, so the
concurrency limits cannot be overrun by two threads scheduling at once. After each tick
it wakes the SSE streams and sends desktop notifications for attention events.
Every ``pool.refill_every`` seconds a background thread looks at the warm worktree
pools and starts a detached filler for one that is short or stale (``pool_fill.refill``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from parallel_agents import __version__
from parallel_agents.config import Settings
from parallel_agents.errors import PAError
from parallel_agents.git import pool
from parallel_agents.models import Session, Status
from parallel_agents.server import notify
from parallel_agents.server.auth import Guard, load_or_create_token
from parallel_agents.server.sse import Notifier
from parallel_agents.sessions import pool_fill
from parallel_agents.sessions.headless import Supervisor, TickReport
from parallel_agents.sessions.orchestrator import App
from parallel_agents.store import Store

log = logging.getLogger("parallel_agents.server")

TICK_INTERVAL = 0.15  # seconds between supervisor passes when nothing is pending
RECOVER_EVERY = 5.0  # seconds between looks for sessions stuck in `starting`
STUCK_AFTER = 10.0  # a `starting` session this old with a pending turn was orphaned
MAX_INGEST_FAILURES = 3
AFTER_TURN_BUDGET = 0.25  # seconds of checkpoints per pass before ingesting again

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
    """

    def __init__(self, store: Store, settings: Settings, server: ServerState) -> None:
        super().__init__(store, settings)
        self.server = server
        self._failures: dict[str, int] = {}
        self._deferred: list[str] = []
        self._seen: dict[str, tuple[tuple[str, int], float]] = {}

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

    def after_turn(self, sid: str) -> None:
        # The turn's end (status, attention) is committed by now: wake the streams at once.
        # On the loop thread the slower end-of-turn work (a checkpoint) waits until every
        # session of this pass was ingested, so one session's end does not delay another's.
        self.server.publish_from(self.store)
        if self.server.is_loop_thread():
            self._deferred.append(sid)
            return
        super().after_turn(sid)

    @property
    def has_deferred(self) -> bool:
        return bool(self._deferred)

    def flush_after_turns(self, budget: float | None = None) -> None:
        """Run deferred end-of-turn work, oldest first; with a ``budget`` (seconds), stop
        once it is spent (the loop comes back at once for the rest, after ingesting)."""
        deadline = None if budget is None else time.monotonic() + budget
        while self._deferred:
            self._after_turn_now(self._deferred.pop(0))
            if deadline is not None and time.monotonic() > deadline:
                break

    def _after_turn_now(self, sid: str) -> None:
        try:
            super().after_turn(sid)
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
        key = (str(files.dir), size)
        seen = self._seen.get(sid)
        quiet = seen is not None and seen[0] == key and time.monotonic() - seen[1] < 1.0
        return quiet, key

    def ingest(self, sid: str) -> TickReport:
        quiet, key = self._quiet(sid)
        if quiet:
            return TickReport()
        try:
            rep = super().ingest(sid)
            if key is not None and not rep.pending and not rep.finished:
                self._seen[sid] = (key, time.monotonic())
            else:
                self._seen.pop(sid, None)
        except Exception as e:
            self._seen.pop(sid, None)
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


def recover_stuck(app: App, min_age: float = STUCK_AFTER) -> int:
    """Sessions left in ``starting`` by a process that died mid-start, put right.

    ``Supervisor.start`` claims a session (``starting``), spawns the wrapper, then marks
    the turn running; a crash between those steps leaves the session ``starting`` for
    ever. If the wrapper was spawned, adopt it (ingestion then reads its output or sees
    it gone); otherwise queue the session again.
    """
    store = app.store
    fixed = 0
    now = time.time()
    for s in store.sessions(statuses=[Status.STARTING]):
        if s.interactive or now - s.updated_at < min_age:
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
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self._bg = ThreadPoolExecutor(max_workers=4, thread_name_prefix="pa-bg")
        self._stopping: set[str] = set()
        self._stopping_lock = threading.Lock()
        self._schedule_asked = threading.Event()
        self._launches: list[str] = []  # claimed sessions for the loop to launch
        self._launch_lock = threading.Lock()
        self._refilling = False  # a warm-pool check is queued or running
        self._refill_lock = threading.Lock()
        self.last_event_id = 0
        self._publish_lock = threading.Lock()
        self._attention_cursor = 0
        self.ticks = 0
        self.last_tick: float | None = None

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

    def launch_soon(self, sid: str) -> None:
        """Have the loop launch a session `new`/`send` claimed (moved to `starting`)."""
        with self._launch_lock:
            self._launches.append(sid)
        self.schedule_soon()

    def take_launches(self) -> list[str]:
        with self._launch_lock:
            out, self._launches = self._launches, []
        return out

    def schedule_soon(self) -> None:
        """Have the loop start queued sessions at once, before its next ingestion pass
        (which may take a while with many running sessions)."""
        self._schedule_asked.set()
        self._wake.set()

    def loop_health(self) -> dict[str, Any]:
        t = self._thread
        return {
            "alive": t is not None and t.is_alive(),
            "ticks": self.ticks,
            "last_tick_age": None
            if self.last_tick is None
            else round(max(0.0, time.time() - self.last_tick), 3),
        }

    def start_loop(self) -> None:
        if self._thread is not None:
            return
        self._halt.clear()
        self._thread = threading.Thread(target=self._run, name="pa-supervisor", daemon=True)
        self._thread.start()

    def stop_loop(self) -> None:
        self._halt.set()
        self._wake.set()
        t = self._thread
        if t is not None:
            t.join(timeout=30)
        self._bg.shutdown(wait=False, cancel_futures=True)

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
        try:
            recover_stuck(app)
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
                if self._schedule_asked.is_set():
                    self._schedule_asked.clear()
                    app.sup.schedule()
                rep = app.sup.tick()
                self.ticks += 1
                self.last_tick = time.time()
                pending = rep.pending or sup.has_deferred
                self._run_checks(app)
                self._after_tick(app)
                if time.monotonic() >= next_recover:
                    next_recover = time.monotonic() + RECOVER_EVERY
                    recover_stuck(app)
                if refill_every and time.monotonic() >= next_refill:
                    next_refill = time.monotonic() + refill_every
                    self._refill_later()
            except Exception:
                log.exception("supervisor pass failed")
                self._halt.wait(1.0)
                continue
            if not pending:
                self._wake.wait(self.tick_interval)
        try:
            sup.flush_after_turns()  # shutting down: finish the end-of-turn work
        except Exception:
            log.exception("end-of-turn work failed at shutdown")

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
