"""Merging without a working tree: merge, squash or rebase a commit into a branch, and
move the branch together with the checkouts that have it checked out.

Every merge is computed with ``git merge-tree --write-tree`` and ``commit-tree`` and lands
with ``git update-ref <ref> <new> <old>``, so two merges racing on one branch can never
lose a commit: the second one is refused with ``TargetMoved`` and may be recomputed.
Rebase replays the source's commits one by one (``rebase``).

Submodules are handled as git handles them at the tree level: a gitlink moved on one side
merges cleanly, gitlinks moved differently on both sides are a conflict on that path. The
submodule's own files are never touched (like ``git merge`` without
``--recurse-submodules``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from parallel_agents import git
from parallel_agents.errors import Conflict, NotFound, PAError, UsageError
from parallel_agents.git import GitError, worktrees
from parallel_agents.git.merge_tree import merge_tree
from parallel_agents.git.rebase import read_commits, replay
from parallel_agents.git.snapshots import snapshot_tree

__all__ = [
    "CheckoutBlocked",
    "MergeConflict",
    "MergeResult",
    "TargetMoved",
    "apply_merge",
    "branch_checkouts",
    "checkout_state",
    "compute_merge",
    "finish_interrupted_sync",
    "interrupted_sync",
    "merge",
    "merge_lock",
    "move_checked_out",
    "newest_reflog_message",
    "source_commit",
    "sync_main_checkout",
    "update_ref",
]

Strategy = Literal["merge", "squash", "rebase"]
STRATEGIES: tuple[Strategy, ...] = ("merge", "squash", "rebase")
CheckoutState = Literal["not_checked_out", "clean", "dirty"]


class TargetMoved(Conflict):
    """The target branch moved between reading it and updating it; nothing was changed."""

    def __init__(self, branch: str, expected: str, actual: str | None) -> None:
        now = actual[:12] if actual else "nothing (deleted)"
        super().__init__(
            f"{branch} moved while merging: expected {expected[:12]}, found {now}; "
            "nothing was changed",
            hint="run the merge again: it is recomputed on the new target",
        )
        self.branch = branch
        self.expected = expected
        self.actual = actual


class MergeConflict(Conflict):
    """The merge conflicts; nothing was changed."""

    def __init__(self, paths: Sequence[str], source: str, target_branch: str) -> None:
        self.paths = list(paths)
        self.source = source
        self.target_branch = target_branch
        shown = ", ".join(self.paths[:10]) + (" …" if len(self.paths) > 10 else "")
        n = len(self.paths)
        super().__init__(
            f"merging {source[:12]} into {target_branch} conflicts in {n} "
            f"file{'s' if n != 1 else ''}: {shown}; nothing was changed",
            hint="hand it back to the session (pa merge ID --fix-conflicts) or resolve by hand",
        )


@dataclass(frozen=True)
class MergeResult:
    target_branch: str
    strategy: Strategy
    source: str  # the merged commit
    old: str  # target before
    new: str  # target after (== old when up_to_date)
    commits: list[str] = field(default_factory=list)  # commits created on the target
    fast_forward: bool = False
    up_to_date: bool = False  # the source was already in the target; nothing changed

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def branch_ref(branch: str) -> str:
    return branch if branch.startswith("refs/") else f"refs/heads/{branch}"


def short_branch(branch: str) -> str:
    return branch.removeprefix("refs/heads/")


def resolve_target(repo: Path, target_branch: str) -> tuple[str, str]:
    """The target branch's full ref and commit; UsageError or NotFound when it has none."""
    ref = branch_ref(target_branch)
    if git.run(["check-ref-format", ref], repo, check=False).returncode != 0:
        raise UsageError(f"{target_branch!r} is not a valid branch name")
    old = git.resolve(repo, ref)
    if old is None:
        raise NotFound(
            f"branch {short_branch(ref)!r} does not exist in {repo}",
            hint=f"create it first (git branch {short_branch(ref)} <start>) or merge into another "
            "branch with --into",
        )
    return ref, old


