"""The Ray runtime (issue 19): each session a detached, named actor on a node that
declares the custom resource ``pa_agent``; turns run there under the same wrapper.

The turn's local folder is the mirror the engines read: ``read`` pulls new output from
the actor by offset (in batches) and appends it to the local stdout file, so ingestion,
offsets and exactly-once are the local ones. When the turn has ended the node snapshots
its worktree and returns a bundle; it is fetched into the local repository and the local
worktree is made that snapshot *before* the exit record is written locally, so the
local checkpoint, diff, review and merge see the remote work unchanged.

``ray`` is imported only when a session uses this runtime.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parallel_agents.errors import PAError
from parallel_agents.runtime import ray_bundles, ray_probe
from parallel_agents.runtime.base import LaunchSpec, NoRoom, TurnFiles
from parallel_agents.runtime.ray_node import OUT_REF, SessionNode

RESOURCE = "pa_agent"  # the custom resource a node declares: its session slots
BATCH = 1024 * 1024  # output bytes one poll brings back at most
INSTALL_HINT = "install it with: pip install 'parallel-agents[ray]'"
_CONNECT = threading.Lock()
_STATE = "ray.json"  # in the turn's folder: the actor and node that run it
SLOT_WAIT = 60.0  # seconds a new actor may wait to be placed before its session requeues
POLL_TIMEOUT = 30.0  # seconds one poll of the actor may take before it counts as a hiccup
# Seconds an actor holds a poll open waiting for output: an idle session costs one call a
# LONG_POLL, not one per pass (200 sessions: a fifth of a core on polls alone).
LONG_POLL = 3.0
POLLS = "polls"  # the actor's concurrency group for long polls
READY_EVERY = 0.02  # seconds one look at which polls are answered serves a pass


def namespace_for(home: Path) -> str:
    """One Ray namespace per pa home: two homes on a cluster never see each other's."""
    return "pa-" + hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:12]


def actor_name(sid: str) -> str:
    return f"pa-session-{sid}"


class RayUnavailable(PAError):
    """Ray is not installed, or its cluster cannot be reached."""


def connect(address: str | None, namespace: str) -> Any:
    """``ray``, connected to the cluster at ``address`` (None: Ray's own default); a
    clear error when Ray is missing or the head cannot be reached."""
    try:
        import ray
    except ImportError:
        raise RayUnavailable("the ray runtime needs Ray, which is not installed",
                             hint=INSTALL_HINT) from None
    with _CONNECT:  # two requests at once must not both call ray.init (it asserts)
        if not ray.is_initialized():
            _init(ray, address, namespace)
    return ray


def _init(ray: Any, address: str | None, namespace: str) -> None:
    where = address or os.environ.get("RAY_ADDRESS") or "auto"
    try:
        _probe(where)
        ray.init(
            address=where,
            namespace=namespace,
            logging_level=40,  # logging.ERROR
            log_to_driver=False,
            configure_logging=False,
        )
    except (ConnectionError, RuntimeError, ValueError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise RayUnavailable(
            f"cannot reach the Ray cluster at {where}: {first}",
            hint="start one with `ray start --head` (workers: `ray start --address HEAD"
            " --resources '{\"pa_agent\": 8}'`) or set runtime.ray.address;"
            " local sessions are not affected",
        ) from None


def _probe(where: str, timeout: float = 5.0) -> None:
    """Fail fast when the head does not answer: ``ray.init`` would wait for minutes."""
    if where == "auto":
        return  # Ray looks for a cluster started on this machine and says when there is none
    hostport = where.split("://", 1)[-1]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        return
    socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout).close()


def _git(args: list[str], cwd: Path) -> str:
    p = subprocess.run(["git", *args], cwd=str(cwd), capture_output=True, text=True,
                       check=False)
    if p.returncode != 0:
        raise RuntimeError(p.stderr.strip() or p.stdout.strip() or f"git {args[0]} failed")
    return p.stdout.strip()


