"""Git-level merging: merge / squash / rebase without a working tree, the merge queue,
bringing the user's main checkout up to date, and pull requests.

Every merge is computed with ``git merge-tree --write-tree`` and ``commit-tree`` and lands
with ``git update-ref <ref> <new> <old>``, so two merges racing on one branch can never
lose a commit: the second one is refused with ``TargetMoved`` and may be recomputed.

Rebase replays the source's commits one by one, also without a working tree. git 2.39's
``merge-tree`` has no ``--merge-base``, so a cherry-pick of commit C (parent P) onto X is
computed as the merge of C with a throw-away commit that has X's tree and P as its only
parent: the merge base of the two is then exactly P, which is what a cherry-pick means.

Submodules are handled as git handles them at the tree level: a gitlink moved on one side
merges cleanly, gitlinks moved differently on both sides are a conflict on that path. The
submodule's own files are never touched (like ``git merge`` without
``--recurse-submodules``).
"""

from __future__ import annotations

import contextlib
import enum
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from parallel_agents import git
from parallel_agents.errors import Conflict, NotFound, PAError, UsageError
from parallel_agents.git import GitError, worktrees
from parallel_agents.git.review import (
    CheckResult,
    _commit_tree,
    _copied_unchanged,
    _git,
    _need,
    _out,
    _Raw,
    _resolve,
    _snapshot_tree,
    _temp_index,
    merge_tree,
    run_check,
)