def compute_merge(
    repo: Path,
    source: str,
    target_branch: str,
    *,
    strategy: Strategy,
    message: str,
    old: str | None = None,
) -> MergeResult:
    """Compute (but do not apply) the merge of ``source`` into ``target_branch``.

    The new commits are written to the object store; no ref, index or file changes.
    ``old`` is the target commit to build on (default: the branch's current value).
    Raises MergeConflict, NotFound, UsageError.
    """
    repo = Path(repo)
    if strategy not in STRATEGIES:
        raise UsageError(f"unknown merge strategy {strategy!r}", hint="use merge, squash or rebase")
    ref, current = resolve_target(repo, target_branch)
    base = current
    if old is not None:
        resolved_old = git.resolve(repo, old)
        if resolved_old is None:
            raise NotFound(f"{old!r} does not name a commit in {repo}")
        base = resolved_old
    src = git.resolve(repo, source)
    if src is None:
        raise NotFound(f"{source!r} does not name a commit in {repo}")
    branch = short_branch(ref)
    msg = message if message.strip() else f"Merge {src[:12]} into {branch}\n"
    if not msg.endswith("\n"):
        msg += "\n"

    def result(new: str, commits: list[str], ff: bool = False, utd: bool = False) -> MergeResult:
        return MergeResult(branch, strategy, src, base, new, commits, ff, utd)

    mb = git.out(["merge-base", base, src], repo, ok=(0, 1)) or None
    if mb is None:
        raise UsageError(
            f"{src[:12]} and {branch} have no common history; pa will not merge unrelated histories"
        )
    if mb == src:  # already contained in the target
        return result(base, [], utd=True)
    if strategy == "rebase":
        if mb == base:
            return result(src, [], ff=True)
        commits, conflicts = replay(repo, base, src)
        if conflicts:
            raise MergeConflict(conflicts, src, branch)
        return result(commits[-1] if commits else base, commits, utd=not commits)
    tree, paths = merge_tree(repo, base, src)
    if paths:
        raise MergeConflict(paths, src, branch)
    if tree == git.tree_of(repo, base):
        # Everything the source changes is already in the target (a retry after a crash,
        # a squash merged before): a commit now would be empty.
        return result(base, [], utd=True)
    if strategy == "squash":
        new = git.commit_tree(repo, tree, [base], msg)
    else:
        new = git.commit_tree(repo, tree, [base, src], msg)
    return result(new, [new])


def apply_merge(repo: Path, result: MergeResult, *, reflog: str | None = None) -> None:
    """Move the target branch from ``result.old`` to ``result.new`` atomically.

    Raises TargetMoved when the branch is no longer at ``result.old``.
    """
    if result.up_to_date or result.new == result.old:
        return
    update_ref(
        repo,
        branch_ref(result.target_branch),
        result.new,
        result.old,
        reflog or f"pa merge ({result.strategy}) {result.source[:12]}",
    )


def update_ref(repo: Path, ref: str, new: str, old: str, reflog: str) -> None:
    """``git update-ref ref new old``; TargetMoved when ``ref`` is not at ``old``."""
    for attempt in range(20):
        r = git.run(["update-ref", "-m", reflog, ref, new, old], repo, check=False)
        if r.returncode == 0:
            return
        now = git.resolve(repo, ref)
        if now != old:
            raise TargetMoved(short_branch(ref), old, now)
        # Still at `old`: another process held the ref's lock for a moment. Try again.
        if "lock" not in r.stderr:
            raise GitError(["update-ref", ref], r.returncode, r.stderr)
        time.sleep(0.02 * (attempt + 1))
    raise GitError(["update-ref", ref], 1, "the ref stayed locked")  # pragma: no cover


def merge(
    repo: Path,
    source: str,
    target_branch: str,
    *,
    strategy: Strategy,
    message: str,
    expected_old: str | None = None,
) -> MergeResult:
    """Merge ``source`` into ``target_branch`` without a working tree.

    ``merge`` always records a merge commit (parents: target, source) carrying
    ``message``; ``squash`` one commit on the target; ``rebase`` replays the source's
    commits (their own messages and authors) onto the target, or fast-forwards when the
    target is an ancestor of the source. The branch moves with ``update-ref new old``
    where old is ``expected_old`` or the value read first: TargetMoved if it moved.
    A conflict raises MergeConflict with the paths, and nothing changes.
    """
    repo = Path(repo)
    _, current = resolve_target(repo, target_branch)
    if expected_old is not None:
        exp = git.resolve(repo, expected_old) or expected_old
        if exp != current:
            raise TargetMoved(short_branch(branch_ref(target_branch)), exp, current)
        current = exp
    result = compute_merge(
        repo, source, target_branch, strategy=strategy, message=message, old=current
    )
    apply_merge(repo, result)
    return result


# ----------------------------------------------------------------------- the main checkout


