"""The conflict forecast: which sessions merge cleanly into the base and which pairs of
sessions conflict, with the paths.

Merges are computed with ``git merge-tree --write-tree``, prefiltered by changed-path
overlap, cached by commit pair and batched (``--stdin`` when git has it).
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
import time
from collections.abc import Mapping, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from parallel_agents import git
from parallel_agents.errors import NotFound
from parallel_agents.git import GitError
from parallel_agents.git.merge_tree import merge_tree, merge_tree_supports_stdin, parse_merge_tree

__all__ = [
    "ConflictForecast",
    "Forecast",
    "ForecastStats",
    "PairConflict",
    "SessionForecast",
    "forecast",
    "projected",
]

_HEX_RE = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


def _resolve_many(cwd: Path | str, revs: Sequence[str]) -> list[str | None]:
    """Commit ids of many revisions through one ``cat-file --batch-check`` process."""
    if not revs:
        return []
    if any("\n" in r or not r.strip() for r in revs):
        return [git.resolve(cwd, r) if "\n" not in r and r.strip() else None for r in revs]
    data = "".join(f"{r}^{{commit}}\n" for r in revs).encode()
    out = git.run(["cat-file", "--batch-check=%(objectname) %(objecttype)"], cwd, input=data)
    lines = out.text.splitlines()
    result: list[str | None] = []
    for line in lines[: len(revs)]:
        parts = line.split()
        ok = len(parts) == 2 and parts[1] == "commit" and _HEX_RE.match(parts[0]) is not None
        result.append(parts[0] if ok else None)
    return result


@dataclass(frozen=True)
class SessionForecast:
    """How one session stands against the base and the other sessions."""

    session_id: str
    head: str
    merge_base: str | None  # with the base; None: no common history
    changed_paths: int
    clean_with_base: bool
    base_conflict_paths: list[str]
    conflicts_with: list[str]  # other session ids
    error: str | None = None


@dataclass(frozen=True)
class PairConflict:
    a: str  # session ids, a < b
    b: str
    paths: list[str]


@dataclass(frozen=True)
class ForecastStats:
    sessions: int
    pairs: int  # every pair of sessions
    candidate_pairs: int  # pairs whose changed paths overlap
    base_checks: int  # sessions whose changes overlap what the base changed
    cache_hits: int
    merges_run: int  # merge-tree merges actually computed
    batched: bool  # through one `merge-tree --stdin` process
    seconds: float


@dataclass(frozen=True)
class Forecast:
    base_commit: str
    sessions: dict[str, SessionForecast]
    conflicts: list[PairConflict]
    stats: ForecastStats

    def pairs(self) -> set[frozenset[str]]:
        return {frozenset((c.a, c.b)) for c in self.conflicts}

    def to_json(self) -> dict[str, Any]:
        return {
            "base": self.base_commit,
            "sessions": {k: asdict(v) for k, v in self.sessions.items()},
            "conflicts": [asdict(c) for c in self.conflicts],
            "stats": asdict(self.stats),
        }


@dataclass(frozen=True)
class _Changes:
    """Paths one side of a merge changed, with the directories needed for the prefilter."""

    files: frozenset[str] = frozenset()
    dirs: frozenset[str] = frozenset()  # ancestors of any changed path
    deleted_dirs: frozenset[str] = frozenset()  # ancestors of deleted paths
    added_dirs: frozenset[str] = frozenset()  # ancestors of added paths

    @staticmethod
    def build(items: Sequence[tuple[str, str]]) -> _Changes:
        files: set[str] = set()
        dirs: set[str] = set()
        deleted: set[str] = set()
        added: set[str] = set()
        for status, path in items:
            files.add(path)
            anc = _ancestors(path)
            dirs.update(anc)
            if status == "D":
                deleted.update(anc)
            elif status == "A":
                added.update(anc)
        return _Changes(frozenset(files), frozenset(dirs), frozenset(deleted), frozenset(added))

    def __or__(self, o: _Changes) -> _Changes:
        return _Changes(
            self.files | o.files,
            self.dirs | o.dirs,
            self.deleted_dirs | o.deleted_dirs,
            self.added_dirs | o.added_dirs,
        )

    def may_conflict(self, o: _Changes) -> bool:
        """False only when a three-way merge of the two sides cannot conflict.

        Same path changed on both sides; a file on one side where the other has a
        directory; or one side deleting inside a directory where the other adds files
        (a possible directory rename, which merge-ort reports as a conflict).
        """
        if not self.files or not o.files:
            return False
        return not (
            self.files.isdisjoint(o.files)
            and self.files.isdisjoint(o.dirs)
            and o.files.isdisjoint(self.dirs)
            and self.deleted_dirs.isdisjoint(o.added_dirs)
            and o.deleted_dirs.isdisjoint(self.added_dirs)
        )


def _ancestors(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


# Facts about immutable objects never change, so they are cached for the process:
# merge bases of commit pairs and the changed paths between two commits.
_MB_CACHE: dict[tuple[str, str], str | None] = {}
_DIFF_CACHE: dict[tuple[str, str], _Changes] = {}
_CACHE_LIMIT = 20_000
_cache_lock = threading.Lock()


def _remember(d: dict[Any, Any], key: Any, value: Any) -> None:
    with _cache_lock:
        if len(d) >= _CACHE_LIMIT:
            d.clear()
        d[key] = value


def _merge_base(repo: Path, a: str, b: str) -> str | None:
    key = (a, b) if a <= b else (b, a)
    if key in _MB_CACHE:
        return _MB_CACHE[key]
    r = git.run(["merge-base", a, b], repo, ok=(0, 1))
    mb = r.text.strip() or None
    _remember(_MB_CACHE, key, mb)
    return mb


def _merge_bases(
    repo: Path, base: str, heads: Sequence[str], workers: int
) -> dict[str, str | None]:
    """Merge base of ``base`` with each head, mostly from one ``rev-list`` process.

    ``rev-list --parents heads --not base`` lists every commit the heads have and the base
    has not. Walking a head's commits down to where they leave that set gives its
    boundary; a single boundary commit is the merge base (every common ancestor lies
    below it). Heads with several boundaries (e.g. the base merged into the session) ask
    ``git merge-base``; a head the base already contains is its own merge base.
    """
    result: dict[str, str | None] = {}
    todo = []
    for h in heads:
        key = (base, h) if base <= h else (h, base)
        if key in _MB_CACHE:
            result[h] = _MB_CACHE[key]
        else:
            todo.append(h)
    if not todo:
        return result
    out = git.run(["rev-list", "--parents", *todo, "--not", base], repo).text
    graph: dict[str, list[str]] = {}
    for line in out.splitlines():
        parts = line.split()
        graph[parts[0]] = parts[1:]
    slow: list[str] = []
    for h in todo:
        if h not in graph:  # reachable from the base
            mb: str | None = h
        else:
            boundary: set[str] = set()
            seen: set[str] = set()
            stack = [h]
            while stack:
                c = stack.pop()
                if c in seen:
                    continue
                seen.add(c)
                for p in graph[c]:
                    if p in graph:
                        stack.append(p)
                    else:
                        boundary.add(p)
            if len(boundary) != 1:
                slow.append(h)
                continue
            mb = boundary.pop()
        result[h] = mb
        _remember(_MB_CACHE, (base, h) if base <= h else (h, base), mb)
    if slow:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for h, mb in zip(
                slow, pool.map(lambda x: _merge_base(repo, base, x), slow), strict=True
            ):
                result[h] = mb
    return result


def _changes(repo: Path, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], _Changes]:
    """Changed paths for each (old, new) commit pair, through one ``diff-tree --stdin``."""
    result: dict[tuple[str, str], _Changes] = {}
    todo: list[tuple[str, str]] = []
    for p in dict.fromkeys(pairs):
        if p[0] == p[1]:
            result[p] = _Changes()
        elif p in _DIFF_CACHE:
            result[p] = _DIFF_CACHE[p]
        else:
            todo.append(p)
    if not todo:
        return result
    data = "".join(f"{a} {b}\n" for a, b in todo).encode()
    out = git.run(
        ["diff-tree", "--stdin", "--always", "-r", "--no-renames", "--name-status", "-z"],
        repo,
        input=data,
    ).text
    tokens = out.split("\0")
    records: list[list[tuple[str, str]]] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "":
            i += 1
            continue
        if _HEX_RE.match(tok):  # a header: the next input line's output starts here
            records.append([])
            i += 1
            continue
        records[-1].append((tok[0], tokens[i + 1]))
        i += 2
    if len(records) != len(todo):  # pragma: no cover - defensive: fall back to one by one
        records = []
        for a, b in todo:
            o = git.run(
                ["diff-tree", "-r", "--no-renames", "--name-status", "-z", a, b], repo
            ).text.split("\0")
            records.append([(o[k][0], o[k + 1]) for k in range(0, len(o) - 1, 2)])
    for p, items in zip(todo, records, strict=True):
        ch = _Changes.build(items)
        _remember(_DIFF_CACHE, p, ch)
        result[p] = ch
    return result


class ConflictForecast:
    """Pairwise conflict forecast with a result cache keyed by (commit, commit).

    ``cache`` maps a sorted pair of commit ids to the conflicted paths of their merge
    (an empty list: the merge is clean). Commits are immutable, so the caller may keep
    the mapping across calls and processes. A side may also be ``head@base`` (see
    ``projected``): sessions forked from different base commits are compared on their
    own changes only, each as if merged into the current base first.
    """

    def __init__(
        self,
        repo: Path,
        cache: MutableMapping[tuple[str, str], list[str]] | None = None,
        *,
        use_stdin: bool | None = None,
        workers: int | None = None,
    ) -> None:
        self.repo = Path(repo)
        self.cache: MutableMapping[tuple[str, str], list[str]] = {} if cache is None else cache
        self.use_stdin = merge_tree_supports_stdin() if use_stdin is None else use_stdin
        self.workers = workers or max(2, min(8, os.cpu_count() or 2))

    # -- merges ------------------------------------------------------------------------

    def merge_paths(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], list[str]]:
        """Conflicted paths of each pair's merge (cached); an empty list means clean.

        Keys of the result are sorted pairs.
        """
        return self._merge_paths(pairs)[0]

    def _merge_paths(
        self, pairs: Sequence[tuple[str, str]]
    ) -> tuple[dict[tuple[str, str], list[str]], int, int]:
        result: dict[tuple[str, str], list[str]] = {}
        todo: list[tuple[str, str]] = []
        hits = 0
        for key in dict.fromkeys((a, b) if a <= b else (b, a) for a, b in pairs):
            hit = self.cache.get(key)
            if hit is not None:
                result[key] = list(hit)
                hits += 1
            else:
                todo.append(key)
        if todo:
            # merge-tree writes the merged trees and blobs; keep them out of the repository
            # by giving git a throw-away object directory that borrows the real one.
            objects = git.common_dir(self.repo) / "objects"
            with tempfile.TemporaryDirectory(prefix="pa-forecast-") as tmp:
                env = {
                    "GIT_OBJECT_DIRECTORY": tmp,
                    "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(objects),
                }
                sides = sorted({x for pair in todo for x in pair})
                if any(PROJECTED in x for x in sides):
                    real = self._project(sides, env)
                    merged = self._run_merges([(real[a], real[b]) for a, b in todo], env)
                    computed = {k: merged[(real[k[0]], real[k[1]])] for k in todo}
                else:
                    computed = self._run_merges(todo, env)
            for key, paths in computed.items():
                self.cache[key] = list(paths)
                result[key] = paths
        return result, hits, len(todo)

    def _project(self, sides: Sequence[str], env: Mapping[str, str]) -> dict[str, str]:
        """Commit ids for merge sides: a plain commit stands for itself; ``head@base`` (see
        ``projected``) becomes a commit, written to ``env``'s object directory, whose
        parent is ``base`` and whose tree is ``head`` merged into ``base`` (with conflict
        markers where they conflict). Merging two such commits merges only what each
        head itself changed: their merge base is ``base``.
        """
        real: dict[str, str] = {}
        todo: list[tuple[str, str]] = []  # (base, head)
        for side in sides:
            head, sep, base = side.partition(PROJECTED)
            if sep:
                todo.append((base, head))
            else:
                real[side] = side
        if not todo:
            return real
        trees = self._merge_trees(todo, env)
        with tempfile.TemporaryDirectory(prefix="pa-forecast-commits-") as tmp:
            files = []
            for k, (base, head) in enumerate(todo):
                f = Path(tmp) / str(k)
                # Fixed identity and date: the same inputs always give the same commit id,
                # so results cached under ``head@base`` keys stay valid across processes.
                f.write_text(
                    f"tree {trees[k]}\nparent {base}\n"
                    f"author pa <pa@localhost> 0 +0000\ncommitter pa <pa@localhost> 0 +0000\n"
                    f"\npa forecast: {head} onto {base}\n"
                )
                files.append(str(f))
            ids = git.run(
                ["hash-object", "-t", "commit", "-w", "--stdin-paths"],
                self.repo,
                input="".join(f"{f}\n" for f in files).encode(),
                env=env,
            ).text.split()
        for (base, head), oid in zip(todo, ids, strict=True):
            real[projected(head, base)] = oid
        return real

    def _stdin_tokens(self, todo: list[tuple[str, str]], env: Mapping[str, str]) -> list[str]:
        """All of ``todo``'s merges through one ``git merge-tree --stdin``, as NUL tokens."""
        data = "".join(f"{a} {b}\n" for a, b in todo).encode()
        out = git.run(
            ["merge-tree", "--stdin", "--write-tree", "-z", "--name-only", "--no-messages"],
            self.repo,
            input=data,
            env=env,
        )
        return out.text.split("\0")

    def _merge_trees(self, todo: list[tuple[str, str]], env: Mapping[str, str]) -> list[str]:
        """The tree of each (a, b) merge, conflicted or not, in ``todo``'s order."""
        if self.use_stdin and len(todo) > 1:
            tokens = self._stdin_tokens(todo, env)
            trees: list[str] = []
            i = 0
            for _ in todo:
                trees.append(tokens[i + 1])
                _, _, i = parse_merge_tree(tokens, i)
            return trees
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            return list(pool.map(lambda p: merge_tree(self.repo, p[0], p[1], env=env)[0], todo))

    def _run_merges(
        self, todo: list[tuple[str, str]], env: Mapping[str, str]
    ) -> dict[tuple[str, str], list[str]]:
        if self.use_stdin and len(todo) > 1:
            try:
                return self._merges_stdin(todo, env)
            except (GitError, ValueError, IndexError):  # pragma: no cover - fall back
                pass
        if len(todo) == 1:
            return {todo[0]: self._merge_one(todo[0], env)}
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            paths = list(pool.map(lambda p: self._merge_one(p, env), todo))
        return dict(zip(todo, paths, strict=True))

    def _merges_stdin(
        self, todo: list[tuple[str, str]], env: Mapping[str, str]
    ) -> dict[tuple[str, str], list[str]]:
        tokens = self._stdin_tokens(todo, env)
        result: dict[tuple[str, str], list[str]] = {}
        i = 0
        for key in todo:
            clean, paths, i = parse_merge_tree(tokens, i)
            if not clean and not paths:
                paths = self._merge_one(key, env)
            result[key] = [] if clean else paths
        return result

    def _merge_one(self, pair: tuple[str, str], env: Mapping[str, str]) -> list[str]:
        return merge_tree(self.repo, pair[0], pair[1], env=env)[1]

    # -- the forecast ------------------------------------------------------------------

    def forecast(self, base_commit: str, heads: Mapping[str, str]) -> Forecast:
        t0 = time.perf_counter()
        repo = self.repo
        base = git.need(repo, base_commit, what="base commit")
        ids = sorted(heads)
        resolved: dict[str, str] = {}
        for sid, oid in zip(ids, _resolve_many(repo, [heads[i] for i in ids]), strict=True):
            if oid is None:
                raise NotFound(f"session {sid}: {heads[sid]!r} does not name a commit in {repo}")
            resolved[sid] = oid

        # 1. merge base of every session with the base.
        uniq = sorted(set(resolved.values()))
        mbs = _merge_bases(repo, base, uniq, self.workers)

        # 2. what each session and the base changed since that merge base (one process).
        wanted: list[tuple[str, str]] = []
        for h in uniq:
            mb = mbs[h]
            if mb is not None:
                wanted += [(mb, h), (mb, base)]
        changes = _changes(repo, wanted)

        # 3. candidates: base checks and pairs whose changed paths may conflict.
        merges: list[tuple[str, str]] = []
        base_needed: dict[str, bool] = {}
        for h in uniq:
            mb = mbs[h]
            need = (
                mb is not None
                and mb not in (h, base)
                and changes[(mb, h)].may_conflict(changes[(mb, base)])
            )
            base_needed[h] = need
            if need:
                merges.append((base, h))
        pairs_total = len(ids) * (len(ids) - 1) // 2
        candidates: list[tuple[str, str]] = []
        for x in range(len(ids)):
            for y in range(x + 1, len(ids)):
                a, b = ids[x], ids[y]
                ha, hb = resolved[a], resolved[b]
                if ha == hb or mbs[ha] is None or mbs[hb] is None:
                    continue
                if self._pair_candidate(ha, hb, mbs, changes):
                    candidates.append((a, b))
                    merges.append(self._pair_sides(ha, hb, mbs, base))
        results, hits, run = self._merge_paths(merges)

        def paths_of(a: str, b: str) -> list[str]:
            return results[(a, b) if a <= b else (b, a)]

        def pair_paths(ha: str, hb: str) -> list[str]:
            return paths_of(*self._pair_sides(ha, hb, mbs, base))

        conflicts: list[PairConflict] = []
        partners: dict[str, list[str]] = {sid: [] for sid in ids}
        for a, b in candidates:
            p = pair_paths(resolved[a], resolved[b])
            if p:
                conflicts.append(PairConflict(a, b, p))
                partners[a].append(b)
                partners[b].append(a)
        sessions: dict[str, SessionForecast] = {}
        for sid in ids:
            h = resolved[sid]
            mb = mbs[h]
            if mb is None:
                sessions[sid] = SessionForecast(
                    sid, h, None, 0, False, [], [], error="no common history with the base"
                )
                continue
            bpaths = paths_of(base, h) if base_needed[h] else []
            sessions[sid] = SessionForecast(
                sid, h, mb, len(changes[(mb, h)].files), not bpaths, bpaths, partners[sid]
            )
        stats = ForecastStats(
            sessions=len(ids),
            pairs=pairs_total,
            candidate_pairs=len(candidates),
            base_checks=sum(base_needed.values()),
            cache_hits=hits,
            merges_run=run,
            batched=self.use_stdin and run > 1,
            seconds=time.perf_counter() - t0,
        )
        return Forecast(base, sessions, conflicts, stats)

    @staticmethod
    def _pair_candidate(
        ha: str,
        hb: str,
        mbs: Mapping[str, str | None],
        changes: Mapping[tuple[str, str], _Changes],
    ) -> bool:
        ma, mb = mbs[ha], mbs[hb]
        assert ma is not None and mb is not None
        # Only what each session itself changed counts (issue 11 F.6): what the base
        # changed since either forked is between that session and the base (the base
        # check), never the other session's doing.
        return changes[(ma, ha)].may_conflict(changes[(mb, hb)])

    @staticmethod
    def _pair_sides(ha: str, hb: str, mbs: Mapping[str, str | None], base: str) -> tuple[str, str]:
        """What to merge to compare two sessions' own changes. Forked from the same commit:
        the heads themselves (their merge base is that commit). Otherwise each head that
        is behind the base is taken as merged into the base first (``projected``), so
        changes the base made since an older fork (e.g. a merged session's) do not count
        against the newer session."""
        if mbs[ha] == mbs[hb]:
            return ha, hb
        sa = ha if mbs[ha] == base else projected(ha, base)
        sb = hb if mbs[hb] == base else projected(hb, base)
        return sa, sb


PROJECTED = "@"  # in a merge side: ``head@base``, ``head`` as merged into ``base``


def projected(head: str, base: str) -> str:
    """The merge side standing for ``head`` merged into ``base`` (a cache key as well:
    the merge it stands for depends on nothing else)."""
    return f"{head}{PROJECTED}{base}"


def forecast(
    repo: Path,
    base_commit: str,
    heads: Mapping[str, str],
    cache: MutableMapping[tuple[str, str], list[str]] | None = None,
) -> Forecast:
    """Does each session (id -> checkpoint commit) merge cleanly into ``base_commit``,
    and which pairs of sessions conflict with each other, with the conflicting paths."""
    return ConflictForecast(repo, cache).forecast(base_commit, heads)
