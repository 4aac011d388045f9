"""Checkouts a ``pa merge`` left behind their branch: stopped after it moved the branch and
before it updated their index and files.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from parallel_agents import git
from parallel_agents.errors import PAError
from parallel_agents.git import worktrees
from parallel_agents.ops.doctor._report import Finding, Report

if TYPE_CHECKING:
    from parallel_agents.sessions.orchestrator import App


def _check_merge_checkouts(app: App, rep: Report, repair: bool) -> None:
    """Checkouts whose index and files trail their HEAD because a pa merge moved the
    branch and was stopped before it updated them: a commit there would undo the merge."""
    from parallel_agents.git import merging as merge

    for repo in app.store.repos():
        repo_path = Path(repo.path)
        if not (repo_path / ".git").exists():
            continue
        try:
            with merge.merge_lock(repo_path):
                common = git.common_dir(repo_path)
                for co, branch in worktrees.registered_worktrees(repo_path).items():
                    if not branch or not Path(co).is_dir():
                        continue
                    msg = merge.newest_reflog_message(common, branch)
                    if msg.startswith(merge.REFLOG_PREFIX):
                        _merge_checkout(Path(co), repo.name, rep, repair)
        except (PAError, git.GitError) as e:
            rep.add(Finding("repo_error", repo.path, str(e), repo=repo.name))


def _merge_checkout(co: Path, repo_name: str, rep: Report, repair: bool) -> None:
    from parallel_agents.git import merging as merge

    pending = merge.interrupted_sync(co)
    if pending is None:
        return
    branch, old, head = pending
    f = rep.add(
        Finding(
            "merge_checkout_behind",
            str(co),
            f"a pa merge moved {branch} from {old[:12]} to {head[:12]} but was stopped before "
            f"it updated the files in {co}: git status there shows the merge as staged "
            "reverts, and a commit there would undo it",
            repo=repo_name,
            fix=f"update the index and files there (git read-tree -m -u {old} {head}), "
            "keeping local changes",
        )
    )
    if repair:
        try:
            merge.finish_interrupted_sync(co, old, head)
            f.repaired = True
        except PAError as e:
            f.error = f"{e.message}. {e.hint or ''}".strip()