def checkout_state(repo: Path, branch: str) -> CheckoutState:
    """Is ``branch`` checked out in the checkout at ``repo``, and is that checkout clean?

    Untracked files do not count as dirty (updating the files never overwrites them).
    """
    repo = Path(repo)
    if git.is_bare(repo):
        return "not_checked_out"
    head = git.run(["symbolic-ref", "-q", "HEAD"], repo, ok=(0, 1)).text.strip()
    if head != branch_ref(branch):
        return "not_checked_out"
    st = git.run(
        ["--no-optional-locks", "status", "--porcelain=v1", "-z", "--untracked-files=no"], repo
    ).raw
    return "dirty" if st.strip(b"\0") else "clean"


def sync_main_checkout(repo_main_checkout: Path, branch: str, old: str, new: str) -> str:
    """Bring the user's checkout at ``repo_main_checkout`` from ``old`` to ``new`` after
    ``branch`` moved, if it has ``branch`` checked out and was clean; say what happened.

    "Clean" is judged against ``old`` (index and files equal to ``old``), so this is right
    even when called after the ref update. A dirty checkout is left exactly as it is.
    """
    path = Path(repo_main_checkout)
    name = short_branch(branch)
    if git.is_bare(path):
        return f"{path} is a bare repository; no files to update"
    head = git.run(["symbolic-ref", "-q", "HEAD"], path, ok=(0, 1)).text.strip()
    if head != branch_ref(branch):
        return f"{name} is not checked out in {path}; its files were not touched"
    if old == new:
        return f"{path} is already up to date with {name}"
    git.run(["update-index", "-q", "--refresh"], path, check=False)
    index_ok = git.run(["diff-index", "--cached", "--quiet", old, "--"], path, ok=(0, 1))
    files_ok = git.run(["diff-files", "--quiet"], path, ok=(0, 1))
    if index_ok.returncode != 0 or files_ok.returncode != 0:
        return dirty_message(path, name, old, new)
    r = git.run(["read-tree", "-m", "-u", old, new], path, check=False)
    if r.returncode != 0:
        why = r.stderr.strip().splitlines()[0] if r.stderr.strip() else "read-tree failed"
        return (
            f"could not update the files in {path} ({why}); nothing there was changed. "
            f"{name} now points at {new[:12]}; after moving the files in the way, run there: "
            f"git read-tree -m -u {old} {new}"
        )
    return f"updated the files in {path} to {name} at {new[:12]}"


def dirty_message(path: Path, branch: str, old: str, new: str) -> str:
    return (
        f"{path} has {branch} checked out with uncommitted changes, so pa left its files "
        f"alone: {branch} now points at {new[:12]} but the files there still show "
        f"{old[:12]} plus your changes (git status will list the merged changes as undone). "
        f"To bring the merge in and keep your changes, run in {path}: "
        f"git read-tree -m -u {old} {new}  (if git refuses because your changes touch the "
        f"same files, nothing changes; then save them with `git diff {old} > my.patch`, run "
        f"`git reset --hard {new[:12]}` and `git apply --3way my.patch`)"
    )


# ------------------------------------------------- moving a branch that is checked out

MERGE_LOCK = "pa-merge.lock"
# Every reflog message pa writes when a merge moves a branch starts with this, which is
# how an interrupted merge is told apart from the user's own ref moves.
REFLOG_PREFIX = "pa merge"


@contextlib.contextmanager
def merge_lock(repo: Path) -> Iterator[None]:
    """The per-repository merge lock (threads and processes): held from looking at the
    target's checkouts, through every ``update-ref``, to updating those checkouts' files."""
    with worktrees.repo_lock(repo, MERGE_LOCK):
        yield


class CheckoutBlocked(PAError):
    """The target branch is checked out somewhere whose files git cannot bring along."""

    def __init__(
        self,
        checkout: Path,
        branch: str,
        why: str,
        hint: str,
        moved: bool = False,
        state: str | None = None,
    ) -> None:
        if state is None:
            state = (
                f"{branch} was moved anyway and could not be moved back"
                if moved
                else f"{branch} was not moved"
            )
        super().__init__(
            f"{branch} is checked out in {checkout} and git cannot update the files there "
            f"to the merged result ({why}); {state}",
            hint=hint,
        )
        self.checkout = checkout
        self.branch = branch
        self.why = why


