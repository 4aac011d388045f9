"""How many warm worktrees a repo's pool may hold: use, disk budget, free-space floor.

The pool is on by default, but only for repos the user has *used*: a session was started
in it (``mark_used``, from every ``pa new``), ``pa pool fill`` named it, or
``[pool.repos.<name>] size`` asks for it. ``pa pool clear`` forgets the use again.

Its size is the smallest of

* ``pool.size`` per repo (a few; 0 turns the pool off) and ``pool.max`` over all repos;
* ``pool.disk_budget`` over all pools: bytes, or a fraction of the space that would be
  free without the pool (so the budget does not shrink as the pool fills);
* the floor ``pool.min_free``: the pool never leaves less free space than that; when the
  disk gets shorter, entries are given up until it is back above the floor (or none is
  left), so a short disk sees no pool at all.

What one warm worktree costs is *estimated* once per base commit, without walking a
checkout: ``git ls-tree -r -l <base>`` gives every blob's size; each file is rounded up
to the filesystem's block size, plus the worktree's index (about 72 bytes and the path per
file). The figure is cached in ``<pool>/.cost`` and is what ``pa pool status`` shows.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from parallel_agents import git
from parallel_agents.config import POOL_BUDGET_ENV, Settings, pool_disk_budget, pool_min_free

COST_FILE = ".cost"
USED_DIR = "pool-used"  # under PA_HOME: one empty file per used repo
INDEX_ENTRY = 72  # bytes of an index entry besides its path (62 + padding, rounded up)


def budget_setting(settings: Settings) -> str:
    """The budget as written (``5%``, ``2GiB``), and where, for ``pa pool status``."""
    env = os.environ.get(POOL_BUDGET_ENV)
    if env is not None:
        return f"{POOL_BUDGET_ENV}={env}"
    return f"pool.disk_budget = {settings.get('pool.disk_budget')}"


# -- use ----------------------------------------------------------------------------------
def _used_mark(settings: Settings, repo_name: str) -> Path:
    return settings.home / USED_DIR / repo_name


def mark_used(settings: Settings, repo_name: str) -> None:
    """Remember that a session was started in ``repo_name`` (a stat when already known)."""
    p = _used_mark(settings, repo_name)
    if p.exists():
        return
    with contextlib.suppress(OSError):  # e.g. a full disk: the pool simply stays off
        p.parent.mkdir(parents=True, exist_ok=True)
        p.touch()


def forget_used(settings: Settings, repo_name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        _used_mark(settings, repo_name).unlink()


def explicit_size(settings: Settings, repo_name: str) -> bool:
    """Does ``[pool.repos.<name>] size`` ask for a pool in this repo?"""
    v = settings.get(f"pool.repos.{repo_name}.size")
    try:
        return v is not None and int(v) > 0
    except (TypeError, ValueError):
        return False


def wanted(settings: Settings, repo_name: str) -> bool:
    """Should the background keep this repo's pool filled?"""
    return _used_mark(settings, repo_name).exists() or explicit_size(settings, repo_name)


# -- disk ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Disk:
    free: int  # bytes an unprivileged process may still write
    total: int
    block: int


def disk(path: Path) -> Disk | None:
    """The filesystem of ``path`` (or of its nearest existing parent)."""
    p = path
    while True:
        try:
            st = os.statvfs(p)
            return Disk(st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize, st.f_frsize or 4096)
        except FileNotFoundError:
            if p.parent == p:
                return None
            p = p.parent
        except OSError:
            return None


