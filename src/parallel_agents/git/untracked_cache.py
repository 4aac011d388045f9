"""pa's own untracked cache: may a worktree hold untracked files or nested repositories
now, when it held none at the last look? (issue 14 §4)

`pa diff` shows untracked files as new files, so it used to add the whole worktree to a
throwaway index (git's untracked walk: readdir and ignore rules over every folder) and
walk it again for nested repositories. git's own untracked cache would make that walk
cheap, but git uses it only for `git status`, and only with an index that keeps it. This
module keeps the same kind of evidence, in memory: after a look that found no untracked
file and no nested repository, the identity and times (inode, mtime, ctime) of every
folder, every ``.gitignore``, the index (its tracked set) and the files that hold ignore
rules (``info/exclude``, git's config files and the global excludes file). A file or
folder created, removed or renamed changes its parent folder's times; a changed rule
changes its file's. While none of them changed, the worktree still has no untracked
file and no nested repository, and `git diff BASE` (one git process, the worktree's own
index, nothing written) prints exactly what the throwaway index would.

Safety: the evidence is taken before git's walk (a change during the walk changes a
time taken before it); times within ``RACY_FINE`` (or, on a file system with whole-second
times, ``RACY``) seconds of the look are not trusted (a file system's clock ticks
coarsely, so a change in the same tick could keep a time); a look
that saw anything untracked, any ``.git`` below the top, or more than ``MAX_DIRS``
folders is not kept.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from array import array
from collections import OrderedDict
from pathlib import Path

from parallel_agents import git

__all__ = ["Look", "clean", "forget", "known", "untracked"]

# Seconds: a time this close to the look may hide a change in the same tick of the file
# system's clock. Linux stamps files from a clock that ticks every 1-10 ms, so where
# times carry fractions of a second 50 ms is ample, and the cache vouches for a worktree
# 50 ms after its last change; where they are whole seconds (ext3, HFS+; FAT's times
# are even ones), two seconds.
RACY = 2.0
RACY_FINE = 0.05
MAX_DIRS = 50_000  # more folders than this: checking them costs more than it saves
# Paths remembered over all worktrees (about 80 bytes each: a few MB at most); the
# worktrees diffed least recently are forgotten first.
BUDGET = 200_000

Stamp = tuple[int, int, int]  # inode, mtime_ns, ctime_ns; (0, 0, 0): did not exist
_lock = threading.Lock()
# worktree -> (its paths, "\0"-joined; their stamps, three numbers each), compact
_clean: OrderedDict[str, tuple[str, array[int]]] = OrderedDict()
_held = [0]  # paths in _clean


def _stamp(path: str) -> Stamp:
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return (0, 0, 0)
    return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns)


def clean(wt: Path) -> bool:
    """Did the last look at ``wt`` find nothing untracked, and has nothing that could
    change that changed since?"""
    key = str(wt)
    with _lock:
        kept = _clean.get(key)
        if kept is not None:
            _clean.move_to_end(key)
    if kept is None:
        return False
    paths, stamps = kept
    for i, path in enumerate(paths.split("\0")):
        if _stamp(path) != (stamps[3 * i], stamps[3 * i + 1], stamps[3 * i + 2]):
            forget(wt)
            return False
    return True


def known(wt: Path) -> bool:
    """Was ``wt`` kept at its last look? (``clean`` says whether it still holds.)"""
    with _lock:
        return str(wt) in _clean


def forget(wt: Path) -> None:
    with _lock:
        _drop(str(wt))


def _drop(key: str) -> None:
    kept = _clean.pop(key, None)
    if kept is not None:
        _held[0] -= len(kept[1]) // 3


class Look:
    """One walk of ``wt`` (its git folder ``gd``; a ``find`` process, started at once):
    its folders' stamps, ``.gitignore`` files and ``.git`` entries. ``nested()`` gives
    the nested repositories by ``archive.scan``'s rules; ``keep_if_clean()`` remembers
    the evidence when git found nothing untracked."""

    def __init__(self, wt: Path, gd: Path) -> None:
        self.wt = wt
        self.started = time.time()
        # Rule files first, before git's walk (the same reason as the folders).
        self.rules = {p: _stamp(p) for p in _rule_files(wt, gd)}
        self.stamps: dict[str, Stamp] = {}
        self.gits: list[str] = []
        # False: find failed (an unreadable folder; no GNU find): nothing is kept, and
        # the nested repositories come from ``archive.scan``.
        self.complete = False
        self._proc: subprocess.Popen[bytes] | None = None
        with contextlib.suppress(OSError):
            self._proc = subprocess.Popen(
                ["find", ".", "(", "-name", ".git", "-printf", r"g %p\0", "-prune", ")",
                 "-o", "(", "-type", "d", "-printf", r"d %i %T@ %C@ %p\0", ")",
                 "-o", "(", "-name", ".gitignore", "-printf", r"d %i %T@ %C@ %p\0", ")"],
                cwd=str(wt),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )

    def wait(self) -> Look:
        if self._proc is None:
            return self
        out, _ = self._proc.communicate()
        self.complete = self._proc.returncode == 0  # an unreadable folder: not complete
        self._proc = None
        base = os.fsencode(self.wt)
        for rec in out.split(b"\0"):
            if rec.startswith(b"g ./"):
                if rec != b"g ./.git":
                    self.gits.append(os.fsdecode(rec[4:-5]))
            elif rec.startswith(b"d "):
                ino, mtime, ctime, rel = rec[2:].split(b" ", 3)
                path = os.fsdecode(base + rel[1:]) if rel != b"." else str(self.wt)
                self.stamps[path] = (int(ino), _ns(mtime), _ns(ctime))
        return self

    def nested(self) -> list[str]:
        """Nested repositories, sorted; none inside caches (``archive.HEAVY``) or inside
        another nested one."""
        from parallel_agents.git import archive

        self.wait()
        if not self.complete:
            return archive.scan(self.wt)[0]
        nested: list[str] = []
        for rel in sorted(self.gits):
            if any(part in archive.HEAVY for part in rel.split("/")):
                continue
            if not any(rel.startswith(n + "/") for n in nested):
                nested.append(rel)
        return nested

    def keep_if_clean(self, untracked: bool) -> None:
        """Remember this look when nothing untracked or nested was found and no time is
        too recent to trust."""
        self.wait()
        stamps = {**self.rules, **self.stamps}
        # Fractions in both times somewhere: a file system that keeps them.
        fine = any(s[1] % 1_000_000_000 for s in stamps.values()) and any(
            s[2] % 1_000_000_000 for s in stamps.values()
        )
        limit = int((self.started - (RACY_FINE if fine else RACY)) * 1e9)
        if (
            untracked
            or self.gits
            or not self.complete
            or len(self.stamps) > MAX_DIRS
            or any(max(s[1], s[2]) >= limit for s in stamps.values())
        ):
            forget(self.wt)
            return
        flat = array("q")
        for st in stamps.values():
            flat.extend(st)
        key = str(self.wt)
        with _lock:
            _drop(key)
            _clean[key] = ("\0".join(stamps), flat)
            _held[0] += len(stamps)
            while _held[0] > BUDGET and len(_clean) > 1:
                _drop(next(iter(_clean)))

    def close(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None


def _ns(text: bytes) -> int:
    """find's ``%T@`` (seconds with a fraction) in nanoseconds, without float rounding."""
    sec, _, frac = text.partition(b".")
    return int(sec) * 1_000_000_000 + int((frac + b"000000000")[:9])


