"""Parallel Agents: run many AI coding agents in parallel, each in its own git worktree."""

__version__ = "0.1.0"

# pa's own processes (its server, the turn wrappers, tmux) are never part of an agent's
# turn, even when an agent runs `pa`: drop the tag that marks a turn's processes
# (runtime.wrapper.TAG) so nothing pa starts from here inherits it.
import os as _os

_os.environ.pop("PA_OWNER_SESSION", None)
