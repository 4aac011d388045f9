"""How a session's code travels to a Ray node (issue 19), both sides of it.

What a node must end up with before a turn is the local checkpoint: the session's local
worktree as it is (uncommitted and untracked changes included, ignored files not), HEAD
and index at the branch commit, as ``git/snapshots`` restore makes it. The orchestrator
(``build``) snapshots the local worktree with a temporary index, compares it with what
the session's actor says it already has (the commit at its HEAD and the tree its worktree
holds: what its last checkpoint sent home) and ships:

- ``none``: the node already is at that state (a follow-up after an untouched turn);
- ``thin``: a bundle of the branch (and the snapshot, when it differs from the branch)
  minus what the node has and, with ``runtime.ray.repo_url``, minus what that remote has
  (the node fetches it from there first);
- ``full``: the whole branch and snapshot (a new actor, no remote URL).

The node (``apply``) unbundles into its cached clone (``git bundle unbundle``: objects
only, after git checked the prerequisites, so a failure writes no ref) under a per-clone
lock, then makes its worktree that state. Plain Python and git processes: no ``ray``.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SHIP_REF = "refs/pa/ship/"  # + the session id: the local snapshot while it is bundled
IN_REF = "refs/pa/in/"  # + the session id: on a node, the branch commit it was given
GIT_ENV = {
    "GIT_AUTHOR_NAME": "pa",
    "GIT_AUTHOR_EMAIL": "pa@localhost",
    "GIT_COMMITTER_NAME": "pa",
    "GIT_COMMITTER_EMAIL": "pa@localhost",
    "GIT_TERMINAL_PROMPT": "0",
}


def git(args: list[str], cwd: Path, *, env: dict[str, str] | None = None,
        stdin: str | None = None) -> str:
    full = {**os.environ, **GIT_ENV, **(env or {})}
    p = subprocess.run(["git", *args], cwd=str(cwd), env=full, input=stdin,
                       capture_output=True, text=True, check=False)
    if p.returncode != 0:
        raise RuntimeError(f"git {' '.join(args[:2])}: {p.stderr.strip() or p.stdout.strip()}")
    return p.stdout.strip()


def tree_of(worktree: Path, tmp: Path) -> str:
    """The tree of ``worktree`` as it is (untracked files too, ignored not), written with
    a temporary index: the worktree's own index and HEAD stay as they are."""
    idx = {"GIT_INDEX_FILE": str(tmp / "pa-ship-index")}
    git(["read-tree", "HEAD"], worktree, env=idx)
    git(["add", "-A"], worktree, env=idx)
    return git(["write-tree"], worktree, env=idx)


@dataclass
class Shipment:
    """What goes to the node for one turn; ``note`` is what the turn's ray.json keeps."""

    branch: str
    head: str  # the branch commit: the node's HEAD and index
    tree: str  # the local worktree's tree: the node's files
    snapshot: str | None = None  # a commit of ``tree`` on ``head`` when they differ
    data: bytes | None = None  # the bundle; None: nothing to send
    kind: str = "none"  # none, thin or full
    commits: int = 0  # how many commits the bundle carries
    repo_url: str | None = None
    fresh: bool = False  # a new actor (first turn on its node, or after its node was lost)

    def note(self) -> dict[str, Any]:
        return {"kind": self.kind, "bytes": len(self.data or b""), "commits": self.commits,
                "head": self.head, "snapshot": self.snapshot, "repo_url": self.repo_url,
                "fresh": self.fresh}

    def for_node(self) -> dict[str, Any]:
        return {"branch": self.branch, "head": self.head, "tree": self.tree, "kind": self.kind,
                "snapshot": self.snapshot, "data": self.data, "repo_url": self.repo_url}


def remote_has(repo: Path, url: str) -> list[str]:
    """The commits the remote at ``url`` has (its branches and tags) that this repository
    also has: what a bundle may leave out, since the node fetches them from there."""
    listed = git(["ls-remote", "--heads", "--tags", url], repo)
    shas = sorted({line.split()[0] for line in listed.splitlines() if line.strip()})
    if not shas:
        return []
    p = subprocess.run(["git", "cat-file", "--batch-check=%(objectname) %(objecttype)"],
                       cwd=str(repo), input="\n".join(shas) + "\n", capture_output=True,
                       text=True, check=False)
    return [ln.split()[0] for ln in p.stdout.splitlines() if ln.endswith(" commit")]


def _has(repo: Path, commit: str) -> bool:
    return subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=str(repo),
                          capture_output=True, check=False).returncode == 0


