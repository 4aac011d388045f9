"""Running the repository owner's check command in a worktree: the argv it runs as, a
timeout that kills the whole process group, and the tail of its output.

Process mechanics only: no git, no sessions, no database.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from parallel_agents.errors import NotFound, UsageError

__all__ = ["CheckResult", "CheckSpec", "check_argv", "needs_shell", "run_check", "run_checks"]

TAIL_BYTES = 4096
_KILL_GRACE = 1.0


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    exit_code: int | None  # None when killed by the timeout
    duration_s: float
    output_tail: str  # last ~4 KB of stdout and stderr together
    timed_out: bool = False
    command: list[str] = field(default_factory=list)  # the argv that ran

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CheckSpec:
    worktree: Path
    command: str | list[str]
    timeout: float
    env: Mapping[str, str] | None = None


# Unquoted characters that only mean something to a shell.
_SHELL_CHARS = set("|&;<>()$`*?\n")
_WORD_START_CHARS = set("~#")  # tilde expansion and comments, only at the start of a word
_ASSIGN_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def needs_shell(command: str) -> bool:
    """Does this command line use shell syntax (pipes, &&, redirections, $VARS, globs…)?"""
    quote: str | None = None
    escaped = False
    at_word_start = True
    for ch in command:
        if escaped:
            escaped = False
            at_word_start = False
            continue
        if ch == "\\" and quote != "'":
            escaped = True
            continue
        if quote:
            if ch == quote:
                quote = None
            elif quote == '"' and ch in "$`":
                return True
            continue
        if ch in "'\"":
            quote = ch
            at_word_start = False
            continue
        if ch in " \t":
            at_word_start = True
            continue
        if ch in _SHELL_CHARS or (at_word_start and ch in _WORD_START_CHARS):
            return True
        at_word_start = False
    first = command.strip().split(maxsplit=1)
    return bool(first) and bool(_ASSIGN_RE.match(first[0]))


def check_argv(command: str | Sequence[str]) -> list[str]:
    """The argv a check runs as: a list as is, a string split with shlex, or through
    ``sh -c`` when the string uses shell syntax (the repo owner's own configured command)."""
    if isinstance(command, str):
        if not command.strip():
            raise UsageError("the check command is empty")
        if needs_shell(command):
            return ["sh", "-c", command]
        try:
            return shlex.split(command)
        except ValueError as e:
            raise UsageError(f"cannot parse the check command {command!r}: {e}") from e
    argv = [str(a) for a in command]
    if not argv:
        raise UsageError("the check command is empty")
    return argv


class _Tail:
    """Keeps the last ``limit`` bytes written to it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.buf = bytearray()

    def add(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) > 2 * self.limit:
            del self.buf[: len(self.buf) - self.limit]

    def text(self) -> str:
        data = bytes(self.buf[-self.limit :])
        return data.decode("utf-8", "replace").lstrip("\ufffd")


def _drain(stream: IO[bytes], tail: _Tail) -> None:
    with contextlib.suppress(OSError, ValueError):
        while True:
            data = os.read(stream.fileno(), 65536)
            if not data:
                break
            tail.add(data)


def _kill_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def run_check(
    worktree: Path,
    command: str | list[str],
    timeout: float,
    env: Mapping[str, str] | None = None,
) -> CheckResult:
    """Run the repository's check command in ``worktree`` with a timeout.

    ``env`` is added to the current environment. A missing program gives ``ok=False`` with
    a message (exit code 127, like a shell), not an exception. On timeout the whole process
    group is killed (TERM, then KILL) and ``timed_out`` is set.
    """
    worktree = Path(worktree)
    if not worktree.is_dir():
        raise NotFound(f"cannot run the check: {worktree} does not exist")
    argv = check_argv(command)
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            cwd=str(worktree),
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except FileNotFoundError:
        return CheckResult(
            False,
            127,
            time.monotonic() - t0,
            f"check command not found: {argv[0]!r} (is it installed and on PATH?)",
            command=argv,
        )
    except PermissionError:
        return CheckResult(
            False,
            126,
            time.monotonic() - t0,
            f"check command is not executable: {argv[0]!r}",
            command=argv,
        )
    assert proc.stdout is not None
    tail = _Tail(TAIL_BYTES)
    reader = threading.Thread(target=_drain, args=(proc.stdout, tail), daemon=True)
    reader.start()
    timed_out = False
    try:
        code: int | None = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=_KILL_GRACE)
        _kill_group(proc, signal.SIGKILL)
        proc.wait()
        code = None
    # Background children of the check may still hold the output pipe: give them a
    # moment, then end the group so the check never outlives its result.
    reader.join(timeout=1.0)
    if reader.is_alive():
        _kill_group(proc, signal.SIGKILL)
        reader.join(timeout=5.0)
    proc.stdout.close()
    duration = time.monotonic() - t0
    text = tail.text()
    if timed_out:
        text = (
            text
            + ("\n" if text and not text.endswith("\n") else "")
            + f"[pa] check timed out after {timeout:g}s; its process group was killed"
        )
    return CheckResult(not timed_out and code == 0, code, duration, text, timed_out, argv)


def run_checks(items: Sequence[CheckSpec], limit: int = 4) -> list[CheckResult]:
    """Run several checks at once, at most ``limit`` at a time; results in input order."""
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=max(1, limit)) as pool:
        return list(pool.map(lambda s: run_check(s.worktree, s.command, s.timeout, s.env), items))