def branch_checkouts(repo: Path, branch: str) -> list[Path]:
    """Every checkout (the main one and linked worktrees) whose HEAD is ``branch``."""
    name = short_branch(branch)
    return [
        Path(p)
        for p, b in worktrees.registered_worktrees(Path(repo)).items()
        if b == name and Path(p).is_dir()
    ]


def _git_reason(stderr: str) -> str:
    lines = [ln.removeprefix("error: ").removeprefix("fatal: ") for ln in stderr.splitlines()]
    lines = [ln.strip() for ln in lines if ln.strip()]
    return "; ".join(lines[:3]) if lines else "git read-tree failed"


def _blocked(checkout: Path, branch: str, stderr: str, moved: bool = False) -> CheckoutBlocked:
    name = short_branch(branch)
    if "index.lock" in stderr:
        lock = git.run(
            ["rev-parse", "--git-path", "index.lock"], checkout, check=False
        ).text.strip()
        hint = (
            f"another git command is using {checkout} ({lock} exists): let it finish, or "
            "remove that file if no git runs there any more, then run pa merge again"
        )
        why = "its index is locked by another git process"
    else:
        hint = (
            f"commit or stash your changes in {checkout} and move untracked files git names "
            f"out of the way, then run pa merge again (or pa merge --force to move {name} "
            "without touching those files and bring them along yourself)"
        )
        why = _git_reason(stderr)
    return CheckoutBlocked(checkout, name, why, hint, moved)


def _two_tree(checkout: Path, old: str, new: str, *, dry_run: bool = False) -> git.GitResult:
    # read-tree judges "up to date" by stat data: refresh it first (as `git merge` does),
    # or a file touched but unchanged would block the update.
    git.run(["update-index", "-q", "--refresh"], checkout, check=False)
    args = ["read-tree", "-m", "-u", *(["-n"] if dry_run else []), old, new]
    return git.run(args, checkout, check=False)


def move_checked_out(
    repo: Path, ref: str, old: str, new: str, checkouts: Sequence[Path], reflog: str
) -> None:
    """Move ``ref`` from ``old`` to ``new`` together with the index and files of every
    checkout that has it checked out (``git read-tree -m -u old new``, which keeps local
    changes git can carry and refuses rather than overwrite one).

    The caller holds ``merge_lock``. Git is asked first (a dry run) so a refusal changes
    nothing; if the real update still fails the ref is moved back. CheckoutBlocked says
    why and what to do; TargetMoved when ``ref`` is not at ``old``.
    """
    for co in checkouts:
        r = _two_tree(co, old, new, dry_run=True)
        if r.returncode != 0:
            raise _blocked(co, ref, r.stderr)
    update_ref(repo, ref, new, old, reflog)
    done: list[Path] = []
    for co in checkouts:
        r = _two_tree(co, old, new)
        if r.returncode == 0:
            git.run(["update-index", "-q", "--refresh"], co, check=False)
            done.append(co)
            continue
        for d in done:  # put the others back where the ref goes back to
            _two_tree(d, new, old)
        try:
            update_ref(repo, ref, old, new, f"pa: undo a merge, {co} could not be updated")
        except (TargetMoved, GitError):
            raise _blocked(co, ref, r.stderr, moved=True) from None
        raise _blocked(co, ref, r.stderr)


def interrupted_sync(checkout: Path) -> tuple[str, str, str] | None:
    """``(branch, old, head)`` when a pa merge moved the branch checked out in ``checkout``
    from ``old`` and was stopped before it updated the index and files there: the branch's
    newest reflog entries are pa merges and, for every path they changed, the index still
    holds ``old``'s version (``git status`` would show the merge as staged reverts)."""
    checkout = Path(checkout)
    ref = git.run(["symbolic-ref", "-q", "HEAD"], checkout, ok=(0, 1)).text.strip()
    head = git.resolve(checkout, "HEAD")
    if not ref.startswith("refs/heads/") or head is None:
        return None
    same = git.run(["diff-index", "--cached", "--quiet", head, "--"], checkout, check=False)
    if same.returncode == 0:
        return None
    log = git.run(["log", "-g", "-n", "64", "--format=%H%x09%gs", ref, "--"], checkout, check=False)
    entries = [ln.split("\t", 1) for ln in log.text.splitlines() if "\t" in ln]
    found: str | None = None
    for k in range(len(entries) - 1):
        if not entries[k][1].startswith(REFLOG_PREFIX):
            break
        old = entries[k + 1][0]
        changed = _paths(["diff-tree", "-r", "--name-only", "-z", old, head], checkout)
        staged = _paths(["diff-index", "--cached", "--name-only", "-z", old, "--"], checkout)
        # A later merge's start also matches on the paths it alone changed: the index is
        # at the oldest start that matches (the last one this walk finds).
        if changed and not changed & staged:
            found = old
    return (short_branch(ref), found, head) if found else None