def build(repo: Path, worktree: Path, branch: str, sid: str, *,
          have: dict[str, str] | None, repo_url: str | None,
          remote: list[str]) -> Shipment:
    """What the node needs to be at the local worktree's state; ``have`` is what the
    session's actor holds (None: a new actor, its worktree still to be made); ``remote``
    the commits ``repo_url`` has (``remote_has``), which the node fetches from there."""
    head = git(["rev-parse", "HEAD"], worktree)
    with tempfile.TemporaryDirectory() as tmp:
        tree = tree_of(worktree, Path(tmp))
    ship = Shipment(branch=branch, head=head, tree=tree, repo_url=repo_url, fresh=have is None)
    if have is not None and have.get("head") == head and have.get("tree") == tree:
        return ship  # the node's worktree already is this state
    # What the node has, if this repository has it too (a turn whose work did not come
    # home may have left the node ahead): a bundle can only leave out what both have.
    excludes = [c for c in ([have.get("head", "")] if have else []) if c and _has(repo, c)]
    excludes += remote
    tips = [f"refs/heads/{branch}"]
    ref = SHIP_REF + sid
    if tree != git(["rev-parse", "HEAD^{tree}"], worktree):
        ship.snapshot = git(["commit-tree", tree, "-p", head, "-m", "pa snapshot (ray)"],
                            worktree)
        git(["update-ref", ref, ship.snapshot], repo)
        tips.append(ref)
    try:
        # On stdin: a remote may have thousands of branches, too many for a command line.
        nots = "".join(f"^{e}\n" for e in excludes)
        ship.commits = int(git(["rev-list", "--count", "--stdin"], repo,
                               stdin="".join(f"{t}\n" for t in tips) + nots))
        if ship.commits:
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "ship.bundle"
                git(["bundle", "create", "-q", str(out), "--stdin"], repo,
                    stdin="".join(f"{t}\n" for t in tips) + nots)
                ship.data = out.read_bytes()
        # Thin even with no bundle at all: the node has, or fetches, every commit it needs.
        ship.kind = "thin" if excludes else "full"
    finally:
        if ship.snapshot:
            git(["update-ref", "-d", ref], repo)
    return ship


# -- the node's side --------------------------------------------------------------------
@contextmanager
def _locked(cache: Path) -> Iterator[None]:
    """One writer per cached clone: sessions of a repository on a node share it, and
    concurrent fetches into one repository fail on ref locks. The lock file sits next to
    the clone, so its first ``git init`` is under the lock too (two sessions of a
    repository starting at once on a node raced on it: "File exists")."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(cache.parent / f"{cache.name}.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def apply(cache: Path, worktree: Path, sid: str, ship: dict[str, Any], scratch: Path) -> None:
    """Bring the shipped commits into ``cache`` (fetching ``repo_url`` first when set) and
    make ``worktree`` the shipped state: files at the snapshot, HEAD and index at the
    branch commit. Raises with git's message; a failed unbundle writes no ref."""
    if ship.get("kind") == "none":
        return  # the worktree already is that state (the orchestrator asked ``holds``)
    with _locked(cache):
        if not (cache / "HEAD").exists():
            cache.mkdir(parents=True, exist_ok=True)
            git(["init", "-q", "--bare", str(cache)], cache)
        if ship.get("repo_url"):
            git(["fetch", "-q", str(ship["repo_url"]),
                 "+refs/heads/*:refs/pa/remote/heads/*", "+refs/tags/*:refs/pa/remote/tags/*"],
                cache)
        if ship.get("data"):
            with tempfile.NamedTemporaryFile(suffix=".bundle", dir=scratch) as f:
                f.write(ship["data"])
                f.flush()
                git(["bundle", "unbundle", f.name], cache)
        head = str(ship["head"])
        branch = str(ship["branch"])
        if not (worktree / ".git").exists():
            worktree.parent.mkdir(parents=True, exist_ok=True)
            git(["worktree", "prune"], cache)
            git(["worktree", "add", "-q", "-f", "-B", branch, str(worktree), head], cache)
        else:  # this node's worktree from an earlier actor or turn: made the shipped state
            git(["checkout", "-q", "-f", "-B", branch, head], worktree)
            git(["clean", "-q", "-f", "-d"], worktree)
        git(["update-ref", IN_REF + sid, head], cache)  # keeps the branch's objects
    if ship.get("snapshot"):
        git(["reset", "-q", "--hard", str(ship["snapshot"])], worktree)
        git(["reset", "-q", head], worktree)
