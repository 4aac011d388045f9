"""Rebase without a working tree: replaying a branch's own commits onto another commit.

git 2.39's ``merge-tree`` has no ``--merge-base``, so a cherry-pick of commit C (parent P)
onto X is computed as the merge of C with a throw-away commit that has X's tree and P as
its only parent: the merge base of the two is then exactly P, which is what a
cherry-pick means.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from parallel_agents import git
from parallel_agents.errors import UsageError
from parallel_agents.git.merge_tree import merge_tree

__all__ = ["Commit", "read_commits", "replay"]


def read_commits(repo: Path, commits: Sequence[str]) -> dict[str, Commit]:
    """Each commit's tree, parents, author and message, through one ``cat-file --batch``."""
    data = "".join(f"{c}\n" for c in commits).encode()
    out = git.run(["cat-file", "--batch"], repo, input=data).raw
    result: dict[str, Commit] = {}
    pos = 0
    for c in commits:
        nl = out.index(b"\n", pos)
        oid, _kind, size = out[pos:nl].decode().split()
        body = out[nl + 1 : nl + 1 + int(size)]
        pos = nl + 1 + int(size) + 1
        result[c] = Commit.parse(oid, body)
    return result


@dataclass(frozen=True)
class Commit:
    oid: str
    tree: str
    parents: list[str]
    author_name: str
    author_email: str
    author_date: str
    message: bytes

    @staticmethod
    def parse(oid: str, raw: bytes) -> Commit:
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
        return Commit(oid, tree, parents, name, email, date, message)


_IDENT_RE = re.compile(r"^(.*?) ?<([^>]*)> (\d+ [-+]\d{4})$")


def replay(repo: Path, onto: str, source: str) -> tuple[list[str], list[str]]:
    """Cherry-pick the source's own commits onto ``onto`` like ``git rebase`` (merges
    dropped, commits already upstream skipped, commits that become empty dropped).

    Returns the commits in their new places, or, at the first commit that conflicts,
    no commits and the conflicted paths.
    """
    revs = git.out(
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
        return [], []
    info = read_commits(repo, revs)
    cur = onto
    cur_tree = git.tree_of(repo, onto)
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
        stand_in = git.commit_tree(repo, cur_tree, [parent], "pa rebase stand-in\n")
        tree, paths = merge_tree(repo, stand_in, c)
        if paths:
            return [], paths
        parent_tree = git.tree_of(repo, parent)
        if tree == cur_tree and meta.tree != parent_tree:
            continue  # became empty: its change is already in the target
        env = {
            "GIT_AUTHOR_NAME": meta.author_name,
            "GIT_AUTHOR_EMAIL": meta.author_email,
            "GIT_AUTHOR_DATE": meta.author_date,
        }
        cur = git.commit_tree(repo, tree, [cur], meta.message, env=env)
        cur_tree = tree
        created.append(cur)
    return created, []
