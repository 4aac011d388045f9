"""The merge queue: several sessions merged in order, each onto the target as the
previous one left it, each merged result checked before the branch moves."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from parallel_agents import git
from parallel_agents.errors import NotFound, UsageError
from parallel_agents.git import worktrees
from parallel_agents.git.merging import (
    REFLOG_PREFIX,
    STRATEGIES,
    CheckoutBlocked,
    MergeConflict,
    Strategy,
    TargetMoved,
    apply_merge,
    compute_merge,
    move_checked_out,
    resolve_target,
    short_branch,
)
from parallel_agents.runtime.checks import CheckResult, run_check

__all__ = [
    "QueueItem",
    "QueueItemResult",
    "QueueReport",
    "check_commit",
    "commit_checker",
    "merge_queue",
]

ItemStatus = Literal[
    "merged",
    "up_to_date",
    "conflict",
    "check_failed",
    "target_moved",
    "checkout_blocked",
    "skipped",
]


@dataclass(frozen=True)
class QueueItem:
    session_id: str
    source_commit: str
    message: str


@dataclass(frozen=True)
class QueueItemResult:
    session_id: str
    status: ItemStatus
    commit: str | None = None  # target after this item, or the candidate whose check failed
    conflict_paths: list[str] = field(default_factory=list)
    check: CheckResult | None = None
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class QueueReport:
    target_branch: str
    strategy: Strategy
    old: str  # target before the queue
    new: str  # target after
    items: list[QueueItemResult]

    @property
    def merged(self) -> list[str]:
        return [i.session_id for i in self.items if i.status in ("merged", "up_to_date")]

    @property
    def stopped_at(self) -> QueueItemResult | None:
        for i in self.items:
            if i.status in ("conflict", "check_failed", "target_moved", "checkout_blocked"):
                return i
        return None

    @property
    def ok(self) -> bool:
        return self.stopped_at is None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["merged"] = self.merged
        d["ok"] = self.ok
        return d


def merge_queue(
    repo: Path,
    items: Sequence[QueueItem],
    target_branch: str,
    strategy: Strategy,
    check: Callable[[str], CheckResult] | None = None,
    *,
    expected_old: str | None = None,
    checkouts: Sequence[Path] = (),
) -> QueueReport:
    """Merge ``items`` in order, each onto the target as the previous one left it.

    With ``check``, each merged result is checked (the callable gets the new commit)
    before the branch moves. The queue stops at the first conflict, failed check, moved
    target or (with ``checkouts``, the places the target is checked out, under
    ``merge_lock``) checkout git cannot update: that item's merge is not applied, later
    items are ``skipped``, and everything merged so far stays merged, files included.
    Sources are all resolved first, so a bad id merges nothing.
    """
    repo = Path(repo)
    if strategy not in STRATEGIES:
        raise UsageError(f"unknown merge strategy {strategy!r}", hint="use merge, squash or rebase")
    ref, start = resolve_target(repo, target_branch)
    branch = short_branch(ref)
    for it in items:
        if git.resolve(repo, it.source_commit) is None:
            raise NotFound(
                f"session {it.session_id}: {it.source_commit!r} does not name a commit in {repo}"
            )
    if expected_old is not None and (git.resolve(repo, expected_old) or expected_old) != start:
        raise TargetMoved(branch, expected_old, start)
    cur = start
    out: list[QueueItemResult] = []
    stopped = False
    for it in items:
        if stopped:
            out.append(
                QueueItemResult(
                    it.session_id, "skipped", detail="not tried: the queue stopped earlier"
                )
            )
            continue
        try:
            res = compute_merge(
                repo, it.source_commit, branch, strategy=strategy, message=it.message, old=cur
            )
        except MergeConflict as e:
            out.append(QueueItemResult(it.session_id, "conflict", None, e.paths, None, str(e)))
            stopped = True
            continue
        if res.up_to_date:
            out.append(
                QueueItemResult(it.session_id, "up_to_date", cur, detail=f"already in {branch}")
            )
            continue
        result: CheckResult | None = None
        if check is not None:
            result = check(res.new)
            if not result.ok:
                out.append(
                    QueueItemResult(
                        it.session_id,
                        "check_failed",
                        res.new,
                        [],
                        result,
                        f"the check failed on the merged result {res.new[:12]}; {branch} was "
                        "not moved",
                    )
                )
                stopped = True
                continue
        try:
            reflog = f"{REFLOG_PREFIX} queue: {it.session_id}"
            if checkouts:
                move_checked_out(repo, ref, res.old, res.new, checkouts, reflog)
            else:
                apply_merge(repo, res, reflog=reflog)
        except TargetMoved as e:
            out.append(QueueItemResult(it.session_id, "target_moved", None, [], result, str(e)))
            stopped = True
            continue
        except CheckoutBlocked as e:
            detail = f"{e.message}. hint: {e.hint}" if e.hint else e.message
            out.append(QueueItemResult(it.session_id, "checkout_blocked", None, [], result, detail))
            stopped = True
            continue
        cur = res.new
        out.append(
            QueueItemResult(
                it.session_id, "merged", cur, [], result, f"merged into {branch} at {cur[:12]}"
            )
        )
    return QueueReport(branch, strategy, start, cur, out)


def check_commit(
    repo: Path,
    commit: str,
    command: str | list[str],
    timeout: float,
    env: Mapping[str, str] | None = None,
) -> CheckResult:
    """Run a check command on ``commit`` in a temporary detached worktree, removed after.

    The worktree holds the commit's tracked files only (no ignored files such as
    dependencies installed in the session's worktree).
    """
    repo = Path(repo)
    with tempfile.TemporaryDirectory(prefix="pa-check-") as tmp:
        wt = Path(tmp) / "wt"
        with worktrees.repo_lock(repo):
            git.run(
                [
                    "-c",
                    "core.hooksPath=/dev/null",
                    "worktree",
                    "add",
                    "--detach",
                    "--no-checkout",
                    "-q",
                    str(wt),
                    commit,
                ],
                repo,
            )
        try:
            git.run(["-c", "core.hooksPath=/dev/null", "reset", "--hard", "-q"], wt)
            return run_check(wt, command, timeout, env)
        finally:
            with worktrees.repo_lock(repo):
                r = git.run(
                    ["worktree", "remove", "--force", "--force", str(wt)], repo, check=False
                )
                if r.returncode != 0:  # pragma: no cover - defensive
                    shutil.rmtree(wt, ignore_errors=True)
                    git.run(["worktree", "prune"], repo, check=False)


def commit_checker(
    repo: Path, command: str | list[str], timeout: float, env: Mapping[str, str] | None = None
) -> Callable[[str], CheckResult]:
    """A ``check`` for ``merge_queue``: runs ``command`` on each merged commit."""

    def run(commit: str) -> CheckResult:
        return check_commit(repo, commit, command, timeout, env)

    return run
