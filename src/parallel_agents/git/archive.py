"""Full archives of a worktree: everything a discard removes, so a restore brings it all back.

A checkpoint (``snapshots.checkpoint``) keeps the commits and the tracked and untracked
files. A worktree holds more than that, and a discard deletes all of it:

* ignored files (an agent's ``*.log``, an edited ``.env``, a local database);
* the staging area (what was ``git add``-ed but not committed);
* empty directories;
* nested git repositories and submodules (their own commits, edits and untracked files:
  the outer repository records only a gitlink for them).

An archive commit ``C`` has the checkpoint tree (so ``git diff base C`` shows the work, as
for any checkpoint) and two parents: the worktree's HEAD (``C^1``, what a restore checks
out, as for a checkpoint) and an *extras* commit ``C^2`` whose tree holds ``index`` (the
staged tree), ``ignored`` (the ignored files), ``empty-dirs`` and ``nested`` (the paths
of the nested repositories, NUL-separated). Nested repositories are moved whole (their
``.git`` included) to ``<git-common-dir>/pa-archive/<archive name>/<path>``, next to the
archive ref, and moved back on restore.

Archive refs are only ever created, never overwritten (``write_new_ref``): a second
discard of the same session (a retry after a crash, say) gets a new name.

Caches that are costly and rebuilt by tools (``node_modules``, ``.venv``, ``__pycache__``
and a few more, plus ignored files over 50 MB) are not archived; they are listed in the
archive's ``skipped`` so the user is told, never silently.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from parallel_agents import git
from parallel_agents.errors import PAError

EXTRAS_MESSAGE = "pa archive extras"
ZERO = "0" * 40
HEAVY = frozenset(
    {
        "node_modules",
        ".venv",
        "venv",
        "__pycache__",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
        ".tox",
        ".nox",
    }
)
MAX_IGNORED_FILE = 50 * 1024 * 1024
STASH_DIR = "pa-archive"


@dataclass
class Snapshot:
    """What an archive holds besides the checkpoint tree (all paths relative, with /)."""

    commit: str
    nested: list[str] = field(default_factory=list)
    ignored: int = 0  # ignored files and folders archived
    skipped: list[str] = field(default_factory=list)  # ignored paths not archived
    index_kept: bool = True
    empty_dirs: int = 0
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# -- looking at a worktree -----------------------------------------------------------------
def scan(wt: Path) -> tuple[list[str], list[str]]:
    """(nested repositories, empty directories) under ``wt``; heavy caches not entered."""
    nested: list[str] = []
    empty: list[str] = []
    for root, dirs, files in os.walk(wt):
        rel = Path(root).relative_to(wt).as_posix()
        if rel != "." and (".git" in dirs or ".git" in files):
            nested.append(rel)
            dirs[:] = []
            continue
        if rel != "." and not dirs and not files:
            empty.append(rel)
        dirs[:] = [d for d in dirs if d != ".git" and d not in HEAVY]
    return sorted(nested), sorted(empty)


def nested_changes(wt: Path, nested: list[str] | None = None) -> list[tuple[str, int]]:
    """(path, number of uncommitted changes) of each nested repository in ``wt``
    (``nested``: those ``scan`` finds, when the caller has them already)."""
    out: list[tuple[str, int]] = []
    for rel in scan(wt)[0] if nested is None else nested:
        r = git.run(
            ["status", "--porcelain=v1", "-z", "--untracked-files=all"], wt / rel, check=False
        )
        n = len([x for x in r.stdout.split("\0") if x.strip()]) if r.returncode == 0 else -1
        out.append((rel, n))
    return out


def nested_note(wt: Path, nested: list[str] | None = None) -> str | None:
    """What `pa diff` cannot show: nested repositories are only gitlinks to the outer one."""
    lines = []
    for rel, n in nested_changes(wt, nested):
        what = "state unknown" if n < 0 else f"{n} uncommitted change{'s' * (n != 1)}"
        lines.append(
            f"note: nested repo {rel}/ has {what} (its own commits and files are not in "
            f"this diff; see git -C {wt / rel} status)"
        )
    return "\n".join(lines) or None


def has_more(wt: Path) -> bool:
    """Does ``wt`` hold anything ``git status`` does not show: ignored files (other than
    caches), nested repositories or empty folders?"""
    nested, empty = scan(wt)
    return bool(nested or empty or _ignored(wt, nested)[0])


# -- taking an archive ---------------------------------------------------------------------
@contextlib.contextmanager
def _index_env(seed: Path | None = None) -> Iterator[dict[str, str]]:
    with tempfile.TemporaryDirectory(prefix="pa-archive-") as tmp:
        path = Path(tmp) / "index"
        if seed is not None:
            git.copy_index(seed, path)
        yield {"GIT_INDEX_FILE": str(path)}


def _git_path(wt: Path, name: str) -> Path:
    p = Path(git.out(["rev-parse", "--git-path", name], wt))
    return p if p.is_absolute() else (wt / p).resolve()


def _excludes(paths: list[str]) -> list[str]:
    return [f":(top,literal,exclude){p}" for p in paths]


def _commit(wt: Path, tree: str, parents: list[str], message: str) -> str:
    return git.commit_tree(wt, tree, parents, message)


def _blob(wt: Path, data: bytes) -> str:
    return git.out(["hash-object", "-w", "--stdin"], wt, input=data)


def _ignored(wt: Path, nested: list[str]) -> tuple[list[str], list[str]]:
    """(ignored paths to archive, ignored paths skipped); folders end with '/'."""
    r = git.run(
        ["ls-files", "-z", "--others", "--ignored", "--exclude-standard", "--directory"], wt
    )
    keep: list[str] = []
    skipped: list[str] = []
    for entry in r.stdout.split("\0"):
        if not entry:
            continue
        path = entry.rstrip("/")
        if any(path == n or path.startswith(n + "/") for n in nested):
            continue  # stored whole with its repository
        parts = path.split("/")
        if any(p in HEAVY for p in parts):
            skipped.append(entry)
            continue
        full = wt / path
        if not entry.endswith("/") and full.is_file() and full.stat().st_size > MAX_IGNORED_FILE:
            skipped.append(entry)
            continue
        keep.append(path)
    return keep, skipped


def snapshot(wt: Path, message: str) -> Snapshot:
    """Archive commit of ``wt`` (see the module doc); writes objects only, no ref, and
    changes nothing in the worktree, its index or its HEAD."""
    head = git.rev_parse(wt, "HEAD")
    if head is None:
        raise PAError(f"{wt} has no HEAD commit to archive against")
    nested, empty = scan(wt)
    snap = Snapshot(commit="", nested=nested, empty_dirs=len(empty))
    real_index = _git_path(wt, "index")
    with _index_env(real_index) as env:
        git.run(["add", "-A", "--", ".", *_excludes(nested)], wt, env=env)
        tree = git.out(["write-tree"], wt, env=env)
    entries: list[str] = []
    with _index_env(real_index) as env:
        r = git.run(["write-tree"], wt, env=env, check=False)
    if r.returncode == 0:
        entries.append(f"040000 tree {r.stdout.strip()}\tindex")
    else:
        snap.index_kept = False
        snap.notes.append("the staging area had unresolved conflicts: staged state not kept")
    keep, snap.skipped = _ignored(wt, nested)
    if keep:
        with _index_env() as env:
            git.run(
                ["add", "--force", "--pathspec-from-file=-", "--pathspec-file-nul"],
                wt,
                env={**env, "GIT_LITERAL_PATHSPECS": "1"},
                input="\0".join(keep),
            )
            entries.append(f"040000 tree {git.out(['write-tree'], wt, env=env)}\tignored")
        snap.ignored = len(keep)
    if empty:
        entries.append(f"100644 blob {_blob(wt, chr(0).join(empty).encode())}\tempty-dirs")
    if nested:
        entries.append(f"100644 blob {_blob(wt, chr(0).join(nested).encode())}\tnested")
    mtree = git.out(["mktree"], wt, input="".join(e + "\n" for e in sorted(entries, key=_name)))
    extras = _commit(wt, mtree, [], EXTRAS_MESSAGE)
    snap.commit = _commit(wt, tree, [head, extras], message)
    if snap.skipped:
        snap.notes.append("not archived (caches or files over 50 MB): " + ", ".join(snap.skipped))
    return snap


def _name(entry: str) -> str:
    return entry.split("\t", 1)[1]


def write_new_ref(repo: Path, ref: str, commit: str, message: str = "pa archive") -> str:
    """Create ``ref`` (or, when it exists, a new unique name next to it) at ``commit``;
    never moves an existing ref. Returns the name written."""
    name = ref
    for _ in range(20):
        r = git.run(["update-ref", "-m", message, name, commit, ZERO], repo, check=False)
        if r.returncode == 0:
            return name
        if not git.ref_exists(repo, name) and "exists" not in r.stderr:
            raise git.GitError(["update-ref", name], r.returncode, r.stderr)
        name = f"{ref}-{int(time.time() * 1000)}-{secrets.token_hex(2)}"
    raise PAError(f"could not find a free archive name next to {ref}")


# -- nested repositories -------------------------------------------------------------------
def stash_dir(repo: Path, ref: str) -> Path:
    leaf = ref.removeprefix("refs/pa/archive/").replace("/", "_")
    return git.common_dir(repo) / STASH_DIR / leaf


def _move(src: Path, dst: Path) -> None:
    """Move a folder; across file systems through a copy that is renamed into place."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(src, dst)
        return
    except OSError:
        pass
    partial = dst.with_name(dst.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(src, partial, symlinks=True)
    os.rename(partial, dst)
    shutil.rmtree(src)


def _embed_gitdir(path: Path) -> None:
    """A submodule's ``.git`` file points into the worktree's admin folder, which the
    discard deletes: make the repository self-contained first (its gitdir inside it)."""
    dotgit = path / ".git"
    if not dotgit.is_file():
        return
    text = dotgit.read_text(encoding="utf-8", errors="replace").strip()
    if not text.startswith("gitdir:"):
        return
    gitdir = Path(text[len("gitdir:") :].strip())
    if not gitdir.is_absolute():
        gitdir = (path / gitdir).resolve()
    if not gitdir.is_dir() or (gitdir / "commondir").exists():
        return  # a linked worktree of some other repository: the pointer stays valid
    tmp = path / ".git.pa-embed"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(gitdir, tmp, symlinks=True)
    cfg = str(tmp / "config")
    git.run(["config", "--file", cfg, "--unset", "core.worktree"], path, check=False)
    dotgit.unlink()
    os.rename(tmp, dotgit)


def stash_nested(repo: Path, wt: Path, ref: str, nested: list[str]) -> None:
    """Move each nested repository of ``wt`` next to the archive ``ref`` (idempotent: a
    retry after a crash skips what is already there)."""
    base = stash_dir(repo, ref)
    for rel in nested:
        src, dst = wt / rel, base / rel
        if dst.exists():
            if src.exists():
                shutil.rmtree(src, ignore_errors=True)
            continue
        if not src.exists():
            continue
        _embed_gitdir(src)
        _move(src, dst)


# -- bringing an archive back --------------------------------------------------------------
def extras_of(repo: Path, commit: str) -> str | None:
    """The extras commit of an archive commit, or None for a plain checkpoint."""
    second = git.rev_parse(repo, f"{commit}^2")
    if second is None:
        return None
    msg = git.out(["log", "-1", "--format=%B", second], repo)
    return second if msg.strip() == EXTRAS_MESSAGE else None


def _entry(repo: Path, extras: str, name: str) -> str | None:
    r = git.run(["rev-parse", "--verify", "--quiet", f"{extras}:{name}"], repo, check=False)
    return r.stdout.strip() if r.returncode == 0 else None


def _paths_blob(repo: Path, extras: str, name: str) -> list[str]:
    oid = _entry(repo, extras, name)
    if oid is None:
        return []
    data = git.run(["cat-file", "blob", oid], repo).stdout
    return [p for p in data.split("\0") if p]


def restore_extras(repo: Path, wt: Path, commit: str, ref: str | None) -> list[str]:
    """After ``snapshots.restore(wt, commit)``: put back ignored files, nested repositories,
    empty directories and the staging area. Returns notes for the user."""
    notes: list[str] = []
    extras = extras_of(repo, commit)
    if extras is None:
        return notes
    ignored = _entry(repo, extras, "ignored")
    if ignored is not None:
        with _index_env() as env:
            git.run(["read-tree", ignored], wt, env=env)
            git.run(["checkout-index", "-a", "-f"], wt, env=env)
    for rel in _paths_blob(repo, extras, "nested"):
        src = stash_dir(repo, ref) / rel if ref else None
        dst = wt / rel
        if src is None or not src.exists():
            notes.append(f"nested repo {rel}/ was not found in the archive's folder")
            continue
        if dst.is_dir() and not any(dst.iterdir()):
            dst.rmdir()
        if dst.exists():
            notes.append(f"nested repo {rel}/: {dst} is in the way; left at {src}")
            continue
        _move(src, dst)
    for rel in _paths_blob(repo, extras, "empty-dirs"):
        (wt / rel).mkdir(parents=True, exist_ok=True)
    index = _entry(repo, extras, "index")
    if index is not None:
        git.run(["read-tree", index], wt)
        git.run(["update-index", "-q", "--refresh"], wt, check=False)
    else:
        notes.append("the staging area was not kept (it had conflicts): changes are unstaged")
    return notes


# Names of the archives `pa doctor` makes of leftovers; `pa restore` looks them up.
ORPHAN_PREFIX = "refs/pa/archive/orphan-"


def safe_ref_name(name: str) -> str:
    """``name`` (a folder or branch name) as one component of a ref name."""
    out = "".join(c if c.isalnum() or c in "._-" else "-" for c in name)
    return out.strip(".-") or "x"