def _rule_files(wt: Path, gd: Path) -> list[str]:
    """Files whose change can change what is untracked: the worktree's index (what is
    tracked), ``info/exclude``, git's config files (``core.excludesFile``) and the global
    excludes file."""
    common = gd
    with contextlib.suppress(OSError):
        common = (gd / (gd / "commondir").read_text().strip()).resolve()
    home = Path.home()
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    files = [
        gd / "index",
        gd / "config.worktree",
        common / "config",
        common / "info" / "exclude",
        home / ".gitconfig",
        xdg / "git" / "config",
        xdg / "git" / "ignore",
    ]
    extra = git.run(["config", "--path", "--get", "core.excludesFile"], wt, check=False)
    if extra.returncode == 0 and extra.text.strip():
        files.append(Path(os.path.expanduser(extra.text.strip())))
    for name in ("GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM"):
        if os.environ.get(name):
            files.append(Path(os.environ[name]))
    files.append(Path("/etc/gitconfig"))
    return [str(f) for f in files]


def untracked(wt: Path) -> list[bytes] | None:
    """git's untracked listing of ``wt`` (folders whose files are all untracked as one
    ``dir/`` entry), or None when git could not list it."""
    r = git.run(
        ["ls-files", "--others", "--exclude-standard", "--directory", "--no-empty-directory",
         "-z"],
        wt,
        check=False,
    )
    if r.returncode != 0:
        return None
    return [p for p in r.raw.split(b"\0") if p]