# -- the cost of one warm worktree --------------------------------------------------------
def estimate(repo_path: Path, commit: str, block: int) -> int:
    """Bytes one checkout of ``commit`` takes: every file rounded up to ``block``, plus
    its index entry. One ``git ls-tree`` (object headers only, no file is written)."""
    r = git.run(["ls-tree", "-r", "-l", "-z", "--full-tree", commit], repo_path)
    total = block  # the worktree's folder and its .git file
    for rec in r.stdout.split("\0"):
        meta, _, path = rec.partition("\t")
        parts = meta.split()
        if len(parts) < 4 or parts[1] != "blob":
            continue  # a submodule (commit) is an empty folder
        size = int(parts[3]) if parts[3].isdigit() else 0
        total += -(-size // block) * block + INDEX_ENTRY + len(path.encode())
    return total


def cached_cost(pdir: Path) -> tuple[str | None, int | None]:
    """(commit, bytes) of the last estimate for this pool."""
    try:
        data = json.loads((pdir / COST_FILE).read_text(encoding="utf-8"))
        return str(data["commit"]), int(data["bytes"])
    except (OSError, ValueError, KeyError, TypeError):
        return None, None


def cost(repo_path: Path, pdir: Path, commit: str, block: int) -> int:
    """The estimate for ``commit``, from the cache or made (and cached) now."""
    was, n = cached_cost(pdir)
    if was == commit and n is not None:
        return n
    n = estimate(repo_path, commit, block)
    with contextlib.suppress(OSError):
        pdir.mkdir(parents=True, exist_ok=True)
        tmp = pdir / f".{COST_FILE}.tmp"
        tmp.write_text(json.dumps({"commit": commit, "bytes": n}), encoding="utf-8")
        os.replace(tmp, pdir / COST_FILE)
    return n


def elsewhere(settings: Settings, repo_name: str, pool_dir: str, marker: str) -> tuple[int, int]:
    """Warm worktrees in the other repos' pools, and their estimated bytes (for the
    ``pool.max`` cap and the disk budget)."""
    n = held = 0
    with contextlib.suppress(FileNotFoundError):
        for d in os.scandir(settings.worktree_root):
            if d.name != repo_name and d.is_dir(follow_symlinks=False):
                p = Path(d.path) / pool_dir
                with contextlib.suppress(OSError):
                    k = sum(1 for x in os.listdir(p) if x.endswith(marker))
                    n += k
                    held += k * (cached_cost(p)[1] or 0)
    return n, held


# -- the plan -----------------------------------------------------------------------------
@dataclass
class Plan:
    """How many warm worktrees one repo's pool may hold now, and why not more."""

    want: int
    limit: str  # what decided: size, max, budget, disk (the floor), off, no estimate
    entry_bytes: int | None
    held_bytes: int  # by every pool of this home, this one included
    budget_bytes: int
    free_bytes: int | None
    floor_bytes: int
    by_floor: int | None = None  # the most the free-space floor allows (None: unknown)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def plan(
    settings: Settings,
    *,
    size: int,
    room: int,
    have: int,
    held_elsewhere: int,
    entry_bytes: int | None,
) -> Plan:
    """``size``: pool.size for the repo; ``room``: pool.max less the other pools' entries;
    ``have``: this pool's ready entries at the base; ``held_elsewhere``: the other pools'
    bytes."""
    budget = pool_disk_budget(settings)
    floor = pool_min_free(settings)
    d = disk(settings.worktree_root)
    held = held_elsewhere + have * (entry_bytes or 0)
    free = d.free if d else None
    budget_bytes = budget.of((free or 0) + held)
    floor_bytes = floor.of(d.total) if d else 0
    p = Plan(0, "off", entry_bytes, held, budget_bytes, free, floor_bytes)
    known = entry_bytes is not None and entry_bytes > 0 and free is not None
    if known:
        assert entry_bytes is not None and free is not None
        p.by_floor = max(0, have + (free - floor_bytes) // entry_bytes)
    if size <= 0:
        return p
    if budget.zero:
        p.limit = "budget"
        return p
    p.want, p.limit = size, "size"
    if room < p.want:
        p.want, p.limit = max(0, room), "max"
    if not known:
        p.limit = "no estimate"  # the filler makes one before it creates anything
        return p
    assert entry_bytes is not None and p.by_floor is not None
    by_budget = max(0, (budget_bytes - held_elsewhere) // entry_bytes)
    if by_budget < p.want:
        p.want, p.limit = by_budget, "budget"
    if p.by_floor < p.want:
        p.want, p.limit = p.by_floor, "disk"
    return p


def room_for_one(settings: Settings, entry_bytes: int) -> bool:
    """Just before a checkout: would one more leave the disk above the floor?"""
    d = disk(settings.worktree_root)
    if d is None:
        return True
    return d.free - entry_bytes >= pool_min_free(settings).of(d.total)
