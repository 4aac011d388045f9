"""Noticing that a turn ended the moment it does: a pidfd per wrapper, one ``select``.

A turn is over when its wrapper (``runtime/wrapper.py``) has written the exit record and
exited, so the wrapper's exit is the event to wait for. ``os.pidfd_open`` (Linux 5.3+)
gives a file descriptor that becomes readable when a process ends, whether or not it is
our child: it covers wrappers the server spawned and the ones a CLI (or an earlier
server) started, which no ``waitpid``/SIGCHLD would ever report to us. inotify on the
exit record would need ctypes and one watch per turn folder; a pidfd costs one
descriptor and no polling.

``ExitWatch.wait`` sleeps until a watched wrapper ends, ``wake`` is called (any thread),
or the timeout passes: the supervisor loop sleeps in it instead of a timed
``Event.wait``. Where pidfds are missing (not Linux, an old kernel, no descriptors
left), ``watch`` says so and the caller's periodic pass stays the only way to notice.
``open`` before use (a server that never runs its loop holds no descriptors), ``close``
after; register and unregister from one thread (the loop's); ``wake`` from anywhere.
"""

from __future__ import annotations

import contextlib
import os
import select
import selectors
import threading

_WAKE = "\0wake"  # the selector key of the wake pipe (no turn key starts with NUL)


class ExitWatch:
    """Keys (e.g. session ids) whose watched process ended, delivered by ``wait``."""

    def __init__(self) -> None:
        self._sel: selectors.BaseSelector | None = None
        self._r = self._w = -1
        self._fds: dict[str, int] = {}
        self._lock = threading.Lock()  # the pipe's write end vs open and close
        self.fired = 0  # wrapper exits noticed through a pidfd (a health figure)
        # A quarter of the descriptors at most: sockets and SQLite need theirs too.
        self.limit = max(16, _fd_limit() // 4)

    def open(self) -> None:
        with self._lock:
            if self._sel is not None:
                return
            r, w = os.pipe()
            os.set_blocking(r, False)
            os.set_blocking(w, False)
            sel = selectors.DefaultSelector()
            sel.register(r, selectors.EVENT_READ, _WAKE)
            self._sel, self._r, self._w = sel, r, w

    def supported(self) -> bool:
        return self._sel is not None and hasattr(os, "pidfd_open")

    def watching(self, key: str) -> bool:
        return key in self._fds

    def watch(self, key: str, pid: int) -> bool | None:
        """Watch process ``pid`` for ``key`` (replacing an earlier watch of ``key``).

        True: watched. False: the process is gone already (look now). None: it cannot
        be watched (no pidfds, or ``limit`` descriptors in use): keep polling it."""
        self.forget(key)
        if not self.supported() or pid <= 0 or len(self._fds) >= self.limit:
            return None
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return False
        except OSError:  # EMFILE, ENOSYS, EPERM: fall back to polling
            return None
        if select.select([fd], [], [], 0)[0]:
            # Ended already: a zombie (our child, not reaped yet) still gives a pidfd, a
            # readable one. Watching it would only report the end again and again.
            os.close(fd)
            return False
        assert self._sel is not None  # supported() says it is open
        self._fds[key] = fd
        self._sel.register(fd, selectors.EVENT_READ, key)
        return True

    def forget(self, key: str) -> None:
        fd = self._fds.pop(key, None)
        if fd is None:
            return
        if self._sel is not None:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._sel.unregister(fd)
        with contextlib.suppress(OSError):
            os.close(fd)

    def wait(self, timeout: float | None) -> tuple[set[str], bool]:
        """(keys whose process ended, woken by ``wake``) within ``timeout`` seconds (0:
        just look). An ended key is forgotten: it is reported once."""
        ended: set[str] = set()
        woken = False
        if self._sel is None:  # not open: nothing is watched, no wake to wait for
            return ended, woken
        try:
            ready = self._sel.select(timeout)
        except OSError:
            return ended, woken
        for sk, _ in ready:
            if sk.data == _WAKE:
                woken = True
                with contextlib.suppress(OSError):
                    while os.read(self._r, 4096):
                        pass
            else:
                ended.add(str(sk.data))
        for key in ended:
            self.forget(key)
        self.fired += len(ended)
        return ended, woken

    def wake(self) -> None:
        """Make a ``wait`` in progress (or the next one) return at once. Thread-safe."""
        with self._lock:
            if self._sel is None:
                return  # nobody waits: nothing to interrupt
            with contextlib.suppress(OSError):  # full pipe: a wake is pending anyway
                os.write(self._w, b"\0")

    def close(self) -> None:
        for key in list(self._fds):
            self.forget(key)
        with self._lock:
            sel, self._sel = self._sel, None
            if sel is None:
                return
            sel.close()
            for fd in (self._r, self._w):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._r = self._w = -1


def _fd_limit() -> int:
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return 1024
    return soft if soft > 0 else 1024