class RayRuntime:
    kind = "ray"
    # The node's checkpoint comes home as a bundle and is fetched: on a busy cluster
    # that takes longer than a local agent's exit record.
    end_wait = 60.0

    def __init__(self, *, home: Path, address: str | None, repo_url: str | None = None) -> None:
        self.home = home
        self.address = address
        self.repo_url = repo_url  # runtime.ray.repo_url: nodes fetch the repository there
        self.namespace = namespace_for(home)
        self._handles: dict[str, Any] = {}  # session id -> its actor's handle (see _sync)
        self._polls: dict[str, _Poll] = {}  # session id -> its open long poll (see _answer)
        self._answered: set[Any] = set()  # refs of polls answered when last asked
        self._ready_at = float("-inf")  # when that was (monotonic)
        # Session id -> (turn, its wrapper alive), as the last poll answer told.
        self._alive: dict[str, tuple[int, bool]] = {}

    # -- the actor ------------------------------------------------------------------
    def _ray(self) -> Any:
        return connect(self.address, self.namespace)

    def _actor(self, sid: str, *, create: bool, spec: LaunchSpec | None = None) -> Any:
        ray = self._ray()
        name = actor_name(sid)
        try:
            return ray.get_actor(name, namespace=self.namespace)
        except ValueError:
            if not create:
                return None
        # Long polls run in a group of their own: `stop`, `checkpoint` and the next turn
        # never wait behind one a poll holds open.
        cls = ray.remote(concurrency_groups={POLLS: 2})(SessionNode)
        # A CLI agent's actor is pinned to a node that has the CLI (``ray_probe``).
        extra = spec.extra if spec is not None else {}
        binaries = dict(extra.get("binaries") or {})  # type: ignore[call-overload]
        place = ray_probe.placement(ray, self.home, str(extra.get("agent") or ""), binaries)
        return cls.options(
            **place,
            name=name,
            namespace=self.namespace,
            lifetime="detached",
            get_if_exists=True,
            resources={RESOURCE: 1},
            num_cpus=0,
            max_restarts=0,
        ).remote(sid, self.namespace)

    # -- Runtime --------------------------------------------------------------------
    def start(self, files: TurnFiles, spec: LaunchSpec) -> int | None:
        if spec.repo_path is None or not spec.branch:
            raise PAError("the ray runtime needs the session's repository and branch")
        ray = self._ray()
        files.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for name in ("stdout", "stderr"):
            (files.dir / name).touch(mode=0o600)
        repo_key = hashlib.sha256(str(spec.repo_path.resolve()).encode()).hexdigest()[:16]
        remote: list[str] = []
        if self.repo_url:  # asked first: an unreachable URL fails the turn before any actor
            try:
                remote = ray_bundles.remote_has(spec.repo_path, self.repo_url)
            except RuntimeError as e:
                raise PAError(
                    f"cannot reach runtime.ray.repo_url {self.repo_url}: {e}",
                    hint="fix or empty runtime.ray.repo_url (or PA_RAY_REPO_URL): this"
                    " machine and every node must be able to fetch from it",
                ) from None
        actor, have = self._live_actor(ray, spec)
        try:
            ship = ray_bundles.build(spec.repo_path, spec.cwd, spec.branch, spec.session_id,
                                     have=have, repo_url=self.repo_url, remote=remote)
        except RuntimeError as e:
            raise PAError(f"could not bundle {spec.branch} for the ray runtime: {e}") from None
        n = int(files.dir.name)
        try:
            node = ray.get(
                actor.start_turn.remote(
                    n, repo_key, ship.for_node(), spec.argv, spec.env, spec.stdin,
                    spec.setup, spec.max_bytes, str(spec.cwd),
                )
            )
        except Exception as e:  # the node's git or spawn failed: the turn fails with it
            raise PAError(f"the ray node could not start the turn: {_cause(e)}") from None
        state = {"actor": actor_name(spec.session_id), "node": node, "n": n,
                 "worktree": str(spec.cwd), "repo": str(spec.repo_path),
                 "shipped": ship.note()}
        (files.dir / _STATE).write_text(json.dumps(state))
        return None

    def _live_actor(self, ray: Any, spec: LaunchSpec) -> tuple[Any, dict[str, str] | None]:
        """The session's actor and what its worktree holds. An actor whose node is gone is
        dead for good (``max_restarts=0``): its name is freed once Ray has marked it dead,
        and a new actor (on a node with a free slot) takes it, starting from scratch."""
        deadline = time.monotonic() + 120
        while True:
            fresh = self._actor(spec.session_id, create=False) is None
            if fresh and not self._room(ray):
                raise NoRoom("no free pa_agent slot on any node")
            actor = self._actor(spec.session_id, create=True, spec=spec)
            try:
                # A new actor waits for a slot: bounded, or the server's loop (which starts
                # turns) would stall behind it while other sessions' output waits.
                holds = ray.get(actor.holds.remote(), timeout=SLOT_WAIT if fresh else None)
                self._handles[spec.session_id] = actor
                return actor, holds
            except ray.exceptions.GetTimeoutError:
                with contextlib.suppress(Exception):  # not placed: give its claim back
                    ray.kill(actor, no_restart=True)
                raise NoRoom("no pa_agent slot freed in time") from None
            except ray.exceptions.RayActorError as e:
                if time.monotonic() > deadline:
                    raise PAError(f"the session's Ray actor is gone and its name is still"
                                  f" taken: {_cause(e)}",
                                  hint="try `pa send` again in a minute") from None
                with contextlib.suppress(Exception):  # already gone: its name is freed
                    ray.kill(actor, no_restart=True)
                time.sleep(0.5)  # Ray frees a dead actor's name within a moment

    def has_room(self) -> bool:
        """Whether a new session could get a slot now (the scheduler asks before it claims
        a queued session); True when Ray cannot say: ``start`` then decides."""
        try:
            return self._room(self._ray())
        except Exception:
            return True

    def holds_slot(self, sid: str) -> bool:
        """Whether the session's actor lives (and so holds its slot for its next turn);
        True when Ray cannot say: ``start`` then decides."""
        try:
            return self._actor(sid, create=False) is not None
        except Exception:
            return True

    def _room(self, ray: Any) -> bool:
        """Whether some alive node has a free ``pa_agent`` slot (Ray's count, a moment
        behind; unknown counts as room: the bounded wait above settles it)."""
        nodes = ray_probe.agent_nodes(ray)
        return not nodes or any(n["alive"] and n["free"] > 0 for n in nodes) or all(
            n["free"] == 0 and n.get("free_unknown") for n in nodes)

    def _state(self, files: TurnFiles) -> dict[str, Any] | None:
        try:
            data = json.loads((files.dir / _STATE).read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _sync(self, files: TurnFiles) -> dict[str, Any] | None:
        """Pull the turn's new output (one batch) into its local files; at its end, bring
        the node's checkpoint home and write the exit record. The poll's answer, or None
        when Ray says the actor is gone; ``_Hiccup`` when it cannot say now."""
        if files.exit_info() is not None:
            return {"exit": files.exit_info(), "alive": False}
        st = self._state(files)
        if st is None:
            return None
        sid = str(st["actor"]).removeprefix("pa-session-")
        # The handle is kept between passes: looking the actor up by name is a call to
        # the head, as dear as the poll itself, for every running session on every pass.
        actor = self._handles.get(sid)
        cached = actor is not None
        try:
            ray = self._ray()
            if actor is None:
                actor = self._actor(sid, create=False)
        except Exception as e:  # the head does not answer now: not a verdict on the turn
            raise _Hiccup(str(e)) from None
        if actor is None:
            return None  # Ray knows no such actor: it is dead
        self._handles[sid] = actor
        have = _size(files)
        n = int(st["n"])
        try:
            got = self._answer(ray, actor, sid, n, have)
        except Exception as e:
            self._handles.pop(sid, None)
            self._polls.pop(sid, None)
            if cached and isinstance(e, ray.exceptions.RayActorError):
                # The kept handle may be of an actor another pa process has since
                # replaced (`pa send` after a lost node): ask Ray by name once more.
                return self._sync(files)
            if self._dead(ray, sid, e):
                return None
            # A timeout, a lost connection, a busy actor: the next poll asks again; what
            # was not appended here was not read (the offset is the local file's size).
            raise _Hiccup(str(e)) from None
        if got is None or _size(files) != have:
            # Still open, or answered from an offset another reader has since moved
            # past (its output is on file already): nothing new; alive as last told
            # (a wrapper gone without an exit record stays gone: read() may have taken
            # that answer, and alive() must still hear it).
            return {"alive": self._alive.get(sid) != (n, False), "exit": None}
        self._alive[sid] = (n, bool(got.get("alive")))
        data = got["data"]
        if data:
            with open(files.stdout, "ab") as f:
                f.write(data)
        ended = got["exit"] is not None and have + len(data) >= int(got["total"])
        if not ended:
            self._ask(actor, sid, n, have + len(data))  # the next batch on its way now
            return got
        (files.dir / "stderr").write_bytes(got["stderr"])
        if got["setup_log"]:
            files.setup_log.write_bytes(got["setup_log"])
        if got["cut"]:
            at, size = got["cut"]
            (files.dir / "cut").write_text(f"{at} {size}")
        exit_info = dict(got["exit"])
        try:
            st["home"] = {"bytes": self._bring_home(ray, actor, st)}
            (files.dir / _STATE).write_text(json.dumps(st))
        except Exception as e:
            msg = f"could not bring the node's work home: {_cause(e)}"
            with open(files.stderr, "ab") as f:
                f.write(("\npa: " + msg + "\n").encode())
            exit_info = {"code": exit_info.get("code") if exit_info.get("code") else 1,
                         "error": msg}
        files.exit.write_text(json.dumps(exit_info))
        return {"exit": exit_info, "alive": False}

    def _ask(self, actor: Any, sid: str, n: int, offset: int) -> _Poll:
        """Open a long poll of turn ``n``'s output from ``offset`` (at most one a session)."""
        if hasattr(actor, "long_polls"):
            ref = actor.poll.options(concurrency_group=POLLS).remote(n, offset, BATCH, LONG_POLL)
        else:  # made by an older pa: no group for polls (asking for one would kill it)
            ref = actor.poll.remote(n, offset, BATCH)
        p = _Poll(ref, n, offset, time.monotonic())
        self._polls[sid] = p
        return p

    def _answer(self, ray: Any, actor: Any, sid: str, n: int, have: int) -> dict[str, Any] | None:
        """The answer of the session's open poll (opened now if there is none), or None
        while the actor holds it open. A poll opened for another turn or offset is let
        go; one unanswered for ``POLL_TIMEOUT`` beyond its wait raises (a hiccup)."""
        p = self._polls.get(sid)
        if p is None or (p.n, p.offset) != (n, have):
            p = self._ask(actor, sid, n, have)
        if not self._ready(ray, p):
            if time.monotonic() - p.asked > POLL_TIMEOUT + LONG_POLL:
                raise TimeoutError(f"the session's actor left a poll unanswered for"
                                   f" {POLL_TIMEOUT:.0f} s")
            return None
        del self._polls[sid]
        got: dict[str, Any] = ray.get(p.ref)
        return got

    def _ready(self, ray: Any, p: _Poll) -> bool:
        """Whether ``p`` is answered. One ``ray.wait`` over every open poll tells it for
        all sessions of a pass (asked again after ``READY_EVERY``), not one call each."""
        now = time.monotonic()
        if now - self._ready_at >= READY_EVERY:
            refs = [q.ref for q in self._polls.values()]
            done, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
            self._answered, self._ready_at = set(done), now
        return p.ref in self._answered

    def _bring_home(self, ray: Any, actor: Any, st: dict[str, Any]) -> int:
        """Fetch the node's checkpoint into the local repository (all or nothing: one
        ref update) and make the local worktree exactly that snapshot, HEAD at its
        parent, as ``git/snapshots.restore`` would; returns the bundle's size."""
        bundle: bytes = ray.get(actor.checkpoint.remote())
        wt = Path(st["worktree"])
        sid = str(st["actor"]).removeprefix("pa-session-")
        ref = OUT_REF + sid
        with tempfile.NamedTemporaryFile(suffix=".bundle") as f:
            f.write(bundle)
            f.flush()
            _git(["fetch", "-q", f.name, f"+{ref}:{ref}"], wt)
        _git(["reset", "-q", "--hard", ref], wt)
        _git(["reset", "-q", ref + "^"], wt)
        return len(bundle)

    def _dead(self, ray: Any, sid: str, e: BaseException) -> bool:
        """Whether the failed poll's error means the actor is gone for good: Ray says it
        died (its node with it), or no longer knows its name."""
        from ray.exceptions import ActorDiedError, NodeDiedError, RayActorError

        if isinstance(e, (ActorDiedError, NodeDiedError)):
            return True
        if not isinstance(e, RayActorError):
            return False  # a timeout, the connection: transient
        try:
            return self._actor(sid, create=False) is None
        except Exception:
            return False

    def read(self, files: TurnFiles, offset: int, size: int) -> tuple[bytes, int]:
        # On a hiccup what came home so far is read; the rest on the next pass.
        with contextlib.suppress(_Hiccup):
            self._sync(files)
        return files.read_stdout(offset, size)

    def exit_info(self, files: TurnFiles) -> dict[str, object] | None:
        return files.exit_info()

    def alive(self, files: TurnFiles) -> bool:
        if files.exit_info() is not None:
            return True  # ended: the engine reads the rest and finishes the turn
        try:
            got = self._sync(files)
        except _Hiccup:
            return True  # a passing hiccup of Ray never interrupts a turn
        if got is None:
            # The actor is gone (Ray says so), or the turn never got its state: start
            # writes ray.json before it returns, so a turn without one did not start.
            return False
        return bool(got.get("alive")) or got.get("exit") is not None

    def stop(self, files: TurnFiles, grace: float) -> None:
        st = self._state(files)
        if st is None:
            return
        ray = self._ray()
        actor = self._actor(str(st["actor"]).removeprefix("pa-session-"), create=False)
        if actor is not None:
            ray.get(actor.stop.remote(int(st["n"]), grace))

    def release(self, sid: str) -> None:
        """Give the session's ``pa_agent`` slot back: its actor removes its worktree on
        the node (best effort) and is killed. Called once its work is home for good
        (archived by a discard, or merged)."""
        for kept in (self._handles, self._polls, self._alive):
            kept.pop(sid, None)
        ray = self._ray()
        actor = self._actor(sid, create=False)
        if actor is None:
            return
        # Its node may be gone: the kill below still frees what is left.
        with contextlib.suppress(Exception):
            ray.get(actor.close.remote(), timeout=60)
        ray.kill(actor, no_restart=True)


@dataclass(frozen=True)
class _Poll:
    """A long poll on its way: its answer's ref, the turn and offset it reads from, and
    when it was asked (monotonic)."""

    ref: Any
    n: int
    offset: int
    asked: float


def _size(files: TurnFiles) -> int:
    try:
        return files.stdout.stat().st_size
    except FileNotFoundError:
        return 0


class _Hiccup(Exception):
    """Ray cannot answer about the turn right now (head or actor unreachable, a poll
    timed out): the turn goes on; asked again on the next pass."""


def _cause(e: BaseException) -> str:
    """The first line of what failed on the node (Ray wraps it in its own error)."""
    inner = getattr(e, "cause", None) or e
    text = str(inner).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    # git's own verdict (``fatal:``/``error:``) first: its hint lines come after it.
    for line in lines:
        if "fatal:" in line or "error:" in line:
            return line
    for line in lines:
        if "git " in line or "Error" in line:
            return line
    return text.splitlines()[-1] if text else type(e).__name__
