"""Parallel Agents: run many AI coding agents in parallel, each in its own git worktree."""

__version__ = "0.1.0"
