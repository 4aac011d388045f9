"""Issue 14 §3: the wrapper's sweep for an agent's leftovers reads the environment only of
processes that may carry the turn's tag (started since the turn began, not in a session
led by an untagged process), and still finds a tagged daemon that called setsid."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from parallel_agents.runtime import wrapper

TAG = b"PA_OWNER_SESSION=sweep-test"

# setsid'd, tagged, lives until killed (as an agent's daemon would).
DAEMON = "import os, time\nos.setsid()\nprint(os.getpid(), flush=True)\ntime.sleep(600)\n"


@pytest.fixture
def daemon() -> Iterator[int]:
    env = {**os.environ, "PA_OWNER_SESSION": "sweep-test"}
    with subprocess.Popen(
        [sys.executable, "-c", DAEMON], env=env, stdout=subprocess.PIPE, text=True
    ) as p:
        assert p.stdout is not None
        try:
            yield int(p.stdout.readline())
        finally:
            p.kill()


def _start_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as f:
        return int(f.read().rsplit(b")", 1)[1].split()[19])


def test_sweep_finds_a_tagged_daemon_started_since_the_turn(daemon: int) -> None:
    """issue 14 §3: ``since`` keeps every process started since then (the daemon)."""
    started = _start_ticks(daemon)
    assert daemon in wrapper._stray(-1, TAG, frozenset(), since=started)
    assert daemon in wrapper._stray(-1, TAG, frozenset())


def test_sweep_skips_processes_older_than_the_turn(daemon: int) -> None:
    """issue 14 §3: a process that started before the turn cannot be the agent's: its
    environment is not read, so a tagged one that old is not ended."""
    later = _start_ticks(daemon) + 1  # a turn that began a clock tick after it
    assert daemon not in wrapper._stray(-1, TAG, frozenset(), since=later)


def test_sweep_opens_only_pids_handed_out_since_the_turn_began() -> None:
    """issue 14 §3: with the turn's ``pid_mark`` the sweep does not even open a process
    whose pid was handed out before the turn began (100 wrappers ending together each
    read every process's stat otherwise), and still finds one started since."""
    env = {**os.environ, "PA_OWNER_SESSION": "sweep-test"}
    with subprocess.Popen(
        [sys.executable, "-c", DAEMON], env=env, stdout=subprocess.PIPE, text=True
    ) as old:
        assert old.stdout is not None
        old_pid = int(old.stdout.readline())
        mark = wrapper.pid_mark()
        if mark[0] < 0:
            old.kill()
            pytest.skip("no /proc/loadavg pid counter here")
        with subprocess.Popen(
            [sys.executable, "-c", DAEMON], env=env, stdout=subprocess.PIPE, text=True
        ) as new:
            assert new.stdout is not None
            new_pid = int(new.stdout.readline())
            try:
                found = wrapper._stray(-1, TAG, frozenset(), mark=mark)
                assert new_pid in found
                assert old_pid not in found  # tagged, but its pid is older than the mark
                assert old_pid in wrapper._stray(-1, TAG, frozenset())
            finally:
                new.kill()
                old.kill()


ORPHAN = (
    "import os, sys, time\n"
    "if os.fork():\n"
    "    os._exit(0)\n"  # the parent ends: the tagged grandchild is adopted by init
    "os.setsid()\n"
    "print(os.getpid(), flush=True)\n"
    "time.sleep(600)\n"
)


def test_sweep_skips_children_of_pa_but_not_the_agents_orphans(daemon: int) -> None:
    """issue 14 §3: pa, which started the wrapper, is no subreaper, so its own children
    (the other turns' wrappers) cannot be the agent's orphans: with ``not_from`` = pa the
    sweep does not read their environment (100 wrappers ending together read each
    other's otherwise), while a tagged orphan adopted by init is still found."""
    # The daemon fixture is this process's child: as another turn's wrapper is pa's.
    assert daemon in wrapper._stray(-1, TAG, frozenset())
    assert daemon not in wrapper._stray(-1, TAG, frozenset(), not_from=os.getpid())
    env = {**os.environ, "PA_OWNER_SESSION": "sweep-test"}
    with subprocess.Popen(
        [sys.executable, "-c", ORPHAN], env=env, stdout=subprocess.PIPE, text=True
    ) as p:
        assert p.stdout is not None
        orphan = int(p.stdout.readline())
        try:
            assert orphan in wrapper._stray(-1, TAG, frozenset(), not_from=os.getpid())
        finally:
            os.kill(orphan, 9)
