"""Snapshots of a worktree: checkpoints and putting a worktree back to one.

``checkpoint`` snapshots a worktree (uncommitted and untracked files included, ignored
files left out) into a commit through a temporary index; the agent's HEAD, index and
files are never touched. ``restore`` puts a worktree back to such a snapshot.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from parallel_agents import git
from parallel_agents.errors import NotFound, UsageError
from parallel_agents.git.worktrees import copied_unchanged

__all__ = ["checkpoint", "restore", "snapshot_tree"]


def snapshot_tree(worktree: Path, env: Mapping[str, str], exclude: Sequence[str] = ()) -> str:
    """Tree of everything in the worktree git would add (not ignored), via ``env``'s index.

    ``exclude`` paths keep their HEAD state (absent when HEAD has none of them).
    """
    git.run(["add", "-A"], worktree, env=env)
    if exclude:
        _keep_head(worktree, env, exclude)
    return git.out(["write-tree"], worktree, env=env)


def _keep_head(worktree: Path, env: Mapping[str, str], paths: Sequence[str]) -> None:
    """Reset ``paths`` in ``env``'s index to HEAD: files `copy = [...]` put there (a
    ``.env`` with secrets) must never reach a commit unless the agent changed them."""
    with tempfile.NamedTemporaryFile(prefix="pa-exclude-") as f:
        f.write(b"".join(p.encode("utf-8", "surrogateescape") + b"\0" for p in paths))
        f.flush()
        if git.resolve(worktree, "HEAD") is not None:
            args = ["reset", "-q", "HEAD"]
        else:
            args = ["rm", "-q", "--cached", "--ignore-unmatch"]
        args += [f"--pathspec-from-file={f.name}", "--pathspec-file-nul"]
        git.run(["--literal-pathspecs", *args], worktree, env=env)


def checkpoint(worktree: Path, ref: str, message: str, exclude: Sequence[str] | None = None) -> str:
    """Snapshot ``worktree`` (uncommitted and untracked files included, ignored files not)
    into a commit whose parent is the worktree's HEAD, point ``ref`` at it and return it.

    ``exclude`` (default: the files `copy = [...]` put there and nobody changed since)
    keeps those paths as HEAD has them.

    Works through a temporary index: the worktree's HEAD, index and files stay exactly as
    they were. ``ref`` always ends up at a commit whose tree is the current state.
    """
    worktree = Path(worktree)
    if not worktree.is_dir():
        raise NotFound(f"worktree {worktree} does not exist")
    if not ref.startswith("refs/"):
        raise UsageError(f"checkpoint ref must be a full ref name under refs/, not {ref!r}")
    head = git.resolve(worktree, "HEAD")
    if exclude is None:
        exclude = copied_unchanged(worktree)
    with git.temp_index(worktree) as env:
        tree = snapshot_tree(worktree, env, exclude)
    commit = git.commit_tree(worktree, tree, [head] if head else [], message)
    git.run(["update-ref", "-m", "pa checkpoint", ref, commit], worktree)
    return commit


def restore(worktree: Path, commit: str, exclude: Sequence[str] | None = None) -> None:
    """Make ``worktree`` exactly the checkpoint ``commit``.

    Files: tracked and untracked files become the checkpoint's tree; files that are not in
    it are removed; ignored files are left alone. HEAD (the branch it names, or HEAD itself
    when detached) moves to the checkpoint's parent, the agent's HEAD when the checkpoint
    was taken, and the index becomes that HEAD. Callers checkpoint first, so a restore is
    itself undoable.
    """
    worktree = Path(worktree)
    if not worktree.is_dir():
        raise NotFound(f"worktree {worktree} does not exist")
    target = git.need(worktree, commit, what="checkpoint commit")
    parent = git.resolve(worktree, f"{target}^1")
    if parent is None:
        raise UsageError(
            f"checkpoint {target[:12]} has no parent commit, so there is no HEAD to restore"
        )
    if exclude is None:
        exclude = copied_unchanged(worktree)  # e.g. a copied .env: not in checkpoints, kept
    with git.temp_index(worktree) as env:
        # The temporary index lists every file the worktree has that is not ignored;
        # a one-tree reset then rewrites those to the checkpoint and deletes the rest.
        snapshot_tree(worktree, env, exclude)
        git.run(["read-tree", "--reset", "-u", target], worktree, env=env)
    # HEAD (through the branch it names) back to the agent's HEAD of that moment, and the
    # index to that commit; refresh so `git status` sees the files' stat data again.
    git.run(
        ["update-ref", "-m", f"pa restore to checkpoint {target[:12]}", "HEAD", parent], worktree
    )
    git.run(["read-tree", parent], worktree)
    git.run(["update-index", "-q", "--refresh"], worktree, check=False)
