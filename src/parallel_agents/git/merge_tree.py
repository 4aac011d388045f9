"""``git merge-tree --write-tree``: the merge of two commits without a worktree, its tree
and its conflicted paths, one merge at a time or a batch through ``--stdin``."""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from parallel_agents import git

__all__ = ["merge_tree", "merge_tree_supports_stdin", "parse_merge_tree"]


@functools.cache
def merge_tree_supports_stdin() -> bool:
    """Does this git's ``merge-tree`` take ``--stdin`` (batched merges)? Asked once."""
    try:
        r = subprocess.run(
            ["git", "merge-tree", "-h"],
            capture_output=True,
            text=True,
            env=git.repo_env(),
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):  # pragma: no cover - no git at all
        return False
    return "--stdin" in (r.stdout + r.stderr)


def parse_merge_tree(tokens: list[str], start: int) -> tuple[bool, list[str], int]:
    """Parse one ``--stdin -z --name-only --no-messages`` record at ``start``.

    A record is ``<1 clean|0 conflicted>\\0<tree>\\0[<path>\\0…]\\0``.
    Returns (clean, paths, index after the record).
    """
    status = tokens[start]
    if status not in ("0", "1"):
        raise ValueError(f"unexpected merge-tree --stdin status {status!r}")
    i = start + 2  # skip the tree id
    paths: list[str] = []
    while i < len(tokens) and tokens[i] != "":
        paths.append(tokens[i])
        i += 1
    return status == "1", _dedupe(paths), i + 1


def _dedupe(paths: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(paths))


def merge_tree(
    repo: Path, a: str, b: str, *, env: Mapping[str, str] | None = None
) -> tuple[str, list[str]]:
    """``git merge-tree --write-tree`` of two commits: (tree id, conflicted paths)."""
    r = git.run(
        ["merge-tree", "--write-tree", "-z", "--name-only", "--no-messages", a, b],
        repo,
        env=env,
        ok=(0, 1),
    )
    tokens = r.text.split("\0")
    tree = tokens[0]
    if r.returncode == 0:
        return tree, []
    paths = _dedupe([t for t in tokens[1:] if t])
    if not paths:  # a conflict without a conflicted index entry: take the paths from messages
        m = git.run(
            ["merge-tree", "--write-tree", "-z", "--name-only", "--messages", a, b],
            repo,
            env=env,
            ok=(0, 1),
        )
        paths = _message_paths(m.text)
    return tree, paths or ["(unknown)"]


def _message_paths(out: str) -> list[str]:
    """Paths named by CONFLICT messages in ``merge-tree -z --messages`` output."""
    tokens = out.split("\0")
    try:
        i = tokens.index("", 1) + 1  # the messages follow an empty token
    except ValueError:
        return []
    paths: list[str] = []
    while i < len(tokens) and tokens[i].isdigit():
        n = int(tokens[i])
        involved = tokens[i + 1 : i + 1 + n]
        kind = tokens[i + 1 + n]
        if kind.startswith("CONFLICT"):
            paths += involved
        i += n + 3
    return _dedupe(paths)