__all__ = [
    "CheckoutBlocked",
    "MergeConflict",
    "MergeResult",
    "PRResult",
    "QueueItem",
    "QueueItemResult",
    "QueueReport",
    "TargetMoved",
    "apply_merge",
    "branch_checkouts",
    "check_commit",
    "checkout_state",
    "commit_checker",
    "compute_merge",
    "finish_interrupted_sync",
    "gh_pr_argv",
    "interrupted_sync",
    "merge",
    "merge_lock",
    "merge_queue",
    "move_checked_out",
    "newest_reflog_message",
    "push_and_pr",
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


def _branch_ref(branch: str) -> str:
    return branch if branch.startswith("refs/") else f"refs/heads/{branch}"


def _short(branch: str) -> str:
    return branch.removeprefix("refs/heads/")


def _target(repo: Path, target_branch: str) -> tuple[str, str]:
    ref = _branch_ref(target_branch)
    if _git(["check-ref-format", ref], repo, check=False).returncode != 0:
        raise UsageError(f"{target_branch!r} is not a valid branch name")
    old = _resolve(repo, ref)
    if old is None:
        raise NotFound(
            f"branch {_short(ref)!r} does not exist in {repo}",
            hint=f"create it first (git branch {_short(ref)} <start>) or merge into another "
            "branch with --into",
        )
    return ref, old


def _tree_of(repo: Path, commit: str) -> str:
    return _out(["rev-parse", f"{commit}^{{tree}}"], repo)


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
    ref, current = _target(repo, target_branch)
    base = current
    if old is not None:
        resolved_old = _resolve(repo, old)
        if resolved_old is None:
            raise NotFound(f"{old!r} does not name a commit in {repo}")
        base = resolved_old
    src = _resolve(repo, source)
    if src is None:
        raise NotFound(f"{source!r} does not name a commit in {repo}")
    branch = _short(ref)
    msg = message if message.strip() else f"Merge {src[:12]} into {branch}\n"
    if not msg.endswith("\n"):
        msg += "\n"

    def result(new: str, commits: list[str], ff: bool = False, utd: bool = False) -> MergeResult:
        return MergeResult(branch, strategy, src, base, new, commits, ff, utd)

    mb = _out(["merge-base", base, src], repo, ok=(0, 1)) or None
    if mb is None:
        raise UsageError(
            f"{src[:12]} and {branch} have no common history; pa will not merge unrelated histories"
        )
    if mb == src:  # already contained in the target
        return result(base, [], utd=True)
    if strategy == "rebase":
        if mb == base:
            return result(src, [], ff=True)
        commits = _replay(repo, base, src, branch)
        return result(commits[-1] if commits else base, commits, utd=not commits)
    tree, paths = merge_tree(repo, base, src)
    if paths:
        raise MergeConflict(paths, src, branch)
    if tree == _tree_of(repo, base):
        # Everything the source changes is already in the target (a retry after a crash,
        # a squash merged before): a commit now would be empty.
        return result(base, [], utd=True)
    if strategy == "squash":
        new = _commit_tree(repo, tree, [base], msg)
    else:
        new = _commit_tree(repo, tree, [base, src], msg)
    return result(new, [new])


def _read_commits(repo: Path, commits: Sequence[str]) -> dict[str, _Commit]:
    data = "".join(f"{c}\n" for c in commits).encode()
    out = _git(["cat-file", "--batch"], repo, input=data).stdout
    result: dict[str, _Commit] = {}
    pos = 0
    for c in commits:
        nl = out.index(b"\n", pos)
        oid, _kind, size = out[pos:nl].decode().split()
        body = out[nl + 1 : nl + 1 + int(size)]
        pos = nl + 1 + int(size) + 1
        result[c] = _Commit.parse(oid, body)
    return result


@dataclass(frozen=True)
class _Commit:
    oid: str
    tree: str
    parents: list[str]
    author_name: str
    author_email: str
    author_date: str
    message: bytes

    @staticmethod
    def parse(oid: str, raw: bytes) -> _Commit:
        head, _, message = raw.partition(b"\n\n")
        tree = ""
        parents: list[str] = []
        author = ""
        for line in head.decode("utf-8", "surrogateescape").split("\n"):
            if line.startswith("tree "):
                tree = line[5:]
            elif line.startswith("parent "):
                parents.append(line[7:])
            elif line.startswith("author "):
                author = line[7:]
        m = _IDENT_RE.match(author)
        name, email, date = m.groups() if m else ("", "", "")
        return _Commit(oid, tree, parents, name, email, date, message)


_IDENT_RE = re.compile(r"^(.*?) ?<([^>]*)> (\d+ [-+]\d{4})$")


def _replay(repo: Path, onto: str, source: str, branch: str) -> list[str]:
    """Cherry-pick the source's own commits onto ``onto`` like ``git rebase`` (merges
    dropped, commits already upstream skipped, commits that become empty dropped)."""
    revs = _out(
        [
            "rev-list",
            "--reverse",
            "--topo-order",
            "--no-merges",
            "--right-only",
            "--cherry-pick",
            f"{onto}...{source}",
        ],
        repo,
    ).split()
    if not revs:
        return []
    info = _read_commits(repo, revs)
    cur = onto
    cur_tree = _tree_of(repo, onto)
    created: list[str] = []
    for c in revs:
        meta = info[c]
        if not meta.parents:  # pragma: no cover - a root commit cannot be in this range
            raise UsageError(f"cannot rebase root commit {c[:12]}")
        parent = meta.parents[0]
        if parent == cur:
            cur, cur_tree = c, meta.tree  # already in place: keep the commit as it is
            created.append(c)
            continue
        stand_in = _commit_tree(repo, cur_tree, [parent], "pa rebase stand-in\n")
        tree, paths = merge_tree(repo, stand_in, c)
        if paths:
            raise MergeConflict(paths, source, branch)
        parent_tree = _tree_of(repo, parent)
        if tree == cur_tree and meta.tree != parent_tree:
            continue  # became empty: its change is already in the target
        env = {
            "GIT_AUTHOR_NAME": meta.author_name,
            "GIT_AUTHOR_EMAIL": meta.author_email,
            "GIT_AUTHOR_DATE": meta.author_date,
        }
        cur = _commit_tree(repo, tree, [cur], meta.message, env=env)
        cur_tree = tree
        created.append(cur)
    return created


def apply_merge(repo: Path, result: MergeResult, *, reflog: str | None = None) -> None:
    """Move the target branch from ``result.old`` to ``result.new`` atomically.

    Raises TargetMoved when the branch is no longer at ``result.old``.
    """
    if result.up_to_date or result.new == result.old:
        return
    update_ref(
        repo,
        _branch_ref(result.target_branch),
        result.new,
        result.old,
        reflog or f"pa merge ({result.strategy}) {result.source[:12]}",
    )


def update_ref(repo: Path, ref: str, new: str, old: str, reflog: str) -> None:
    """``git update-ref ref new old``; TargetMoved when ``ref`` is not at ``old``."""
    for attempt in range(20):
        r = _git(["update-ref", "-m", reflog, ref, new, old], repo, check=False)
        if r.returncode == 0:
            return
        now = _resolve(repo, ref)
        if now != old:
            raise TargetMoved(_short(ref), old, now)
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
    _, current = _target(repo, target_branch)
    if expected_old is not None:
        exp = _resolve(repo, expected_old) or expected_old
        if exp != current:
            raise TargetMoved(_short(_branch_ref(target_branch)), exp, current)
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
    head = _git(["symbolic-ref", "-q", "HEAD"], repo, ok=(0, 1)).text.strip()
    if head != _branch_ref(branch):
        return "not_checked_out"
    st = _git(
        ["--no-optional-locks", "status", "--porcelain=v1", "-z", "--untracked-files=no"], repo
    ).stdout
    return "dirty" if st.strip(b"\0") else "clean"


def sync_main_checkout(repo_main_checkout: Path, branch: str, old: str, new: str) -> str:
    """Bring the user's checkout at ``repo_main_checkout`` from ``old`` to ``new`` after
    ``branch`` moved, if it has ``branch`` checked out and was clean; say what happened.

    "Clean" is judged against ``old`` (index and files equal to ``old``), so this is right
    even when called after the ref update. A dirty checkout is left exactly as it is.
    """
    path = Path(repo_main_checkout)
    name = _short(branch)
    if git.is_bare(path):
        return f"{path} is a bare repository; no files to update"
    head = _git(["symbolic-ref", "-q", "HEAD"], path, ok=(0, 1)).text.strip()
    if head != _branch_ref(branch):
        return f"{name} is not checked out in {path}; its files were not touched"
    if old == new:
        return f"{path} is already up to date with {name}"
    _git(["update-index", "-q", "--refresh"], path, check=False)
    index_ok = _git(["diff-index", "--cached", "--quiet", old, "--"], path, ok=(0, 1))
    files_ok = _git(["diff-files", "--quiet"], path, ok=(0, 1))
    if index_ok.returncode != 0 or files_ok.returncode != 0:
        return dirty_message(path, name, old, new)
    r = _git(["read-tree", "-m", "-u", old, new], path, check=False)
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
    name = _short(branch)
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
    name = _short(branch)
    if "index.lock" in stderr:
        lock = _out(["rev-parse", "--git-path", "index.lock"], checkout, check=False)
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


def _two_tree(checkout: Path, old: str, new: str, *, dry_run: bool = False) -> _Raw:
    # read-tree judges "up to date" by stat data: refresh it first (as `git merge` does),
    # or a file touched but unchanged would block the update.
    _git(["update-index", "-q", "--refresh"], checkout, check=False)
    args = ["read-tree", "-m", "-u", *(["-n"] if dry_run else []), old, new]
    return _git(args, checkout, check=False)


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
            _git(["update-index", "-q", "--refresh"], co, check=False)
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
    ref = _git(["symbolic-ref", "-q", "HEAD"], checkout, ok=(0, 1)).text.strip()
    head = _resolve(checkout, "HEAD")
    if not ref.startswith("refs/heads/") or head is None:
        return None
    same = _git(["diff-index", "--cached", "--quiet", head, "--"], checkout, check=False)
    if same.returncode == 0:
        return None
    log = _git(["log", "-g", "-n", "64", "--format=%H%x09%gs", ref, "--"], checkout, check=False)
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
    return (_short(ref), found, head) if found else None


def newest_reflog_message(common_dir: Path, branch: str) -> str:
    """The message of ``branch``'s newest reflog entry, read from the file (no git process:
    doctor asks this of every worktree), or "" when there is none."""
    path = Path(common_dir) / "logs" / _branch_ref(branch)
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
    return {p for p in _git(args, cwd).text.split("\0") if p}


def finish_interrupted_sync(checkout: Path, old: str, head: str) -> None:
    """Bring ``checkout``'s index and files from ``old`` to its HEAD ``head`` (see
    ``interrupted_sync``), keeping local changes; CheckoutBlocked when git refuses."""
    r = _two_tree(checkout, old, head)
    if r.returncode != 0:
        name = _out(["symbolic-ref", "--short", "-q", "HEAD"], checkout, check=False)
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
    _git(["update-index", "-q", "--refresh"], checkout, check=False)


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
        _git(["update-index", "-q", "--refresh"], checkout, check=False)
        return True, f"updated the files in {checkout} to {_short(branch)} at {new[:12]}"
    return False, behind_message(checkout, _short(branch), old, new, _git_reason(r.stderr))


def source_commit(worktree: Path, ref: str, message: str) -> tuple[str, bool]:
    """The commit that holds everything in ``worktree`` (untracked files included, ignored
    files not), and whether it had uncommitted work.

    Nothing uncommitted: the worktree's HEAD itself, so no empty commit is ever made.
    Else one commit on top of HEAD carrying ``message``, kept under ``ref``; a commit
    already there with the same parent and tree is reused, so a merge retried after a
    crash merges the very same commit and finds it already merged.
    """
    worktree = Path(worktree)
    head = _need(worktree, "HEAD")
    with _temp_index(worktree) as env:
        # Files `copy = [...]` put there (a .env) stay out unless the agent changed them.
        tree = _snapshot_tree(worktree, env, _copied_unchanged(worktree))
    if tree == _tree_of(worktree, head):
        return head, False
    prev = _resolve(worktree, ref)
    if prev is not None:
        info = _read_commits(worktree, [prev])[prev]
        if info.tree == tree and info.parents == [head]:
            return prev, True
    commit = _commit_tree(worktree, tree, [head], message)
    _git(["update-ref", "-m", "pa: uncommitted work to merge", ref, commit], worktree)
    return commit, True


# -------------------------------------------------------------------------- the merge queue

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
    ref, start = _target(repo, target_branch)
    branch = _short(ref)
    for it in items:
        if _resolve(repo, it.source_commit) is None:
            raise NotFound(
                f"session {it.session_id}: {it.source_commit!r} does not name a commit in {repo}"
            )
    if expected_old is not None and (_resolve(repo, expected_old) or expected_old) != start:
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
            _git(
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
            _git(["-c", "core.hooksPath=/dev/null", "reset", "--hard", "-q"], wt)
            return run_check(wt, command, timeout, env)
        finally:
            with worktrees.repo_lock(repo):
                r = _git(["worktree", "remove", "--force", "--force", str(wt)], repo, check=False)
                if r.returncode != 0:  # pragma: no cover - defensive
                    shutil.rmtree(wt, ignore_errors=True)
                    _git(["worktree", "prune"], repo, check=False)


def commit_checker(
    repo: Path, command: str | list[str], timeout: float, env: Mapping[str, str] | None = None
) -> Callable[[str], CheckResult]:
    """A ``check`` for ``merge_queue``: runs ``command`` on each merged commit."""

    def run(commit: str) -> CheckResult:
        return check_commit(repo, commit, command, timeout, env)

    return run


# ---------------------------------------------------------------------------- pull requests


class _Auto(enum.Enum):
    AUTO = "auto"


AUTO = _Auto.AUTO


@dataclass(frozen=True)
class PRResult:
    branch: str
    remote: str
    commit: str  # what was pushed
    pushed: bool
    created: bool  # a PR was opened by gh
    url: str | None
    gh_argv: list[str]
    message: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def gh_pr_argv(
    branch: str,
    *,
    title: str,
    body: str,
    draft: bool = False,
    base: str | None = None,
    gh: str = "gh",
) -> list[str]:
    """The exact ``gh pr create`` argv pa runs (argv elements, never a shell string)."""
    argv = [gh, "pr", "create", "--head", branch, "--title", title, "--body", body]
    if base:
        argv += ["--base", base]
    if draft:
        argv.append("--draft")
    return argv


def push_and_pr(
    repo: Path,
    branch: str,
    *,
    remote: str = "origin",
    draft: bool = False,
    title: str,
    body: str,
    base: str | None = None,
    gh: str | _Auto | None = AUTO,
    timeout: float = 300,
) -> PRResult:
    """Push ``branch`` to ``remote`` and open a pull request with the ``gh`` CLI.

    No such remote: UsageError naming it. A failed push: PAError with git's reason.
    No ``gh`` (``gh=None``, or not on PATH by default): the branch is pushed and the
    result says gh is missing and gives the command to run.
    """
    repo = Path(repo)
    name = _short(branch)
    ref = _branch_ref(branch)
    r = _git(["remote", "get-url", remote], repo, check=False)
    if r.returncode != 0:
        remotes = _out(["remote"], repo).split()
        have = f"it has: {', '.join(remotes)}" if remotes else "it has no remotes at all"
        raise UsageError(
            f"the repository {repo} has no remote named {remote!r} to push to ({have})",
            hint=f"add one with: git remote add {remote} <url>",
        )
    commit = _resolve(repo, ref)
    if commit is None:
        raise NotFound(f"branch {name!r} does not exist in {repo}")
    p = _git(
        ["push", "--porcelain", remote, f"{ref}:refs/heads/{name}"],
        repo,
        check=False,
        timeout=timeout,
    )
    if p.returncode != 0:
        why = (p.stderr.strip() or p.text.strip()).splitlines()
        raise PAError(
            f"git push of {name} to {remote} failed: {why[-1] if why else 'unknown error'}",
            hint="check the remote's URL and your credentials, then run pa pr again",
        )
    exe = shutil.which("gh") if gh is AUTO else gh
    argv = gh_pr_argv(name, title=title, body=body, draft=draft, base=base, gh=exe or "gh")
    if not exe:
        return PRResult(
            name,
            remote,
            commit,
            True,
            False,
            None,
            argv,
            f"pushed {name} to {remote}; the GitHub CLI (gh) is not installed, so no pull "
            f"request was opened. Install gh and run: {shlex.join(argv)}",
        )
    try:
        g = subprocess.run(
            argv,
            cwd=str(repo),
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            env={**git.git_env(), "GH_PROMPT_DISABLED": "1"},
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return PRResult(
            name,
            remote,
            commit,
            True,
            False,
            None,
            argv,
            f"pushed {name} to {remote}, but gh could not run ({e}); run: {shlex.join(argv)}",
        )
    if g.returncode != 0:
        err = (g.stderr.strip() or g.stdout.strip()).splitlines()
        return PRResult(
            name,
            remote,
            commit,
            True,
            False,
            None,
            argv,
            f"pushed {name} to {remote}, but gh pr create failed: "
            f"{err[-1] if err else f'exit code {g.returncode}'}",
        )
    url = next(
        (ln.strip() for ln in reversed(g.stdout.splitlines()) if ln.strip().startswith("http")),
        None,
    )
    return PRResult(
        name,
        remote,
        commit,
        True,
        True,
        url,
        argv,
        f"pushed {name} to {remote} and opened {url or 'a pull request'}",
    )
