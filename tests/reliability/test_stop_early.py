"""A stop that comes before the wrapper named its agent still ends the turn (CI found a
Ray turn stopped right after its start left running under a `stopped` session: the stop
found no pid to signal and did nothing)."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from parallel_agents.runtime import local
from parallel_agents.runtime.base import TurnFiles
from tests.reliability.helpers import wait_until


@pytest.fixture
def turn(tmp_path: Path) -> Iterator[TurnFiles]:
    files = TurnFiles(tmp_path / "turn")
    files.dir.mkdir()
    yield files
    for pid in (files.pid(), files.wrapper_pid()):  # never leave an agent behind
        if pid and local.alive(pid):
            local.signal_group(pid, 9)


def _spawn(files: TurnFiles, ran: Path, setup: list[str] | None = None) -> None:
    # The agent leaves a mark once it runs, then stays until it is stopped.
    argv = ["sh", "-c", f'touch "{ran}"; exec sleep 600']
    env = {"PATH": os.environ["PATH"]}
    local.spawn(files.dir, argv, cwd=files.dir, env=env, stdin=None, setup=setup)


def test_a_stop_before_the_wrapper_ran_starts_no_agent(turn: TurnFiles, tmp_path: Path) -> None:
    """The stop is asked before the wrapper is even spawned: the wrapper then starts
    neither the setup command nor the agent, and its exit record says why."""
    ran, setup_ran = tmp_path / "ran", tmp_path / "setup-ran"
    local.stop(turn, 0.5)
    _spawn(turn, ran, setup=["touch", str(setup_ran)])
    wait_until(turn.exit_info, 60, "the exit record")
    info = turn.exit_info()
    assert info is not None and info.get("stopped_before_start") is True, info
    assert not ran.exists() and not setup_ran.exists()


def test_a_stop_while_the_wrapper_starts_ends_its_agent(turn: TurnFiles, tmp_path: Path) -> None:
    """The stop is asked the moment the wrapper was spawned (before it can have written
    its agent's pid): the turn ends at once, never left running."""
    ran = tmp_path / "ran"
    _spawn(turn, ran)  # a Python start-up away from naming its agent
    local.stop(turn, 0.5)
    wait_until(turn.exit_info, 60, "the exit record")
    pid = turn.pid()
    assert pid is None or not local.alive(pid), "the agent outlived its stop"


def test_an_agent_spawned_from_a_thread_that_blocks_sigint_still_gets_it(
    turn: TurnFiles, tmp_path: Path
) -> None:
    """A Ray worker thread blocks SIGINT and a blocked mask survives exec: the agent must
    start with none, so `pa stop`'s SIGINT (not SIGTERM a grace later) ends it."""

    def spawn_blocked() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        _spawn(turn, tmp_path / "ran")

    t = threading.Thread(target=spawn_blocked)
    t.start()
    t.join()
    wait_until(turn.pid, 60, "the agent's pid")
    local.stop(turn, 120.0)  # SIGTERM would come only after this grace
    info = wait_until(turn.exit_info, 60, "the exit record")
    assert info["code"] == -signal.SIGINT, info