def newest_reflog_message(common_dir: Path, branch: str) -> str:
    """The message of ``branch``'s newest reflog entry, read from the file (no git process:
    doctor asks this of every worktree), or "" when there is none."""
    path = Path(common_dir) / "logs" / branch_ref(branch)
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 8192))
            tail = f.read()
    except OSError:
        return ""
    lines = tail.rstrip(b"\n").split(b"\n")
    return lines[-1].partition(b"\t")[2].decode("utf-8", "replace") if lines else ""


def _paths(args: Sequence[str], cwd: Path) -> set[str]:
    return {p for p in git.run(args, cwd).text.split("\0") if p}


def finish_interrupted_sync(checkout: Path, old: str, head: str) -> None:
    """Bring ``checkout``'s index and files from ``old`` to its HEAD ``head`` (see
    ``interrupted_sync``), keeping local changes; CheckoutBlocked when git refuses."""
    r = _two_tree(checkout, old, head)
    if r.returncode != 0:
        name = git.run(
            ["symbolic-ref", "--short", "-q", "HEAD"], checkout, check=False
        ).text.strip()
        raise CheckoutBlocked(
            checkout,
            name,
            _git_reason(r.stderr),
            f"an earlier pa merge moved {name} from {old[:12]} to {head[:12]} but did not "
            f"update {checkout}. Do not commit there yet (that would undo the merge); make "
            f"the files git names match {old[:12]} (commit nothing, stash or move them), "
            f"then run `pa doctor --repair` or, in {checkout}: git read-tree -m -u {old} {head}",
            state=f"an earlier pa merge moved {name} to {head[:12]} without updating them",
        )
    git.run(["update-index", "-q", "--refresh"], checkout, check=False)


def behind_message(checkout: Path, branch: str, old: str, new: str, why: str) -> str:
    """What a forced merge left: ``branch`` moved, the files in ``checkout`` did not."""
    return (
        f"warning: {branch} now points at {new[:12]}, but git could not update the files in "
        f"{checkout} ({why}); they still show {old[:12]}, so git status there lists the "
        f"merged changes as undone: do not commit them. Once the files git names are out of "
        f"the way, run `pa doctor --repair` or, in {checkout}: git read-tree -m -u {old} {new}"
    )


def sync_after_force(checkout: Path, branch: str, old: str, new: str) -> tuple[bool, str]:
    """Best effort after ``--force`` moved ``branch``: update ``checkout`` if git can.
    Returns whether the files there are up to date, and what to tell the user."""
    r = _two_tree(checkout, old, new)
    if r.returncode == 0:
        git.run(["update-index", "-q", "--refresh"], checkout, check=False)
        return True, f"updated the files in {checkout} to {short_branch(branch)} at {new[:12]}"
    return False, behind_message(checkout, short_branch(branch), old, new, _git_reason(r.stderr))


def source_commit(worktree: Path, ref: str, message: str) -> tuple[str, bool]:
    """The commit that holds everything in ``worktree`` (untracked files included, ignored
    files not), and whether it had uncommitted work.

    Nothing uncommitted: the worktree's HEAD itself, so no empty commit is ever made.
    Else one commit on top of HEAD carrying ``message``, kept under ``ref``; a commit
    already there with the same parent and tree is reused, so a merge retried after a
    crash merges the very same commit and finds it already merged.
    """
    worktree = Path(worktree)
    head = git.need(worktree, "HEAD")
    with git.temp_index(worktree) as env:
        # Files `copy = [...]` put there (a .env) stay out unless the agent changed them.
        tree = snapshot_tree(worktree, env, worktrees.copied_unchanged(worktree))
    if tree == git.tree_of(worktree, head):
        return head, False
    prev = git.resolve(worktree, ref)
    if prev is not None:
        info = read_commits(worktree, [prev])[prev]
        if info.tree == tree and info.parents == [head]:
            return prev, True
    commit = git.commit_tree(worktree, tree, [head], message)
    git.run(["update-ref", "-m", "pa: uncommitted work to merge", ref, commit], worktree)
    return commit, True
