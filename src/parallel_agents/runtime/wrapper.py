"""The tiny process that owns one agent turn after `pa` has gone away.

Over 600 lines because it must be one file: it runs by file name under ``-I -S`` at
every turn's start and imports nothing of pa, so its parts (the output cap's sink, the
sweep of leftovers, `pa stop`'s mark) cannot live in modules of their own without a path
set-up on that hot path.

Started detached (own session) by runtime.local as ``python -I -S wrapper.py TURN_DIR``.
It runs the optional setup command, then the agent with stdout/stderr going to files,
and records the exit code atomically.

With a cap (``max_bytes`` in the launch spec, pa's ``output.max_bytes``) the agent writes
into pipes and the wrapper keeps each file to the first half of the cap, as it comes, plus
the newest bytes (``_Sink``); the cut is recorded in ``CUT`` for the ingester to announce.
A full disk stops the agent and is recorded in the exit record (``disk_full``), written
as soon as there is room again, so the turn ends ``failed`` instead of staying ``running``.

It sits on the path of every session start, so it imports nothing but built-in
modules (os, signal, time, marshal, _thread) and ctypes (for prctl, about 4 ms): subprocess,
json and pathlib would cost more than everything else it does. The launch spec is
therefore a marshal file written by the same interpreter (``local.spawn`` runs
``sys.executable``).
"""

from __future__ import annotations

import _thread
import marshal
import os
import signal
import sys
import time

TYPE_CHECKING = False  # typing itself is not worth importing here
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

LAUNCH = "launch.bin"
# "<offset> <bytes>": where the output cap cut stdout and how much it dropped there;
# written before the kept tail is appended at that offset.
CUT = "stdout.cut"
STOP = "stop"  # `pa stop`'s mark, left before it looks for a pid to signal (``_stopped``)
_NO_SPACE = (28, 122)  # ENOSPC, EDQUOT
_APPEND = os.O_WRONLY | os.O_CREAT | os.O_APPEND
# Python ignores these at start-up and an ignored disposition survives exec: the agent
# must get the defaults back (what subprocess's restore_signals does).
_RESTORE = tuple(
    getattr(signal, name) for name in ("SIGPIPE", "SIGXFZ", "SIGXFSZ") if hasattr(signal, name)
)


def _write_atomic(path: str, text: str, *, durable: bool = False) -> None:
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode("utf-8"))
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class _Sink:
    """One output file fed from a pipe, kept to ``limit`` bytes: the first half as it
    comes (ending at a line end, so the ingester reads it live), then only the newest
    bytes, in two rotating segment files of a quarter each; ``finish`` appends the kept
    tail (from its first whole line) where the head ended."""

    def __init__(self, path: str, limit: int) -> None:
        self.fd = os.open(path, _APPEND, 0o600)
        self.head = limit // 2
        self.seg = max(1, (limit - self.head) // 2)
        self.written = 0
        self.cut_at = -1  # where the head ended (-1: not yet)
        self.tail_seen = 0  # bytes that came after the head
        self.segs = (path + ".tail0", path + ".tail1")  # the older, the current
        self.cur = -1
        self.cur_size = 0
        self.full = False  # a write failed for lack of space: the rest is dropped
        self.closed = False
        self.lock = _thread.allocate_lock()
        self.done = _thread.allocate_lock()
        self.done.acquire()

    def feed(self, data: bytes) -> bool:
        """Keep ``data``; False when the disk is full (then nothing more is kept)."""
        if self.full:
            return True
        try:
            if self.cut_at < 0:
                room = self.head - self.written
                if len(data) <= room:
                    _write_all(self.fd, data)
                    self.written += len(data)
                    return True
                keep = data[: data.rfind(b"\n", 0, room) + 1]
                _write_all(self.fd, keep)
                self.written += len(keep)
                self.cut_at = self.written
                data = data[len(keep) :]
            self.tail_seen += len(data)
            while data:
                if self.cur < 0 or self.cur_size >= self.seg:
                    if self.cur >= 0:
                        os.close(self.cur)
                        os.replace(self.segs[1], self.segs[0])
                    self.cur = os.open(self.segs[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                    self.cur_size = 0
                n = min(len(data), self.seg - self.cur_size)
                _write_all(self.cur, data[:n])
                self.cur_size += n
                data = data[n:]
        except OSError as e:
            if e.errno not in _NO_SPACE:
                raise
            self.full = True
            return False
        return True

    def finish(self, cut_file: str | None) -> None:
        if self.cur >= 0:
            os.close(self.cur)
        tail = b""
        for p in self.segs:
            try:
                with open(p, "rb") as f:
                    tail += f.read()
                os.unlink(p)
            except OSError:
                pass
        try:
            if self.cut_at >= 0 and not self.full:
                if len(tail) < self.tail_seen:  # the middle was dropped: start at a line
                    tail = tail[tail.find(b"\n") + 1 :] if b"\n" in tail else b""
                    if cut_file:
                        _write_atomic(cut_file, f"{self.cut_at} {self.tail_seen - len(tail)}")
                _write_all(self.fd, tail)
        except OSError as e:
            if e.errno not in _NO_SPACE:
                raise
            self.full = True
        finally:
            os.close(self.fd)


def _pump(fd: int, sink: _Sink, on_full: Callable[[], None]) -> None:
    """Thread: copy the pipe ``fd`` into ``sink`` until every writer has closed it."""
    try:
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            with sink.lock:
                if sink.closed:
                    break
                if not sink.feed(data):
                    on_full()
    finally:
        os.close(fd)
        sink.done.release()


def _write_exit(path: str, text: str) -> None:
    """The exit record, atomically; on a full disk, retried until there is room again.

    Not fsynced: it sits between the agent's exit and its status (100 wrappers ending
    together waited 55 ms for their fsyncs, 100 ms at p95; issue 14 §3), and it would
    outlast a power cut only to describe output that is not fsynced either (nor pa.db's
    last commits). Lost in one, the turn shows ``interrupted`` ("machine restarted?")."""
    delay = 0.2
    while True:
        try:
            _write_atomic(path, text)
            return
        except OSError as e:
            if e.errno not in _NO_SPACE:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


def _which(program: str, env: dict[str, str]) -> str:
    """``program`` looked up on the agent's PATH (not ours), like subprocess does."""
    if os.sep in program:
        return program
    for d in os.get_exec_path(env):
        cand = os.path.join(d, program)
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    raise FileNotFoundError(2, "No such file or directory", program)


def _spawn(argv: list[str], cwd: str, env: dict[str, str], fds: tuple[int, int, int]) -> int:
    """Start ``argv`` in ``cwd`` in its own process group with stdin/out/err = ``fds``."""
    os.chdir(cwd)  # posix_spawn has no chdir here; the wrapper itself only uses full paths
    return os.posix_spawn(
        _which(str(argv[0]), env),
        [str(a) for a in argv],
        env,
        file_actions=[(os.POSIX_SPAWN_DUP2, fd, i) for i, fd in enumerate(fds)],
        setpgroup=0,
        setsigdef=_RESTORE,
        # A mask survives exec too: a Ray worker thread blocks SIGINT, so an agent started
        # on a node never got `pa stop`'s SIGINT (only SIGTERM, a grace later).
        setsigmask=(),
    )


def _wait(pid: int) -> int:
    """The child's exit code, negative for a signal (as subprocess reports it)."""
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _run(
    turn_dir: str,
    argv: list[str],
    cwd: str,
    env: dict[str, str],
    fds: tuple[int, int, int],
    failed: str,
) -> int:
    """Run ``argv`` to its end with the ``pid`` file naming it; 127 (and ``failed``, with
    the reason, on its stderr) when it cannot start."""
    try:
        pid = _spawn(argv, cwd, env, fds)
    except OSError as e:
        os.write(fds[2], f"pa: {failed}: {e}\n".encode())
        return 127
    _write_atomic(os.path.join(turn_dir, "pid"), str(pid))
    return _wait(pid)


def _pipe_stdin(path: str) -> int:
    """A pipe's read end carrying the bytes of ``path``, ending in EOF.

    Agents get their stdin through a pipe, never as the file itself: some CLI releases
    (Claude Code 2.1.197 with ``--input-format stream-json``) read nothing from a regular
    file and exit 0 at once. What fits in the pipe buffer is written here; a longer input
    is fed by a forked child, so a CLI that never reads cannot block the wrapper.
    """
    with open(path, "rb") as f:
        data = f.read()
    r, w = os.pipe()  # both ends close-on-exec: the agent gets only the dup2'ed read end
    os.set_blocking(w, False)
    sent = 0
    try:
        while sent < len(data):
            sent += os.write(w, data[sent : sent + 65536])
    except BlockingIOError:
        pass
    except OSError:
        sent = len(data)  # nobody will read it
    if sent < len(data) and os.fork() == 0:
        try:  # the feeder: the rest, then EOF; a reader that went away ends it (EPIPE)
            os.close(r)
            os.set_blocking(w, True)
            view = memoryview(data)[sent:]
            while view:
                view = view[os.write(w, view) :]
        except OSError:
            pass
        os._exit(0)
    os.close(w)
    return r


# Every process an agent starts inherits this variable (set to the session id by pa), so
# what it left running is found again even after a setsid/double fork left its group.
TAG = "PA_OWNER_SESSION"


def pid_mark() -> tuple[int, int]:
    """(the last pid handed out, forks since boot) now, or (-1, -1) when unknown; taken
    again later, ``_new_pids`` tells which pids processes started in between can have."""
    try:
        if os.readlink("/proc/self") != str(os.getpid()):
            return -1, -1  # /proc of another pid namespace: its pids are not ours
        with open("/proc/loadavg", "rb") as f:
            last = int(f.read().split()[-1])
        with open("/proc/stat", "rb") as f:
            for line in f:
                if line.startswith(b"processes "):
                    return last, int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return -1, -1


def _new_pids(mark: tuple[int, int]) -> tuple[int, int] | None:
    """(after, up to): a process started since ``mark`` has a pid in that cyclic range
    (pids are handed out in order, wrapping around at pid_max); None when unknown or when
    so many processes were started since that the pids may have gone all the way round."""
    if mark[0] < 0:
        return None
    now = pid_mark()
    try:
        with open("/proc/sys/kernel/pid_max", "rb") as f:
            pid_max = int(f.read())
    except (OSError, ValueError):
        return None
    # Forks are counted machine-wide: at least as many as pids handed out here.
    if now[0] < 0 or now[1] - mark[1] >= pid_max - 301:
        return None
    return mark[0], now[0]


def _stray(
    pgid: int,
    tag: bytes,
    exclude: frozenset[int],
    since: int = 0,
    mark: tuple[int, int] = (-1, -1),
    not_from: int = 0,
) -> list[int]:
    """Live processes of process group ``pgid`` (-1: none), or carrying ``tag`` in their
    environment (Linux /proc; zombies and the pids in ``exclude`` left out).

    ``since`` (clock ticks after boot, as /proc says): only processes started since then
    can carry the tag. The environment is the costly part (100 wrappers ending together
    each look at every process), so it is read only for those, and not for a member of a
    session whose leader is known untagged (a descendant of the agent is in the agent's
    session or in one a tagged descendant made with setsid). ``mark`` (``pid_mark()``
    when the turn began): every process to find (the agent's group, tagged ones) started
    since, so a pid handed out before is not even opened: 100 wrappers ending together
    each read every process's stat otherwise (issue 14 §3). ``not_from``: a pid that is
    not a subreaper (pa, which started this wrapper): its children are its own (the other
    turns' wrappers, its git), never the agent's orphans, so their environment is not
    read (the costly part with 100 turns ending together)."""
    found = []
    untagged: set[int] = set()  # session leaders without the tag
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    span = _new_pids(mark)
    for name in names:
        if not name.isdigit() or int(name) in exclude:
            continue
        pid = int(name)
        if span is not None:
            after, upto = span
            if not (after < pid <= upto if after <= upto else pid > after or pid <= upto):
                continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            if fields[0] == b"Z":
                continue
            if int(fields[2]) == pgid:
                found.append(pid)
                continue
            if not tag or (since and int(fields[19]) < since):
                continue
            if not_from and int(fields[1]) == not_from:
                continue
            session = int(fields[3])
            if session != pid and session in untagged:
                continue
            with open(f"/proc/{name}/environ", "rb") as f:
                if tag in f.read().split(b"\0"):
                    found.append(pid)
                elif session == pid:
                    untagged.add(pid)
        except (OSError, IndexError, ValueError):
            continue
    return found


def _subreaper() -> bool:
    """Make this process the subreaper of what it starts (Linux prctl): an orphan of the
    agent (a daemon after a double fork) is adopted here, not by init. False: not here."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(36, 1, 0, 0, 0) == 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def _children(pid: int) -> list[int]:
    """The children of ``pid`` (every thread's), from /proc; OSError when unreadable."""
    out: list[int] = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
            out += [int(x) for x in f.read().split()]
    return out


def _descendants() -> list[int] | None:
    """This subreaper's live descendants (exited children reaped first): a few /proc reads
    down the tree, where ``_stray`` reads every process of the machine (100 wrappers
    ending together each read 200 others: issue 14 §3). None when /proc cannot say."""
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                break
        except ChildProcessError:
            break
    try:
        todo = _children(os.getpid())
    except OSError:
        return None
    found: list[int] = []
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] != b"Z":
                    found.append(pid)
            todo += _children(pid)
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    return found


def _started() -> int:
    """When this process started, in clock ticks after boot (0 when unknown)."""
    try:
        with open("/proc/self/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return 0


def end_leftovers(
    pgid: int,
    tag: bytes,
    grace: float = 2.0,
    exclude: frozenset[int] = frozenset(),
    since: int = 0,
    mark: tuple[int, int] = (-1, -1),
    not_from: int = 0,
    tree: bool = False,
) -> int:
    """End what the turn left running once the agent itself exited: its process group
    (``npm run dev &``) and anything else carrying ``tag`` (daemons that called setsid)
    started since ``since`` (and ``mark``: see ``_stray``); with ``tree`` (this process
    is the turn's ``_subreaper``) its descendants instead, tagged or not. SIGTERM, then
    SIGKILL after ``grace`` seconds. Returns how many were found."""
    exclude = exclude | {os.getpid()}

    def find() -> list[int]:
        if tree:
            below = _descendants()
            if below is not None:
                return below
        return _stray(pgid, tag, exclude, since, mark, not_from)

    first = find()
    pids = first
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, sig)
            except OSError:
                continue  # gone meanwhile
        deadline = time.monotonic() + wait
        while pids and time.monotonic() < deadline:
            time.sleep(0.05)
            pids = find()
    return len(first)


def _run_setup(turn_dir: str, spec: dict[str, Any], env: dict[str, str]) -> int:
    setup = spec.get("setup")
    if not setup:
        return 0
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    log = os.open(os.path.join(turn_dir, "setup.log"), flags, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        rc = _run(
            turn_dir,
            list(setup),
            str(spec["cwd"]),
            env,
            (null, log, log),
            "could not run the setup command",
        )
    finally:
        os.close(log)
        os.close(null)
    _write_atomic(os.path.join(turn_dir, "setup_exit"), str(rc))
    return rc


def _read_pid(turn_dir: str) -> int:
    try:
        with open(os.path.join(turn_dir, "pid")) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return 0


def _ignore(signum: int, frame: object) -> None:
    return None


def main(turn_dir: str) -> int:
    turn_dir = os.path.abspath(turn_dir)
    with open(os.path.join(turn_dir, LAUNCH), "rb") as f:
        spec: dict[str, Any] = marshal.load(f)
    env: dict[str, str] = dict(os.environ)
    env.update(spec.get("env") or {})
    # The agent gets its own process group so `pa stop` can signal it (and its
    # children) while this wrapper survives to record how it ended.
    # A handler (not SIG_IGN) so the agent, after exec, gets default dispositions back.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _ignore)
    # pid files need no fsync: after a machine crash the processes they name are gone.
    _write_atomic(os.path.join(turn_dir, "wrapper_pid"), str(os.getpid()))
    mark = pid_mark()  # before the setup and the agent: all the sweep looks for is newer
    launcher = os.getppid()  # pa (never a subreaper): no orphan of the agent goes to it
    tree = _subreaper()  # before anything starts that could leave an orphan
    if _stopped(turn_dir):
        return 0
    rc = _run_setup(turn_dir, spec, env)
    if rc != 0:
        _write_atomic(
            os.path.join(turn_dir, "exit"),
            f'{{"code": {rc}, "setup_failed": true}}',
            durable=True,
        )
        return 0
    if _stopped(turn_dir):
        return 0
    stdin_path = os.path.join(turn_dir, "stdin")
    started = time.time()
    if os.path.exists(stdin_path):
        inp = _pipe_stdin(stdin_path)
    else:
        inp = os.open(os.devnull, os.O_RDONLY)
    limit = int(spec.get("max_bytes") or 0)
    sinks: list[_Sink] = []
    # The agent's output holds the prompt's answers and the code: the owner's only.
    if limit:
        sinks = [_Sink(os.path.join(turn_dir, n), limit) for n in ("stdout", "stderr")]
        ends = []
        for sink in sinks:
            r, w = os.pipe()  # close-on-exec: the agent gets only the dup2'ed write end
            ends.append(w)
            _thread.start_new_thread(_pump, (r, sink, lambda: _stop_agent(turn_dir)))
        out, err = ends
    else:
        out = os.open(os.path.join(turn_dir, "stdout"), _APPEND, 0o600)
        err = os.open(os.path.join(turn_dir, "stderr"), _APPEND, 0o600)
    try:
        argv = spec["argv"]
        rc = _run(
            turn_dir, argv, str(spec["cwd"]), env, (inp, out, err), f"could not start {argv[0]}"
        )
    finally:
        for fd in (inp, out, err):
            os.close(fd)
    # The turn is over when the agent is: nothing it started may keep running (and
    # writing into the worktree) after its checkpoint, or after `pa stop`/`pa discard`.
    pid = _read_pid(turn_dir)
    if pid:
        tag = env.get(TAG)
        # The agent started after this wrapper: nothing older can be one of its own.
        tagged = f"{TAG}={tag}".encode() if tag else b""
        # While pa that started this wrapper is still its parent, its other children
        # (other turns' wrappers) need no look (it died: init or a subreaper adopted us).
        not_from = launcher if launcher > 1 and os.getppid() == launcher else 0
        end_leftovers(pid, tagged, since=_started(), mark=mark, not_from=not_from, tree=tree)
    for sink, cut in zip(sinks, (os.path.join(turn_dir, CUT), None), strict=False):
        # A process outside the agent's group and tag may still hold the pipe open.
        sink.done.acquire(timeout=5.0)
        with sink.lock:
            sink.closed = True
            sink.finish(cut)
    full = ', "disk_full": true' if any(s.full for s in sinks) else ""
    # Floats' repr is valid JSON; json itself would cost an import of re.
    _write_exit(
        os.path.join(turn_dir, "exit"),
        f'{{"code": {rc}, "started": {started!r}, "ended": {time.time()!r}{full}}}',
    )
    return 0


def _stopped(turn_dir: str) -> bool:
    """Whether `pa stop` came before the setup or the agent started (its mark, ``STOP``):
    then neither starts and the exit record says so, with SIGINT's code (its first signal),
    so a stop too early for a pid to signal still ends the turn."""
    if not os.path.exists(os.path.join(turn_dir, STOP)):
        return False
    now = repr(time.time())
    text = f'{{"code": -2, "stopped_before_start": true, "started": {now}, "ended": {now}}}'
    _write_exit(os.path.join(turn_dir, "exit"), text)
    return True


def _stop_agent(turn_dir: str) -> None:
    """The disk is full: the agent's output can no longer be kept, so end its turn."""
    pid = _read_pid(turn_dir)
    if pid:
        try:  # noqa: SIM105 (contextlib is not worth importing here)
            os.killpg(pid, signal.SIGTERM)
        except OSError:
            pass


if __name__ == "__main__":
    code = main(sys.argv[1])
    # Every file was written with plain system calls and closed: the interpreter's own
    # teardown is work 100 wrappers ending together would do at once, for nothing.
    sys.stderr.flush()
    os._exit(code)
